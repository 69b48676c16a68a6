// Verifying the signed key directory: which reviewer keys the browser may
// encrypt to (SPEC.md §10). The browser only verifies; signing is done by
// the organisation with the Python tools.
//
//   {"schema": "cso-key-directory/v1", "signer": "csosig1…",
//    "payload": base64url(payload bytes), "signature": base64url(Ed25519(
//        "cso-portal key directory v1\n" ‖ payload bytes))}
//
// The signature covers the payload bytes as sent, so no JSON
// canonicalisation is needed. Nothing in the payload is looked at before the
// signature verifies.

import { concatBytes, equalBytes, fromBase64Url, toHex, utf8Decode, utf8Encode } from './bytes.js';
import { DirectoryError, KeyFormatError } from './errors.js';
import { ENCRYPTION_PREFIX, SIGNING_PREFIX, formatPublicKey, parsePublicKey } from './keys.js';

export const SCHEMA = 'cso-key-directory/v1';
export const PAYLOAD_SCHEMA = 'cso-key-directory-payload/v1';
export const SIGNING_CONTEXT = utf8Encode('cso-portal key directory v1\n');
/** A directory issued more than this far in the future is refused (clock skew). */
export const MAX_CLOCK_SKEW_MS = 10 * 60 * 1000;
export const MAX_REVIEWERS = 64;
/** §10.2: the longest a directory may be valid, so a replayed old one dies soon. */
export const MAX_VALIDITY_MS = 92 * 24 * 3600 * 1000;
/** The document and its payload: at most this many UTF-8 bytes each. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** §10.5: nothing nests deeper (a payload: object, reviewers, entry), no number is longer. */
export const MAX_DEPTH = 4;
export const MAX_DIGITS = 16;
const DOCUMENT_FIELDS = ['schema', 'signer', 'payload', 'signature'];
const PAYLOAD_FIELDS = ['schema', 'serial', 'issued_at', 'expires_at', 'reviewers'];
const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// A JSON object with exactly `fields`, within the limits of §10.4 and §10.5.
// JSON.parse reads 1.0 and 1e3 as the integers 1 and 1000 and -0 as 0, takes
// numbers of any length and nests as deep as the stack allows, where Python
// refuses some of those; so the text itself is checked too, and both refuse
// the same directories.
function parseObject(text, what, fields) {
  if (utf8Encode(text).length > MAX_DOCUMENT_BYTES) throw new DirectoryError(`${what} is too large`);
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DirectoryError(`${what} is not JSON`);
  }
  checkLimits(text, what);
  const keys = isPlainObject(value) ? Object.keys(value) : [];
  if (keys.length !== fields.length || !fields.every((f) => keys.includes(f))) {
    throw new DirectoryError(`${what} does not have exactly the fields of SPEC.md §10`);
  }
  return value;
}

// Each number token outside a string must be plain digits, at most MAX_DIGITS
// of them, and brackets may nest at most MAX_DEPTH deep. Called only on text
// JSON.parse has accepted, so the tokens are well formed.
const NUMBER_TOKEN = /[-0-9][-+.eE0-9]*/y;
const PLAIN_DIGITS = /^(0|[1-9][0-9]*)$/;

function checkLimits(text, what) {
  let inString = false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++; // skip the escaped character, a quote included
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > MAX_DEPTH) throw new DirectoryError(`${what} nests too deep`);
    } else if (c === ']' || c === '}') {
      depth--;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER_TOKEN.lastIndex = i;
      const [token] = NUMBER_TOKEN.exec(text);
      if (!PLAIN_DIGITS.test(token)) {
        throw new DirectoryError('directory has a number not written as plain digits');
      }
      if (token.length > MAX_DIGITS) {
        throw new DirectoryError(`${what} has a number of more than ${MAX_DIGITS} digits`);
      }
      i += token.length - 1;
    }
  }
}

function decodeField(value) {
  try {
    return fromBase64Url(value); // refuses non-strings and non-canonical text
  } catch {
    throw new DirectoryError('directory is malformed');
  }
}

// "YYYY-MM-DDTHH:MM:SSZ" naming a real UTC second (no leap seconds), as a Date.
function parseTime(value) {
  const m = typeof value === 'string' ? TIME.exec(value) : null;
  if (m === null) throw new DirectoryError('directory has a malformed time');
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // unlike Date.UTC, no 19xx for years < 100
  date.setUTCHours(hour, minute, second, 0);
  const roundTrip = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(),
    date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()];
  if (year < 1 || roundTrip.some((v, i) => v !== [year, month, day, hour, minute, second][i])) {
    throw new DirectoryError('directory has a malformed time');
  }
  return date;
}

