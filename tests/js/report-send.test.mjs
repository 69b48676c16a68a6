// report-send.js's three steps (begin, tus uploads, finish) against the small
// portal in tus-server.mjs: answers that mean "not now" are waited out, a
// draft the portal let go is begun again by itself with the same sealed
// envelopes, a report is stored once however often finish is asked, and
// every refusal leaves the attempt ready to go on.
//
// The attempt comes in already sealed (sealing is tested elsewhere): what is
// tested here is what happens to those bytes on the way.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import test from 'node:test';

import { deriveReceiptKeys, formatReceipt, generateReceipt } from '../../portal/web/static/js/receipt.js';
import { Attempt, Refused, sendReport } from '../../portal/web/static/js/report-send.js';
import { startTusServer } from './tus-server.mjs';

const TIMING = {
  pollMs: 40, linkDownMs: 250, stallMs: 500, headTimeoutMs: 300, lockedWaitMs: 30, backoffMs: [20, 40, 80],
  longestWaitMs: 100,
};
const SIZES = [120_000, 40_000];
const LAPSED = /no longer held this unfinished report.*sent again from the start.*Nothing you typed is lost/;

// The page's fetch resolves URLs against its own address; Node's against none.
const nodeFetch = globalThis.fetch;

async function withPortal(body) {
  const server = await startTusServer({ prefix: '/uploads' });
  globalThis.location = { href: `${server.base}/` };
  globalThis.fetch = (url, init) => nodeFetch(new URL(url, server.base), init);
  try {
    await body(server);
  } finally {
    globalThis.fetch = nodeFetch;
    delete globalThis.location;
    await server.close();
  }
}

async function sealedAttempt() {
  const attempt = new Attempt('key');
  attempt.receipt = generateReceipt();
  attempt.keys = await deriveReceiptKeys(attempt.receipt, 1000);
  attempt.envelopes = SIZES.map((size) => new Blob([randomBytes(size)]));
  return attempt;
}

function page(server) {
  const csrf = { value: server.token };
  const said = [];
  const links = [];
  let proofs = 0;
  return {
    said,
    links,
    csrf,
    form: { elements: { namedItem: (name) => (name === 'csrf_token' ? csrf : null) } },
    fields: {},
    files: [],
    proofs: { take: async () => `proof-${++proofs}` },
    say: (text) => said.push(text),
    onLink: (state) => links.push(state),
    progress: () => {},
    timing: TIMING,
  };
}

/** The bytes the portal holds for each upload the attempt's last finish named, in order. */
function storedParts(server) {
  return server.submissions.at(-1).parts;
}

async function sameAsSealed(server, attempt) {
  const sealed = await Promise.all(attempt.envelopes.map(async (blob) => Buffer.from(await blob.arrayBuffer())));
  assert.equal(server.submissions.length, 1, 'stored once');
  assert.deepEqual(storedParts(server), sealed, 'the sealed envelopes, byte for byte');
}

test('a report is begun, sent and finished, and its receipt shown', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    assert.equal(await sendReport(attempt, view), formatReceipt(attempt.receipt));
    await sameAsSealed(server, attempt);
    assert.equal(server.log.begins.length, 1);
    assert.deepEqual(server.log.begins[0], { proof: 'proof-1', parts: '2', total: String(120_000 + 40_000) });
  });
});

test('a draft that lapses mid-upload is begun again and the same envelopes sent from zero', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const envelopes = attempt.envelopes;
    const view = page(server);
    server.cutAfter(50_000, () => server.lapse(server.drafts()[0], 410));
    await sendReport(attempt, view);
    assert.equal(attempt.envelopes, envelopes, 'nothing sealed again');
    assert.deepEqual(server.log.begins.map((b) => b.proof), ['proof-1', 'proof-2'], 'a fresh proof');
    const [first, second] = server.drafts();
    assert.equal(server.log.finishes.length, 1);
    assert.equal(server.log.finishes[0].draft, second, 'finished in the new draft');
    assert.notEqual(first, second);
    await sameAsSealed(server, attempt);
    assert.ok(view.said.some((text) => LAPSED.test(text)), view.said.join('\n'));
    // the status keeps saying why until the report is stored
    assert.match(view.said.at(-1), LAPSED);
  });
});

