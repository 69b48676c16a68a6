// hkdf.js: HMAC-SHA256 and HKDF-SHA256 against their RFCs.

import assert from 'node:assert/strict';
import test from 'node:test';

import { fromHex, toHex, utf8Encode } from '../../portal/web/static/js/bytes.js';
import { hkdf, hkdfExpand, hkdfExtract, hmacSha256 } from '../../portal/web/static/js/hkdf.js';

test('RFC 5869 A.1 (test case 1)', async () => {
  const ikm = new Uint8Array(22).fill(0x0b);
  const salt = fromHex('000102030405060708090a0b0c');
  const info = fromHex('f0f1f2f3f4f5f6f7f8f9');
  const prk = await hkdfExtract(salt, ikm);
  assert.equal(toHex(prk), '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
  const okm = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
  assert.equal(toHex(await hkdfExpand(prk, info, 42)), okm);
  assert.equal(toHex(await hkdf(salt, ikm, info, 42)), okm);
});

test('RFC 5869 A.3 (test case 3): empty salt and info', async () => {
  const ikm = new Uint8Array(22).fill(0x0b);
  const empty = new Uint8Array(0);
  assert.equal(toHex(await hkdfExtract(empty, ikm)), '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04');
  assert.equal(
    toHex(await hkdf(empty, ikm, empty, 42)),
    '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  );
});

test('RFC 4231 test case 2 for HMAC-SHA256, and an empty HMAC key', async () => {
  const mac = await hmacSha256(utf8Encode('Jefe'), utf8Encode('what do ya want for nothing?'));
  assert.equal(toHex(mac), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  // HMAC with an empty key (WebCrypto refuses to import one): value from
  // Python's hmac.digest(b"", b"", "sha256").
  assert.equal(
    toHex(await hmacSha256(new Uint8Array(0), new Uint8Array(0))),
    'b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad',
  );
});

test('Expand refuses lengths above 255 × 32 and gives exact prefixes', async () => {
  const prk = new Uint8Array(32).fill(7);
  await assert.rejects(hkdfExpand(prk, new Uint8Array(0), 255 * 32 + 1), RangeError);
  const long = await hkdfExpand(prk, new Uint8Array(0), 100);
  assert.deepEqual(await hkdfExpand(prk, new Uint8Array(0), 33), long.subarray(0, 33));
});
