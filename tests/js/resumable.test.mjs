// resumable.js against a real tus server on loopback (tus-server.mjs): every
// byte arrives once, resumption starts from what the server holds, the
// reporter hears when the link is down, and refusals come back in the
// portal's words.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import test from 'node:test';

import { ResumableUpload, UploadError, retryAfterMs } from '../../portal/web/static/js/resumable.js';
import { startTusServer } from './tus-server.mjs';

const SIZE = 256 * 1024;
const TIMING = {
  pollMs: 40, linkDownMs: 250, stallMs: 500, headTimeoutMs: 150, lockedWaitMs: 30, backoffMs: [20, 40, 80],
  longestWaitMs: 400, // longer than linkDownMs: a wait the portal asked for is not the link being down
};
const NO_ROOM = 'The portal has no room just now for more unfinished uploads. What has arrived is kept.';

async function withServer(body) {
  const server = await startTusServer();
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

function upload(server, bytes, events = []) {
  return new ResumableUpload(new Blob([bytes]), {
    endpoint: server.endpoint,
    metadata: { draft: '00112233445566778899aabbccddeeff', name: 'é' },
    timing: TIMING,
    onProgress: (n) => events.push(['progress', n]),
    onLink: (state) => events.push([state]),
    onWait: (words, ms) => events.push(['wait', words, ms]),
  });
}

function progressOnly(events) {
  return events.filter(([kind]) => kind === 'progress').map(([, n]) => n);
}

test('an upload is created with its draft and arrives whole', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const events = [];
    const sending = upload(server, bytes, events);
    const url = await sending.send();
    assert.ok(url.startsWith(`${server.endpoint}/`), 'the relative Location is resolved');
    assert.deepEqual(server.stored(url), bytes);
    assert.equal(server.log.metadata[0], 'draft MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY=,name w6k=');
    assert.deepEqual(server.log.patches, [0]);
    assert.equal(server.log.received, SIZE);
    assert.equal(sending.acknowledged, SIZE);
    assert.equal(progressOnly(events).at(-1), SIZE);
  });
});

test('a new upload is sent right after its 201, and a whole one is not asked about again', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const sending = upload(server, bytes);
    // created twice at once, as the page creates every upload of a report: one upload
    const [first, second] = await Promise.all([sending.create(), sending.create()]);
    assert.equal(first, second);
    assert.equal(server.log.created.length, 1);
    await sending.send();
    // a fresh upload holds nothing, and the PATCH's 204 says where the server stands
    assert.deepEqual(server.log.requests.slice(0, 2), ['POST', 'PATCH']);
    const asked = server.log.requests.length;
    await sending.send();
    assert.equal(server.log.requests.length, asked, 'nothing asked about an upload acknowledged whole');
    sending.recheck();
    await sending.send();
    assert.deepEqual(server.log.requests.slice(asked), ['HEAD'], 'a recheck asks the server');
    assert.deepEqual(server.stored(sending.url), bytes);
    assert.equal(server.log.received, SIZE);
  });
});

test('after a refusal the next send asks the server for its offset first', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const sending = upload(server, bytes);
    server.cutAfter(40_000);
    server.once('PATCH', 403, { error: 'Not now.' });
    await sending.create();
    // the first PATCH is cut; the next one is refused after the HEAD that follows the cut
    await assert.rejects(sending.send(), /Not now\./);
    const asked = server.log.requests.length;
    await sending.send();
    assert.equal(server.log.requests[asked], 'HEAD', 'the offset after a refusal is not assumed');
    assert.deepEqual(server.log.patches, [0, 40_000], 'resumed from the stored byte');
    assert.deepEqual(server.stored(sending.url), bytes);
    assert.equal(server.log.received, SIZE);
  });
});

test('a reset mid-upload resumes from the last byte the server stored', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    server.cutAfter(100_000);
    const url = await upload(server, bytes).send();
    assert.deepEqual(server.stored(url), bytes);
    assert.deepEqual(server.log.patches, [0, 100_000]);
    assert.equal(server.log.received, SIZE, 'no byte was sent twice');
  });
});

