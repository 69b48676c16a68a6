// envelope.js: round trips, sizes, and the failure class of each tampering
// (SPEC.md §3–§7, §12). The vector files are checked in envelope-vectors.test.mjs.

import assert from 'node:assert/strict';
import test from 'node:test';

import { concatBytes, toHex } from '../../portal/web/static/js/bytes.js';
import {
  CHUNK_SIZE, MAGIC, SEAL_BATCH_CHUNKS, SEALED_CHUNK_SIZE, assembleHeader, buildHeader, headerLength, openEnvelope,
  openToBytes, readHeader, sealChunk, sealEnvelope, sealStanza, sealToBlob, sealToBytes, sealedSize,
} from '../../portal/web/static/js/envelope.js';
import { EnvelopeError, KeyFormatError } from '../../portal/web/static/js/errors.js';
import { generateEncryptionKeyPair } from '../../portal/web/static/js/keys.js';
import { paddedLength } from '../../portal/web/static/js/padding.js';
import { RecordingBlob, pattern, rejectsWithClass } from './support.mjs';

const people = await Promise.all([1, 2, 3, 4].map(() => generateEncryptionKeyPair()));
const [alice, bob, carol, mallory] = people;

const SIZES = [0, 1, 1023, 1024, 65535, 65536, 65537, 3 * 65536 + 5];

for (const size of SIZES) {
  test(`round trip of ${size} bytes to 1 and 3 recipients, via Blob and Uint8Array`, async () => {
    const data = pattern(size);
    for (const recipients of [[alice], [alice, bob, carol]]) {
      const fromBlob = await sealToBlob(new Blob([data]), recipients.map((p) => p.publicKey));
      const fromBytes = await sealToBytes(data, recipients.map((p) => p.publicKey));
      assert.equal(fromBlob.size, sealedSize(size, recipients.length));
      assert.equal(fromBytes.length, sealedSize(size, recipients.length));
      for (const person of recipients) {
        assert.deepEqual(await openToBytes(fromBlob, person.privateKey), data);
        assert.deepEqual(await openToBytes(fromBytes, person.privateKey), data);
      }
      await rejectsWithClass(openToBytes(fromBytes, mallory.privateKey), 'no match');
    }
  });
}

test('§12: sealedSize formula', () => {
  assert.equal(sealedSize(0, 1), 50 + 112 + 32 + 1024 + 16);
  assert.equal(sealedSize(65535, 2), 50 + 224 + 32 + 65536 + 16);
  assert.equal(sealedSize(65536, 64), 50 + 112 * 64 + 32 + 67584 + 32);
  assert.equal(headerLength(3), 50 + 336 + 32);
});

test('§4.1: every envelope has a fresh salt, data key and ephemeral keys', async () => {
  const a = readHeader(await sealToBytes(pattern(10), [alice.publicKey]));
  const b = readHeader(await sealToBytes(pattern(10), [alice.publicKey]));
  assert.notEqual(toHex(a.salt), toHex(b.salt));
  assert.notEqual(toHex(a.stanzas[0].enc), toHex(b.stanzas[0].enc));
  assert.notEqual(toHex(a.mac), toHex(b.mac));
});

test('the header lists the recipients in order, and chunks are 64 KiB + tag', async () => {
  const envelope = await sealToBytes(pattern(2 * CHUNK_SIZE), [bob.publicKey, alice.publicKey]);
  const header = readHeader(envelope);
  assert.deepEqual(header.stanzas.map((s) => toHex(s.recipient)), [bob, alice].map((p) => toHex(p.publicKey)));
  assert.deepEqual(envelope.subarray(0, 16), MAGIC);
  const pieces = [];
  for await (const piece of sealEnvelope(pattern(2 * CHUNK_SIZE), [alice.publicKey])) pieces.push(piece.length);
  assert.deepEqual(pieces, [headerLength(1), SEALED_CHUNK_SIZE, SEALED_CHUNK_SIZE, paddedLength(2 * CHUNK_SIZE) - 2 * CHUNK_SIZE + 16]);
});

