// directory.js: verifying the signed key directory (SPEC.md §10), with
// directories signed here by a WebCrypto Ed25519 key, and Python's vectors.

import assert from 'node:assert/strict';
import test from 'node:test';

import { concatBytes, toBase64Url, utf8Encode } from '../../portal/web/static/js/bytes.js';
import { SIGNING_CONTEXT, verifyDirectory } from '../../portal/web/static/js/directory.js';
import { DirectoryError, KeyFormatError } from '../../portal/web/static/js/errors.js';
import { formatPublicKey, generateEncryptionKeyPair, parsePublicKey } from '../../portal/web/static/js/keys.js';
import { loadVectors } from './support.mjs';

const subtle = globalThis.crypto.subtle;

async function signer() {
  const pair = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const raw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, token: await formatPublicKey('csosig1', raw) };
}

const org = await signer();
const stranger = await signer();
const reviewerKeys = await Promise.all([1, 2, 3].map(() => generateEncryptionKeyPair()));
const tokens = await Promise.all(reviewerKeys.map((k) => formatPublicKey('csoenc1', k.publicKey)));
const NOW = new Date('2026-11-21T08:00:00Z');

function payloadWith(changes = {}) {
  return {
    schema: 'cso-key-directory-payload/v1',
    serial: 12,
    issued_at: '2026-11-21T07:00:00Z',
    expires_at: '2027-02-19T08:00:00Z',
    reviewers: tokens.map((t, i) => ({ label: `reviewer-${i + 1}`, encryption_key: t })),
    ...changes,
  };
}

/** The wire JSON of a directory over `payload` (an object, or raw bytes), signed by `by`. */
async function sign(payload, { by = org, signerToken = by.token, schema = 'cso-key-directory/v1' } = {}) {
  const bytes = payload instanceof Uint8Array ? payload : utf8Encode(JSON.stringify(payload));
  const signature = new Uint8Array(await subtle.sign('Ed25519', by.privateKey, concatBytes(SIGNING_CONTEXT, bytes)));
  return JSON.stringify({ schema, signer: signerToken, payload: toBase64Url(bytes), signature: toBase64Url(signature) }, null, 2);
}

async function refused(text, now = NOW) {
  await assert.rejects(verifyDirectory(text, org.token, now), DirectoryError);
}

test('a good directory verifies and lists exactly its keys, in order', async () => {
  const text = await sign(payloadWith());
  for (const input of [text, utf8Encode(text)]) {
    const d = await verifyDirectory(input, org.token, NOW);
    assert.equal(d.serial, 12);
    assert.equal(d.issuedAt.toISOString(), '2026-11-21T07:00:00.000Z');
    assert.equal(d.expiresAt.toISOString(), '2027-02-19T08:00:00.000Z');
    assert.deepEqual(d.reviewers.map((r) => r.label), ['reviewer-1', 'reviewer-2', 'reviewer-3']);
    assert.deepEqual(d.reviewers.map((r) => r.token), tokens);
    assert.deepEqual(d.recipientKeys, reviewerKeys.map((k) => k.publicKey));
  }
  // The pinned token may be pasted in upper case with white space around it.
  await verifyDirectory(text, ` ${org.token.toUpperCase()} `, NOW);
});

test('§10.1: the signer must be the pinned key and the signature must verify', async () => {
  await refused(await sign(payloadWith(), { by: stranger }));
  await refused(await sign(payloadWith(), { signerToken: stranger.token })); // claims another signer
  const doc = JSON.parse(await sign(payloadWith()));
  const otherPayload = toBase64Url(utf8Encode(JSON.stringify(payloadWith({ serial: 13 }))));
  await refused(JSON.stringify({ ...doc, payload: otherPayload }));
  const sig = doc.signature;
  await refused(JSON.stringify({ ...doc, signature: (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1) }));
  await refused(JSON.stringify({ ...doc, signature: sig.slice(0, -3) })); // 62 bytes
  await refused(JSON.stringify({ ...doc, signature: `${sig}=` })); // not canonical base64url
  await refused(JSON.stringify({ ...doc, signer: 'csosig1nonsense' }));
  await refused(JSON.stringify({ ...doc, schema: 'cso-key-directory/v2' }));
  await refused(await sign(payloadWith(), { by: org, signerToken: stranger.token }));
  for (const text of ['not json', '[]', 'null', `\ufeff${await sign(payloadWith())}`]) await refused(text);
  await refused(Uint8Array.of(0xff, 0xfe));
  await assert.rejects(verifyDirectory(await sign(payloadWith()), 'csosig1typo', NOW), KeyFormatError);
});

