// scrub.js: which JPEG segments and PNG chunks survive, on small hand-built
// files, and that damaged files are refused. Real images, and byte-for-byte
// agreement with portal/web/scrub.py, are tested in
// tests/integration/test_scrub_parity.py.

import assert from 'node:assert/strict';
import test from 'node:test';

import { concatBytes, joinBytes, utf8Encode } from '../../portal/web/static/js/bytes.js';
import { ScrubError, scrubFile, scrubJpeg, scrubPng, sniff } from '../../portal/web/static/js/scrub.js';
import { RecordingBlob } from './support.mjs';

const bytes = (...values) => Uint8Array.from(values);
const ascii = (text) => utf8Encode(text);

/** A JPEG marker segment: FF, marker, 2-byte length (counting itself), payload. */
function segment(marker, payload) {
  const body = typeof payload === 'string' ? ascii(payload) : payload;
  const length = body.length + 2;
  return concatBytes(bytes(0xff, marker, length >> 8, length & 0xff), body);
}

const SOI = bytes(0xff, 0xd8);
const EOI = bytes(0xff, 0xd9);
const APP0 = segment(0xe0, 'JFIF\0\x01\x02\0\0\x01\0\x01\0\0');
const EXIF = segment(0xe1, 'Exif\0\0MM\0*GPS 59N 10E, Model: TestPhone');
const XMP = segment(0xe1, 'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Hidden</x:xmpmeta>');
const ICC = segment(0xe2, 'ICC_PROFILE\0\x01\x01serial 1234');
const IPTC = segment(0xed, 'Photoshop 3.0\x008BIM byline: reporter');
const ADOBE = segment(0xee, 'Adobe\0\x64\0\0\0\0\x01');
const COM = segment(0xfe, 'taken aboard MV Example');
const DQT = segment(0xdb, new Uint8Array(65).fill(1));
const SOF0 = segment(0xc0, bytes(8, 0, 8, 0, 8, 1, 1, 0x11, 0));
const DHT = segment(0xc4, bytes(0x00, 1, ...new Array(15).fill(0), 0x00));
const DRI = segment(0xdd, bytes(0, 4));
const SOS = segment(0xda, bytes(1, 1, 0x00, 0, 63, 0));
// Entropy-coded data with a stuffed FF00, restart markers and a fill byte
// before the next marker: none of them may end the scan.
const SCAN = bytes(0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd7, 0xff, 0x00, 0x78, 0xff);
const TRAILER = concatBytes(SOI, EXIF, bytes(0xff, 0xd9), ascii('more'));

/** A photo as a phone might write it, and what must be left of it. */
function sampleJpeg() {
  const input = joinBytes([
    SOI, APP0, EXIF, XMP, ICC, IPTC, ADOBE, COM, DQT, SOF0, DHT, DRI, SOS, SCAN, EOI, TRAILER,
  ]);
  const expected = joinBytes([SOI, APP0, ADOBE, DQT, SOF0, DHT, DRI, SOS, SCAN, EOI]);
  return { input, expected };
}

test('sniff goes by content, not by name or declared type', () => {
  assert.equal(sniff(sampleJpeg().input), 'image/jpeg');
  assert.equal(sniff(bytes(0xff, 0xd8)), 'image/jpeg');
  assert.equal(sniff(samplePng().input), 'image/png');
  assert.equal(sniff(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a)), null); // one byte short
  assert.equal(sniff(bytes(0xff)), null);
  assert.equal(sniff(new Uint8Array(0)), null);
  assert.equal(sniff(ascii('%PDF-1.7')), null);
  assert.equal(sniff(bytes(0xff, 0xd9, 0xff, 0xd8)), null);
});

test('JPEG: keeps SOI, APP0, APP14, tables, frame and scan, EOI; drops the rest', () => {
  const { input, expected } = sampleJpeg();
  const out = scrubJpeg(input);
  assert.deepEqual(out, expected);
  const text = Buffer.from(out).toString('latin1');
  for (const secret of ['Exif', 'GPS', 'TestPhone', 'xmpmeta', 'ICC_PROFILE', 'Photoshop', 'MV Example', 'more']) {
    assert.ok(!text.includes(secret), secret);
  }
});