test('Blobs are read in bounded slices, never whole', async () => {
  const batch = SEAL_BATCH_CHUNKS * CHUNK_SIZE;
  const data = pattern(batch + 3 * 65536 + 5);
  const source = new RecordingBlob([data]);
  const sealed = await sealToBlob(source, [alice.publicKey]);
  assert.ok(source.slices.length >= 2 && source.slices.every(([a, b]) => b - a <= batch));
  const envelope = new RecordingBlob([new Uint8Array(await sealed.arrayBuffer())]);
  assert.deepEqual(await openToBytes(envelope, alice.privateKey), data);
  assert.ok(envelope.slices.length >= 5 && envelope.slices.every(([a, b]) => b - a <= SEALED_CHUNK_SIZE));
});

test('writers refuse bad recipient lists (§3.2, §3.4)', async () => {
  const keys = (n) => Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i + 1));
  for (const recipients of [[], keys(65), [alice.publicKey, alice.publicKey], [alice.publicKey.subarray(1)], 'x']) {
    await assert.rejects(sealToBytes(pattern(1), recipients), KeyFormatError);
  }
  await assert.rejects(sealToBytes(pattern(1), [new Uint8Array(32)]), KeyFormatError); // small-order key
  await assert.rejects(sealToBytes('text', [alice.publicKey]), TypeError);
});

// One envelope to tamper with: 65537 bytes (2 chunks) to alice, bob and carol.
const DATA = pattern(65537);
const GOOD = await sealToBytes(DATA, [alice.publicKey, bob.publicKey, carol.publicKey]);
const HEADER_END = headerLength(3);
const flip = (bytes, at, bit = 1) => {
  const out = bytes.slice();
  out[at] ^= bit;
  return out;
};

test('§3: header failures, reported before any key is used', async () => {
  const withCount = (n) => concatBytes(GOOD.subarray(0, 48), Uint8Array.of(n >> 8, n & 255), GOOD.subarray(50));
  const cases = {
    'bad magic (§3.1)': flip(GOOD, 14),
    'empty input (§3.1)': new Uint8Array(0),
    'count 0 (§3.2)': withCount(0),
    'count 65 (§3.2)': withCount(65),
    'count 0xffff (§3.2)': withCount(0xffff),
    'cut inside the fixed part (§3.3)': GOOD.subarray(0, 49),
    'cut inside a stanza (§3.3)': GOOD.subarray(0, 50 + 112 + 5),
    'cut inside the MAC (§3.3)': GOOD.subarray(0, HEADER_END - 1),
    'count larger than the stanzas present (§3.3)': withCount(4).subarray(0, HEADER_END),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    // mallory is in no stanza: a key-first reader would say 'no match'.
    for (const person of [alice, mallory]) {
      await rejectsWithClass(openToBytes(bytes, person.privateKey), 'header failure').catch((e) => {
        throw new Error(`${name}: ${e.message}`);
      });
    }
    assert.throws(() => readHeader(bytes), EnvelopeError, name);
  }
});

test('§3.4: a duplicated recipient is a header failure even with a correct MAC', async () => {
  const dataKey = new Uint8Array(32).fill(5);
  const salt = new Uint8Array(32).fill(6);
  const { macKey, payloadKey } = await buildHeader([alice.publicKey], { dataKey, salt });
  const stanza = await sealStanza(dataKey, alice.publicKey);
  const header = await assembleHeader(salt, [stanza, await sealStanza(dataKey, alice.publicKey)], macKey);
  const chunk = await sealChunk(payloadKey, 0, true, concatBytes(Uint8Array.of(0x80), new Uint8Array(1023)));
  await rejectsWithClass(openToBytes(concatBytes(header, chunk), alice.privateKey), 'header failure');
  // The same construction with distinct recipients opens, so only §3.4 rejects the above.
  const fine = await assembleHeader(salt, [stanza, await sealStanza(dataKey, bob.publicKey)], macKey);
  assert.deepEqual(await openToBytes(concatBytes(fine, chunk), alice.privateKey), new Uint8Array(0));
});