test('§10.1: malformed payloads are refused even when well signed', async () => {
  const entry = { label: 'reviewer-1', encryption_key: tokens[0] };
  const typo = tokens[0].slice(0, 30) + (tokens[0][30] === 'a' ? 'b' : 'a') + tokens[0].slice(31);
  const sigToken = await formatPublicKey('csosig1', (await parsePublicKey(tokens[0])).key);
  const many = await Promise.all(Array.from({ length: 65 }, async (_, i) => ({
    label: `r${i}`, encryption_key: await formatPublicKey('csoenc1', new Uint8Array(32).fill(i + 1)),
  })));
  const bad = {
    'wrong schema': payloadWith({ schema: 'cso-key-directory-payload/v2' }),
    'no schema': (({ schema, ...rest }) => rest)(payloadWith()),
    'serial not an integer': payloadWith({ serial: '12' }),
    'negative serial': payloadWith({ serial: -1 }),
    'time without Z': payloadWith({ expires_at: '2027-02-19T08:00:00' }),
    'time with fraction': payloadWith({ expires_at: '2027-02-19T08:00:00.000Z' }),
    'time with offset': payloadWith({ issued_at: '2026-11-21T07:00:00+00:00' }),
    'time with space': payloadWith({ issued_at: '2026-11-21 07:00:00Z' }),
    'lower-case t': payloadWith({ issued_at: '2026-11-21t07:00:00Z' }),
    'month 13': payloadWith({ expires_at: '2027-13-19T08:00:00Z' }),
    '30 February': payloadWith({ expires_at: '2027-02-30T08:00:00Z' }),
    'hour 24': payloadWith({ expires_at: '2027-02-19T24:00:00Z' }),
    'year 0000': payloadWith({ issued_at: '0000-11-21T07:00:00Z' }),
    'leap second': payloadWith({ expires_at: '2027-02-19T08:00:60Z' }),
    'non-ASCII digits': payloadWith({ issued_at: '٢٠٢٦-11-21T07:00:00Z' }),
    'time as number': payloadWith({ issued_at: 1790000000 }),
    'expires before issued': payloadWith({ expires_at: '2026-11-21T06:00:00Z' }),
    'no reviewers': payloadWith({ reviewers: [] }),
    '65 reviewers': payloadWith({ reviewers: many }),
    'reviewers not a list': payloadWith({ reviewers: entry }),
    'key listed twice': payloadWith({ reviewers: [entry, { ...entry, label: 'again' }] }),
    'mistyped key': payloadWith({ reviewers: [{ ...entry, encryption_key: typo }] }),
    'signing key as encryption key': payloadWith({ reviewers: [{ ...entry, encryption_key: sigToken }] }),
    'key not a string': payloadWith({ reviewers: [{ ...entry, encryption_key: 5 }] }),
    'extra field': payloadWith({ reviewers: [{ ...entry, email: 'x@example.org' }] }),
    'missing label': payloadWith({ reviewers: [{ encryption_key: tokens[0] }] }),
    'entry not an object': payloadWith({ reviewers: [tokens[0]] }),
    'label with a slash': payloadWith({ reviewers: [{ ...entry, label: 'a/b' }] }),
    'label starting with a space': payloadWith({ reviewers: [{ ...entry, label: ' ab' }] }),
    'label of 65 characters': payloadWith({ reviewers: [{ ...entry, label: 'a'.repeat(65) }] }),
    'label with a newline': payloadWith({ reviewers: [{ ...entry, label: 'ab\n' }] }),
    'empty label': payloadWith({ reviewers: [{ ...entry, label: '' }] }),
    'payload a list': [payloadWith()],
  };
  for (const [name, payload] of Object.entries(bad)) {
    await assert.rejects(verifyDirectory(await sign(payload), org.token, NOW), DirectoryError, name);
  }
  for (const raw of [utf8Encode('{not json'), Uint8Array.of(0x7b, 0xff, 0x7d)]) {
    await refused(await sign(raw));
  }
});