test('JPEG: the result is a new array, not a view of the input', () => {
  const { input, expected } = sampleJpeg();
  const out = scrubJpeg(input);
  input.fill(0);
  assert.deepEqual(out, expected);
});

test('JPEG: every APPn is dropped unless it is canonical JFIF or Adobe, and so is COM', () => {
  for (let marker = 0xe0; marker <= 0xef; marker++) {
    const out = scrubJpeg(joinBytes([SOI, segment(marker, 'payload'), EOI]));
    assert.deepEqual(out, joinBytes([SOI, EOI]), marker.toString(16));
  }
  assert.deepEqual(scrubJpeg(joinBytes([SOI, COM, EOI])), joinBytes([SOI, EOI]));
});

test('JPEG: a JFIF thumbnail is removed (it can show the uncropped original), JFXX dropped', () => {
  // JFIF\0, version 1.01, units 1, density 72x72, then a 2x1 RGB thumbnail.
  const header = bytes(0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 1, 0, 72, 0, 72);
  const thumb = bytes(2, 1, 10, 20, 30, 40, 50, 60);
  const jfif = joinBytes([bytes(0xff, 0xe0, 0x00, 2 + header.length + thumb.length), header, thumb]);
  const jfxx = segment(0xe0, 'JFXX\u0000\u0010Exif-thumbnail');
  const canonical = joinBytes([bytes(0xff, 0xe0, 0x00, 0x10), header, bytes(0, 0)]);
  assert.deepEqual(scrubJpeg(joinBytes([SOI, jfif, jfxx, DQT, EOI])), joinBytes([SOI, canonical, DQT, EOI]));
});

test('JPEG: only the 12-byte Adobe record survives in APP14; reserved markers go', () => {
  const adobe = segment(0xee, 'Adobe\u0000\u0064\u0000\u0000\u0000\u0000\u0001');
  const longAdobe = segment(0xee, 'Adobe and a lot more text');
  const reserved = [bytes(0xff, 0xf0, 0x00, 0x04, 1, 2), bytes(0xff, 0x02, 0x00, 0x03, 9), bytes(0xff, 0xc8, 0x00, 0x02)];
  const dhp = bytes(0xff, 0xde, 0x00, 0x03, 7);
  const input = joinBytes([SOI, adobe, longAdobe, ...reserved, dhp, EOI]);
  assert.deepEqual(scrubJpeg(input), joinBytes([SOI, adobe, dhp, EOI]));
});

test('JPEG: progressive scans, with tables and comments between them', () => {
  const scan2 = bytes(0x9a, 0xff, 0x00, 0xbc, 0xff, 0xd1, 0x00);
  const input = joinBytes([SOI, DQT, SOF0, DHT, SOS, SCAN, DHT, COM, SOS, scan2, EXIF, SOS, SCAN, EOI]);
  const expected = joinBytes([SOI, DQT, SOF0, DHT, SOS, SCAN, DHT, SOS, scan2, SOS, SCAN, EOI]);
  assert.deepEqual(scrubJpeg(input), expected);
});

test('JPEG: standalone markers (TEM, RST) are kept; fill bytes between segments are not', () => {
  const tem = bytes(0xff, 0x01);
  const rst = bytes(0xff, 0xd3);
  const input = joinBytes([SOI, bytes(0xff, 0xff), tem, rst, bytes(0xff, 0xff, 0xff), DQT, SOS, SCAN, EOI]);
  assert.deepEqual(scrubJpeg(input), joinBytes([SOI, tem, rst, DQT, SOS, SCAN, EOI]));
});

test('JPEG: scan data that looks like a marker only after unstuffing is still data', () => {
  // FF 00 D9 is a stuffed FF followed by the byte D9, not an EOI.
  const scan = bytes(0xff, 0x00, 0xd9, 0xff, 0x00, 0xff, 0xd5, 0x00);
  assert.deepEqual(scrubJpeg(joinBytes([SOI, SOS, scan, EOI, EXIF])), joinBytes([SOI, SOS, scan, EOI]));
});

