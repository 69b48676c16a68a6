// pow.js: the browser's proof of work must be the one portal/pow.py checks.

import assert from 'node:assert/strict';
import test from 'node:test';

import { leadingZeroBits, solvePuzzle } from '../../portal/static/js/pow.js';

// Worked out by portal.pow.solve, which returns the first counter that works.
const PUZZLE = 'p1.submit.1900000000.10.00112233445566778899aabbccddeeff.0123456789abcdef0123456789abcdef';

test('leading zero bits are counted across byte boundaries', () => {
  assert.equal(leadingZeroBits(Uint8Array.of(0x80, 0)), 0);
  assert.equal(leadingZeroBits(Uint8Array.of(0x01, 0xff)), 7);
  assert.equal(leadingZeroBits(Uint8Array.of(0, 0x20)), 10);
  assert.equal(leadingZeroBits(Uint8Array.of(0, 0, 0)), 24);
});

test('the browser finds the same first solution as the portal', async () => {
  assert.equal(await solvePuzzle(PUZZLE, 0), `${PUZZLE}:0`);
  assert.equal(await solvePuzzle(PUZZLE, 4, { batch: 7 }), `${PUZZLE}:55`);
  let reported = 0;
  const proof = await solvePuzzle(PUZZLE, 10, { batch: 32, onProgress: (n) => { reported = n; } });
  assert.equal(proof, `${PUZZLE}:116`);
  assert.equal(reported, 96); // three full batches before the one that holds 116
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(proof)));
  assert.ok(leadingZeroBits(digest) >= 10);
});

test('an impossible difficulty is refused, not attempted', async () => {
  await assert.rejects(solvePuzzle(PUZZLE, 33), RangeError);
  await assert.rejects(solvePuzzle(PUZZLE, 1.5), RangeError);
});