test('§10.1: limits that are allowed', async () => {
  const sixtyFour = await Promise.all(Array.from({ length: 64 }, async (_, i) => ({
    label: `Reviewer ${i}.x_y-z`, encryption_key: await formatPublicKey('csoenc1', new Uint8Array(32).fill(i + 1)),
  })));
  const d = await verifyDirectory(await sign(payloadWith({ reviewers: sixtyFour })), org.token, NOW);
  assert.equal(d.recipientKeys.length, 64);
  const longLabel = [{ label: `A${'b'.repeat(63)}`, encryption_key: tokens[0] }];
  await verifyDirectory(await sign(payloadWith({ reviewers: longLabel })), org.token, NOW);
  const leapDay = payloadWith({ issued_at: '2028-01-01T00:00:00Z', expires_at: '2028-02-29T23:59:59Z' });
  await verifyDirectory(await sign(leapDay), org.token, new Date('2028-02-01T00:00:00Z'));
});

test('§10.2: expiry and issue time against the clock', async () => {
  const text = await sign(payloadWith());
  const at = (iso) => new Date(iso);
  await refused(text, at('2027-02-19T08:00:00Z')); // exactly at expires_at
  await refused(text, at('2027-03-01T00:00:00Z'));
  await verifyDirectory(text, org.token, at('2027-02-19T07:59:59Z'));
  await verifyDirectory(text, org.token, at('2026-11-21T06:50:00Z')); // issued exactly 10 minutes ahead
  await refused(text, at('2026-11-21T06:49:59Z'));
  await assert.rejects(verifyDirectory(text, org.token, 'now'), TypeError);
});

const vectors = loadVectors('directory-py.json');

test('Python directory vectors (directory-py.json)', { skip: vectors === null && 'directory-py.json not generated yet' }, async (t) => {
  assert.equal(vectors.schema, 'cso-directory-vectors/v1');
  assert.ok(vectors.cases.some((c) => c.expect === 'success') && vectors.cases.some((c) => c.expect === 'invalid'));
  for (const c of vectors.cases) {
    await t.test(`${c.spec} ${c.name}`, async () => {
      const now = new Date(c.now);
      assert.ok(!Number.isNaN(now.getTime()));
      if (c.expect === 'success') {
        const d = await verifyDirectory(c.directory, vectors.trusted_signer, now);
        assert.equal(d.serial, c.serial);
        assert.deepEqual(d.reviewers.map((r) => r.token), c.recipients);
        // §10.1: the optional signing key is accepted and not handed on
        assert.ok(d.reviewers.every((r) => Object.keys(r).join() === 'label,encryptionKey,token'));
      } else {
        assert.equal(c.expect, 'invalid');
        await assert.rejects(verifyDirectory(c.directory, vectors.trusted_signer, now), DirectoryError);
      }
    });
  }
});

test('§10.2: a directory valid for more than 92 days is refused', async () => {
  await verifyDirectory(await sign(payloadWith({ expires_at: '2027-02-21T07:00:00Z' })), org.token, NOW);
  await refused(await sign(payloadWith({ expires_at: '2027-02-21T07:00:01Z' })));
  await refused(await sign(payloadWith({ expires_at: '2126-11-21T07:00:00Z' })));
});

