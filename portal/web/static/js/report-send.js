// Sending a checked report: receipt, sealing, and the three steps of the
// resumable intake (portal/web/resumable.py):
//   POST /submit/begin   csrf_token, proof, parts, total   → {draft}
//   tus uploads          one per envelope (resumable.js), created with the draft
//   POST /submit/finish  csrf_token, draft, receipt_locator, receipt_token,
//                        report, attachment…               → {stored: true}
// The proof of work is spent at begin, so nothing can expire during a long
// upload afterwards; an expired form token is renewed in place (GET
// /form-token) and the request made again. A finish may be repeated safely.
//
// Round trips cost 800 ms on a ship's link, so nothing waits that need not:
// the form token is the page's own and the proof was solved while the
// reporter typed; right after begin every upload is created at once (a few
// at a time), and their bytes follow the 201s with no HEAD (a new upload
// holds nothing). Each envelope's PATCH follows the previous one's 204, and
// finish follows the last 204, which already said that every byte is held.
//
// Everything made for one attempt (the receipt, the sealed envelopes, the
// draft and the uploads) is kept in an Attempt. Pressing send again after an
// error goes on with it: nothing is sealed twice and no byte the portal
// already holds is sent again. Only a change to the report starts afresh.
// Nothing is ever written to browser storage.
//
// Answers that mean "not now" are waited out: 429 from an upload (no room
// for unfinished uploads; resumable.js waits Retry-After and resumes, and
// the portal's words are shown meanwhile), 423 or 429 to a creation, and 423
// to a finish (a part is still being written, or another finish runs: ask
// again, which is safe). A draft the portal let go (404 or 410 to an upload,
// its creation or the finish: no byte within 30 minutes, or a day or two
// passed) is begun again by itself, with a fresh proof of work, and the same
// sealed envelopes are sent again from the start; so is one whose creations
// were refused for too many parts (413, after creations whose answers were
// lost), but only once per press of send. The status says so. Sending the
// same ciphertext with the same receipt to a new draft stores at most one
// submission (portal/web/resumable.py, _stored_before).

import { toHex, utf8Encode } from './bytes.js';
import { DirectoryError } from './errors.js';
import { _, languageHeaders, pageLanguage } from './i18n.js';
import { formatPublicKey } from './keys.js';
import { deriveReceiptKeys, formatReceipt, generateReceipt } from './receipt.js';
import { sealForReviewers } from './reviewers.js';
import { ResumableUpload, UploadError } from './resumable.js';
import { collect, prepareAttachments } from './sending.js';

const LINK_DOWN_MS = 10000; // no answer for this long: tell the reporter
const REQUEST_TIMEOUT_MS = 90000;
const PAUSES_MS = [1000, 2000, 4000, 8000];
const PROXY_ERRORS = new Set([502, 504]);
// Requests at once: HTTP/1.1 gives a page six connections to the portal, and
// a request waiting for one would use up its own timeout. The envelopes go
// one after the other: one PATCH and the HEADs watching it.
const CREATING_AT_ONCE = 4;
const SENDING_AT_ONCE = 1;
const LOCKED_WAIT_MS = 2000; // a finish answered 423 is asked again after this
// Longest a finish is asked again while answered 423: a PATCH the link left
// open holds its upload until the portal ends it (at most 10 minutes).
const FINISH_PATIENCE_MS = 15 * 60 * 1000;
const DRAFT_RENEWALS = 3; // drafts begun again by themselves, per press of send
// The report's "language" (portal/web/report.py's LANGUAGE): a short, well-formed code.
const DOCUMENT_LANGUAGE = /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/;

/** The code for the report's "language": the page's (<html lang>), or "en" if it is not a short well-formed one. */
export function documentLanguage(code = pageLanguage()) {
  return code.length <= 16 && DOCUMENT_LANGUAGE.test(code) ? code : 'en';
}
const GONE = _("The portal no longer held this unfinished report (it lets one go when nothing arrives for 30 minutes, and after a day or two), so it is being sent again from the start, exactly as it was encrypted. Nothing you typed is lost.");
const TOO_MANY_PARTS = _("The portal counted more parts for this report than it has (answers lost on the way), so it is being sent again from the start, exactly as it was encrypted. Nothing you typed is lost.");