test('a PATCH whose connection died is aborted once HEAD answers, then resumed', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const events = [];
    server.hangAfter(64_000);
    const started = Date.now();
    const url = await upload(server, bytes, events).send();
    assert.deepEqual(server.stored(url), bytes);
    assert.deepEqual(server.log.patches, [0, 64_000]);
    assert.ok(Date.now() - started >= TIMING.stallMs, 'not aborted before the stall limit');
    assert.ok(progressOnly(events).includes(64_000), 'the stored bytes were acknowledged during the PATCH');
    assert.deepEqual(events.filter(([kind]) => kind !== 'progress'), [['down'], ['up']]);
  });
});

test('an outage is reported as the link being down, and sending goes on by itself', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const events = [];
    server.hangAfter(50_000, 1200);
    const url = await upload(server, bytes, events).send();
    assert.deepEqual(server.stored(url), bytes);
    const links = events.filter(([kind]) => kind !== 'progress').map(([kind]) => kind);
    assert.ok(links.length >= 2 && links.length % 2 === 0, `${links}`);
    assert.ok(links.every((kind, i) => kind === (i % 2 ? 'up' : 'down')), `${links}`);
    const down = events.findIndex(([kind]) => kind === 'down');
    assert.ok((progressOnly(events.slice(0, down)).at(-1) ?? 0) <= 50_000, 'no progress was invented');
    assert.equal(server.log.patches[0], 0);
    assert.ok(server.log.patches.slice(1).every((offset) => offset === 50_000), 'never from zero');
    assert.equal(server.log.received, SIZE);
  });
});

test('409 and 423 answers lead to a HEAD and a retry from the stored offset', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    server.once('PATCH', 423, { error: 'Another upload to this address is still open.' });
    server.once('PATCH', 409, { error: 'Offset mismatch.' });
    const url = await upload(server, bytes).send();
    assert.deepEqual(server.stored(url), bytes);
    assert.equal(server.log.received, SIZE);
  });
});

test('a proxy error or an unanswered HEAD is retried, not fatal', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    server.once('POST', 503, {});
    server.once('HEAD', 502, {});
    const url = await upload(server, bytes).send();
    assert.deepEqual(server.stored(url), bytes);
  });
});

test("a refusal ends the upload with the portal's own words", async () => {
  await withServer(async (server) => {
    server.once('POST', 413, { error: 'This report has more parts than it announced.' });
    await assert.rejects(upload(server, randomBytes(10)).send(), (error) => {
      assert.ok(error instanceof UploadError);
      assert.equal(error.status, 413);
      assert.equal(error.message, 'This report has more parts than it announced.');
      return true;
    });
    server.once('PATCH', 410, {});
    await assert.rejects(upload(server, randomBytes(10)).send(), (error) => {
      assert.ok(error instanceof UploadError);
      assert.equal(error.message, 'The portal refused the upload (410).');
      return true;
    });
  });
});

test('an upload created earlier is resumed, not created again', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    server.cutAfter(30_000);
    // The first attempt's connection is cut, and the page is left before it resumes.
    let patched = false;
    const leaving = async (url, init) => {
      if (init.method === 'PATCH') patched = true;
      if (patched && init.method === 'HEAD') throw new UploadError('the page was left', 0);
      return fetch(url, init);
    };
    const first = new ResumableUpload(new Blob([bytes]), { endpoint: server.endpoint, fetch: leaving, timing: TIMING });
    await assert.rejects(first.send(), /the page was left/);
    assert.ok(first.url);
    assert.equal(server.log.received, 30_000);
    const again = new ResumableUpload(new Blob([bytes]), { endpoint: server.endpoint, url: first.url, timing: TIMING });
    const asked = server.log.requests.length;
    await again.send();
    assert.equal(server.log.requests[asked], 'HEAD', 'an upload made elsewhere is asked about first');
    assert.equal(server.log.created.length, 1);
    assert.deepEqual(server.stored(first.url), bytes);
    assert.equal(server.log.received, SIZE);
  });
});

