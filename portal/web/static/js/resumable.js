// Sending one sealed envelope with tus 1.0.0 (https://tus.io/protocols/resumable-upload),
// so that a satellite link that drops costs only the bytes in flight.
//
// The portal's side is portal/web/resumable.py. This client uses the core
// protocol and creation: POST creates the upload (Upload-Metadata carries the
// draft id), PATCH sends the rest from the offset the server holds, HEAD asks
// for that offset. PATCHes carry no checksum, so whatever reached the server
// before a connection broke is kept, and the next PATCH starts there.
//
// Every round trip costs 800 ms on a ship's link, so the offset is asked for
// only when it is not known: a fresh upload holds nothing (the first PATCH
// goes straight after the 201), and a PATCH answered 204 says where the server
// stands. After anything else (a reset, a timeout, 409, 423, an error thrown
// to the caller) the next PATCH waits for a HEAD.
//
// Only what the server acknowledges counts: during a PATCH a HEAD every few
// seconds reads the stored offset, and that is what onProgress reports.
//   * no acknowledged progress for `linkDownMs` (10 s): onLink('down'), once;
//     onLink('up') when progress comes back;
//   * a HEAD answers but the offset has not moved for `stallMs` (20 s): the
//     PATCH's own connection is dead although the portal is reachable, so it
//     is aborted and a new one starts from the acknowledged offset;
//   * a PATCH that fails (reset, timeout, 502-504): HEAD, with a timeout and a
//     growing pause between tries, until the portal answers; then resume;
//   * 409 (offset mismatch): HEAD and resume; 423 (an older PATCH on this
//     upload is still open on the server, or two PATCHes already send to
//     the draft): wait, HEAD, resume;
//   * 429 (the portal has no room for unfinished uploads just now; what
//     arrived is kept): onWait(the portal's words, ms), wait `Retry-After`
//     seconds (at most `longestWaitMs`), onWait(null), HEAD, resume. The
//     link is up meanwhile, so the watchdog is quiet while it waits;
//   * creation answered 423 (a finish of the draft is running) or 429: the
//     same waits, then the creation is asked again.
// It never restarts from zero, and never touches the bytes it was given:
// the envelope is sealed once by the caller. Refusals (4xx other than those)
// end the upload with an UploadError carrying the portal's own words; the
// caller decides what 404/410 (the draft or upload is gone) and 413 mean.
//
// fetch, not XMLHttpRequest: every request here can be aborted, and the same
// code runs under Node's test runner against a real tus server.

import { _, languageHeaders } from './i18n.js';

export const TUS_VERSION = '1.0.0';

export const DEFAULT_TIMING = Object.freeze({
  pollMs: 3000, // HEAD during a PATCH
  linkDownMs: 10000, // no acknowledged progress: tell the reporter
  stallMs: 20000, // HEAD answers, offset still: abort the PATCH and resume
  headTimeoutMs: 10000,
  lockedWaitMs: 2000,
  longestWaitMs: 120000, // the most a Retry-After is waited for before asking again
  backoffMs: [1000, 2000, 4000, 8000], // then the last one, again and again
});

const TRANSIENT = new Set([502, 503, 504]);

/** The portal refused the upload; `message` is its own explanation, safe to show. */
export class UploadError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'UploadError';
    this.status = status;
  }
}

// The request failed on the way (reset, timeout, proxy error): worth retrying.
class LinkError extends Error {}

