// padding.js: Padmé and the streaming padding stripper (SPEC.md §6).

import assert from 'node:assert/strict';
import test from 'node:test';

import { EnvelopeError } from '../../portal/web/static/js/errors.js';
import { PaddingStripper, padme, paddedLength } from '../../portal/web/static/js/padding.js';
import { pattern } from './support.mjs';

// Padmé written the way the spec states it, with BigInt bit operations.
function padmeReference(length) {
  const L = BigInt(length);
  if (L < 2n) return length;
  const e = BigInt(L.toString(2).length - 1);
  const s = BigInt(e.toString(2).length);
  const mask = (1n << (e - s)) - 1n;
  return Number((L + mask) & ~mask);
}

test('padme matches the spec formula, including beyond 32 bits', () => {
  const known = [[1, 1], [2, 2], [9, 10], [17, 18], [33, 36], [100, 104], [1025, 1088], [65537, 67584], [131079, 135168]];
  for (const [L, expected] of known) assert.equal(padme(L), expected, `padme(${L})`);
  for (let L = 1; L < 5000; L++) assert.equal(padme(L), padmeReference(L));
  for (const L of [2 ** 31 + 1, 2 ** 32 + 12345, 2 ** 40 + 1, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER - 2 ** 40]) {
    assert.equal(padme(L), padmeReference(L), `padme(${L})`);
  }
  assert.throws(() => padme(0), RangeError);
  assert.throws(() => padme(1.5), RangeError);
});

test('paddedLength is max(padme(n + 1), 1024) and always leaves room for the marker', () => {
  assert.equal(paddedLength(0), 1024);
  assert.equal(paddedLength(1023), 1024);
  assert.equal(paddedLength(1024), 1088);
  assert.equal(paddedLength(65535), 65536);
  assert.equal(paddedLength(65536), 67584);
  for (let n = 0; n < 3000; n += 7) assert.ok(paddedLength(n) > n);
  assert.throws(() => paddedLength(-1), RangeError);
});

function pad(data) {
  const out = new Uint8Array(paddedLength(data.length));
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

function strip(chunks) {
  const stripper = new PaddingStripper();
  const pieces = [];
  for (const chunk of chunks) for (const piece of stripper.feed(chunk)) pieces.push(piece);
  const n = stripper.finish();
  const out = new Uint8Array(pieces.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  assert.equal(out.length, n);
  return out;
}

function split(bytes, size) {
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

test('the stripper recovers data ending in zeros, 0x80 and anything else, at any chunking', () => {
  const endings = [pattern(700), new Uint8Array(700), Uint8Array.of(...pattern(5), 0x80, 0, 0x80, 0, 0), new Uint8Array(0)];
  for (const data of endings) {
    for (const size of [1, 3, 64, 1024, 4096]) {
      assert.deepEqual(strip(split(pad(data), size)), data, `length ${data.length}, chunks of ${size}`);
    }
  }
  const big = new Uint8Array(70000); // zeros: all held back, then handed out in bounded pieces
  big[69999] = 7;
  const stripper = new PaddingStripper();
  assert.deepEqual([...stripper.feed(big.subarray(0, 69999))], []);
  const pieces = [...stripper.feed(pad(big).subarray(69999))];
  assert.ok(pieces.every((p) => p.length <= 65536));
  assert.equal(pieces.reduce((a, p) => a + p.length, 0), 70000);
  assert.equal(stripper.finish(), 70000);
});

test('§6.2: non-canonical padding is a payload failure', () => {
  const data = pattern(100);
  const good = pad(data);
  const marker81 = good.slice();
  marker81[100] = 0x81;
  const cases = {
    'one byte too long': Uint8Array.of(...good, 0),
    'one byte too short': good.subarray(0, good.length - 1),
    'marker not 0x80': marker81,
    'no marker, all zeros': new Uint8Array(1024),
    'shorter than 1024': pad(data).subarray(0, 128),
    'data and no padding': pattern(1024).map((b) => b || 1),
    'nothing at all': new Uint8Array(0),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    assert.throws(() => strip([bytes]), (e) => e instanceof EnvelopeError && e.failureClass === 'payload failure', name);
  }
});
