// bytes.js: the text encodings every other module relies on.

import assert from 'node:assert/strict';
import test from 'node:test';

import {
  concatBytes, equalBytes, fromBase32, fromBase64, fromBase64Url, fromHex, readUintBE,
  toBase32, toBase64, toBase64Url, toHex, u16be, uintBE, utf8Decode, utf8Encode,
} from '../../portal/web/static/js/bytes.js';

const ascii = (s) => utf8Encode(s);

test('RFC 4648 §10 test vectors: base64 and base32', () => {
  const cases = [
    ['', '', ''], ['f', 'Zg==', 'my'], ['fo', 'Zm8=', 'mzxq'], ['foo', 'Zm9v', 'mzxw6'],
    ['foob', 'Zm9vYg==', 'mzxw6yq'], ['fooba', 'Zm9vYmE=', 'mzxw6ytb'], ['foobar', 'Zm9vYmFy', 'mzxw6ytboi'],
  ];
  for (const [text, b64, b32] of cases) {
    assert.equal(toBase64(ascii(text)), b64);
    assert.deepEqual(fromBase64(b64), ascii(text));
    assert.equal(toBase64Url(ascii(text)), b64.replace(/=+$/, ''));
    assert.deepEqual(fromBase64Url(b64.replace(/=+$/, '')), ascii(text));
    assert.equal(toBase32(ascii(text)), b32);
    assert.deepEqual(fromBase32(b32), ascii(text));
  }
});

test('base64url uses - and _, and every encoder round-trips all byte values', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff)), '-_8');
  assert.equal(toBase64(Uint8Array.of(0xfb, 0xff)), '+/8=');
  for (let n = 0; n <= all.length; n += 17) {
    const part = all.subarray(0, n);
    assert.deepEqual(fromBase64(toBase64(part)), part);
    assert.deepEqual(fromBase64Url(toBase64Url(part)), part);
    assert.deepEqual(fromBase32(toBase32(part)), part);
    assert.deepEqual(fromHex(toHex(part)), part);
  }
});

test('decoders refuse foreign characters, impossible lengths and non-canonical forms', () => {
  assert.throws(() => fromBase32('MZXW6'), TypeError); // upper case is the caller's business
  assert.throws(() => fromBase32('mzxw1'), TypeError);
  assert.throws(() => fromBase32('m'), TypeError); // 5 bits: no whole byte
  assert.throws(() => fromBase32('mz'), TypeError); // 'z' leaves non-zero spare bits
  assert.throws(() => fromBase32('my='), TypeError);
  assert.throws(() => fromBase64Url('Zg='), TypeError);
  assert.throws(() => fromBase64Url('Zh'), TypeError); // non-zero spare bits
  assert.throws(() => fromBase64Url('Z'), TypeError);
  assert.throws(() => fromBase64Url('+/8'), TypeError);
  assert.throws(() => fromBase64('Zg'), TypeError);
  assert.throws(() => fromBase64('Zg=='.replace('g', 'h')), TypeError);
  assert.throws(() => fromBase64('Zm9v===='), TypeError);
  assert.throws(() => fromBase64('-_8='), TypeError);
  assert.throws(() => fromHex('abc'), TypeError);
  assert.throws(() => fromHex('zz'), TypeError);
});

test('utf8Decode is strict and keeps a byte-order mark', () => {
  assert.equal(utf8Decode(ascii('søren ⚓')), 'søren ⚓');
  assert.throws(() => utf8Decode(Uint8Array.of(0xc3)), TypeError);
  assert.throws(() => utf8Decode(Uint8Array.of(0xc0, 0x80)), TypeError); // overlong NUL
  assert.equal(utf8Decode(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41)), '\ufeffA');
});

test('concatBytes, equalBytes and big-endian integers', () => {
  assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
  assert.ok(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)));
  assert.deepEqual(u16be(0x0102), Uint8Array.of(1, 2));
  assert.throws(() => u16be(65536), RangeError);
  assert.equal(toHex(uintBE(2 ** 40 + 5, 11)), '0000000000010000000005');
  assert.equal(readUintBE(Uint8Array.of(1, 0, 0, 0, 0)), 2 ** 32);
});