// The portal answered "not now": ask again after `ms`; `words` are its own, or null.
class WaitError extends Error {
  constructor(ms, words) {
    super(words ?? 'wait');
    this.ms = ms;
    this.words = words;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function base64(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The portal's words from a JSON error answer, or a plain fallback. */
export async function refusal(response) {
  const body = await response.json().catch(() => ({}));
  const text = typeof body?.error === 'string' && body.error ? body.error : null;
  return new UploadError(text ?? _("The portal refused the upload ({status}).", { status: response.status }), response.status);
}

/** Milliseconds to wait after a 429, from its Retry-After (seconds), within 1 s … `longest`. */
export function retryAfterMs(response, longest) {
  const value = response.headers.get('Retry-After') ?? '';
  const seconds = /^[0-9]{1,9}$/.test(value.trim()) ? Number(value.trim()) : 60;
  return Math.min(Math.max(seconds * 1000, 1000), longest);
}

async function wordsOf(response) {
  const body = await response.json().catch(() => ({}));
  return typeof body?.error === 'string' && body.error ? body.error : null;
}

function offsetHeader(response, name = 'Upload-Offset') {
  const value = response.headers.get(name);
  if (value === null || !/^[0-9]{1,16}$/.test(value)) throw new LinkError(`no valid ${name}`);
  return Number(value);
}

export class ResumableUpload {
  #blob;
  #options;
  #fetch;
  #timing;
  #lastProgressAt = 0;
  #down = false;
  #quietUntil = 0; // waiting because the portal asked to: the link is not down
  #watchers = 0; // create() and send() running: the link-down watchdog runs while any does
  #watchdog = null;
  #creating = null; // the creation under way, so that it is never made twice
  #known = null; // the server's offset when known without asking it (after 201 or 204)

  /** The upload's URL once created (keep it to resume), and the bytes the server holds. */
  url = null;
  acknowledged = 0;

  /**
   * `blob`: the sealed envelope. Options: `endpoint` (creation URL), `metadata`
   * (object of strings, e.g. {draft}), `onProgress(acknowledgedBytes)`,
   * `onLink('down' | 'up')`, `onWait(words | null, ms)` (the portal asked to
   * wait: its words, safe to show, or null once sending goes on), `fetch`, `timing` (overrides DEFAULT_TIMING), `url`
   * (an upload created earlier, to resume instead of creating).
   */
  constructor(blob, options) {
    this.#blob = blob;
    this.#options = options;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.url = options.url ?? null;
  }

  /**
   * Create the upload unless it exists; resolves to its URL. Safe to call
   * again, also while a creation is under way (the same one is awaited).
   */
  create() {
    if (this.url !== null) return Promise.resolve(this.url);
    this.#creating ??= this.#watched(async () => {
      this.url = await this.#retrying(() => this.#create());
      this.#known = 0; // a new upload holds nothing: no HEAD before the first PATCH
      return this.url;
    }).finally(() => {
      this.#creating = null;
    });
    return this.#creating;
  }

  /** Create the upload if needed and send every byte; resolves to its URL. */
  async send() {
    await this.create();
    return this.#watched(async () => {
      let offset = this.#known ?? await this.#retrying(() => this.#head());
      while (offset < this.#blob.size) {
        const outcome = await this.#patch(offset);
        if (outcome.offset !== undefined) {
          offset = outcome.offset;
          continue;
        }
        if (outcome.wait) await this.#pause(outcome.wait, outcome.words ?? null);
        offset = await this.#retrying(() => this.#head());
      }
      return this.url;
    });
  }

  /** Ask the server for its offset before the next PATCH (it may have lost bytes it acknowledged). */
  recheck() {
    this.#known = null;
  }

  // Run `work` with the link-down watchdog on.
  async #watched(work) {
    if (this.#watchers++ === 0) {
      this.#lastProgressAt = Date.now();
      this.#watchdog = setInterval(() => this.#watch(), Math.min(1000, this.#timing.linkDownMs / 4));
    }
    try {
      return await work();
    } finally {
      if (--this.#watchers === 0) {
        clearInterval(this.#watchdog);
        if (this.#down) this.#setDown(false);
      }
    }
  }

  #watch() {
    if (Date.now() < this.#quietUntil) return;
    if (!this.#down && Date.now() - this.#lastProgressAt >= this.#timing.linkDownMs) this.#setDown(true);
  }

  #setDown(down) {
    this.#down = down;
    this.#options.onLink?.(down ? 'down' : 'up');
  }

  // The portal answered: whatever it said, the link is up.
  #answered() {
    this.#lastProgressAt = Math.max(this.#lastProgressAt, Date.now() - this.#timing.linkDownMs / 2);
    if (this.#down) this.#setDown(false);
  }

  // Wait `ms` because the portal asked to (no link-down message meanwhile).
  async #pause(ms, words) {
    this.#quietUntil = Date.now() + ms;
    if (words !== null) this.#options.onWait?.(words, ms);
    try {
      await sleep(ms);
    } finally {
      this.#quietUntil = 0;
      this.#lastProgressAt = Date.now();
      if (words !== null) this.#options.onWait?.(null, 0);
    }
  }

  #acknowledge(offset) {
    if (offset <= this.acknowledged) return;
    this.acknowledged = offset;
    this.#lastProgressAt = Date.now();
    if (this.#down) this.#setDown(false);
    this.#options.onProgress?.(offset);
  }

  #headers(extra) {
    return { ...languageHeaders(), 'Tus-Resumable': TUS_VERSION, ...extra };
  }

  // Run `attempt` until it stops failing on the way, pausing longer each time.
  async #retrying(attempt) {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof WaitError) {
          await this.#pause(error.ms, error.words);
          tries = -1; // the portal answered: the next failure on the way starts the pauses afresh
          continue;
        }
        if (!(error instanceof LinkError)) throw error;
        const pauses = this.#timing.backoffMs;
        await sleep(pauses[Math.min(tries, pauses.length - 1)]);
      }
    }
  }

  async #request(url, init, timeoutMs) {
    const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : init.signal;
    try {
      return await this.#fetch(url, { cache: 'no-store', credentials: 'same-origin', ...init, signal });
    } catch (error) {
      // fetch fails with a TypeError on the network, a DOMException when aborted or timed out
      if (error instanceof TypeError || error?.name === 'AbortError' || error?.name === 'TimeoutError') {
        throw new LinkError(error.message);
      }
      throw error;
    }
  }

  async #create() {
    const metadata = Object.entries(this.#options.metadata ?? {})
      .map(([key, value]) => `${key} ${base64(value)}`)
      .join(',');
    const endpoint = new URL(this.#options.endpoint, globalThis.location?.href);
    const response = await this.#request(endpoint, {
      method: 'POST',
      headers: this.#headers({ 'Upload-Length': String(this.#blob.size), 'Upload-Metadata': metadata }),
    }, this.#timing.headTimeoutMs);
    if (TRANSIENT.has(response.status)) throw new LinkError(`status ${response.status}`);
    if (response.status === 423) {
      this.#answered();
      throw new WaitError(this.#timing.lockedWaitMs, null); // a finish of the draft is running
    }
    if (response.status === 429) {
      this.#answered();
      throw new WaitError(retryAfterMs(response, this.#timing.longestWaitMs), await wordsOf(response));
    }
    if (response.status !== 201) throw await refusal(response);
    const location = response.headers.get('Location');
    if (!location) throw new UploadError(_("The portal did not say where to send the upload."), 201);
    this.#lastProgressAt = Date.now();
    if (this.#down) this.#setDown(false);
    return new URL(location, endpoint).href;
  }

  // The offset the server holds (acknowledging it), or LinkError.
  async #head() {
    const response = await this.#request(this.url, { method: 'HEAD', headers: this.#headers() },
      this.#timing.headTimeoutMs);
    if (TRANSIENT.has(response.status)) throw new LinkError(`status ${response.status}`);
    if (response.status !== 200) throw await refusal(response);
    const offset = offsetHeader(response);
    if (offsetHeader(response, 'Upload-Length') !== this.#blob.size || offset > this.#blob.size) {
      throw new UploadError(_("The portal holds a different upload under this address."), 200);
    }
    this.#acknowledge(offset);
    return offset;
  }

  // One PATCH from `offset`, watched by HEADs. Resolves to {offset} when the
  // server took it all, {wait} to pause before asking again, or {} to ask again.
  async #patch(offset) {
    this.#known = null; // until the server says where this PATCH left it
    const controller = new AbortController();
    let open = true;
    (async () => {
      while (open) {
        await sleep(this.#timing.pollMs);
        if (!open) return;
        try {
          await this.#head();
        } catch (error) {
          if (!(error instanceof LinkError)) return; // the PATCH's own answer will say why
          continue; // no answer: the watchdog tells the reporter; the PATCH may still end by itself
        }
        if (Date.now() - this.#lastProgressAt >= this.#timing.stallMs) controller.abort();
      }
    })();
    let response;
    try {
      response = await this.#request(this.url, {
        method: 'PATCH',
        headers: this.#headers({
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Offset': String(offset),
        }),
        body: this.#blob.slice(offset),
        signal: controller.signal,
      });
    } catch (error) {
      if (!(error instanceof LinkError)) throw error;
      return {}; // reset or aborted: HEAD tells where to go on
    } finally {
      open = false; // the watcher stops after its current pause
    }
    if (response.status === 204) {
      let next;
      try {
        next = offsetHeader(response);
      } catch {
        return {};
      }
      if (next <= offset || next > this.#blob.size) return {};
      this.#acknowledge(next);
      this.#known = next;
      return { offset: next };
    }
    if (response.status === 409) return {};
    if (response.status === 423) return { wait: this.#timing.lockedWaitMs };
    if (response.status === 429) {
      // no room just now; what arrived is kept, and HEAD will say how much
      this.#answered();
      return { wait: retryAfterMs(response, this.#timing.longestWaitMs), words: await wordsOf(response) };
    }
    if (TRANSIENT.has(response.status)) return { wait: this.#timing.backoffMs.at(-1) };
    throw await refusal(response);
  }
}
