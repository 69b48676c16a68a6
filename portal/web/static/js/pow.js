// Proof of work (portal/web/pow.py): the small cost every browser pays to send.
//
// The portal hands out a signed puzzle; the browser finds a counter such that
// SHA-256(puzzle ":" counter) starts with `bits` zero bits, using WebCrypto's
// SHA-256, and sends "puzzle:counter" with the upload. Nothing here identifies
// the sender: everyone gets the same difficulty, which rises only with load.

import { utf8Encode } from './bytes.js';
import { _, languageHeaders } from './i18n.js';

const UNAVAILABLE = _("The portal cannot accept anything right now. Nothing was sent.");

/** How many leading bits of `bytes` are zero. */
export function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/**
 * The proof for `puzzle` at `bits` of difficulty: "puzzle:counter". Digests
 * are asked for `batch` at a time, since each WebCrypto call is asynchronous;
 * `onProgress(tries)` is called after every batch.
 */
export async function solvePuzzle(puzzle, bits, { batch = 512, onProgress } = {}) {
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new RangeError('bits must be 0 to 32');
  const subtle = globalThis.crypto.subtle;
  for (let start = 0; start < 2 ** 40; start += batch) {
    const digests = await Promise.all(
      Array.from({ length: batch }, (unused, i) => subtle.digest('SHA-256', utf8Encode(`${puzzle}:${start + i}`))),
    );
    const found = digests.findIndex((digest) => leadingZeroBits(new Uint8Array(digest)) >= bits);
    if (found >= 0) return `${puzzle}:${start + found}`;
    onProgress?.(start + batch);
  }
  throw new Error('no proof of work found');
}

/** Ask the portal for a puzzle for `purpose` ("submit" or "followup") and solve it. */
export async function proveWork(purpose, onProgress) {
  const response = await fetch(`/pow?for=${encodeURIComponent(purpose)}`, {
    cache: 'no-store',
    credentials: 'same-origin',
    headers: languageHeaders(),
  });
  if (!response.ok) throw new Error(UNAVAILABLE);
  const { puzzle, bits } = await response.json();
  return solvePuzzle(puzzle, bits, { onProgress });
}

// A puzzle's expiry, in Unix seconds (portal/web/pow.py: "p1.<purpose>.<expiry>.<bits>.…").
function puzzleExpiry(puzzle) {
  return Number(puzzle.split('.')[2]);
}

/**
 * A proof solved while the reporter types, so sending does not wait for it.
 * start() fetches and solves a puzzle in the background; take() hands over a
 * proof for one use, waiting for the one under way, and solves a new one when
 * the last has been handed over or is close to expiring. The expiry is
 * judged on the portal's clock (the Date of its answer), not on this device's.
 */
export class ProofInAdvance {
  #purpose;
  #fetch;
  #pending = null; // Promise of {proof, expiresAt (local ms)}
  static MARGIN_MS = 5 * 60 * 1000;

  constructor(purpose, { fetch = (...args) => globalThis.fetch(...args) } = {}) {
    this.#purpose = purpose;
    this.#fetch = fetch;
  }

  /** Begin solving now, unless a proof is already under way. */
  start() {
    if (this.#pending === null) {
      const pending = this.#solve();
      this.#pending = pending;
      pending.catch(() => { // a failed fetch is tried again by the next take()
        if (this.#pending === pending) this.#pending = null;
      });
    }
    return this;
  }

  async #solve() {
    const response = await this.#fetch(`/pow?for=${encodeURIComponent(this.#purpose)}`, {
      cache: 'no-store',
      credentials: 'same-origin',
      headers: languageHeaders(),
    });
    if (!response.ok) throw new Error(UNAVAILABLE);
    const { puzzle, bits } = await response.json();
    const served = Date.parse(response.headers.get('Date') ?? '');
    const skew = Number.isNaN(served) ? 0 : served - Date.now();
    const proof = await solvePuzzle(puzzle, bits);
    return { proof, expiresAt: puzzleExpiry(puzzle) * 1000 - skew };
  }

  /** A proof for one use; throws if the portal cannot be asked for a puzzle. */
  async take() {
    for (let tries = 1; ; tries++) {
      const pending = this.start().#pending;
      const { proof, expiresAt } = await pending;
      if (this.#pending === pending) this.#pending = null; // handed over: never twice
      // a proof close to its end is replaced; a portal handing out only such puzzles gets the third
      if (expiresAt - Date.now() > ProofInAdvance.MARGIN_MS || tries === 3) return proof;
    }
  }
}