async function verifySignature(publicKey, message, signature) {
  if (signature.length !== 64) return false;
  try {
    const subtle = globalThis.crypto.subtle;
    const key = await subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch {
    return false; // an unusable key verifies nothing
  }
}

// An entry is exactly {label, encryption_key}, or those and `signing_key`
// (§10.1): the reviewer's Ed25519 key, which workstations use to check team
// updates. The browser seals nothing with it and does not return it, but
// refuses a malformed one so that it accepts exactly what Python accepts.
async function parseEntry(entry) {
  const fields = isPlainObject(entry) ? Object.keys(entry) : [];
  const optional = fields.includes('signing_key') ? 1 : 0;
  if (fields.length !== 2 + optional || !fields.includes('label') || !fields.includes('encryption_key')) {
    throw new DirectoryError('directory entry is malformed');
  }
  if (typeof entry.label !== 'string' || !LABEL.test(entry.label)) {
    throw new DirectoryError('directory entry label is malformed');
  }
  const key = await entryKey(entry.encryption_key, ENCRYPTION_PREFIX, 'directory entry key is malformed');
  const signingKey = optional
    ? await entryKey(entry.signing_key, SIGNING_PREFIX, 'directory entry signing key is malformed')
    : null;
  return {
    reviewer: { label: entry.label, encryptionKey: key, token: await formatPublicKey(ENCRYPTION_PREFIX, key) },
    signingKey,
  };
}

async function entryKey(token, prefix, message) {
  try {
    return (await parsePublicKey(token, prefix)).key;
  } catch (error) {
    if (!(error instanceof KeyFormatError)) throw error;
    throw new DirectoryError(message);
  }
}

// The payload's fields (SPEC.md §10.1): {serial, issuedAt, expiresAt, reviewers}.
async function checkPayload(payload) {
  if (payload.schema !== PAYLOAD_SCHEMA) {
    throw new DirectoryError('directory payload has the wrong schema');
  }
  const { serial } = payload;
  if (!Number.isSafeInteger(serial) || serial < 0) throw new DirectoryError('directory serial is malformed');
  const issuedAt = parseTime(payload.issued_at);
  const expiresAt = parseTime(payload.expires_at);
  if (expiresAt <= issuedAt) throw new DirectoryError('directory expires before it is issued');
  if (expiresAt - issuedAt > MAX_VALIDITY_MS) {
    throw new DirectoryError('directory is valid for longer than 92 days');
  }
  const entries = payload.reviewers;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_REVIEWERS) {
    throw new DirectoryError(`directory must list 1 to ${MAX_REVIEWERS} reviewers`);
  }
  const reviewers = [];
  const seen = new Set();
  const seenSigning = new Set();
  for (const entry of entries) {
    const { reviewer, signingKey } = await parseEntry(entry);
    if (seen.has(toHex(reviewer.encryptionKey))) throw new DirectoryError('directory lists a key twice');
    seen.add(toHex(reviewer.encryptionKey));
    if (signingKey !== null) {
      if (seenSigning.has(toHex(signingKey))) throw new DirectoryError('directory lists a signing key twice');
      seenSigning.add(toHex(signingKey));
    }
    reviewers.push(reviewer);
  }
  return { serial, issuedAt, expiresAt, reviewers };
}

/**
 * Verify a directory (its wire JSON, as a string or UTF-8 bytes) against the
 * pinned organisation key `trustedSignerToken` ('csosig1…') at time `now`.
 * Returns {serial, issuedAt, expiresAt, reviewers: [{label, encryptionKey,
 * token}], recipientKeys}; recipientKeys are the raw X25519 keys to seal to,
 * in directory order (§10.3). Throws DirectoryError for every rule of §10.1
 * and §10.2, for a serial below `minSerial` (§10.4), and KeyFormatError if the
 * pinned token itself is malformed.
 */
export async function verifyDirectory(text, trustedSignerToken, now, { minSerial = 0 } = {}) {
  const trusted = await parsePublicKey(trustedSignerToken, SIGNING_PREFIX);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new TypeError('now must be a valid Date');
  }
  let wire = text;
  if (wire instanceof Uint8Array) {
    try {
      wire = utf8Decode(wire);
    } catch {
      throw new DirectoryError('directory is not JSON');
    }
  }
  if (typeof wire !== 'string') throw new TypeError('a directory is text or UTF-8 bytes');
  const document = parseObject(wire, 'directory', DOCUMENT_FIELDS);
  if (document.schema !== SCHEMA) {
    throw new DirectoryError('not a cso-key-directory/v1 document');
  }
  let signer;
  try {
    signer = await parsePublicKey(document.signer, SIGNING_PREFIX);
  } catch (error) {
    if (!(error instanceof KeyFormatError)) throw error;
    throw new DirectoryError('directory signer is malformed');
  }
  if (!equalBytes(signer.key, trusted.key)) throw new DirectoryError('directory is signed by an untrusted key');
  const payloadBytes = decodeField(document.payload);
  const signature = decodeField(document.signature);
  if (!(await verifySignature(signer.key, concatBytes(SIGNING_CONTEXT, payloadBytes), signature))) {
    throw new DirectoryError('directory signature does not verify');
  }
  let payloadText;
  try {
    payloadText = utf8Decode(payloadBytes);
  } catch {
    throw new DirectoryError('directory payload is not JSON');
  }
  const directory = await checkPayload(parseObject(payloadText, 'directory payload', PAYLOAD_FIELDS));
  // §10.2: exactly ten minutes ahead is still accepted; at expires_at it is not.
  if (directory.issuedAt.getTime() > now.getTime() + MAX_CLOCK_SKEW_MS) {
    throw new DirectoryError('directory is not valid yet (check the clock)');
  }
  if (now.getTime() >= directory.expiresAt.getTime()) throw new DirectoryError('directory has expired');
  if (directory.serial < minSerial) {
    throw new DirectoryError('directory is older than one already seen (rollback?)');
  }
  return { ...directory, recipientKeys: directory.reviewers.map((r) => r.encryptionKey) };
}
