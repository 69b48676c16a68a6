// Proof of work (portal/pow.py): the small cost every browser pays to send.
//
// The portal hands out a signed puzzle; the browser finds a counter such that
// SHA-256(puzzle ":" counter) starts with `bits` zero bits, using WebCrypto's
// SHA-256, and sends "puzzle:counter" with the upload. Nothing here identifies
// the sender: everyone gets the same difficulty, which rises only with load.

import { utf8Encode } from './bytes.js';

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
      Array.from({ length: batch }, (_, i) => subtle.digest('SHA-256', utf8Encode(`${puzzle}:${start + i}`))),
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
  });
  if (!response.ok) throw new Error('The portal cannot accept anything right now. Nothing was sent.');
  const { puzzle, bits } = await response.json();
  return solvePuzzle(puzzle, bits, { onProgress });
}
