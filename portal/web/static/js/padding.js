// Length hiding for envelope payloads (SPEC.md §6).
//
// The padded payload is data ‖ 0x80 ‖ 0x00 × k, of total length
// paddedLength(data length): the Padmé size of length + 1, never below 1024.
// PaddingStripper takes the padding off a stream of decrypted chunks while
// holding back only one byte and a count of zeros, so memory stays constant
// however long the padding is.
//
// Lengths are JavaScript numbers, exact up to 2^53; JavaScript's bitwise
// operators work on 32 bits only, so Padmé is written with arithmetic.

import { EnvelopeError } from './errors.js';

/** The first padding byte (ISO/IEC 7816-4 style). */
export const PAD_MARKER = 0x80;
/** Every payload is at least this long, so short texts all look alike. */
export const MIN_PADDED_LENGTH = 1024;
const ZERO_PIECE = 64 * 1024; // zeros are handed out in pieces of at most this size

function bitLength(n) {
  return n === 0 ? 0 : n.toString(2).length;
}

function checkLength(n, minimum) {
  if (!Number.isSafeInteger(n) || n < minimum) throw new RangeError('length out of range');
}

/** Padmé (SPEC.md §6) of a length L ≥ 1. */
export function padme(length) {
  checkLength(length, 1);
  if (length < 2) return length;
  const e = bitLength(length) - 1; // floor(log2 L)
  const s = bitLength(e); // floor(log2 E) + 1
  const step = 2 ** (e - s); // clearing e − s low bits = rounding up to a multiple of step
  return Math.ceil(length / step) * step;
}

/** Padded payload length for `dataLength` bytes of data: max(padme(n + 1), 1024). */
export function paddedLength(dataLength) {
  checkLength(dataLength, 0);
  return Math.max(padme(dataLength + 1), MIN_PADDED_LENGTH);
}

/** Zero-filled Uint8Arrays adding up to `count` bytes, each fresh and ≤ 64 KiB. */
function* zeroPieces(count) {
  for (let left = count; left > 0; left -= ZERO_PIECE) yield new Uint8Array(Math.min(left, ZERO_PIECE));
}

/**
 * Turns decrypted payload chunks back into data (SPEC.md §6.2).
 *
 * feed(chunk) returns an iterable of the Uint8Array pieces that can no longer
 * be padding (they may be views into `chunk`); finish() checks that what was
 * held back is exactly canonical padding and returns the data length, or
 * throws EnvelopeError('payload failure').
 */
export class PaddingStripper {
  #held = null; // the last non-zero byte seen, not yet handed out
  #zeros = 0; // zero bytes seen after it, not yet handed out
  #emitted = 0; // data bytes handed out so far
  #finished = false;

  feed(chunk) {
    if (this.#finished) throw new Error('PaddingStripper already finished');
    let end = chunk.length;
    while (end > 0 && chunk[end - 1] === 0) end -= 1;
    if (end === 0) {
      this.#zeros += chunk.length;
      return [];
    }
    // A non-zero byte arrived, so everything held back so far is data. The
    // state is updated now, not as the caller iterates, so that it never
    // depends on how far the caller reads.
    const held = this.#held;
    const zeros = this.#zeros;
    const body = chunk.subarray(0, end - 1);
    this.#emitted += (held === null ? 0 : 1) + zeros + body.length;
    this.#held = chunk[end - 1];
    this.#zeros = chunk.length - end;
    return (function* pieces() {
      if (held !== null) yield Uint8Array.of(held);
      yield* zeroPieces(zeros);
      if (body.length > 0) yield body;
    })();
  }

  finish() {
    if (this.#finished) throw new Error('PaddingStripper already finished');
    this.#finished = true;
    const n = this.#emitted;
    if (this.#held !== PAD_MARKER || n + 1 + this.#zeros !== paddedLength(n)) {
      throw new EnvelopeError('payload failure', 'bad padding');
    }
    return n;
  }
}
