// The exceptions of the browser crypto modules (SPEC.md §9).
//
// Every failure these modules raise on purpose is a CryptoError. The leaves
// name the failure class, which is all a caller (or an attacker watching a
// caller) learns: messages never carry key material, plaintext, or the reason
// an AEAD tag did not verify.

// Each class names itself in a string, not through its class name: the page's
// served bundle is minified (scripts/bundle.py), which renames classes.
/** Base type of every deliberate failure in portal/web/static/js/. */
export class CryptoError extends Error {
  name = 'CryptoError';
}

/** The four failure classes of SPEC.md §9, as named in the test vectors. */
export const FAILURE_CLASSES = Object.freeze([
  'header failure',
  'no match',
  'MAC failure',
  'payload failure',
]);

/**
 * An envelope could not be read. `failureClass` is one of FAILURE_CLASSES;
 * the message is that class, optionally followed by a secret-free detail.
 */
export class EnvelopeError extends CryptoError {
  constructor(failureClass, detail) {
    if (!FAILURE_CLASSES.includes(failureClass)) {
      throw new TypeError('unknown envelope failure class');
    }
    super(detail ? `${failureClass}: ${detail}` : failureClass);
    this.failureClass = failureClass;
  }

  name = 'EnvelopeError';
}

/** A public key token, raw key or recipient list is malformed (SPEC.md §8). */
export class KeyFormatError extends CryptoError {
  name = 'KeyFormatError';
}

/** A signed key directory is malformed, badly signed or out of date (SPEC.md §10). */
export class DirectoryError extends CryptoError {
  name = 'DirectoryError';
}
