// The report page: encrypt in the browser, upload only ciphertext, and
// never fall back to anything weaker without the reporter's say.
//
// <html data-encryption> tells where the page stands:
//   preparing    the script runs; the browser's encryption is being checked and
//                the reviewers' keys fetched and verified. A send pressed now
//                waits for it, and says so. Nothing is ever posted natively:
//                the page has no submit button while scripts run.
//   ready        keys verified, WebCrypto with X25519 works: sends encrypt here.
//   unavailable  this browser cannot encrypt here (insecure page, no WebCrypto,
//                no X25519…). The page says so before anything is typed and
//                offers the server's encryption, which the reporter may choose
//                (#choose-server); only then does a real submit button appear.
//   failed       the reviewers' keys could not be verified: nothing can be sent.
//
// Once ready, a proof of work is solved in the background while the
// reporter types. On send, the form is checked with the rules the server
// enforces (rules.js), files against the limits before any is read, then
// report-send.js seals and sends. Whatever goes wrong, everything typed and
// every chosen file stays where it is.

import { encryptionCapability } from './capability.js';
import { verifyDirectory } from './directory.js';
import { _, languageHeaders } from './i18n.js';
import { ProofInAdvance } from './pow.js';
import { showReceipt } from './receipt-view.js';
import {
  applyCategory, clearProblemOf, clearProblems, formValues, setBusy, showDetails, showProblems, unreadableNumbers,
} from './report-form.js';
import { Attempt, Refused, sendReport } from './report-send.js';
import { checkFiles, checkReport, formatMessage, readRules } from './rules.js';
import { ScrubError } from './scrub.js';

const root = document.documentElement;
const form = document.getElementById('report');
const mode = document.getElementById('mode');
const organisationKey = document.querySelector('meta[name="cso-organisation-key"]')?.content ?? '';
const rules = readRules();
const proofs = new ProofInAdvance('submit');

root.dataset.encryption = 'preparing';
mode.textContent = _("Preparing encryption…");
showDetails(form);
applyCategory(form);
form.elements.namedItem('category').addEventListener('change', () => applyCategory(form));
form.addEventListener('input', (event) => clearProblemOf(form, event.target));

const sendButton = form.querySelector('#send');
const statusLine = form.querySelector('#status');
const progressBox = form.querySelector('#progress-box');
const progressBar = form.querySelector('#progress');
const progressText = form.querySelector('#progress-text');
let serverChosen = false;

// With scripts on, the form is posted natively only if the reporter chose the server's encryption.
form.addEventListener('submit', (event) => {
  if (!serverChosen) event.preventDefault();
});

