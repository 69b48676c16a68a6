// HPKE (RFC 9180), base mode only, for one KEM and one KDF:
// DHKEM(X25519, HKDF-SHA256) (0x0020), HKDF-SHA256 (0x0001), and either
// AES-128-GCM (aead_id 1) or AES-256-GCM (aead_id 2). The envelope uses
// AES-256-GCM (SPEC.md §2, §4); AES-128-GCM is here so that RFC 9180's own
// Appendix A.1.1 vectors can check this code.
//
// X25519 runs on WebCrypto. A raw private key is imported as PKCS#8; its
// public key is read back from the JWK export, so no curve arithmetic is
// written here.

import {
  concatBytes, equalBytes, fromBase64Url, fromHex, randomBytes, u16be, uintBE, utf8Encode,
} from './bytes.js';
import { CryptoError } from './errors.js';
import { hkdfExpand, hkdfExtract } from './hkdf.js';

const subtle = () => globalThis.crypto.subtle;

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_KEY_LENGTHS = new Map([[1, 16], [2, 32]]); // aead_id -> Nk
const NONCE_LENGTH = 12; // Nn
const X25519_LENGTH = 32; // Nsk = Npk = Nenc = Ndh = Nsecret
const MODE_BASE = 0x00;
const EMPTY = new Uint8Array(0);
const VERSION_LABEL = utf8Encode('HPKE-v1');
const KEM_SUITE_ID = concatBytes(utf8Encode('KEM'), u16be(KEM_ID));
// RFC 8410 PrivateKeyInfo for X25519 up to the 32 raw key bytes.
const PKCS8_X25519_PREFIX = fromHex('302e020100300506032b656e04220420');

function checkLength(bytes, length, what) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new CryptoError(`HPKE: ${what} must be ${length} bytes`);
  }
}

function aeadKeyLength(aeadId) {
  const nk = AEAD_KEY_LENGTHS.get(aeadId);
  if (nk === undefined) throw new CryptoError('HPKE: unsupported aead_id');
  return nk;
}

function hpkeSuiteId(aeadId) {
  return concatBytes(utf8Encode('HPKE'), u16be(KEM_ID), u16be(KDF_ID), u16be(aeadId));
}

// RFC 9180 §4: LabeledExtract and LabeledExpand.
function labeledExtract(suiteId, salt, label, ikm) {
  return hkdfExtract(salt, concatBytes(VERSION_LABEL, suiteId, utf8Encode(label), ikm));
}

function labeledExpand(suiteId, prk, label, info, length) {
  const labeledInfo = concatBytes(u16be(length), VERSION_LABEL, suiteId, utf8Encode(label), info);
  return hkdfExpand(prk, labeledInfo, length);
}

function importPrivateKey(raw, extractable) {
  checkLength(raw, X25519_LENGTH, 'an X25519 private key');
  const pkcs8 = concatBytes(PKCS8_X25519_PREFIX, raw);
  return subtle().importKey('pkcs8', pkcs8, { name: 'X25519' }, extractable, ['deriveBits']);
}

/** The raw 32-byte X25519 public key of a raw 32-byte private key. */
export async function publicKeyFromPrivate(raw) {
  const jwk = await subtle().exportKey('jwk', await importPrivateKey(raw, true));
  const pub = fromBase64Url(jwk.x);
  checkLength(pub, X25519_LENGTH, 'an X25519 public key');
  return pub;
}

// X25519 with the all-zero check of RFC 9180 §7.1.4. WebCrypto already
// refuses small-order points; checking again costs nothing.
async function dh(privateRaw, publicRaw) {
  checkLength(publicRaw, X25519_LENGTH, 'an X25519 public key');
  const priv = await importPrivateKey(privateRaw, false);
  let shared;
  try {
    const pub = await subtle().importKey('raw', publicRaw, { name: 'X25519' }, true, []);
    shared = new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: pub }, priv, 256));
  } catch {
    throw new CryptoError('HPKE: key agreement failed');
  }
  if (equalBytes(shared, new Uint8Array(X25519_LENGTH))) {
    throw new CryptoError('HPKE: key agreement failed');
  }
  return shared;
}

/** RFC 9180 §7.1.3 DeriveKeyPair for X25519: {privateKey, publicKey}, raw bytes. */
export async function deriveKeyPair(ikm) {
  const prk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = await labeledExpand(KEM_SUITE_ID, prk, 'sk', EMPTY, X25519_LENGTH);
  return { privateKey, publicKey: await publicKeyFromPrivate(privateKey) };
}

async function extractAndExpand(dhOutput, kemContext) {
  const prk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOutput);
  return labeledExpand(KEM_SUITE_ID, prk, 'shared_secret', kemContext, X25519_LENGTH);
}

