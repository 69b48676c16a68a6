// Generate envelope-js.json with the browser implementation (portal/web/static/js/)
// under Node: `node tests/vectors/generate_js.mjs` from anywhere.
//
// Output is random (fresh keys and nonces), so regenerating changes the bytes
// but not what each case tests. Malformed envelopes are built from the
// low-level pieces of envelope.js with an explicit data key, so each negative
// case breaks exactly one rule and re-authenticates everything else; a
// "control" case built the same way but left intact shows the construction
// itself is sound. Python checks this file.

import { writeFileSync } from 'node:fs';

import { concatBytes, randomBytes, toBase64, toHex } from '../../portal/web/static/js/bytes.js';
import {
  CHUNK_SIZE, assembleHeader, deriveKeys, sealChunk, sealStanza, sealToBytes,
} from '../../portal/web/static/js/envelope.js';
import { generateEncryptionKeyPair } from '../../portal/web/static/js/keys.js';
import { paddedLength } from '../../portal/web/static/js/padding.js';

const OUTPUT = new URL('envelope-js.json', import.meta.url);

/** Deterministic plaintext: byte i is (31 i + 7) mod 256. */
function pattern(length) {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff);
}

/** Canonical padding (SPEC.md §6). */
function pad(data) {
  const out = new Uint8Array(paddedLength(data.length));
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

async function sha256Hex(bytes) {
  return toHex(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes)));
}

/** An envelope under construction with every secret in view. */
class Draft {
  constructor(recipients) {
    this.recipients = recipients;
    this.dataKey = randomBytes(32);
    this.salt = randomBytes(32);
  }

  async init() {
    ({ macKey: this.macKey, payloadKey: this.payloadKey } = await deriveKeys(this.dataKey, this.salt));
    this.stanzas = await Promise.all(this.recipients.map((r) => sealStanza(this.dataKey, r)));
    return this;
  }

  /** Header bytes with a correct MAC over whatever stanzas are given. */
  header(stanzas = this.stanzas, salt = this.salt) {
    return assembleHeader(salt, stanzas, this.macKey);
  }

  /** `padded` sealed as the spec's chunk sequence, one Uint8Array per chunk. */
  async chunks(padded) {
    const out = [];
    const count = Math.max(1, Math.ceil(padded.length / CHUNK_SIZE));
    for (let i = 0; i < count; i++) {
      const piece = padded.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
      out.push(await sealChunk(this.payloadKey, i, i === count - 1, piece));
    }
    return out;
  }

  sealChunk(counter, last, plaintext) {
    return sealChunk(this.payloadKey, counter, last, plaintext);
  }
}

const flip = (bytes, at, bit = 1) => {
  const out = bytes.slice();
  out[at] ^= bit;
  return out;
};