test('JPEG: every truncation before the end of EOI is refused; after it, the trailer is cut', () => {
  const { input, expected } = sampleJpeg();
  const eoiEnd = input.length - TRAILER.length;
  for (let cut = 2; cut < eoiEnd; cut++) {
    assert.throws(() => scrubJpeg(input.subarray(0, cut)), ScrubError, `cut at ${cut}`);
  }
  for (let cut = eoiEnd; cut <= input.length; cut++) {
    assert.deepEqual(scrubJpeg(input.subarray(0, cut)), expected, `cut at ${cut}`);
  }
});

test('JPEG: damaged segments are refused', () => {
  const refused = (parts, why) => assert.throws(() => scrubJpeg(joinBytes(parts)), ScrubError, why);
  refused([SOI, bytes(0xff, 0xe1, 0x00, 0x01), EOI], 'length 1 is less than the length field');
  refused([SOI, bytes(0xff, 0xe1, 0x00, 0x00), EOI], 'length 0');
  refused([SOI, bytes(0xff, 0xe1, 0x10, 0x00, 0x00), EOI], 'length past the end');
  refused([SOI, bytes(0x00), DQT, EOI], 'a stray byte where a marker belongs');
  refused([SOI, DQT, bytes(0x12, 0x34), EOI], 'garbage between segments');
  refused([SOI, SOS, bytes(0x12, 0x34, 0x56)], 'scan data without an end');
  refused([SOI, SOS, bytes(0x12, 0xff)], 'scan data ending in FF');
  refused([SOI, SOS, bytes(0x12, 0xff, 0x00)], 'scan data ending in stuffing');
  refused([SOI], 'nothing after SOI');
  refused([SOI, bytes(0xff)], 'a lone FF');
  assert.throws(() => scrubJpeg([0xff, 0xd8, 0xff, 0xd9]), TypeError);
});

// PNG: CRC-32 (ISO 3309) so that the hand-built files are valid PNGs.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data) {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk: 4-byte length, type, data, CRC over type and data. */
function chunk(type, payload = new Uint8Array(0)) {
  const body = concatBytes(ascii(type), typeof payload === 'string' ? ascii(payload) : payload);
  const out = new Uint8Array(body.length + 8);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length - 4);
  out.set(body, 4);
  view.setUint32(out.length - 4, crc32(body));
  return out;
}

const SIGNATURE = bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const IHDR = chunk('IHDR', bytes(0, 0, 0, 1, 0, 0, 0, 1, 8, 3, 0, 0, 0));
const PLTE = chunk('PLTE', bytes(255, 0, 0));
const IDAT1 = chunk('IDAT', bytes(0x78, 0x9c, 0x63, 0x60));
const IDAT2 = chunk('IDAT', bytes(0x00, 0x00, 0x00, 0x02, 0x00, 0x01));
const IEND = chunk('IEND');
const RENDERING = ['tRNS', 'gAMA', 'cHRM', 'sRGB', 'bKGD', 'pHYs', 'sBIT', 'acTL', 'fcTL', 'fdAT'].map(
  (type) => chunk(type, bytes(0, 1, 2, 3)),
);
const TEXT = [
  chunk('tEXt', 'Author\0Second Officer'),
  chunk('zTXt', 'Comment\0\0x\x9c'),
  chunk('iTXt', 'Location\0\0\0en\0\0N 59.9 E 10.7'),
  chunk('tIME', bytes(0x07, 0xea, 11, 21, 8, 0, 0)),
  chunk('eXIf', 'MM\0*GPS'),
  chunk('iCCP', 'camera profile\0\0x'),
  chunk('prVt', 'vendor serial 1234'),
];

function samplePng() {
  const input = joinBytes([
    SIGNATURE, IHDR, TEXT[0], ...RENDERING.slice(0, 5), PLTE, TEXT[1], TEXT[2], ...RENDERING.slice(5),
    TEXT[3], IDAT1, TEXT[4], IDAT2, TEXT[5], TEXT[6], IEND, TEXT[0], ascii('trailer'),
  ]);
  const expected = joinBytes([SIGNATURE, IHDR, ...RENDERING.slice(0, 5), PLTE, ...RENDERING.slice(5), IDAT1, IDAT2, IEND]);
  return { input, expected };
}