/** The portal refused; `message` is for the reporter. Everything typed stays. */
export class Refused extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'Refused';
    this.status = status;
  }
}

// The draft has to be begun again: `why` is 'gone' (404/410) or 'parts' (413
// to a creation); `refused` is what to show if it cannot be.
class Restart extends Error {
  constructor(why, refused) {
    super(refused.message);
    this.why = why;
    this.refused = refused;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isLinkFailure(error) {
  return error instanceof TypeError || error?.name === 'TimeoutError';
}

/**
 * Ask the portal until it answers: `request()` is tried again after a
 * network failure or a proxy error, with growing pauses; `onLink('down')` once
 * nothing has answered for 10 s, `onLink('up')` when something does.
 * Resolves to {status, body} (body: the JSON answer, or {}).
 */
async function untilAnswered(request, onLink) {
  let down = false;
  const timer = setTimeout(() => {
    down = true;
    onLink('down');
  }, LINK_DOWN_MS);
  try {
    for (let tries = 0; ; tries++) {
      try {
        const response = await request(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
        if (!PROXY_ERRORS.has(response.status)) {
          return { status: response.status, body: await response.json().catch(() => ({})) };
        }
      } catch (error) {
        if (!isLinkFailure(error)) throw error;
      }
      await sleep(PAUSES_MS[Math.min(tries, PAUSES_MS.length - 1)]);
    }
  } finally {
    clearTimeout(timer);
    if (down) onLink('up');
  }
}

function postForm(url, fields, onLink) {
  return untilAnswered((signal) => {
    const body = new FormData();
    for (const [name, value] of fields) body.append(name, value);
    return fetch(url, {
      method: 'POST', body, credentials: 'same-origin', cache: 'no-store', headers: languageHeaders(), signal,
    });
  }, onLink);
}

// The portal's own words for a refusal, or `fallback` (a message with {status}) filled in.
function refusedBy({ status, body }, fallback) {
  const words = typeof body?.error === 'string' && body.error ? body.error : fallback.replace('{status}', status);
  return new Refused(words, status);
}

/** A fresh form token from GET /form-token, put into the form in place of the old one. */
export async function renewToken(form, onLink) {
  const answer = await untilAnswered(
    (signal) => fetch('/form-token', { credentials: 'same-origin', cache: 'no-store', headers: languageHeaders(), signal }),
    onLink);
  if (answer.status !== 200 || typeof answer.body.csrf_token !== 'string') {
    throw refusedBy(answer, _("The portal refused a new form ({status})."));
  }
  form.elements.namedItem('csrf_token').value = answer.body.csrf_token;
}

// POST with the form's token; renew it once if the portal says it expired.
async function postWithToken(form, url, fields, onLink) {
  const token = () => ['csrf_token', form.elements.namedItem('csrf_token').value];
  let answer = await postForm(url, [token(), ...fields], onLink);
  if (answer.status === 400 && answer.body.renew_token === true) {
    await renewToken(form, onLink);
    answer = await postForm(url, [token(), ...fields], onLink);
  }
  return answer;
}

/**
 * `work(item)` for every item, at most `limit` at once. After a failure no
 * further item is started; the running ones are waited for (nothing goes on
 * behind the reporter's back), then the first failure is thrown.
 */
async function eachAtMost(limit, items, work) {
  let next = 0;
  let failure = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw failure.error;
}

/** One link state for several uploads: down when one says so, up again when none does. */
function sharedLink(onLink) {
  const down = new Set();
  return (index, state) => {
    const before = down.size;
    if (state === 'down') down.add(index);
    else down.delete(index);
    if (before === 0 && down.size > 0) onLink('down');
    if (before > 0 && down.size === 0) onLink('up');
  };
}

/** The id the portal gave an upload: the last part of its URL. */
function uploadId(url) {
  return new URL(url).pathname.split('/').at(-1);
}

/** Everything one attempt at sending a report has made, kept across presses of send. */
export class Attempt {
  /** `key`: what the report was made from; a different key needs a new Attempt. */
  constructor(key) {
    this.key = key;
    this.receipt = null;
    this.keys = null;
    this.envelopes = null;
    this.draft = null;
    this.uploads = null;
  }

  get total() {
    return this.envelopes.reduce((sum, blob) => sum + blob.size, 0);
  }

  get acknowledged() {
    return (this.uploads ?? []).reduce((sum, upload) => sum + upload.acknowledged, 0);
  }
}

/**
 * Send the report. `page` gives what the page knows: form, fields
 * ({report, identity}), files, organisationKey, directoryText(fresh) (the
 * signed key directory), proofs (a ProofInAdvance), say(text),
 * progress(acknowledged, total), onLink(state), and optionally language
 * (the report's "language"; by default the page's <html lang>) and timing
 * (resumable.js's, for tests: lockedWaitMs also paces finishes). Resolves to the receipt
 * as shown; throws Refused (or DirectoryError) with everything kept.
 */
export async function sendReport(attempt, page) {
  if (attempt.receipt === null) {
    page.say(_("Making your receipt…"));
    const receipt = generateReceipt(); // it never leaves the browser (crypto/SPEC.md §14)
    attempt.keys = await deriveReceiptKeys(receipt);
    attempt.receipt = receipt;
  }
  if (attempt.envelopes === null) attempt.envelopes = await seal(attempt, page);
  let renewals = 0;
  let partsRefused = false;
  let notice = null; // why the report is being sent again, kept in front of every status
  const shown = { ...page, say: (text) => page.say([notice, text].filter(Boolean).join(' ')) };
  for (;;) {
    if (attempt.draft === null) await begin(attempt, shown);
    try {
      await upload(attempt, shown);
      await finish(attempt, shown);
      return formatReceipt(attempt.receipt);
    } catch (error) {
      if (!(error instanceof Restart)) throw error;
      attempt.draft = null; // whatever happens, the next try begins a new draft
      attempt.uploads = null;
      const again = error.why === 'gone' ? renewals++ < DRAFT_RENEWALS : !partsRefused;
      if (!again) throw error.refused;
      if (error.why === 'parts') partsRefused = true;
      notice = error.why === 'gone' ? GONE : TOO_MANY_PARTS;
      shown.say('');
    }
  }
}

async function seal(attempt, page) {
  const { manifest, cleaned } = await prepareAttachments(page.files, page.say);
  const reportDocument = {
    schema: 'cso-report/v1',
    encrypted_by: 'browser',
    language: documentLanguage(page.language), // of the page the reporter used; values stay slugs
    ...page.fields,
    attachments: manifest,
    reporter_key: await formatPublicKey('csoenc1', attempt.keys.publicKey), // SPEC.md §14.3
  };
  let directoryText = await page.directoryText(false);
  const sealOne = async (source) => {
    let sealed;
    try {
      sealed = await sealForReviewers(source, directoryText, page.organisationKey, new Date());
    } catch (error) {
      if (!(error instanceof DirectoryError)) throw error;
      directoryText = await page.directoryText(true); // it may have been renewed since the page loaded
      sealed = await sealForReviewers(source, directoryText, page.organisationKey, new Date());
    }
    return collect(sealed.pieces);
  };
  page.say(_("Encrypting your report…"));
  const envelopes = [await sealOne(utf8Encode(JSON.stringify(reportDocument)))];
  for (const [i, blob] of cleaned.entries()) {
    page.say(_("Encrypting file {n} of {total}…", { n: i + 1, total: cleaned.length }));
    envelopes.push(await sealOne(blob));
  }
  return envelopes;
}

async function takeProof(page) {
  page.say(_("Doing the anti-spam check…"));
  for (let tries = 0; ; tries++) {
    try {
      return await page.proofs.take();
    } catch (error) {
      if (!isLinkFailure(error)) throw new Refused(error.message, 0);
      if (tries === 3) page.onLink('down');
      await sleep(PAUSES_MS[Math.min(tries, PAUSES_MS.length - 1)]);
    }
  }
}

async function begin(attempt, page) {
  const fields = (proof) => [
    ['proof', proof], ['parts', String(attempt.envelopes.length)], ['total', String(attempt.total)],
  ];
  let answer = await postWithToken(page.form, '/submit/begin', fields(await takeProof(page)), page.onLink);
  if (answer.status === 400 && answer.body.renew_token !== true) {
    // Most likely the proof: spent by a request whose answer was lost, or too easy now.
    answer = await postWithToken(page.form, '/submit/begin', fields(await takeProof(page)), page.onLink);
  }
  if (answer.status !== 201 || !/^[0-9a-f]{32}$/.test(answer.body.draft ?? '')) {
    throw refusedBy(answer, _("The portal refused the report ({status})."));
  }
  attempt.draft = answer.body.draft;
  const link = sharedLink(page.onLink);
  attempt.uploads = attempt.envelopes.map((blob, index) => new ResumableUpload(blob, {
    endpoint: '/uploads',
    metadata: { draft: attempt.draft },
    onProgress: () => page.progress(attempt.acknowledged, attempt.total),
    onLink: (state) => link(index, state),
    timing: page.timing,
    onWait: (words, ms) => page.say(words === null ? sendingText(attempt) : waitText(words, ms)),
  }));
}

// The portal's words about a wait it asked for, and how long it is.
function waitText(words, ms) {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return seconds === 1
    ? _("{words} Sending goes on by itself in about a second: keep this page open.", { words })
    : _("{words} Sending goes on by itself in about {seconds} seconds: keep this page open.", { words, seconds });
}

function sendingText(attempt) {
  const files = attempt.uploads.length - 1;
  if (files === 0) return _("Sending the encrypted report…");
  return files === 1
    ? _("Sending the encrypted report and its file…")
    : _("Sending the encrypted report and its {count} files…", { count: files });
}

function gone(status) {
  return status === 404 || status === 410;
}

async function upload(attempt, page) {
  page.progress(attempt.acknowledged, attempt.total);
  page.say(sendingText(attempt));
  let creating = true;
  try {
    // every upload exists before any byte is sent: a refusal (no room, too much) comes first
    await eachAtMost(CREATING_AT_ONCE, attempt.uploads, (part) => part.create());
    creating = false;
    await eachAtMost(SENDING_AT_ONCE, attempt.uploads, (part) => part.send());
  } catch (error) {
    if (!(error instanceof UploadError)) throw error;
    const refused = new Refused(error.message, error.status);
    if (gone(error.status)) throw new Restart('gone', refused);
    if (creating && error.status === 413) throw new Restart('parts', refused);
    throw refused;
  }
  page.progress(attempt.total, attempt.total);
}

async function finish(attempt, page) {
  page.say(_("Asking the portal to store your report…"));
  const fields = [
    ['draft', attempt.draft],
    ['receipt_locator', attempt.receipt.slice(0, 4)],
    ['receipt_token', toHex(attempt.keys.lookupToken)],
    ['report', uploadId(attempt.uploads[0].url)],
    ...attempt.uploads.slice(1).map((part) => ['attachment', uploadId(part.url)]),
  ];
  const patience = Date.now() + FINISH_PATIENCE_MS;
  for (let incomplete = 0; ;) {
    const answer = await postWithToken(page.form, '/submit/finish', fields, page.onLink);
    if (answer.status === 200 && answer.body.stored === true) return;
    if (answer.status === 423 && Date.now() < patience) {
      // a part is still being written, or another finish runs: asking again is safe
      page.say(_("The portal is still writing part of the report; asking it again in a moment…"));
      await sleep(page.timing?.lockedWaitMs ?? LOCKED_WAIT_MS);
      page.say(_("Asking the portal to store your report…"));
      continue;
    }
    if (answer.status === 409 && incomplete++ < 2) {
      // a part is not complete: ask the portal what it holds of each, send the rest, ask again
      for (const part of attempt.uploads) part.recheck();
      await upload(attempt, page);
      page.say(_("Asking the portal to store your report…"));
      continue;
    }
    const refused = refusedBy(answer, _("The portal refused the report ({status})."));
    if (gone(answer.status)) throw new Restart('gone', refused);
    throw refused;
  }
}
