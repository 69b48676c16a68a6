// The envelope vector files: Python-made (envelope-py.json) and browser-made
// (envelope-js.json). Every case must open, or fail, with its `expect` class.

import assert from 'node:assert/strict';
import test from 'node:test';

import { fromBase64, fromHex } from '../../portal/web/static/js/bytes.js';
import { EnvelopeError } from '../../portal/web/static/js/errors.js';
import { openToBytes } from '../../portal/web/static/js/envelope.js';
import { loadVectors, sha256Hex } from './support.mjs';

const CLASSES = ['success', 'header failure', 'no match', 'MAC failure', 'payload failure'];

async function outcome(envelope, privateKey) {
  try {
    return { expect: 'success', plaintext: await openToBytes(envelope, privateKey) };
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    return { expect: error.failureClass };
  }
}

for (const name of ['envelope-py.json', 'envelope-js.json']) {
  const file = loadVectors(name);
  test(name, { skip: file === null && `${name} not generated yet` }, async (t) => {
    assert.equal(file.schema, 'cso-envelope-vectors/v1');
    assert.ok(file.source && file.rationale);
    // Every class appears, so a reader that always fails one way cannot pass.
    assert.deepEqual(CLASSES.filter((c) => !file.cases.some((k) => k.expect === c)), []);
    for (const c of file.cases) {
      await t.test(`${c.spec} ${c.name}`, async () => {
        assert.ok(CLASSES.includes(c.expect));
        const envelope = fromBase64(c.envelope_b64);
        const privateKey = fromHex(file.identities[c.identity]);
        for (const source of [envelope, new Blob([envelope])]) {
          const result = await outcome(source, privateKey);
          assert.equal(result.expect, c.expect);
          if (c.expect === 'success') {
            assert.equal(result.plaintext.length, c.plaintext_length);
            assert.equal(sha256Hex(result.plaintext), c.plaintext_sha256);
          }
        }
      });
    }
  });
}
