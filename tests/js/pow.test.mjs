// pow.js: the browser's proof of work must be the one portal/web/pow.py checks.

import assert from 'node:assert/strict';
import test from 'node:test';

import { ProofInAdvance, leadingZeroBits, solvePuzzle } from '../../portal/web/static/js/pow.js';

// Worked out by portal.web.pow.solve, which returns the first counter that works.
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

// A stand-in for GET /pow: puzzles expiring `lifetime` seconds after the
// portal's clock, which runs `skew` ms ahead of this one.
function puzzleServer({ lifetime = 3600, skew = 0 } = {}) {
  const asked = [];
  const fetch = async (url) => {
    asked.push(url);
    const now = Date.now() + skew;
    const puzzle = `p1.submit.${Math.floor(now / 1000) + lifetime}.0.${String(asked.length).padStart(32, '0')}.${'0'.repeat(32)}`;
    return new Response(JSON.stringify({ puzzle, bits: 0 }), {
      headers: { 'Content-Type': 'application/json', Date: new Date(now).toUTCString() },
    });
  };
  return { asked, fetch };
}

test('a proof solved in advance is handed over once, and the next one is fresh', async () => {
  const server = puzzleServer();
  const proofs = new ProofInAdvance('submit', { fetch: server.fetch }).start();
  assert.equal(server.asked.length, 1);
  assert.deepEqual(server.asked, ['/pow?for=submit']);
  const first = await proofs.take();
  const second = await proofs.take();
  assert.notEqual(first, second);
  assert.equal(server.asked.length, 2);
});

test('a proof about to expire on the portal\'s clock is replaced before it is handed over', async () => {
  const soon = puzzleServer({ lifetime: 60 });
  await assert.doesNotReject(new ProofInAdvance('submit', { fetch: soon.fetch }).take());
  assert.equal(soon.asked.length, 3, 'each fetched puzzle was too close to its end');
  // an hour of life on the portal's clock is an hour here, however wrong this clock is
  const skewed = puzzleServer({ skew: 5 * 3600 * 1000 });
  await new ProofInAdvance('submit', { fetch: skewed.fetch }).take();
  assert.equal(skewed.asked.length, 1);
});

test('a failed fetch is tried again by the next take', async () => {
  const server = puzzleServer();
  let down = true;
  const flaky = async (url) => {
    if (down) throw new TypeError('network down');
    return server.fetch(url);
  };
  const proofs = new ProofInAdvance('submit', { fetch: flaky }).start();
  await assert.rejects(proofs.take(), TypeError);
  down = false;
  assert.match(await proofs.take(), /^p1\.submit\./);
});
