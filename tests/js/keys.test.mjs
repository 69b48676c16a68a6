// keys.js: public key tokens and fingerprints (SPEC.md §8.1, §8.2).

import assert from 'node:assert/strict';
import test from 'node:test';

import { fromHex, toHex } from '../../portal/web/static/js/bytes.js';
import { KeyFormatError } from '../../portal/web/static/js/errors.js';
import { publicKeyFromPrivate } from '../../portal/web/static/js/hpke.js';
import { fingerprint, formatPublicKey, generateEncryptionKeyPair, parsePublicKey } from '../../portal/web/static/js/keys.js';
import { loadVectors } from './support.mjs';

const KEY = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

test('tokens: 65 characters, lower case, right prefix, round trip', async () => {
  for (const prefix of ['csoenc1', 'csosig1']) {
    const token = await formatPublicKey(prefix, KEY);
    assert.equal(token.length, 65);
    assert.match(token, new RegExp(`^${prefix}[a-z2-7]{58}$`));
    assert.deepEqual(await parsePublicKey(token), { prefix, key: KEY });
    assert.deepEqual(await parsePublicKey(token, prefix), { prefix, key: KEY });
  }
  await assert.rejects(formatPublicKey('csoxxx1', KEY), KeyFormatError);
  await assert.rejects(formatPublicKey('csoenc1', KEY.subarray(1)), KeyFormatError);
});

test('surrounding white space and upper case are forgiven, nothing else is', async () => {
  const token = await formatPublicKey('csoenc1', KEY);
  assert.deepEqual((await parsePublicKey(`  ${token.toUpperCase()}\n`)).key, KEY);
  for (const bad of [`${token.slice(0, 30)} ${token.slice(30)}`, `\u00a0${token}`, token.replace('k', '\u212a')]) {
    await assert.rejects(parsePublicKey(bad), KeyFormatError);
  }
});

test('refusals: one-character typo, wrong prefix, wrong length, bad alphabet, non-canonical', async () => {
  const token = await formatPublicKey('csosig1', KEY);
  const at = 30;
  const typo = token.slice(0, at) + (token[at] === 'a' ? 'b' : 'a') + token.slice(at + 1);
  const lastBits = token.slice(0, -1) + String.fromCharCode(token.charCodeAt(64) + 1); // spare bits set
  const refused = {
    typo,
    'wrong prefix': `csoxxx1${token.slice(7)}`,
    'other prefix expected': token,
    'one short': token.slice(0, -1),
    'one long': `${token}a`,
    'outside base32': `${token.slice(0, -1)}1`,
    'non-canonical last character': lastBits,
    empty: '',
  };
  for (const [name, text] of Object.entries(refused)) {
    const expected = name === 'other prefix expected' ? 'csoenc1' : undefined;
    await assert.rejects(parsePublicKey(text, expected), KeyFormatError, name);
  }
  await assert.rejects(parsePublicKey(42), KeyFormatError);
});

test('fingerprints: six groups of five digits, different per prefix', async () => {
  const enc = await fingerprint('csoenc1', KEY);
  assert.match(enc, /^\d{5}( \d{5}){5}$/);
  assert.notEqual(enc, await fingerprint('csosig1', KEY));
});

test('generateEncryptionKeyPair gives matching, fresh pairs', async () => {
  const a = await generateEncryptionKeyPair();
  const b = await generateEncryptionKeyPair();
  assert.equal(a.privateKey.length, 32);
  assert.deepEqual(await publicKeyFromPrivate(a.privateKey), a.publicKey);
  assert.notEqual(toHex(a.publicKey), toHex(b.publicKey));
});

const vectors = loadVectors('keys-py.json');

test('Python key vectors (keys-py.json)', { skip: vectors === null && 'keys-py.json not generated yet' }, async () => {
  assert.equal(vectors.schema, 'cso-key-vectors/v1');
  assert.ok(vectors.cases.some((c) => c.expect === 'invalid'));
  for (const c of vectors.cases) {
    if (c.expect === 'success') {
      const key = fromHex(c.key);
      assert.equal(await formatPublicKey(c.kind, key), c.token, c.name);
      assert.equal(await fingerprint(c.kind, key), c.fingerprint, c.name);
      assert.deepEqual(await parsePublicKey(c.token, c.kind), { prefix: c.kind, key }, c.name);
      assert.deepEqual(await parsePublicKey(c.token), { prefix: c.kind, key }, c.name);
    } else {
      assert.equal(c.expect, 'invalid', c.name);
      await assert.rejects(parsePublicKey(c.token, c.kind), KeyFormatError, c.name);
      await assert.rejects(parsePublicKey(c.token), KeyFormatError, c.name);
    }
  }
});
