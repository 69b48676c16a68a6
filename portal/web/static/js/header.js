// The envelope header: layout, strict parsing, HPKE stanzas and the MAC
// (SPEC.md §3–§5). All integers are big-endian.
//
//   magic    16 bytes   "cso-envelope/v1\n"
//   salt     32 bytes   random, per envelope
//   count     2 bytes   number of stanzas, 1..64
//   stanzas  count × 112 bytes: recipient(32) ‖ enc(32) ‖ sealed data key(48)
//   mac      32 bytes   HMAC-SHA256(mac_key, all of the above)

import { concatBytes, equalBytes, randomBytes, readUintBE, toHex, u16be, utf8Encode } from './bytes.js';
import { EnvelopeError, KeyFormatError } from './errors.js';
import { hkdf, hmacSha256 } from './hkdf.js';
import { openBase, publicKeyFromPrivate, sealBase } from './hpke.js';

export const MAGIC = utf8Encode('cso-envelope/v1\n');
export const SALT_LENGTH = 32;
export const DATA_KEY_LENGTH = 32;
export const MAC_LENGTH = 32;
export const MAX_STANZAS = 64;
const KEY_LENGTH = 32;
const ENC_LENGTH = 32;
const SEALED_KEY_LENGTH = DATA_KEY_LENGTH + 16;
export const STANZA_LENGTH = KEY_LENGTH + ENC_LENGTH + SEALED_KEY_LENGTH;
const FIXED_LENGTH = MAGIC.length + SALT_LENGTH + 2; // magic ‖ salt ‖ count

/** SPEC.md §4: HPKE info for sealing the data key; the AEAD is AES-256-GCM. */
export const HPKE_INFO = utf8Encode('cso-envelope/v1 data key');
const HPKE_OPTIONS = Object.freeze({ aeadId: 2 });
const EMPTY = new Uint8Array(0);
/** SPEC.md §5: HKDF info strings for the MAC key and the payload key. */
export const MAC_INFO = utf8Encode('cso-envelope/v1 header mac');
export const PAYLOAD_INFO = utf8Encode('cso-envelope/v1 payload');

/** Wire length of a header with `count` stanzas. */
export function headerLength(count) {
  return FIXED_LENGTH + count * STANZA_LENGTH + MAC_LENGTH;
}

/** No header is longer than this. */
export const MAX_HEADER_LENGTH = headerLength(MAX_STANZAS);

function headerFailure(detail) {
  return new EnvelopeError('header failure', detail);
}

/**
 * Parse the header at the start of `bytes` (which may go on past it):
 * {salt, stanzas: [{recipient, enc, sealedKey}], mac, length, body}, where
 * `body` is what the MAC covers. Throws EnvelopeError('header failure') for
 * a wrong magic (§3.1), a count of 0 or above 64 (§3.2), a truncated header
 * (§3.3) or a repeated recipient (§3.4). Uses no key.
 */
export function readHeader(bytes) {
  if (bytes.length < MAGIC.length || !equalBytes(bytes.subarray(0, MAGIC.length), MAGIC)) {
    throw headerFailure('not a cso-envelope/v1 file');
  }
  if (bytes.length < FIXED_LENGTH) throw headerFailure('truncated header');
  const count = readUintBE(bytes.subarray(FIXED_LENGTH - 2, FIXED_LENGTH));
  if (count < 1 || count > MAX_STANZAS) throw headerFailure('bad number of recipients');
  const length = headerLength(count);
  if (bytes.length < length) throw headerFailure('truncated header');
  const stanzas = [];
  const seen = new Set();
  for (let at = FIXED_LENGTH; at < length - MAC_LENGTH; at += STANZA_LENGTH) {
    const recipient = bytes.slice(at, at + KEY_LENGTH);
    const name = toHex(recipient); // recipients are public: a Set of hex is fine
    if (seen.has(name)) throw headerFailure('a recipient appears twice');
    seen.add(name);
    stanzas.push({
      recipient,
      enc: bytes.slice(at + KEY_LENGTH, at + KEY_LENGTH + ENC_LENGTH),
      sealedKey: bytes.slice(at + KEY_LENGTH + ENC_LENGTH, at + STANZA_LENGTH),
    });
  }
  return {
    salt: bytes.slice(MAGIC.length, MAGIC.length + SALT_LENGTH),
    stanzas,
    mac: bytes.slice(length - MAC_LENGTH, length),
    length,
    body: bytes.slice(0, length - MAC_LENGTH),
  };
}

