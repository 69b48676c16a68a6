// Streaming SHA-256 (FIPS 180-4 §6.2), for hashing attachments in constant
// memory.
//
// WebCrypto's digest() takes the whole message at once, so hashing a 500 MB
// attachment with it would mean holding 500 MB in the page. This keeps 64
// bytes of carry-over and hashes a Blob one slice at a time. It is only used
// for the manifest's integrity check, never for keys, so it need not be
// constant-time (the input is the reporter's own file, hashed on their device).
//
// Arithmetic is on 32-bit integers: `| 0` wraps sums modulo 2^32 and `>>>`
// gives logical shifts. Words are kept signed (Int32Array) so that V8 keeps
// them as small integers instead of boxing them as doubles.

import { toHex } from './bytes.js';

// §4.2.2: the first 32 bits of the fractional parts of the cube roots of the
// first 64 primes (stored as signed 32-bit values).
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// §5.3.3: the initial hash value.
const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/**
 * The compression function (§6.2.2) on each 64-byte block of `data[at,
 * end)`, updating `state` (8 words) in place. `w` is the 64-word message
 * schedule, passed in so that it is allocated once per hash.
 *
 * V8 detail: this loop is the only code here that runs for long, so V8
 * optimises it mid-call ("on-stack replacement"). Code after such a loop has
 * never run and has no type feedback, and optimised code that reaches it is
 * thrown away, over and over (three times slower, seen with --trace-deopt).
 * Keeping the loop alone in its own function, with nothing after it, avoids
 * that.
 */
function compress(state, w, data, at, end) {
  for (; at < end; at += 64) compressBlock(state, w, data, at);
}

/** compress() for the one block at `data[at]`. */
function compressBlock(state, w, data, at) {
  for (let t = 0; t < 16; t++) {
    const j = at + 4 * t; // big-endian words (§3.1)
    w[t] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
  }
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15];
    const y = w[t - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3); // σ0
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10); // σ1
    w[t] = (s1 + w[t - 7] + s0 + w[t - 16]) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7)); // Σ1
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t] + w[t]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10)); // Σ0
    const maj = (a & b) ^ (a & c) ^ (b & c);
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + S0 + maj) | 0;
  }
  // Int32Array stores wrap modulo 2^32 by themselves.
  state[0] += a; state[1] += b; state[2] += c; state[3] += d;
  state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

/** An incremental SHA-256: call update() any number of times, then digest() once. */
export class Sha256 {
  #state = Int32Array.from(H0);
  #schedule = new Int32Array(64);
  #pending = new Uint8Array(64); // the start of a block not yet complete
  #pendingLength = 0;
  #length = 0; // message length in bytes; exact up to 2^53, far beyond any file
  #finished = false;

  /** Append `bytes` (a Uint8Array) to the message; returns this. */
  update(bytes) {
    if (this.#finished) throw new Error('SHA-256: update() after digest()');
    if (!(bytes instanceof Uint8Array)) throw new TypeError('SHA-256: expected a Uint8Array');
    const n = bytes.length;
    this.#length += n;
    let at = 0;
    if (this.#pendingLength > 0) {
      at = Math.min(64 - this.#pendingLength, n);
      this.#pending.set(bytes.subarray(0, at), this.#pendingLength);
      this.#pendingLength += at;
      if (this.#pendingLength < 64) return this;
      compress(this.#state, this.#schedule, this.#pending, 0, 64);
      this.#pendingLength = 0;
    }
    // Whole blocks are read straight from the caller's array; only the
    // incomplete tail is copied, to wait for the next update().
    const wholeEnd = n - ((n - at) % 64);
    compress(this.#state, this.#schedule, bytes, at, wholeEnd);
    this.#pending.set(bytes.subarray(wholeEnd), 0);
    this.#pendingLength = n - wholeEnd;
    return this;
  }

  /** The 32-byte hash of everything passed to update(); ends this hash. */
  digest() {
    if (this.#finished) throw new Error('SHA-256: digest() called twice');
    this.#finished = true;
    // §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the length in bits
    // as a 64-bit big-endian integer.
    const used = this.#pendingLength;
    const tail = new Uint8Array(used < 56 ? 64 : 128);
    tail.set(this.#pending.subarray(0, used));
    tail[used] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(this.#length / 2 ** 29)); // high bits of 8·length
    view.setUint32(tail.length - 4, (this.#length % 2 ** 29) * 8); // low 32 bits of 8·length
    compress(this.#state, this.#schedule, tail, 0, tail.length);
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setInt32(4 * i, this.#state[i]);
    return out;
  }
}

/**
 * Lower-case hex SHA-256 of a Blob (or File), read `sliceSize` bytes at a
 * time so that memory stays constant whatever the size. `onProgress(done,
 * total)` is called after each slice, in bytes.
 */
export async function sha256Blob(blob, { sliceSize = 1 << 20, onProgress } = {}) {
  if (!Number.isSafeInteger(sliceSize) || sliceSize <= 0) {
    throw new RangeError('sliceSize must be a positive integer');
  }
  const hash = new Sha256();
  const total = blob.size;
  for (let at = 0; at < total; at += sliceSize) {
    const end = Math.min(at + sliceSize, total);
    hash.update(new Uint8Array(await blob.slice(at, end).arrayBuffer()));
    onProgress?.(end, total);
  }
  return toHex(hash.digest());
}