test('PNG: keeps critical and rendering chunks in order; drops text, tIME, eXIf, unknown', () => {
  const { input, expected } = samplePng();
  const out = scrubPng(input);
  assert.deepEqual(out, expected);
  const text = Buffer.from(out).toString('latin1');
  for (const secret of ['tEXt', 'zTXt', 'iTXt', 'tIME', 'eXIf', 'iCCP', 'prVt', 'Officer', 'GPS', 'trailer']) {
    assert.ok(!text.includes(secret), secret);
  }
});

test('PNG: every truncation before the end of IEND is refused; after it, the trailer is cut', () => {
  const { input, expected } = samplePng();
  const iendEnd = input.indexOf(0x49, input.length - TEXT[0].length - 7 - 8) + 8; // 'I' of IEND, + type and CRC
  assert.deepEqual(input.subarray(iendEnd - IEND.length, iendEnd), IEND);
  for (let cut = 8; cut < iendEnd; cut++) {
    assert.throws(() => scrubPng(input.subarray(0, cut)), ScrubError, `cut at ${cut}`);
  }
  for (let cut = iendEnd; cut <= input.length; cut += 3) {
    assert.deepEqual(scrubPng(input.subarray(0, cut)), expected, `cut at ${cut}`);
  }
});

test('PNG: a chunk length past the end is refused, even one that is negative as int32', () => {
  for (const length of [0xffffffff, 0x80000000, 0x7fffffff, 14]) {
    const bad = chunk('tEXt', 'ab');
    new DataView(bad.buffer).setUint32(0, length);
    assert.throws(() => scrubPng(joinBytes([SIGNATURE, IHDR, bad, IEND])), ScrubError, length.toString(16));
  }
  // Read as a signed int32, FFFFFFF8 would be -8 and step back onto an
  // all-zero length followed by IEND: parsed "successfully".
  const minusEight = bytes(0xff, 0xff, 0xff, 0xf8, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82);
  assert.throws(() => scrubPng(joinBytes([SIGNATURE, IHDR, minusEight])), ScrubError, 'negative step');
  assert.throws(() => scrubPng(joinBytes([SIGNATURE, IHDR, IDAT1])), ScrubError, 'no IEND');
  assert.throws(() => scrubPng(SIGNATURE), ScrubError, 'no chunks');
  assert.throws(() => scrubPng([0x89]), TypeError);
});

test('scrubFile cleans JPEG and PNG by content, whatever the declared type', async () => {
  const jpeg = sampleJpeg();
  const png = samplePng();
  for (const [data, declared, kind, expected] of [
    [jpeg.input, 'image/jpeg', 'image/jpeg', jpeg.expected],
    [jpeg.input, 'image/png', 'image/jpeg', jpeg.expected],
    [png.input, '', 'image/png', png.expected],
  ]) {
    const result = await scrubFile(new Blob([data], { type: declared }));
    assert.equal(result.mediaType, kind);
    assert.equal(result.scrubbed, true);
    assert.equal(result.blob.type, kind);
    assert.deepEqual(new Uint8Array(await result.blob.arrayBuffer()), expected);
  }
});

test('scrubFile passes other files through unchanged, without reading them whole', async () => {
  const pdf = new RecordingBlob([ascii('%PDF-1.7 ... Exif GPS')], { type: 'application/pdf' });
  const result = await scrubFile(pdf);
  assert.equal(result.blob, pdf);
  assert.equal(result.mediaType, 'application/pdf');
  assert.equal(result.scrubbed, false);
  const untyped = new Blob([bytes(0xff, 0xd9)]);
  assert.deepEqual(await scrubFile(untyped), { blob: untyped, mediaType: 'application/octet-stream', scrubbed: false });
  const empty = new Blob([]);
  assert.deepEqual(await scrubFile(empty), { blob: empty, mediaType: 'application/octet-stream', scrubbed: false });
});

test('scrubFile refuses a damaged JPEG or PNG', async () => {
  const jpeg = sampleJpeg().input;
  const png = samplePng().input;
  await assert.rejects(scrubFile(new Blob([jpeg.subarray(0, 100)], { type: 'image/jpeg' })), ScrubError);
  await assert.rejects(scrubFile(new Blob([png.subarray(0, 100)], { type: 'image/png' })), ScrubError);
});

test('ScrubError is an Error with its own name', () => {
  const error = new ScrubError('JPEG segment expected');
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'ScrubError');
  assert.equal(error.message, 'JPEG segment expected');
});
