// HMAC-SHA256 and HKDF-SHA256 (RFC 2104, RFC 5869) on WebCrypto.
//
// WebCrypto's own HKDF runs Extract and Expand together, but RFC 9180 needs
// them apart (LabeledExtract / LabeledExpand), so both steps are built here
// from WebCrypto's HMAC.

import { concatBytes } from './bytes.js';

const HASH_LENGTH = 32;
const HMAC_PARAMS = { name: 'HMAC', hash: 'SHA-256' };

// WebCrypto refuses an HMAC key of length zero. HMAC pads every key shorter
// than the 64-byte block with zeros (RFC 2104 §2), so the empty key and a
// block of zeros give the same MAC; use the latter.
const EMPTY_KEY_EQUIVALENT = new Uint8Array(64);

function importHmacKey(key) {
  const raw = key.length === 0 ? EMPTY_KEY_EQUIVALENT : key;
  return globalThis.crypto.subtle.importKey('raw', raw, HMAC_PARAMS, false, ['sign']);
}

async function sign(cryptoKey, data) {
  return new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', cryptoKey, data));
}

/** HMAC-SHA256(key, data) as 32 bytes. */
export async function hmacSha256(key, data) {
  return sign(await importHmacKey(key), data);
}

/**
 * HKDF-Extract (RFC 5869 §2.2): the 32-byte PRK. An empty salt stands for
 * 32 zero bytes, as the RFC says.
 */
export async function hkdfExtract(salt, ikm) {
  return hmacSha256(salt.length === 0 ? new Uint8Array(HASH_LENGTH) : salt, ikm);
}

/** HKDF-Expand (RFC 5869 §2.3): `length` bytes (at most 255 × 32) of output. */
export async function hkdfExpand(prk, info, length) {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LENGTH) {
    throw new RangeError('HKDF-Expand length out of range');
  }
  const key = await importHmacKey(prk);
  const okm = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1, filled = 0; filled < length; i++) {
    previous = await sign(key, concatBytes(previous, info, Uint8Array.of(i)));
    const take = Math.min(HASH_LENGTH, length - filled);
    okm.set(previous.subarray(0, take), filled);
    filled += take;
  }
  return okm;
}

/** HKDF-SHA256 (RFC 5869): Expand(Extract(salt, ikm), info, length). */
export async function hkdf(salt, ikm, info, length) {
  return hkdfExpand(await hkdfExtract(salt, ikm), info, length);
}