test('a creation answered 404 (the draft is unknown) begins a new draft', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    server.once('POST', 404, { error: 'The portal does not know this draft.' });
    await sendReport(attempt, view);
    assert.equal(server.log.begins.length, 2);
    await sameAsSealed(server, attempt);
    assert.ok(view.said.some((text) => LAPSED.test(text)));
  });
});

test('a finish answered 410 begins a new draft; the report is stored once', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    server.once('POST', 410, { error: 'This upload has expired.' }, {}, '/submit/finish');
    await sendReport(attempt, view);
    assert.equal(server.log.begins.length, 2);
    assert.equal(server.log.paths.filter((p) => p === 'POST /submit/finish').length, 2);
    assert.equal(server.log.finishes.at(-1).draft, server.drafts()[1]);
    await sameAsSealed(server, attempt);
  });
});

test('drafts lapsing again and again end, after a few, with the portal\'s words and everything kept', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    // both creations of each draft run at once, and each is answered 410
    for (let i = 0; i < 4 * SIZES.length; i++) server.once('POST', 410, { error: 'Nothing arrived for this report.' });
    await assert.rejects(sendReport(attempt, view), (error) => {
      assert.ok(error instanceof Refused);
      assert.equal(error.status, 410);
      assert.equal(error.message, 'Nothing arrived for this report.');
      return true;
    });
    assert.equal(server.log.begins.length, 4, 'the first draft and three more');
    assert.equal(attempt.draft, null, 'the next press begins a new draft');
    assert.ok(attempt.envelopes && attempt.receipt, 'the sealed report is kept');
    // pressing send again goes on with the same envelopes
    await sendReport(attempt, view);
    await sameAsSealed(server, attempt);
  });
});

test('a creation answered 413 (too many parts) begins a new draft once; twice is shown', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    server.once('POST', 413, { error: 'A report has at most 11 parts.' });
    await sendReport(attempt, view);
    assert.equal(server.log.begins.length, 2);
    await sameAsSealed(server, attempt);
    assert.ok(view.said.some((text) => /more parts for this report than it has/.test(text)));
  });
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    server.partsLimit = 0;
    await assert.rejects(sendReport(attempt, view), (error) => {
      assert.ok(error instanceof Refused);
      assert.equal(error.status, 413);
      assert.equal(error.message, 'A report has at most 0 parts.');
      return true;
    });
    assert.equal(server.log.begins.length, 2, 'one new draft, not more');
    assert.equal(server.submissions.length, 0);
    assert.ok(attempt.envelopes && attempt.receipt, 'the sealed report is kept');
  });
});

test('a finish answered 423 is asked again until it is stored, once', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    const busy = { error: 'Nothing was stored yet: a part of this report is still arriving.' };
    server.once('POST', 423, busy, {}, '/submit/finish');
    server.once('POST', 423, busy, {}, '/submit/finish');
    assert.equal(await sendReport(attempt, view), formatReceipt(attempt.receipt));
    assert.equal(server.log.paths.filter((p) => p === 'POST /submit/finish').length, 3);
    assert.equal(server.log.begins.length, 1, 'no new draft for a busy one');
    await sameAsSealed(server, attempt);
    assert.ok(view.said.some((text) => /still writing part of the report/.test(text)));
  });
});

test('a PATCH answered 429 shows the portal\'s words, waits, and goes on from the kept bytes', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    const words = 'The portal has no room just now for more unfinished uploads. What has arrived is kept.';
    server.fullAfter(30_000, 60, words);
    await sendReport(attempt, view);
    assert.ok(view.said.includes(`${words} Sending goes on by itself in about a second: keep this page open.`),
      view.said.join('\n'));
    assert.equal(server.log.begins.length, 1);
    assert.equal(server.log.patches[1], 30_000, 'resumed, not restarted');
    assert.equal(server.log.received, 120_000 + 40_000, 'no byte sent twice');
    await sameAsSealed(server, attempt);
  });
});

test('an expired form token is renewed in place, and a finish repeated stores nothing more', async () => {
  await withPortal(async (server) => {
    const attempt = await sealedAttempt();
    const view = page(server);
    server.expireToken();
    await sendReport(attempt, view);
    assert.equal(view.csrf.value, server.token);
    // the answer was lost: the browser asks again, and the portal gives the same one
    await sendReport(attempt, view);
    assert.equal(server.log.finishes.length, 2);
    await sameAsSealed(server, attempt);
  });
});