/** The bytes the MAC covers: magic ‖ salt ‖ count ‖ stanzas (no checks, for vectors too). */
export function headerBody(salt, stanzas) {
  const parts = stanzas.flatMap((s) => [s.recipient, s.enc, s.sealedKey]);
  return concatBytes(MAGIC, salt, u16be(stanzas.length), ...parts);
}

/** SPEC.md §5: {macKey, payloadKey}, 32 raw bytes each, from the data key. */
export async function deriveKeys(dataKey, salt) {
  return {
    macKey: await hkdf(EMPTY, dataKey, MAC_INFO, 32),
    payloadKey: await hkdf(salt, dataKey, PAYLOAD_INFO, 32),
  };
}

/** SPEC.md §5: HMAC-SHA256(macKey, body). */
export function headerMac(macKey, body) {
  return hmacSha256(macKey, body);
}

/** SPEC.md §4: HPKE-seal `dataKey` to one raw X25519 key, with a fresh ephemeral key. */
export async function sealStanza(dataKey, recipient) {
  let sealed;
  try {
    sealed = await sealBase(recipient, HPKE_INFO, EMPTY, dataKey, HPKE_OPTIONS);
  } catch {
    throw new KeyFormatError('unusable recipient key');
  }
  return { recipient, enc: sealed.enc, sealedKey: sealed.ct };
}

/** The whole header, body ‖ mac, for stanzas as given (no checks, for vectors too). */
export async function assembleHeader(salt, stanzas, macKey) {
  const body = headerBody(salt, stanzas);
  return concatBytes(body, await headerMac(macKey, body));
}

function checkRecipients(recipients) {
  if (!Array.isArray(recipients) || recipients.length < 1 || recipients.length > MAX_STANZAS) {
    throw new KeyFormatError(`an envelope has 1 to ${MAX_STANZAS} recipients`);
  }
  const seen = new Set();
  for (const r of recipients) {
    if (!(r instanceof Uint8Array) || r.length !== KEY_LENGTH) {
      throw new KeyFormatError('a recipient key is 32 bytes');
    }
    if (seen.has(toHex(r))) throw new KeyFormatError('a recipient is listed twice'); // §3.4
    seen.add(toHex(r));
  }
}

/**
 * Make a header for `recipients` (raw X25519 keys): {header, payloadKey,
 * macKey}. A fresh random data key and salt are drawn (SPEC.md §4.1) unless
 * `dataKey` / `salt` are passed, which only the vector generator does.
 */
export async function buildHeader(recipients, { dataKey, salt } = {}) {
  checkRecipients(recipients);
  const key = dataKey ?? randomBytes(DATA_KEY_LENGTH);
  const headerSalt = salt ?? randomBytes(SALT_LENGTH);
  if (key.length !== DATA_KEY_LENGTH || headerSalt.length !== SALT_LENGTH) {
    throw new RangeError('data key and salt are 32 bytes');
  }
  const stanzas = [];
  for (const r of recipients) stanzas.push(await sealStanza(key, r));
  const { macKey, payloadKey } = await deriveKeys(key, headerSalt);
  return { header: await assembleHeader(headerSalt, stanzas, macKey), payloadKey, macKey };
}

/**
 * Unwrap the data key with a raw X25519 private key and check the header MAC
 * (SPEC.md §4.2, §5.1); return the raw payload key. Throws EnvelopeError
 * 'no match' (whatever the reason: no stanza, HPKE failure, wrong length) or
 * 'MAC failure'.
 */
export async function openHeader(header, privateKey) {
  const publicKey = await publicKeyFromPrivate(privateKey);
  const stanza = header.stanzas.find((s) => equalBytes(s.recipient, publicKey));
  let dataKey = null;
  if (stanza !== undefined) {
    try {
      dataKey = await openBase(stanza.enc, privateKey, HPKE_INFO, EMPTY, stanza.sealedKey, HPKE_OPTIONS);
    } catch {
      dataKey = null; // one answer for every reason (§4.2)
    }
  }
  if (dataKey === null || dataKey.length !== DATA_KEY_LENGTH) {
    throw new EnvelopeError('no match', 'this key cannot open the envelope');
  }
  const { macKey, payloadKey } = await deriveKeys(dataKey, header.salt);
  // §5.1: equalBytes reads every byte whatever the contents.
  if (!equalBytes(await headerMac(macKey, header.body), header.mac)) {
    throw new EnvelopeError('MAC failure', 'the header does not verify');
  }
  return payloadKey;
}
