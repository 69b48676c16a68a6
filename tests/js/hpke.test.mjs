// hpke.js against the RFC 9180 / CFRG vectors (tests/vectors/hpke-rfc9180.json).

import assert from 'node:assert/strict';
import test from 'node:test';

import { fromHex, toHex, uintBE } from '../../portal/web/static/js/bytes.js';
import { CryptoError } from '../../portal/web/static/js/errors.js';
import {
  decap, deriveKeyPair, encap, openBase, publicKeyFromPrivate, sealBase, setupBaseR, setupBaseS,
} from '../../portal/web/static/js/hpke.js';
import { loadVectors } from './support.mjs';

const file = loadVectors('hpke-rfc9180.json');

test('the RFC 9180 vector file is present and has both AEADs', () => {
  assert.equal(file.schema, 'cso-hpke-vectors/v1');
  assert.deepEqual(file.cases.map((c) => c.aead_id).sort(), [1, 2]);
});

for (const c of file.cases) {
  const opts = { aeadId: c.aead_id };
  const info = fromHex(c.info);

  test(`${c.name}: DeriveKeyPair`, async () => {
    const eph = await deriveKeyPair(fromHex(c.ikmE));
    assert.equal(toHex(eph.privateKey), c.skEm);
    assert.equal(toHex(eph.publicKey), c.pkEm);
    const rec = await deriveKeyPair(fromHex(c.ikmR));
    assert.equal(toHex(rec.privateKey), c.skRm);
    assert.equal(toHex(rec.publicKey), c.pkRm);
    assert.equal(toHex(await publicKeyFromPrivate(fromHex(c.skRm))), c.pkRm);
  });

  test(`${c.name}: Encap and Decap`, async () => {
    const ephemeral = { privateKey: fromHex(c.skEm), publicKey: fromHex(c.pkEm) };
    const { sharedSecret, enc } = await encap(fromHex(c.pkRm), ephemeral);
    assert.equal(toHex(enc), c.enc);
    assert.equal(toHex(sharedSecret), c.shared_secret);
    assert.equal(toHex(await decap(fromHex(c.enc), fromHex(c.skRm))), c.shared_secret);
  });

  test(`${c.name}: every encryption, sealed and opened in sequence`, async () => {
    const ephemeral = { privateKey: fromHex(c.skEm) };
    const { enc, context } = await setupBaseS(fromHex(c.pkRm), info, { ...opts, ephemeral });
    assert.equal(toHex(enc), c.enc);
    assert.equal(toHex(context.key), c.key);
    assert.equal(toHex(context.baseNonce), c.base_nonce);
    const receiver = await setupBaseR(fromHex(c.enc), fromHex(c.skRm), info, opts);
    assert.equal(toHex(receiver.key), c.key);
    assert.equal(c.encryptions.length, 257); // sequence numbers 0..256, in order
    for (const [seq, e] of c.encryptions.entries()) {
      // The file's nonce is base_nonce XOR seq: check the order assumption.
      const nonce = fromHex(c.base_nonce).map((b, i) => b ^ uintBE(seq, 12)[i]);
      assert.equal(toHex(nonce), e.nonce, `nonce of sequence number ${seq}`);
      assert.equal(toHex(await context.seal(fromHex(e.aad), fromHex(e.pt))), e.ct, `seal ${seq}`);
      assert.equal(toHex(await receiver.open(fromHex(e.aad), fromHex(e.ct))), e.pt, `open ${seq}`);
    }
    assert.equal(context.sequenceNumber, 257);
  });

  test(`${c.name}: a flipped ciphertext byte, wrong AAD or wrong sequence number fail to open`, async () => {
    const e = c.encryptions[0];
    const ct = fromHex(e.ct);
    for (const i of [0, ct.length - 1]) {
      const bad = ct.slice();
      bad[i] ^= 1;
      const receiver = await setupBaseR(fromHex(c.enc), fromHex(c.skRm), info, opts);
      await assert.rejects(receiver.open(fromHex(e.aad), bad), CryptoError);
      // A failed open does not advance the sequence number (RFC 9180 §5.2).
      assert.equal(toHex(await receiver.open(fromHex(e.aad), ct)), e.pt);
    }
    await assert.rejects(openBase(fromHex(c.enc), fromHex(c.skRm), info, new Uint8Array(1), ct, opts), CryptoError);
    const second = fromHex(c.encryptions[1].ct);
    await assert.rejects(openBase(fromHex(c.enc), fromHex(c.skRm), info, fromHex(c.encryptions[1].aad), second, opts), CryptoError);
  });
}

test('single-shot sealBase/openBase round trip with fresh ephemeral keys', async () => {
  const r = await deriveKeyPair(new Uint8Array(32).fill(1));
  const info = new TextEncoder().encode('cso-envelope/v1 data key');
  const pt = new Uint8Array(32).fill(9);
  const a = await sealBase(r.publicKey, info, new Uint8Array(0), pt, { aeadId: 2 });
  const b = await sealBase(r.publicKey, info, new Uint8Array(0), pt, { aeadId: 2 });
  assert.notEqual(toHex(a.enc), toHex(b.enc)); // §4.1: fresh ephemeral key every time
  assert.equal(a.ct.length, 48);
  assert.deepEqual(await openBase(a.enc, r.privateKey, info, new Uint8Array(0), a.ct, { aeadId: 2 }), pt);
  await assert.rejects(openBase(a.enc, r.privateKey, info, new Uint8Array(0), a.ct, { aeadId: 1 }), CryptoError);
  await assert.rejects(openBase(a.enc, r.privateKey, new Uint8Array(0), new Uint8Array(0), a.ct, { aeadId: 2 }), CryptoError);
});

test('unsupported suites, bad lengths and small-order points are refused', async () => {
  const r = await deriveKeyPair(new Uint8Array(32).fill(2));
  await assert.rejects(setupBaseS(r.publicKey, new Uint8Array(0), { aeadId: 3 }), CryptoError);
  await assert.rejects(setupBaseS(r.publicKey, new Uint8Array(0), {}), CryptoError);
  await assert.rejects(setupBaseS(r.publicKey.subarray(1), new Uint8Array(0), { aeadId: 2 }), CryptoError);
  await assert.rejects(publicKeyFromPrivate(new Uint8Array(31)), CryptoError);
  // The all-zero point and the order-8 point give an all-zero X25519 output.
  const zero = new Uint8Array(32);
  const order8 = fromHex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157');
  for (const bad of [zero, order8]) {
    await assert.rejects(setupBaseS(bad, new Uint8Array(0), { aeadId: 2 }), CryptoError);
    await assert.rejects(setupBaseR(bad, r.privateKey, new Uint8Array(0), { aeadId: 2 }), CryptoError);
  }
});