function say(text) {
  statusLine.textContent = text;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- getting ready -----------------------------------------------------------------

class PortalUnavailable extends Error {}

/** The signed key directory as served, asking again while the link is down. */
async function fetchDirectory(onWait) {
  for (let tries = 0; ; tries++) {
    try {
      const response = await fetch('/keys/directory.json', {
        cache: 'no-store', credentials: 'same-origin', headers: languageHeaders(), signal: AbortSignal.timeout(60000),
      });
      if (response.ok) return await response.text();
      if (response.status !== 502 && response.status !== 504) throw new PortalUnavailable();
    } catch (error) {
      if (!(error instanceof TypeError) && error?.name !== 'TimeoutError') throw error;
    }
    onWait();
    await sleep([2000, 4000, 8000][Math.min(tries, 2)]);
  }
}

let directoryText = null;

/** The verified directory's text; `fresh` fetches it again (it may have been renewed). */
async function currentDirectory(fresh) {
  if (fresh || directoryText === null) {
    const text = await fetchDirectory(() => {});
    await verifyDirectory(text, organisationKey, new Date());
    directoryText = text;
  }
  return directoryText;
}

// Why this browser cannot encrypt, and what choosing the server's encryption means here.
function unavailableWords(capability) {
  const lines = [
    capability.reason,
    _("You can still send your report: the server then encrypts it as it arrives, in memory, and keeps only the encrypted copy, as it does for browsers without JavaScript."),
  ];
  if (capability.missing.includes('secure context')) {
    lines.push(_("But this connection is not encrypted either: what you send could be read on its way to the portal."));
  }
  return lines.flatMap((line) => [document.createElement('br'), line]);
}

function becomeUnavailable(capability) {
  root.dataset.encryption = 'unavailable';
  const choose = document.createElement('button');
  choose.type = 'button';
  choose.id = 'choose-server';
  choose.textContent = _("Let the server encrypt my report");
  const strong = document.createElement('strong');
  strong.textContent = _("This browser cannot encrypt your report here.");
  mode.replaceChildren(strong, ...unavailableWords(capability), document.createElement('br'), choose);
  sendButton.hidden = true;
  choose.addEventListener('click', chooseServer);
}

// The reporter chose the server's encryption: a real submit button, explained.
function chooseServer() {
  serverChosen = true;
  mode.textContent = _("You chose to let the server encrypt your report. It does so as the report arrives, in memory, and keeps only the encrypted copy. Send it with the button at the end of the form.");
  mode.tabIndex = -1;
  const submit = document.createElement('button');
  submit.type = 'submit';
  submit.id = 'send-plain';
  submit.textContent = _("Send (the server encrypts it)");
  sendButton.after(submit);
  sendButton.remove();
  mode.focus();
}

function becomeFailed(error) {
  root.dataset.encryption = 'failed';
  mode.textContent = error instanceof PortalUnavailable
    ? _("The portal cannot accept reports right now, so nothing can be sent. Please try again later.")
    : _("The reviewers' keys could not be verified, so this page cannot encrypt your report and nothing can be sent. Please try again later.");
  sendButton.disabled = true;
  sendButton.setAttribute('aria-disabled', 'true');
}

async function prepare() {
  const capability = await encryptionCapability(window);
  if (!capability.usable) {
    becomeUnavailable(capability);
    return 'unavailable';
  }
  const slowLink = () => {
    mode.textContent = _("Preparing encryption… the portal has not answered yet (a slow or broken link); still trying.");
  };
  const slow = setTimeout(slowLink, 10000);
  try {
    const text = await fetchDirectory(slowLink);
    await verifyDirectory(text, organisationKey, new Date());
    directoryText = text;
  } catch (error) {
    becomeFailed(error);
    return 'failed';
  } finally {
    clearTimeout(slow);
  }
  root.dataset.encryption = 'ready';
  mode.textContent = _("Your browser encrypts this report and every file for the vetted reviewers before anything is sent. The server only ever receives the encrypted copy. Photos are cleaned of location and camera data first.");
  proofs.start();
  return 'ready';
}

const ready = prepare();

// --- sending -----------------------------------------------------------------------

const STEP_AFTER_LINK = _("The link is back: sending goes on.");
let attempt = null;
let sending = false;

function sizeText(bytes) {
  if (bytes < 1024 * 1024) return _("{size} KiB", { size: Math.max(1, Math.round(bytes / 1024)) });
  return _("{size} MiB", { size: (bytes / (1024 * 1024)).toFixed(1) });
}

function showProgress(acknowledged, total) {
  progressBox.hidden = false;
  progressBar.value = total ? acknowledged / total : 0;
  progressText.textContent = _("Received by the portal: {done} of {total}", {
    done: sizeText(acknowledged), total: sizeText(total),
  });
}

function onLink(state) {
  say(state === 'down'
    ? _("The link to the portal is down. Sending will resume by itself when it comes back: keep this page open. Nothing is lost.")
    : STEP_AFTER_LINK);
}

/** Everything wrong with the form as it stands, files included, in the rules' words. */
function problemsNow(values, files) {
  const { report, identity, problems } = checkReport(rules, values);
  const marked = new Set(problems.map((p) => p.field));
  for (const input of unreadableNumbers(form)) {
    const rule = rules.fields.find((f) => f.name === input.name);
    if (rule && !marked.has(rule.name)) {
      problems.push({ field: rule.name, key: 'count', message: formatMessage(rules, 'count', rule) });
    }
  }
  return { fields: { report, identity }, problems: [...problems, ...checkFiles(rules, files)] };
}

// What the sealed envelopes were made from: the same again means they can be sent as they are.
function attemptKey(values, files) {
  return JSON.stringify([values, files.map((f) => [f.name, f.size, f.type, f.lastModified])]);
}

function explain(error) {
  if (error instanceof Refused) {
    return _("{refusal} Everything you typed is still here; you can send again.", { refusal: error.message });
  }
  if (error?.name === 'DirectoryError') {
    return _("The reviewers' keys could not be verified, so nothing was encrypted or sent. Please try again later.");
  }
  return _("Something went wrong in this browser ({error}). Nothing was sent; everything you typed is still here.", {
    error: error?.message ?? error,
  });
}

async function send() {
  if (sending) return;
  const values = formValues(form);
  const files = Array.from(form.elements.namedItem('attachments').files);
  const { fields, problems } = problemsNow(values, files);
  if (problems.length) {
    showProblems(form, problems);
    say(problems.length === 1
      ? _("Not sent yet: one thing to put right, marked in the form.")
      : _("Not sent yet: {count} things to put right, marked in the form.", { count: problems.length }));
    return;
  }
  clearProblems(form);
  sending = true;
  setBusy(form, true);
  try {
    if (root.dataset.encryption === 'preparing') {
      say(_("Preparing encryption… your report will be encrypted and sent as soon as it is ready."));
    }
    const state = await ready;
    if (state === 'unavailable') {
      say(_("Not sent: this browser cannot encrypt your report here. The notice at the top of the page says why, and how to let the server encrypt it instead."));
      return;
    }
    if (state !== 'ready') {
      say(mode.textContent);
      return;
    }
    const key = attemptKey(values, files);
    if (attempt === null || attempt.key !== key) attempt = new Attempt(key);
    const receipt = await sendReport(attempt, {
      form, fields, files, organisationKey, proofs, say, onLink,
      directoryText: currentDirectory,
      progress: showProgress,
    });
    showReceipt(form.closest('main') ?? document.body, receipt);
  } catch (error) {
    if (error instanceof ScrubError) {
      const message = formatMessage(rules, 'damaged_image', { index: error.index });
      showProblems(form, [{ field: 'attachments', key: 'damaged_image', message }]);
      say(_("Not sent: {problem}", { problem: message }));
    } else {
      say(explain(error));
    }
  } finally {
    sending = false;
    if (form.isConnected) setBusy(form, false);
  }
}

sendButton.addEventListener('click', send);
