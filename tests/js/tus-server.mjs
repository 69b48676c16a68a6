// A small tus 1.0.0 server on Node's http module, for testing resumable.js
// (not a test file itself). It stores each byte as it arrives, so HEAD
// reports what a PATCH has delivered so far, and it can misbehave on cue:
//   cutAfter(n, then)  the next PATCH's connection is destroyed after n more
//                  bytes (a reset), and then() is called;
//   fullAfter(n, seconds, words)  the next PATCH stores n more bytes, then is
//                  answered 429 with Retry-After: seconds and {"error": words}
//                  (the portal has no room; what arrived is kept);
//   hangAfter(n, outageMs)  the next PATCH stops being read after n more bytes and
//                  is never answered (a dead connection); other requests are
//                  answered, except for outageMs from then (the link is down);
//   once(method, status, body, headers, path)  the next such request (to a
//                  path starting with `path`, the tus endpoint unless given)
//                  is answered with status;
//   lapse(draft, status)  the draft and its uploads are gone: its uploads and
//                  creations in it are answered status (404 or 410);
//   partsLimit     creations beyond this many uploads in a draft get 413.
// It records every request's method (in the order they arrived), every
// PATCH's starting offset and every body byte received.
//
// It also plays the portal's begin and finish (portal/web/resumable.py), enough
// for report-send.js: GET /form-token, POST /submit/begin (form token,
// proof, parts, total → 201 {draft}) and POST /submit/finish (every named
// upload whole, in the draft → 200 {stored, parts}; repeated, or the same
// receipt and bytes in another draft: the same answer, nothing stored twice).
// expireToken() makes the form token stale (400 with renew_token).

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

