// Byte-string helpers: text encodings, concatenation, comparison and
// big-endian integers. Decoders are strict: they accept only the canonical
// encoding and throw TypeError on anything else, so that one byte string has
// exactly one text form.

const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'; // RFC 4648 §6, lower case

/** Lower-case hex of `bytes`. */
export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += HEX[b >> 4] + HEX[b & 15];
  return out;
}

/** Bytes of a hex string (either case, even length); TypeError otherwise. */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError('not a hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// Radix-2^k encoding shared by base64 and base32: `bits` per symbol.
function encodeRadix(bytes, alphabet, bits) {
  let out = '';
  let acc = 0;
  let held = 0; // number of bits in acc not yet written
  const mask = (1 << bits) - 1;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    held += 8;
    while (held >= bits) {
      held -= bits;
      out += alphabet[(acc >> held) & mask];
    }
  }
  if (held > 0) out += alphabet[(acc << (bits - held)) & mask];
  return out;
}

// Inverse of encodeRadix; refuses foreign symbols, impossible lengths and
// non-zero spare bits in the last symbol (non-canonical encodings).
function decodeRadix(text, alphabet, bits) {
  if (typeof text !== 'string') throw new TypeError('not a string');
  const out = new Uint8Array(Math.floor((text.length * bits) / 8));
  let acc = 0;
  let held = 0;
  let n = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0 || ch.length !== 1) throw new TypeError('character outside the alphabet');
    acc = ((acc << bits) | v) & 0xffff;
    held += bits;
    if (held >= 8) {
      held -= 8;
      out[n++] = (acc >> held) & 0xff;
    }
  }
  // Whole symbols left over, or spare bits that are not zero, cannot come
  // from encodeRadix.
  if (held >= bits || (acc & ((1 << held) - 1)) !== 0) {
    throw new TypeError('not a canonical encoding');
  }
  return out;
}

/** Standard base64 (RFC 4648 §4) with '=' padding. */
export function toBase64(bytes) {
  const body = encodeRadix(bytes, B64, 6);
  return body + '='.repeat((4 - (body.length % 4)) % 4);
}

/** Bytes of canonical padded standard base64; TypeError otherwise. */
export function fromBase64(text) {
  if (typeof text !== 'string' || text.length % 4 !== 0) throw new TypeError('bad base64 length');
  const body = text.replace(/={1,2}$/, '');
  if ((4 - (body.length % 4)) % 4 !== text.length - body.length) {
    throw new TypeError('bad base64 padding');
  }
  return decodeRadix(body, B64, 6);
}

/** URL-safe base64 (RFC 4648 §5) without padding. */
export function toBase64Url(bytes) {
  return encodeRadix(bytes, B64URL, 6);
}

/** Bytes of canonical unpadded base64url; TypeError otherwise. */
export function fromBase64Url(text) {
  return decodeRadix(text, B64URL, 6);
}

/** RFC 4648 base32, lower case, without padding. */
export function toBase32(bytes) {
  return encodeRadix(bytes, B32, 5);
}

/** Bytes of canonical lower-case unpadded base32; TypeError otherwise. */
export function fromBase32(text) {
  return decodeRadix(text, B32, 5);
}

/** UTF-8 bytes of a string. */
export function utf8Encode(text) {
  return new TextEncoder().encode(text);
}

/**
 * String of UTF-8 bytes; TypeError on invalid UTF-8. A leading byte-order
 * mark is kept as U+FEFF rather than silently dropped.
 */
export function utf8Decode(bytes) {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/** One new Uint8Array holding all the arguments in order. */
export function concatBytes(...parts) {
  return joinBytes(parts);
}

/** One new Uint8Array holding the byte strings of the array `parts` in order. */
export function joinBytes(parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Whether two byte strings are equal, looking at every byte whatever the
 * contents (only the lengths, which are public here, end it early).
 */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** `value` (a safe non-negative integer) as `size` big-endian bytes. */
export function uintBE(value, size) {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('not a safe integer');
  const out = new Uint8Array(size);
  let rest = value;
  for (let i = size - 1; i >= 0; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  if (rest !== 0) throw new RangeError('integer too large for its field');
  return out;
}

/** `value` as 2 big-endian bytes. */
export function u16be(value) {
  return uintBE(value, 2);
}

/** The big-endian unsigned integer in `bytes` (at most 6 bytes, to stay exact). */
export function readUintBE(bytes) {
  if (bytes.length > 6) throw new RangeError('integer too wide');
  let value = 0;
  for (const b of bytes) value = value * 256 + b;
  return value;
}

/** `length` bytes from the platform's cryptographically secure generator. */
export function randomBytes(length) {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}