test('§10.4: a serial written with a sign, fraction or exponent is refused, as Python refuses it', async () => {
  const plain = JSON.stringify(payloadWith({ serial: 7 }));
  assert.equal((await verifyDirectory(await sign(utf8Encode(plain)), org.token, NOW)).serial, 7);
  for (const written of ['7.0', '7e0', '0.7e1', '70e-1', '7E0', '-0']) {
    const odd = plain.replace('"serial":7,', `"serial":${written},`);
    assert.notEqual(odd, plain);
    assert.equal(typeof JSON.parse(odd).serial, 'number'); // JSON.parse alone would take it
    await refused(await sign(utf8Encode(odd)));
  }
  // digits inside strings are not numbers: a label may hold "1.0" or "1e3"
  const labels = payloadWith({ reviewers: [{ label: 'deck 1.0 -1e3', encryption_key: tokens[0] }] });
  assert.equal((await verifyDirectory(await sign(labels), org.token, NOW)).reviewers[0].label, 'deck 1.0 -1e3');
});

test('§10.4: a serial below one already seen is refused (rollback)', async () => {
  const text = await sign(payloadWith({ serial: 5 }));
  assert.equal((await verifyDirectory(text, org.token, NOW, { minSerial: 5 })).serial, 5);
  await assert.rejects(verifyDirectory(text, org.token, NOW, { minSerial: 9 }), DirectoryError);
  await refused(await sign(payloadWith({ serial: 2 ** 53 })));
});

test('§10.5: an added field, a long number or deep nesting is refused, signed or not', async () => {
  const good = payloadWith();
  const payloadText = JSON.stringify(good);
  const withField = (text, extra) => `${text.slice(0, text.lastIndexOf('}'))},"note":${extra}}`;
  const hostile = ['"hello"', '9'.repeat(5000), '12345678901234567', `${'['.repeat(3000)}${']'.repeat(3000)}`];
  for (const extra of hostile) {
    await refused(await sign(utf8Encode(withField(payloadText, extra))));
    await refused(withField(await sign(good), extra)); // the document around the payload
  }
  await refused(await sign(payloadWith({ reviewers: [[[[[]]]]] }))); // five deep
  await refused(await sign(utf8Encode(`${payloadText}${' '.repeat(64 * 1024)}`))); // over 64 KiB
  const { serial, ...noSerial } = good;
  assert.equal(serial, 12);
  await refused(await sign(noSerial)); // a field missing
  await verifyDirectory(await sign(payloadWith({ serial: 2 ** 53 - 1 })), org.token, NOW); // 16 digits
});

test('§10.1: an entry may add a signing key, which must be a csosig1 token listed once', async () => {
  const sigs = [await signer(), await signer()];
  const entries = tokens.map((t, i) => ({ label: `reviewer-${i + 1}`, encryption_key: t }));
  const signed = [{ ...entries[0], signing_key: sigs[0].token }, entries[1], { ...entries[2], signing_key: sigs[1].token }];
  const d = await verifyDirectory(await sign(payloadWith({ reviewers: signed })), org.token, NOW);
  assert.deepEqual(d.reviewers.map((r) => r.token), tokens);
  assert.deepEqual(d.recipientKeys, reviewerKeys.map((k) => k.publicKey));
  const bad = [
    [{ ...entries[0], signing_key: sigs[0].token }, { ...entries[1], signing_key: sigs[0].token }],
    [{ ...entries[0], signing_key: tokens[0] }],
    [{ ...entries[0], signing_key: `${sigs[0].token.slice(0, -1)}${sigs[0].token.endsWith('a') ? 'b' : 'a'}` }],
    [{ ...entries[0], signing_key: null }],
    [{ ...entries[0], signing_key: sigs[0].token, note: 'x' }],
    [{ label: 'reviewer-1', signing_key: sigs[0].token }],
  ];
  for (const reviewers of bad) await refused(await sign(payloadWith({ reviewers })));
});
