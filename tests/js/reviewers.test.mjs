// reviewers.js: encrypt only to a verified, current directory (SPEC.md §10.3).

import assert from 'node:assert/strict';
import test from 'node:test';

import { joinBytes, utf8Encode } from '../../portal/web/static/js/bytes.js';
import { openToBytes, readHeader } from '../../portal/web/static/js/envelope.js';
import { DirectoryError } from '../../portal/web/static/js/errors.js';
import { sealForReviewers } from '../../portal/web/static/js/reviewers.js';
import { loadVectors } from './support.mjs';

const vectors = loadVectors('directory-py.json');
const valid = vectors.cases.find((c) => c.expect === 'success');
const expired = vectors.cases.find((c) => c.name === 'expired');
const forged = vectors.cases.find((c) => c.name === 'signed by another key');
const report = utf8Encode('{"narrative": "4 robbers, anchor chain, 02:10 local"}');

async function collect(pieces) {
  const parts = [];
  for await (const piece of pieces) parts.push(piece);
  return joinBytes(parts);
}

test('§10.3 seals to exactly the directory keys, in order', async () => {
  const now = new Date(valid.now);
  const { directory, pieces } = await sealForReviewers(report, valid.directory, vectors.trusted_signer, now);
  const envelope = await collect(pieces);
  const header = readHeader(envelope);
  assert.deepEqual(header.stanzas.map((s) => s.recipient), directory.recipientKeys);
  assert.deepEqual(directory.reviewers.map((r) => r.token), valid.recipients);
  // Nobody outside the directory can open it.
  const outsider = new Uint8Array(32).fill(7);
  await assert.rejects(openToBytes(envelope, outsider), { failureClass: 'no match' });
});

for (const [name, bad, at] of [
  ['an expired directory', expired, expired?.now],
  ['a directory signed by another key', forged, forged?.now],
]) {
  test(`§10.3 refuses to encrypt with ${name}`, async () => {
    assert.ok(bad, 'vector present');
    await assert.rejects(
      sealForReviewers(report, bad.directory, vectors.trusted_signer, new Date(at)),
      DirectoryError,
    );
  });
}

test('§10.3 refuses to encrypt when the pinned key is another one', async () => {
  const other = vectors.cases.find((c) => c.expect === 'success');
  const wrongPin = 'csosig1' + 'a'.repeat(58);
  await assert.rejects(sealForReviewers(report, other.directory, wrongPin, new Date(other.now)));
});
