// Receipts (crypto/SPEC.md §14): 24 digits the reporter keeps to come back.
//
// The first four digits are a public locator; the other twenty are secret.
// PBKDF2-HMAC-SHA256 (600,000 iterations, salt = label ‖ locator) turns the
// receipt into 64 bytes: the reporter's X25519 private key (its public half
// goes inside the encrypted report, so reviewers can answer) and a lookup
// token, of which the portal keeps only an argon2id hash. The receipt itself
// never leaves the browser.

import { concatBytes, utf8Encode } from './bytes.js';
import { asciiDigits } from './digits.js';
import { publicKeyFromPrivate } from './hpke.js';

export const DIGITS = 24;
export const LOCATOR_DIGITS = 4;
export const ITERATIONS = 600000;
const SALT_LABEL = utf8Encode('cso-portal receipt v1\n');

/** A fresh receipt: 24 uniformly random digits (bytes ≥ 250 are redrawn). */
export function generateReceipt() {
  let digits = '';
  while (digits.length < DIGITS) {
    for (const byte of globalThis.crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < 250 && digits.length < DIGITS) digits += String(byte % 10);
    }
  }
  return digits;
}

/**
 * The 24 ASCII digits of a typed receipt, or null. Spaces and dashes are
 * ignored, and digits of any script read as ASCII (SPEC.md §14.1, digits.js),
 * as crypto/receipt.py's Receipt.parse reads them.
 */
export function parseReceipt(text) {
  const digits = asciiDigits(String(text).trim().replace(/[\s-]+/g, ''));
  return /^[0-9]{24}$/.test(digits) ? digits : null;
}

/** Six groups of four, as shown to the reporter. */
export function formatReceipt(digits) {
  return digits.match(/[0-9]{4}/g).join(' ');
}

/** {privateKey, publicKey, lookupToken} from the receipt's digits. */
export async function deriveReceiptKeys(digits, iterations = ITERATIONS) {
  if (parseReceipt(digits) !== digits) throw new TypeError('a receipt is 24 digits');
  const subtle = globalThis.crypto.subtle;
  const password = await subtle.importKey('raw', utf8Encode(digits), 'PBKDF2', false, ['deriveBits']);
  const salt = concatBytes(SALT_LABEL, utf8Encode(digits.slice(0, LOCATOR_DIGITS)));
  const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, password, 512);
  const material = new Uint8Array(bits);
  const privateKey = material.slice(0, 32);
  return { privateKey, publicKey: await publicKeyFromPrivate(privateKey), lookupToken: material.slice(32) };
}