test('§4.2 and §5.1: no match and MAC failure', async () => {
  const stanza = (i) => 50 + 112 * i;
  await rejectsWithClass(openToBytes(GOOD, mallory.privateKey), 'no match');
  await rejectsWithClass(openToBytes(flip(GOOD, stanza(0) + 64 + 3), alice.privateKey), 'no match'); // sealed key
  await rejectsWithClass(openToBytes(flip(GOOD, stanza(0) + 40), alice.privateKey), 'no match'); // enc
  await rejectsWithClass(openToBytes(flip(GOOD, stanza(0)), alice.privateKey), 'no match'); // recipient
  const macFailures = {
    'flipped MAC byte': flip(GOOD, HEADER_END - 1),
    'changed salt': flip(GOOD, 20),
    "altered stanza of another recipient": flip(GOOD, stanza(1) + 80),
    "another recipient's key changed": flip(GOOD, stanza(2) + 1),
  };
  for (const [name, bytes] of Object.entries(macFailures)) {
    await rejectsWithClass(openToBytes(bytes, alice.privateKey), 'MAC failure').catch((e) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
});

test('§7: payload failures', async () => {
  const first = HEADER_END + SEALED_CHUNK_SIZE;
  const cases = {
    'flipped payload byte': flip(GOOD, HEADER_END + 100),
    'flipped tag byte of the last chunk': flip(GOOD, GOOD.length - 1),
    'last chunk cut by one byte': GOOD.subarray(0, GOOD.length - 1),
    'one byte appended': concatBytes(GOOD, Uint8Array.of(0)),
    'last chunk removed': GOOD.subarray(0, first),
    'only a tag left of the last chunk': GOOD.subarray(0, first + 16),
    'header only': GOOD.subarray(0, HEADER_END),
    'chunks swapped': concatBytes(GOOD.subarray(0, HEADER_END), GOOD.subarray(first), GOOD.subarray(HEADER_END, first)),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    await rejectsWithClass(openToBytes(bytes, alice.privateKey), 'payload failure').catch((e) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
});

test('§7.1: an empty final chunk is refused even where the padding would check out', async () => {
  const dataKey = new Uint8Array(32).fill(8);
  const salt = new Uint8Array(32).fill(9);
  const { header, payloadKey } = await buildHeader([alice.publicKey], { dataKey, salt });
  const padded = concatBytes(pattern(65535), Uint8Array.of(0x80)); // exactly one full chunk
  const control = concatBytes(header, await sealChunk(payloadKey, 0, true, padded));
  assert.deepEqual(await openToBytes(control, alice.privateKey), pattern(65535));
  const emptyLast = concatBytes(
    header, await sealChunk(payloadKey, 0, false, padded), await sealChunk(payloadKey, 1, true, new Uint8Array(0)),
  );
  await rejectsWithClass(openToBytes(emptyLast, alice.privateKey), 'payload failure');
});

test('many chunks: 8 chunks round trip', async () => {
  const data = pattern(7 * 65536 + 3);
  assert.deepEqual(await openToBytes(await sealToBytes(data, [alice.publicKey]), alice.privateKey), data);
});

test('§7.3: pieces come before the end is checked, so a failure must void them', async () => {
  const envelope = await sealToBytes(pattern(3 * 65536 + 5), [alice.publicKey]);
  const truncated = envelope.subarray(0, headerLength(1) + 2 * SEALED_CHUNK_SIZE);
  const seen = [];
  await rejectsWithClass((async () => {
    for await (const piece of openEnvelope(truncated, alice.privateKey)) seen.push(piece);
  })(), 'payload failure');
  assert.ok(seen.length > 0, 'streaming hands out plaintext before the failure');
  const generator = openEnvelope(envelope, alice.privateKey);
  let result = await generator.next();
  while (!result.done) result = await generator.next();
  assert.equal(result.value, 3 * 65536 + 5); // a normal completion returns the data length
});

test('§9.1: failure messages hold no key material or plaintext', async () => {
  const secret = new TextEncoder().encode('the master is Captain Haddock, call sign XYZ123');
  const envelope = await sealToBytes(secret, [alice.publicKey]);
  // The three run at once, so each gets its handler now: a rejection that
  // came before its await would otherwise count as unhandled.
  const attempts = [
    openToBytes(envelope, mallory.privateKey),
    openToBytes(flip(envelope, headerLength(1) - 1), alice.privateKey),
    openToBytes(flip(envelope, envelope.length - 1), alice.privateKey),
  ].map((attempt) => attempt.then(() => null, (e) => e));
  for (const attempt of attempts) {
    const error = await attempt;
    assert.ok(error instanceof EnvelopeError, 'should have failed');
    for (const secretText of [toHex(alice.privateKey), toHex(mallory.privateKey), 'Haddock', 'XYZ123']) {
      assert.ok(!error.message.includes(secretText) && !String(error.stack).includes(secretText));
    }
  }
  await assert.rejects(openToBytes(envelope, alice.privateKey.subarray(1)), KeyFormatError);
});