export async function startTusServer({ prefix = '/files' } = {}) {
  const uploads = new Map();
  const drafts = new Map(); // id → {gone: null | status, finished: null | answer}
  const submissions = []; // {receipt, parts: [Buffer]}
  const log = {
    requests: [], patches: [], received: 0, created: [], metadata: [], paths: [], begins: [], finishes: [],
  };
  const plans = { cut: null, then: null, hang: null, hangOutageMs: 0, outageUntil: 0, once: [], full: null };
  const hanging = new Set();
  const state = { token: 'token-1', tokens: 1, partsLimit: Infinity };
  const LAPSED = 'Nothing arrived for this report within 30 minutes of its start, so the portal let it go.';

  function reply(res, status, headers = {}, body = '') {
    res.writeHead(status, { 'Tus-Resumable': '1.0.0', 'Cache-Control': 'no-store', ...headers });
    res.end(body);
  }

  function json(res, status, body, headers = {}) {
    reply(res, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(body));
  }

  function scripted(req, res, pathname) {
    const index = plans.once.findIndex((p) => p.method === req.method && pathname.startsWith(p.path));
    if (index < 0) return false;
    const [{ status, body, headers }] = plans.once.splice(index, 1);
    json(res, status, body ?? {}, headers);
    return true;
  }

  async function formOf(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    return new Response(Buffer.concat(chunks), { headers: { 'Content-Type': req.headers['content-type'] } })
      .formData();
  }

  async function portal(req, res, pathname) {
    if (req.method === 'GET' && pathname === '/form-token') return json(res, 200, { csrf_token: state.token });
    if (req.method !== 'POST') return json(res, 405, { error: 'No.' });
    const form = await formOf(req);
    if (form.get('csrf_token') !== state.token) {
      return json(res, 400, { error: 'The form has expired.', renew_token: true });
    }
    if (pathname === '/submit/begin') {
      log.begins.push({ proof: form.get('proof'), parts: form.get('parts'), total: form.get('total') });
      if (!form.get('proof')) return json(res, 400, { error: 'No proof: send again.' });
      const id = randomBytes(16).toString('hex');
      drafts.set(id, { gone: null, finished: null });
      return json(res, 201, { draft: id, expires: '2030-01-02' });
    }
    if (pathname === '/submit/finish') {
      const draft = drafts.get(form.get('draft'));
      const named = [...form.getAll('report'), ...form.getAll('attachment')];
      log.finishes.push({ draft: form.get('draft'), named });
      if (!draft) return json(res, 404, { error: 'The portal does not know this draft.' });
      if (draft.gone) return json(res, draft.gone, { error: LAPSED });
      if (draft.finished) return json(res, 200, draft.finished);
      const parts = named.map((id) => uploads.get(id));
      if (parts.some((part) => !part || part.draft !== form.get('draft'))) {
        return json(res, 400, { error: 'An upload named here is not part of this draft.' });
      }
      if (parts.some((part) => part.length !== part.size)) return json(res, 409, { error: 'Not whole yet.' });
      const receipt = `${form.get('receipt_locator')} ${form.get('receipt_token')}`;
      const bytes = parts.map((part) => Buffer.concat(part.chunks));
      const same = submissions.some((s) => s.receipt === receipt && s.parts.length === bytes.length &&
        s.parts.every((b, i) => b.equals(bytes[i])));
      if (!same) submissions.push({ receipt, parts: bytes });
      draft.finished = { stored: true, parts: parts.length };
      return json(res, 200, draft.finished);
    }
    return json(res, 404, { error: 'No such page.' });
  }

  function patch(req, res, upload) {
    const offset = Number(req.headers['upload-offset']);
    log.patches.push(offset);
    if (req.headers['content-type'] !== 'application/offset+octet-stream') return reply(res, 415);
    if (offset !== upload.length) return reply(res, 409);
    const cut = plans.cut;
    const then = plans.then;
    const hang = plans.hang;
    const outageMs = plans.hangOutageMs;
    const full = plans.full;
    plans.cut = plans.hang = plans.then = plans.full = null;
    let taken = 0;
    let stopped = false;
    let refused = false;
    req.on('data', (chunk) => {
      if (stopped) return;
      let piece = chunk;
      const limit = cut ?? hang ?? full?.after ?? null;
      if (limit !== null && taken + piece.length >= limit) piece = piece.subarray(0, limit - taken);
      upload.chunks.push(Buffer.from(piece));
      upload.length += piece.length;
      taken += piece.length;
      log.received += piece.length;
      if (cut !== null && taken >= cut) {
        stopped = true;
        req.socket.destroy();
        then?.();
      } else if (full !== null && taken >= full.after) {
        stopped = true; // the rest is read and thrown away; the answer comes at the end
        refused = true;
      } else if (hang !== null && taken >= hang) {
        stopped = true;
        plans.outageUntil = Date.now() + outageMs;
        req.pause();
        hanging.add(req.socket);
      }
    });
    req.on('end', () => {
      if (refused) json(res, 429, { error: full.words }, { 'Retry-After': String(full.seconds) });
      else if (!stopped) reply(res, 204, { 'Upload-Offset': String(upload.length) });
    });
  }

  function draftOf(metadata) {
    const pair = metadata.split(',').find((p) => p.startsWith('draft '));
    return pair ? Buffer.from(pair.slice('draft '.length), 'base64').toString() : null;
  }

  function create(req, res) {
    const metadata = req.headers['upload-metadata'] ?? '';
    const draftId = draftOf(metadata);
    const draft = drafts.get(draftId);
    if (draft?.gone) return json(res, draft.gone, { error: LAPSED });
    const inDraft = [...uploads.values()].filter((u) => u.draft === draftId).length;
    if (draftId !== null && inDraft >= state.partsLimit) {
      return json(res, 413, { error: `A report has at most ${state.partsLimit} parts.` });
    }
    const id = randomBytes(16).toString('hex');
    const length = Number(req.headers['upload-length']);
    uploads.set(id, { size: length, length: 0, chunks: [], draft: draftId });
    log.created.push(id);
    log.metadata.push(metadata);
    return reply(res, 201, { Location: `${prefix}/${id}` });
  }

  const server = createServer((req, res) => {
    log.requests.push(req.method);
    if (Date.now() < plans.outageUntil) {
      hanging.add(req.socket);
      return; // never answered
    }
    const url = new URL(req.url, 'http://localhost');
    log.paths.push(`${req.method} ${url.pathname}`);
    if (scripted(req, res, url.pathname)) return;
    if (!url.pathname.startsWith(prefix)) {
      portal(req, res, url.pathname).catch(() => json(res, 400, { error: 'Malformed.' }));
      return;
    }
    if (req.method === 'POST' && url.pathname === prefix) return create(req, res);
    const upload = uploads.get(url.pathname.slice(`${prefix}/`.length));
    if (!upload) return reply(res, 404, { 'Content-Type': 'application/json' }, '{"error": "No such upload."}');
    const gone = drafts.get(upload.draft)?.gone;
    if (gone) return json(res, gone, { error: LAPSED });
    if (req.method === 'HEAD') {
      return reply(res, 200, { 'Upload-Offset': String(upload.length), 'Upload-Length': String(upload.size) });
    }
    if (req.method === 'PATCH') return patch(req, res, upload);
    return reply(res, 405);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  return {
    base,
    endpoint: `${base}${prefix}`,
    log,
    submissions,
    drafts: () => [...drafts.keys()],
    cutAfter(n, then = null) {
      plans.cut = n;
      plans.then = then;
    },
    fullAfter(n, seconds, words) { plans.full = { after: n, seconds, words }; },
    lapse(draft, status = 410) { drafts.get(draft).gone = status; },
    set partsLimit(n) { state.partsLimit = n; },
    expireToken() { state.token = `token-${++state.tokens}`; },
    get token() { return state.token; },
    hangAfter(n, outageMs = 0) {
      plans.hang = n;
      plans.hangOutageMs = outageMs;
    },
    once(method, status, body, headers = {}, path = prefix) {
      plans.once.push({ method, status, body, headers, path });
    },
    /** The bytes stored for the upload at `url`. */
    stored(url) {
      return Buffer.concat(uploads.get(new URL(url).pathname.slice(`${prefix}/`.length)).chunks);
    },
    async close() {
      for (const socket of hanging) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
