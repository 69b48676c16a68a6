// capability.js: a browser is told it cannot encrypt exactly when it cannot,
// and what is missing.

import assert from 'node:assert/strict';
import test from 'node:test';

import { encryptionCapability } from '../../portal/web/static/js/capability.js';

// WebCrypto as Node has it, except that `names` are unknown algorithms.
function without(...names) {
  const named = (algorithm) => names.includes(typeof algorithm === 'string' ? algorithm : algorithm?.name);
  const subtle = new Proxy(crypto.subtle, {
    get(target, property) {
      const method = target[property];
      if (typeof method !== 'function') return method;
      return (...args) => {
        if (args.some(named)) return Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'));
        return method.apply(target, args);
      };
    },
  });
  return { isSecureContext: true, crypto: { subtle, getRandomValues: (a) => crypto.getRandomValues(a) } };
}

test('Node\'s WebCrypto can do everything the portal needs', async () => {
  assert.deepEqual(await encryptionCapability(), { usable: true, missing: [] });
  assert.deepEqual(await encryptionCapability(without()), { usable: true, missing: [] });
});

test('an insecure page is told so before anything else', async () => {
  const answer = await encryptionCapability({ isSecureContext: false, crypto: globalThis.crypto });
  assert.equal(answer.usable, false);
  assert.deepEqual(answer.missing, ['secure context']);
  assert.match(answer.reason, /secure connection/);
});

test('no WebCrypto at all (crypto.subtle is hidden on insecure pages)', async () => {
  const answer = await encryptionCapability({ crypto: { getRandomValues: () => {} } });
  assert.equal(answer.usable, false);
  assert.deepEqual(answer.missing, ['WebCrypto']);
  assert.doesNotMatch(answer.reason, /undefined|importKey/);
});

test('a browser without X25519 or Ed25519 is named as such', async () => {
  assert.deepEqual((await encryptionCapability(without('X25519'))).missing, ['X25519']);
  const both = await encryptionCapability(without('X25519', 'Ed25519'));
  assert.equal(both.usable, false);
  assert.deepEqual(both.missing, ['X25519', 'Ed25519']);
  assert.match(both.reason, /X25519 and Ed25519 are missing/);
});

test('a wrong answer counts as missing, not only an exception', async () => {
  const scope = without();
  const real = scope.crypto.subtle;
  const liar = new Proxy(real, {
    get(target, property) {
      if (property !== 'deriveBits') return target[property];
      return async (...args) => {
        const bits = new Uint8Array(await real.deriveBits(...args));
        if (args[0]?.name === 'X25519') bits[0] ^= 1;
        return bits.buffer;
      };
    },
  });
  const answer = await encryptionCapability({ ...scope, crypto: { ...scope.crypto, subtle: liar } });
  assert.deepEqual(answer.missing, ['X25519']);
});
