// sha256.js: the streaming SHA-256 used for attachment manifests, checked
// against the FIPS 180-4 examples and against WebCrypto and Node's own
// hash (independent implementations) on inputs cut into pieces every way.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';

import { toHex, utf8Encode } from '../../portal/web/static/js/bytes.js';
import { Sha256, sha256Blob } from '../../portal/web/static/js/sha256.js';
import { RecordingBlob } from './support.mjs';

const hexOf = (bytes) => toHex(new Sha256().update(bytes).digest());
const webcrypto = async (bytes) => toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));

/** A seeded generator (mulberry32), so that a failing case can be replayed. */
function generator(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomData(random, length) {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (random() * 256) | 0;
  return out;
}

/** Hash `data` fed in pieces of random sizes up to `maxPiece` (empty ones included). */
function hashInPieces(data, random, maxPiece) {
  const hash = new Sha256();
  for (let at = 0; at < data.length;) {
    const size = Math.floor(random() * (maxPiece + 1));
    hash.update(data.subarray(at, at + size));
    at += size;
  }
  return toHex(hash.digest());
}

// FIPS 180-4 examples (NIST CSRC "Examples with Intermediate Values",
// SHA256.pdf and SHA2_Additional.pdf).
const KNOWN = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', // 448 bits
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  [
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu', // 896 bits
    'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  ],
];

test('FIPS 180-4 examples, whole and one byte at a time', () => {
  for (const [text, expected] of KNOWN) {
    const bytes = utf8Encode(text);
    assert.equal(hexOf(bytes), expected, JSON.stringify(text));
    const hash = new Sha256();
    for (let i = 0; i < bytes.length; i++) hash.update(bytes.subarray(i, i + 1));
    assert.equal(toHex(hash.digest()), expected, `${JSON.stringify(text)} byte by byte`);
  }
});

test("FIPS 180-4: one million 'a', whole and in uneven pieces", () => {
  const expected = 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0';
  const million = new Uint8Array(1_000_000).fill(0x61);
  assert.equal(hexOf(million), expected);
  assert.equal(hashInPieces(million, generator(1), 1000), expected);
});

test('every length from 0 to 300, whole and in pieces, matches WebCrypto', async () => {
  const random = generator(2);
  for (let length = 0; length <= 300; length++) {
    const data = randomData(random, length);
    const expected = await webcrypto(data);
    assert.equal(hexOf(data), expected, `length ${length}`);
    assert.equal(hashInPieces(data, random, 70), expected, `length ${length} in pieces`);
  }
});

test('lengths around the padding and block boundaries, fed in every two-piece split', async () => {
  // 55 bytes is the most that fits one padded block; 56..63 need a second.
  const random = generator(3);
  for (const base of [0, 64, 128, 4096]) {
    for (const offset of [55, 56, 57, 63, 64, 65]) {
      const data = randomData(random, base + offset);
      const expected = await webcrypto(data);
      for (let cut = 0; cut <= data.length; cut += base > 64 ? 61 : 1) {
        const hash = new Sha256().update(data.subarray(0, cut)).update(data.subarray(cut));
        assert.equal(toHex(hash.digest()), expected, `length ${data.length} cut at ${cut}`);
      }
    }
  }
});

test('a few MB in random pieces, from unaligned views, matches WebCrypto', async () => {
  const random = generator(4);
  const backing = randomData(random, 3 * 1024 * 1024 + 77);
  const data = backing.subarray(13); // a view that does not start at its buffer's start
  const expected = await webcrypto(data);
  assert.equal(hexOf(data), expected);
  for (const maxPiece of [1, 100, 5000, 1 << 20]) {
    const part = maxPiece === 1 ? data.subarray(0, 20_000) : data;
    assert.equal(hashInPieces(part, random, maxPiece), await webcrypto(part), `pieces up to ${maxPiece}`);
  }
});

test('a message longer than 2^32 bits sets the high word of the length', () => {
  // 2^29 bytes is where 8·length stops fitting 32 bits: the only way to
  // check that half of the length field. Fed from one reused slice, so the
  // memory used stays small; checked against Node's (OpenSSL's) SHA-256.
  const slice = randomData(generator(5), 1 << 20);
  const ours = new Sha256();
  const reference = createHash('sha256');
  for (let i = 0; i < 512; i++) {
    ours.update(slice);
    reference.update(slice);
  }
  const tail = slice.subarray(0, 1000);
  ours.update(tail);
  reference.update(tail);
  assert.equal(toHex(ours.digest()), reference.digest('hex'));
});

test('digest() ends the hash; only Uint8Arrays are hashed', () => {
  const hash = new Sha256().update(utf8Encode('abc'));
  assert.equal(hash.digest().length, 32);
  assert.throws(() => hash.digest(), /digest\(\) called twice/);
  assert.throws(() => hash.update(utf8Encode('d')), /after digest/);
  assert.throws(() => new Sha256().update('abc'), TypeError);
  assert.throws(() => new Sha256().update(new ArrayBuffer(3)), TypeError);
});

test('sha256Blob equals the digest of the bytes, for any slice size', async () => {
  const random = generator(6);
  for (const length of [0, 1, 63, 64, 65, 1000, (1 << 20) + 5, 3 * (1 << 20)]) {
    const data = randomData(random, length);
    const expected = await webcrypto(data);
    for (const sliceSize of [1 << 20, 64, 100, 7]) {
      if (sliceSize < 1000 && length > 5000) continue; // slow, and nothing new
      const progress = [];
      const options = { sliceSize, onProgress: (done, total) => progress.push([done, total]) };
      assert.equal(await sha256Blob(new Blob([data]), options), expected, `${length}/${sliceSize}`);
      assert.equal(progress.length, Math.ceil(length / sliceSize));
      progress.forEach(([done, total], i) => {
        assert.equal(done, Math.min((i + 1) * sliceSize, length));
        assert.equal(total, length);
      });
    }
    assert.equal(await sha256Blob(new Blob([data])), expected, `${length}, default options`);
  }
});

test('sha256Blob reads in slices, never the whole Blob at once', async () => {
  const data = randomData(generator(7), 3 * (1 << 20) + 11);
  const blob = new RecordingBlob([data]);
  assert.equal(await sha256Blob(blob), await webcrypto(data));
  assert.deepEqual(blob.slices, [
    [0, 1 << 20], [1 << 20, 2 << 20], [2 << 20, 3 << 20], [3 << 20, 3 * (1 << 20) + 11],
  ]);
});

test('sha256Blob refuses a slice size that would never finish', async () => {
  for (const sliceSize of [0, -1, 1.5, Number.NaN, Infinity]) {
    await assert.rejects(sha256Blob(new Blob(['x']), { sliceSize }), RangeError);
  }
});