async function envelopeCases(alice, bob) {
  const both = [alice.publicKey, bob.publicKey];
  const cases = [];
  const add = async (name, spec, envelope, expect, plaintext) => {
    const c = { name, spec, identity: 'alice', envelope_b64: toBase64(envelope), expect };
    if (plaintext !== undefined) {
      c.plaintext_length = plaintext.length;
      c.plaintext_sha256 = await sha256Hex(plaintext);
    }
    cases.push(c);
  };

  for (const length of [0, 5, 1023, 65535, 65536, 131079]) {
    const data = pattern(length);
    await add(`${length} bytes to alice and bob`, '§3-§7', await sealToBytes(data, both), 'success', data);
  }
  await add('5 bytes to alice only', '§4', await sealToBytes(pattern(5), [alice.publicKey]), 'success', pattern(5));

  // §3: header structure.
  const good = await sealToBytes(pattern(100), both);
  await add('bad magic', '§3.1', concatBytes(new TextEncoder().encode('cso-envelope/v2\n'), good.subarray(16)), 'header failure');
  const draft = await new Draft(both).init();
  const data = pattern(100);
  const body = concatBytes(...(await draft.chunks(pad(data))));
  const header = await draft.header();
  await add('control: crafted envelope left intact', '§3-§7', concatBytes(header, body), 'success', data);
  await add('count 0', '§3.2', concatBytes(await draft.header([]), body), 'header failure');
  const strangers = await Promise.all(Array.from({ length: 63 }, () => generateEncryptionKeyPair()));
  const many = [...draft.stanzas];
  for (const s of strangers) many.push(await sealStanza(draft.dataKey, s.publicKey));
  await add('count 65 with 65 stanzas, MAC correct', '§3.2', concatBytes(await draft.header(many), body), 'header failure');
  await add('truncated header', '§3.3', good.subarray(0, 50 + 112 + 10), 'header failure');
  const twice = [draft.stanzas[0], await sealStanza(draft.dataKey, alice.publicKey), draft.stanzas[1]];
  await add('duplicated recipient, MAC recomputed', '§3.4', concatBytes(await draft.header(twice), body), 'header failure');

  // §4.2: no stanza opens.
  await add('no stanza for this identity', '§4.2', await sealToBytes(pattern(100), [bob.publicKey]), 'no match');
  const broken = { ...draft.stanzas[0], sealedKey: flip(draft.stanzas[0].sealedKey, 5) };
  await add("alice's sealed key corrupted, MAC recomputed", '§4.2', concatBytes(await draft.header([broken, draft.stanzas[1]]), body), 'no match');

  // §5.1: the MAC binds the whole header.
  await add('flipped MAC byte', '§5.1', concatBytes(flip(header, header.length - 1), body), 'MAC failure');
  await add('changed salt', '§5.1', concatBytes(flip(header, 16, 0x40), body), 'MAC failure');
  await add("bob's stanza altered", '§5.1', concatBytes(flip(header, 50 + 112 + 40), body), 'MAC failure');

  // §6: padding, re-encrypted correctly under the real payload key.
  const sealedPayload = async (padded) => concatBytes(header, ...(await draft.chunks(padded)));
  await add('padding one byte too long (wrong total length)', '§6.2', await sealedPayload(concatBytes(pad(data), new Uint8Array(1))), 'payload failure');
  const marker81 = pad(data);
  marker81[data.length] = 0x81;
  await add('last non-zero byte is not 0x80', '§6.2', await sealedPayload(marker81), 'payload failure');
  await add('padded to padme(n + 1) = 104, below the 1024 floor', '§6.2', await sealedPayload(pad(data).subarray(0, 104)), 'payload failure');

  // §7.1: chunk sizes.
  await add('final chunk sealed with empty plaintext', '§7.1', concatBytes(header, await draft.sealChunk(0, true, new Uint8Array(0))), 'payload failure');
  // The padding of 65535 bytes fills one chunk exactly: an empty chunk after
  // it would leave the padding intact, so only the §7.1 rule refuses it.
  const full = pad(pattern(65535));
  await add('control: 65535 bytes, one full chunk', '§7', concatBytes(header, ...(await draft.chunks(full))), 'success', pattern(65535));
  const emptyAfterFull = concatBytes(header, await draft.sealChunk(0, false, full), await draft.sealChunk(1, true, new Uint8Array(0)));
  await add('empty final chunk after a full chunk (padding otherwise canonical)', '§7.1', emptyAfterFull, 'payload failure');
  const p = pad(data);
  const shortFirst = concatBytes(header, await draft.sealChunk(0, false, p.subarray(0, 600)), await draft.sealChunk(1, true, p.subarray(600)));
  await add('short chunk that is not the last', '§7.1', shortFirst, 'payload failure');

  // §7.2: chunk order and the end of the stream. Three chunks where a middle
  // one is needed, two elsewhere to keep the file small.
  const three = pattern(2 * CHUNK_SIZE + 10);
  const c3 = await draft.chunks(pad(three));
  await add('three-chunk control', '§7', concatBytes(header, ...c3), 'success', three);
  await add('middle chunk dropped', '§7.2', concatBytes(header, c3[0], c3[2]), 'payload failure');
  const two = pattern(CHUNK_SIZE + 10);
  const c2 = await draft.chunks(pad(two));
  const whole = concatBytes(header, ...c2);
  await add('two-chunk control', '§7', whole, 'success', two);
  await add('chunks reordered', '§7.2', concatBytes(header, c2[1], c2[0]), 'payload failure');
  await add('chunk duplicated', '§7.2', concatBytes(header, c2[0], c2[0], c2[1]), 'payload failure');
  await add('last chunk removed', '§7.2', concatBytes(header, c2[0]), 'payload failure');
  await add('last chunk truncated by one byte', '§7.2', whole.subarray(0, whole.length - 1), 'payload failure');
  await add('one byte appended', '§7.2', concatBytes(whole, Uint8Array.of(0)), 'payload failure');
  const extra = await draft.sealChunk(2, true, concatBytes(Uint8Array.of(0x80), new Uint8Array(99)));
  await add('valid-looking chunk appended after the last', '§7.2', concatBytes(whole, extra), 'payload failure');
  const tail = pad(two).subarray(CHUNK_SIZE);
  await add('final chunk flagged not-last', '§7.2', concatBytes(header, c2[0], await draft.sealChunk(1, false, tail)), 'payload failure');
  await add('flipped payload byte', '§7.2', flip(whole, header.length + CHUNK_SIZE + 100, 0x20), 'payload failure');
  return cases;
}

async function main() {
  const alice = await generateEncryptionKeyPair();
  const bob = await generateEncryptionKeyPair();
  const document = {
    schema: 'cso-envelope-vectors/v1',
    source: 'tests/vectors/generate_js.mjs: the browser implementation in portal/web/static/js/, run under Node',
    rationale:
      'Browser-made envelopes that the Python implementation must open, and one malformed envelope per MUST of '
      + 'SPEC §3-§7 that it must refuse with the named failure class; malformed cases are built with the real '
      + 'data key and re-authenticate everything except the one rule under test, beside intact controls built '
      + 'the same way.',
    identities: { alice: toHex(alice.privateKey), bob: toHex(bob.privateKey) },
    cases: await envelopeCases(alice, bob),
  };
  writeFileSync(OUTPUT, `${JSON.stringify(document, null, 1)}\n`);
  console.log(`wrote ${document.cases.length} cases to ${OUTPUT.pathname}`);
}

await main();
