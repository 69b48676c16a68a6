// Public keys as one-token text, fingerprints, and X25519 key pairs (SPEC.md §8).
//
// token       = prefix ‖ base32(key ‖ check), lower case, no padding
// check       = SHA-256(prefix ‖ key)[0..4]
// fingerprint = six 5-digit groups read from
//               SHA-256("cso-portal fingerprint v1" ‖ prefix ‖ key)
//
// SHA-256 is only available asynchronously in WebCrypto, so every function
// here returns a Promise.

import { concatBytes, equalBytes, fromBase32, randomBytes, toBase32, utf8Encode } from './bytes.js';
import { KeyFormatError } from './errors.js';
import { publicKeyFromPrivate } from './hpke.js';

/** X25519 encryption keys (reviewers, reporters). */
export const ENCRYPTION_PREFIX = 'csoenc1';
/** Ed25519 signing keys (the organisation, reviewers). */
export const SIGNING_PREFIX = 'csosig1';
const PREFIXES = [ENCRYPTION_PREFIX, SIGNING_PREFIX];
const KEY_LENGTH = 32;
const CHECK_LENGTH = 4;
const BODY_LENGTH = 58; // base32 of 36 bytes, unpadded
const FINGERPRINT_LABEL = utf8Encode('cso-portal fingerprint v1');

async function sha256(data) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data));
}

function checkPrefix(prefix) {
  if (!PREFIXES.includes(prefix)) throw new KeyFormatError('unknown public key prefix');
}

function checkKey(raw) {
  if (!(raw instanceof Uint8Array) || raw.length !== KEY_LENGTH) {
    throw new KeyFormatError('a public key is 32 bytes');
  }
}

async function checksum(prefix, raw) {
  return (await sha256(concatBytes(utf8Encode(prefix), raw))).subarray(0, CHECK_LENGTH);
}

/** The token for a raw 32-byte key: 'csoenc1…' or 'csosig1…', 65 characters. */
export async function formatPublicKey(prefix, raw) {
  checkPrefix(prefix);
  checkKey(raw);
  return prefix + toBase32(concatBytes(raw, await checksum(prefix, raw)));
}

// SPEC.md §8.1 lets a parser ignore surrounding white space and letter case.
// Only ASCII white space and ASCII letters are folded: Unicode case folding
// would turn look-alikes such as U+212A KELVIN SIGN into 'k'.
function normalise(token) {
  return token.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Parse a token into {prefix, key}. `expectedPrefix`, if given, is the only
 * prefix accepted. Throws KeyFormatError for a wrong prefix, length,
 * alphabet or check (a mistyped token fails the check).
 */
export async function parsePublicKey(token, expectedPrefix) {
  if (typeof token !== 'string') throw new KeyFormatError('a public key token is text');
  const allowed = expectedPrefix === undefined ? PREFIXES : [expectedPrefix];
  allowed.forEach(checkPrefix);
  const text = normalise(token);
  const prefix = allowed.find((p) => text.startsWith(p));
  if (prefix === undefined) {
    throw new KeyFormatError(`not a public key token (expected ${allowed.join(' or ')}…)`);
  }
  const body = text.slice(prefix.length);
  if (body.length !== BODY_LENGTH) throw new KeyFormatError('public key token has the wrong length');
  let decoded;
  try {
    decoded = fromBase32(body); // also refuses non-zero spare bits (non-canonical)
  } catch {
    throw new KeyFormatError('public key token has characters outside base32');
  }
  const key = decoded.slice(0, KEY_LENGTH);
  if (!equalBytes(decoded.subarray(KEY_LENGTH), await checksum(prefix, key))) {
    throw new KeyFormatError('public key token checksum does not match (mistyped?)');
  }
  return { prefix, key };
}

/** Thirty digits in six space-separated groups of five identifying a key (SPEC.md §8.2). */
export async function fingerprint(prefix, raw) {
  checkPrefix(prefix);
  checkKey(raw);
  const d = await sha256(concatBytes(FINGERPRINT_LABEL, utf8Encode(prefix), raw));
  const groups = [];
  for (let j = 0; j < 6; j++) {
    let value = 0; // 40 bits: exact in a JavaScript number
    for (const b of d.subarray(5 * j, 5 * j + 5)) value = value * 256 + b;
    groups.push(String(value % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/** A fresh random X25519 key pair: {privateKey, publicKey}, 32 raw bytes each. */
export async function generateEncryptionKeyPair() {
  const privateKey = randomBytes(KEY_LENGTH);
  return { privateKey, publicKey: await publicKeyFromPrivate(privateKey) };
}
