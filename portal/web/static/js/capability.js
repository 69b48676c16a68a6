// Can this browser encrypt a report? Asked once, before the reporter types.
//
// The browser path needs a secure context (https, an onion address or
// localhost: elsewhere browsers hide crypto.subtle) and WebCrypto's SHA-256,
// HMAC (HKDF), PBKDF2 (receipts), AES-256-GCM, X25519 (HPKE) and Ed25519 (the
// signed key directory). Support for the last two came late to some
// browsers, so each is run on a known answer (RFC 7748 §6.1, RFC 8032 §7.1
// test 1; the GCM answer is NIST's all-zero case): a browser that has the
// name but gets the wrong result counts as unable too.
//
// The answer names what is missing in plain words, for the page to show;
// nothing here falls back to anything.

import { equalBytes, fromBase64Url, fromHex, utf8Encode } from './bytes.js';
import { _ } from './i18n.js';

const X25519_PKCS8_PREFIX = '302e020100300506032b656e04220420';
const X25519_ALICE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const X25519_ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const X25519_BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const X25519_SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
const ED25519_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const ED25519_EMPTY_SIGNATURE =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
const GCM_ZERO_TAG = '530f8afbc74536b9a963b4f1c4cb738b';
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

async function sha256(subtle) {
  const digest = new Uint8Array(await subtle.digest('SHA-256', utf8Encode('abc')));
  return equalBytes(digest, fromHex(SHA256_ABC));
}

async function hmac(subtle) {
  const key = await subtle.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', key, new Uint8Array(1))).length === 32;
}

async function pbkdf2(subtle) {
  const key = await subtle.importKey('raw', utf8Encode('0000'), 'PBKDF2', false, ['deriveBits']);
  const params = { name: 'PBKDF2', hash: 'SHA-256', salt: new Uint8Array(8), iterations: 2 };
  return (await subtle.deriveBits(params, key, 512)).byteLength === 64;
}

async function aesGcm(subtle) {
  const key = await subtle.importKey('raw', new Uint8Array(32), { name: 'AES-GCM' }, false, ['encrypt']);
  const sealed = await subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12), tagLength: 128 }, key, new Uint8Array(0));
  return equalBytes(new Uint8Array(sealed), fromHex(GCM_ZERO_TAG));
}

// The operations hpke.js uses, in its way: PKCS#8 import, JWK export, raw import, deriveBits.
async function x25519(subtle) {
  const pkcs8 = fromHex(X25519_PKCS8_PREFIX + X25519_ALICE);
  const alice = await subtle.importKey('pkcs8', pkcs8, { name: 'X25519' }, true, ['deriveBits']);
  const jwk = await subtle.exportKey('jwk', alice);
  if (!equalBytes(fromBase64Url(jwk.x), fromHex(X25519_ALICE_PUBLIC))) return false;
  const bob = await subtle.importKey('raw', fromHex(X25519_BOB_PUBLIC), { name: 'X25519' }, true, []);
  const shared = await subtle.deriveBits({ name: 'X25519', public: bob }, alice, 256);
  return equalBytes(new Uint8Array(shared), fromHex(X25519_SHARED));
}

async function ed25519(subtle) {
  const key = await subtle.importKey('raw', fromHex(ED25519_PUBLIC), { name: 'Ed25519' }, false, ['verify']);
  return subtle.verify({ name: 'Ed25519' }, key, fromHex(ED25519_EMPTY_SIGNATURE), new Uint8Array(0));
}

/** Each check: what the reporter is told is missing if it fails. */
export const CHECKS = Object.freeze([
  ['SHA-256', sha256],
  ['HMAC', hmac],
  ['PBKDF2', pbkdf2],
  ['AES-GCM', aesGcm],
  ['X25519', x25519],
  ['Ed25519', ed25519],
]);

/** "a", "a and b", "a, b and c" (the names are the functions' own, never translated). */
function inWords(names) {
  if (names.length < 2) return names.join('');
  return _("{names} and {last}", { names: names.slice(0, -1).join(', '), last: names.at(-1) });
}

async function passes(check, subtle) {
  try {
    return (await check(subtle)) === true;
  } catch {
    return false;
  }
}

/**
 * Whether this browser can encrypt here: {usable: true} or {usable: false,
 * reason: plain words, missing: [names]}. `scope` is the global object
 * (window in a page), so tests can pass their own.
 */
export async function encryptionCapability(scope = globalThis) {
  if (scope.isSecureContext === false) {
    return {
      usable: false,
      missing: ['secure context'],
      reason: _("This page did not arrive over a secure connection (https, or the portal's onion address), and browsers allow their encryption functions only on secure pages."),
    };
  }
  const subtle = scope.crypto?.subtle;
  if (!subtle || typeof scope.crypto.getRandomValues !== 'function') {
    return {
      usable: false,
      missing: ['WebCrypto'],
      reason: _("This browser does not offer the encryption functions (WebCrypto) the portal needs."),
    };
  }
  const missing = [];
  for (const [name, check] of CHECKS) if (!(await passes(check, subtle))) missing.push(name);
  if (missing.length === 0) return { usable: true, missing };
  return {
    usable: false,
    missing,
    reason: missing.length === 1
      ? _("This browser cannot do the encryption the portal uses ({names} is missing). A current Firefox, Chrome, Safari or Tor Browser can.", { names: inWords(missing) })
      : _("This browser cannot do the encryption the portal uses ({names} are missing). A current Firefox, Chrome, Safari or Tor Browser can.", { names: inWords(missing) }),
  };
}