test('a PATCH answered 429 waits Retry-After (bounded), then resumes from what the portal kept', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const events = [];
    server.fullAfter(60_000, 60, NO_ROOM);
    const started = Date.now();
    const url = await upload(server, bytes, events).send();
    const waited = Date.now() - started;
    assert.deepEqual(server.stored(url), bytes);
    assert.deepEqual(server.log.patches, [0, 60_000], 'never from zero, never the kept bytes again');
    assert.equal(server.log.received, SIZE, 'no byte was sent twice');
    assert.ok(waited >= TIMING.longestWaitMs, `waited ${waited} ms`);
    assert.ok(waited < 60_000, 'Retry-After is bounded');
    const second = server.log.requests.lastIndexOf('PATCH');
    assert.equal(server.log.requests[second - 1], 'HEAD', 'the offset is asked for after the wait');
    // the portal's words while waiting, then "going on"; no link-down message for a wait asked for
    assert.deepEqual(events.filter(([kind]) => kind === 'wait'),
      [['wait', NO_ROOM, TIMING.longestWaitMs], ['wait', null, 0]]);
    assert.deepEqual(events.filter(([kind]) => kind === 'down' || kind === 'up'), []);
    assert.ok(progressOnly(events).includes(60_000), 'the kept bytes were acknowledged by HEAD');
  });
});

test('Retry-After is read as seconds, kept between a second and the longest wait', () => {
  const answer = (value) => new Response(null, { status: 429, headers: value === null ? {} : { 'Retry-After': value } });
  assert.equal(retryAfterMs(answer('60'), 120_000), 60_000);
  assert.equal(retryAfterMs(answer('3600'), 120_000), 120_000);
  assert.equal(retryAfterMs(answer('0'), 120_000), 1000);
  assert.equal(retryAfterMs(answer(null), 120_000), 60_000);
  assert.equal(retryAfterMs(answer('Wed, 21 Oct 2015 07:28:00 GMT'), 120_000), 60_000);
  assert.equal(retryAfterMs(answer('-5'), 120_000), 60_000);
});

test('a creation answered 423 or 429 is asked again after a wait, and made once', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    const events = [];
    server.once('POST', 423, { error: 'This report is being stored right now; ask again in a moment.' });
    server.once('POST', 429, { error: NO_ROOM }, { 'Retry-After': '1' });
    const url = await upload(server, bytes, events).send();
    assert.deepEqual(server.stored(url), bytes);
    assert.deepEqual(server.log.requests.slice(0, 4), ['POST', 'POST', 'POST', 'PATCH']);
    assert.equal(server.log.created.length, 1);
    assert.deepEqual(events.filter(([kind]) => kind === 'wait'),
      [['wait', NO_ROOM, TIMING.longestWaitMs], ['wait', null, 0]]);
  });
});

test('two PATCHes already sending to the draft (423) mean wait, HEAD and resume', async () => {
  await withServer(async (server) => {
    const bytes = randomBytes(SIZE);
    server.cutAfter(20_000);
    server.once('PATCH', 423, { error: 'Other parts of this report are being sent or stored right now.' });
    const url = await upload(server, bytes).send();
    assert.deepEqual(server.stored(url), bytes);
    assert.equal(server.log.received, SIZE);
    const patchAt = server.log.requests.lastIndexOf('PATCH');
    assert.equal(server.log.requests[patchAt - 1], 'HEAD');
  });
});

test('an upload whose draft lapsed (410 to HEAD) ends, for the caller to begin again', async () => {
  await withServer(async (server) => {
    const sending = upload(server, randomBytes(SIZE));
    server.cutAfter(10_000);
    server.once('HEAD', 410, {}); // an answer to HEAD has no body
    await assert.rejects(sending.send(), (error) => {
      assert.ok(error instanceof UploadError);
      assert.equal(error.status, 410);
      return true;
    });
    assert.deepEqual(server.log.patches, [0], 'no PATCH after the upload was gone');
  });
});
