// position.js reads positions exactly as portal/web/position.py does: both pass
// tests/vectors/positions.json (hand-written, checked by neither parser).

import assert from 'node:assert/strict';
import test from 'node:test';

import { parseCoordinate, parsePosition } from '../../portal/web/static/js/position.js';
import { loadVectors } from './support.mjs';

const vectors = loadVectors('positions.json');

test('the vector file is there and names its schema', () => {
  assert.ok(vectors, 'tests/vectors/positions.json is missing');
  assert.equal(vectors.schema, 'cso-position-vectors/v1');
  assert.ok(vectors.coordinates.length > 0 && vectors.positions.length > 0);
  const classes = new Set([...vectors.coordinates, ...vectors.positions].map((v) => v.expect));
  assert.deepEqual([...classes].sort(), ['invalid', 'success']);
});

// Each vector's verdict, as text to compare: "success <value>" or "error".
function verdict(vector, got) {
  const expected = vector.expect === 'success' ? `success ${JSON.stringify(vector.value)}` : 'error';
  const same = got === null ? 'error' : `success ${JSON.stringify(got)}`;
  // JSON.stringify writes -0 as 0: check the sign of zero separately (zero is never negative)
  const signs = [got].flat().every((v) => !Object.is(v, -0));
  return { expected, got: signs ? same : `${same} (with -0)` };
}

test('every coordinate vector', () => {
  const wrong = [];
  for (const vector of vectors.coordinates) {
    const { expected, got } = verdict(vector, parseCoordinate(vector.input, vector.axis));
    if (got !== expected) wrong.push(`${vector.name} ${JSON.stringify(vector.input)} ${vector.axis}: ${got}, not ${expected}`);
  }
  assert.deepEqual(wrong, []);
});

test('every whole-position vector', () => {
  const wrong = [];
  for (const vector of vectors.positions) {
    const { expected, got } = verdict(vector, parsePosition(vector.input));
    if (got !== expected) wrong.push(`${vector.name} ${JSON.stringify(vector.input)}: ${got}, not ${expected}`);
  }
  assert.deepEqual(wrong, []);
});

test('an unknown axis is a programming error, not a refusal', () => {
  assert.throws(() => parseCoordinate('1', 'altitude'), TypeError);
});
