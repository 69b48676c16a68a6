// Shared helpers for the browser-crypto tests (not a test file itself).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

import { EnvelopeError } from '../../portal/web/static/js/errors.js';

export const VECTORS = new URL('../vectors/', import.meta.url);

/** A vector file parsed, or null if it does not exist (yet). */
export function loadVectors(name) {
  const url = new URL(name, VECTORS);
  return existsSync(url) ? JSON.parse(readFileSync(url, 'utf8')) : null;
}

/** Deterministic plaintext of the vector generators: byte i is (31 i + 7) mod 256. */
export function pattern(length) {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

/** SHA-256 with Node's own implementation, independent of the code under test. */
export function sha256Hex(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Await `promise` and check it rejects with EnvelopeError of class `failureClass`. */
export async function rejectsWithClass(promise, failureClass) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof EnvelopeError, `expected EnvelopeError, got ${error}`);
    assert.equal(error.failureClass, failureClass);
    return true;
  });
}

/** A Blob that records every slice taken and refuses to be read whole. */
export class RecordingBlob extends Blob {
  slices = [];

  slice(start, end) {
    this.slices.push([start, end]);
    return super.slice(start, end);
  }

  arrayBuffer() {
    throw new Error('the whole Blob was read at once');
  }
}