/**
 * RFC 9180 §4.1 Encap: {sharedSecret, enc}. `ephemeral` ({privateKey,
 * publicKey?}) fixes the ephemeral key to reproduce test vectors; otherwise a
 * fresh random one is used (SPEC.md §4.1).
 */
export async function encap(pkR, ephemeral) {
  const privateKey = ephemeral ? ephemeral.privateKey : randomBytes(X25519_LENGTH);
  const enc = await publicKeyFromPrivate(privateKey);
  if (ephemeral?.publicKey !== undefined && !equalBytes(enc, ephemeral.publicKey)) {
    throw new CryptoError('HPKE: ephemeral key pair does not match');
  }
  const shared = await dh(privateKey, pkR);
  return { sharedSecret: await extractAndExpand(shared, concatBytes(enc, pkR)), enc };
}

/** RFC 9180 §4.1 Decap: the shared secret for `enc` and raw private key `skR`. */
export async function decap(enc, skR) {
  const shared = await dh(skR, enc);
  const pkR = await publicKeyFromPrivate(skR);
  return extractAndExpand(shared, concatBytes(enc, pkR));
}

/**
 * An HPKE encryption context (RFC 9180 §5.2). `key` and `baseNonce` are
 * exposed for the RFC test vectors. Await each open() before the next.
 */
class Context {
  #aesKey;
  #seq = 0;

  constructor(key, baseNonce, aesKey) {
    this.key = key;
    this.baseNonce = baseNonce;
    this.#aesKey = aesKey;
  }

  /** The sequence number the next seal() or open() will use. */
  get sequenceNumber() {
    return this.#seq;
  }

  #params(aad) {
    if (this.#seq >= Number.MAX_SAFE_INTEGER) throw new CryptoError('HPKE: message limit reached');
    const nonce = uintBE(this.#seq, NONCE_LENGTH);
    for (let i = 0; i < NONCE_LENGTH; i++) nonce[i] ^= this.baseNonce[i];
    return { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 };
  }

  /** Seal `pt` with `aad` under the next nonce; return ciphertext ‖ tag. */
  async seal(aad, pt) {
    const params = this.#params(aad);
    this.#seq += 1; // before awaiting: two overlapping calls never share a nonce
    return new Uint8Array(await subtle().encrypt(params, this.#aesKey, pt));
  }

  /** Open `ct` with `aad` under the next nonce; throws CryptoError on any failure. */
  async open(aad, ct) {
    const params = this.#params(aad);
    let pt;
    try {
      pt = new Uint8Array(await subtle().decrypt(params, this.#aesKey, ct));
    } catch {
      throw new CryptoError('HPKE: open failed');
    }
    this.#seq += 1;
    return pt;
  }
}

async function keyScheduleBase(sharedSecret, info, aeadId) {
  const nk = aeadKeyLength(aeadId);
  const suiteId = hpkeSuiteId(aeadId);
  const pskIdHash = await labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = await labeledExtract(suiteId, EMPTY, 'info_hash', info);
  const context = concatBytes(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, 'secret', EMPTY); // psk = ""
  const key = await labeledExpand(suiteId, secret, 'key', context, nk);
  const baseNonce = await labeledExpand(suiteId, secret, 'base_nonce', context, NONCE_LENGTH);
  const aesKey = await subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  return new Context(key, baseNonce, aesKey);
}

/** RFC 9180 §5.1.1 SetupBaseS: {enc, context}. opts: {aeadId, ephemeral?}. */
export async function setupBaseS(pkR, info, { aeadId, ephemeral } = {}) {
  aeadKeyLength(aeadId);
  const { sharedSecret, enc } = await encap(pkR, ephemeral);
  return { enc, context: await keyScheduleBase(sharedSecret, info, aeadId) };
}

/** RFC 9180 §5.1.1 SetupBaseR: the receiving context. opts: {aeadId}. */
export async function setupBaseR(enc, skR, info, { aeadId } = {}) {
  aeadKeyLength(aeadId);
  checkLength(enc, X25519_LENGTH, 'enc');
  return keyScheduleBase(await decap(enc, skR), info, aeadId);
}

/** RFC 9180 §6.1 single-shot SealBase: {enc, ct}. */
export async function sealBase(pkR, info, aad, pt, opts) {
  const { enc, context } = await setupBaseS(pkR, info, opts);
  return { enc, ct: await context.seal(aad, pt) };
}

/** RFC 9180 §6.1 single-shot OpenBase: the plaintext, or CryptoError. */
export async function openBase(enc, skR, info, aad, ct, opts) {
  const context = await setupBaseR(enc, skR, info, opts);
  return context.open(aad, ct);
}
