// Removing identifying metadata from photos in the browser, before they are
// encrypted: the same rules as portal/web/scrub.py, byte for byte, so that a
// photo cleaned here and one cleaned on the server come out identical
// (tests/integration/test_scrub_parity.py holds the two to that).
//
// Phone photos carry GPS positions, times, device models and serial numbers.
// Only what is needed to show the picture is kept; the pixels are copied, not
// re-encoded, so nothing is lost and nothing is guessed.
//
// * JPEG: keep SOI, the segments decoding needs (frames, tables, scans), a
//   JFIF APP0 rewritten without its thumbnail, an Adobe APP14 record, and
//   EOI. Drop everything else: EXIF and XMP in APP1, ICC and MPF in APP2,
//   IPTC in APP13, JFXX thumbnails, comments, reserved markers, and anything
//   after EOI (some phones append whole extra images there).
// * PNG: keep the critical chunks and a short list of rendering ones. Drop
//   text (tEXt, zTXt, iTXt), tIME, eXIf and anything unknown; stop at IEND.
//
// A file that claims to be JPEG or PNG but does not parse is refused
// (ScrubError) rather than passed on half-cleaned. Other types pass through
// unchanged and are marked as not scrubbed, so that the reviewer side knows.
// A file of more segments or chunks than maxPieces allows is refused too:
// the server scrubs before it spends anything on a request, so it bounds
// the work, and both sides refuse the same files.

import { joinBytes } from './bytes.js';

const JPEG_SOI = Uint8Array.of(0xff, 0xd8);
const JPEG_EOI = Uint8Array.of(0xff, 0xd9);
const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
// The markers decoding needs: SOF0-3, 5-7, 9-11, 13-15; DHT; DAC; SOS; DQT;
// DNL; DRI; DHP; EXP. Anything else (reserved, JPG, other APPn, COM) goes.
const JPEG_DECODING = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf,
  0xc4, 0xcc, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
]);
const JFIF = Uint8Array.of(0x4a, 0x46, 0x49, 0x46, 0x00); // "JFIF\0"
const ADOBE = Uint8Array.of(0x41, 0x64, 0x6f, 0x62, 0x65); // "Adobe"
const JPEG_SOS = 0xda;
const JPEG_EOI_MARKER = 0xd9;
const STANDALONE = new Set([0x01, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7]); // TEM, RST0-7: no length
const PNG_KEEP = new Set([
  'IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'gAMA', 'cHRM', 'sRGB',
  'bKGD', 'pHYs', 'sBIT', 'acTL', 'fcTL', 'fdAT',
]);

// Pieces any file may have, and one more for each this many bytes of it.
const PIECES_FLOOR = 1024;
const BYTES_PER_PIECE = 512;

/** The most JPEG segments or PNG chunks a file of `length` bytes may have. */
function maxPieces(length) {
  return PIECES_FLOOR + Math.floor(length / BYTES_PER_PIECE);
}

/** The file looks like an image of a known type but is damaged. */
export class ScrubError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ScrubError';
  }
}

function asBytes(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  return bytes;
}

function startsWith(data, prefix) {
  if (data.length < prefix.length) return false;
  return prefix.every((b, i) => data[i] === b);
}

/** 'image/jpeg' or 'image/png' from the content, else null. */
export function sniff(bytes) {
  const data = asBytes(bytes);
  if (startsWith(data, JPEG_SOI)) return 'image/jpeg';
  if (startsWith(data, PNG_SIGNATURE)) return 'image/png';
  return null;
}

/** Index of the first marker after entropy-coded data starting at `start`. */
function scanEnd(data, start) {
  let i = start;
  for (;;) {
    i = data.indexOf(0xff, i);
    if (i < 0 || i + 1 >= data.length) throw new ScrubError('JPEG scan data runs past the end');
    const following = data[i + 1];
    if (following === 0x00 || (following >= 0xd0 && following <= 0xd7) || following === 0xff) {
      i += following === 0xff ? 1 : 2; // stuffed byte, restart marker, fill
      continue;
    }
    return i;
  }
}

/**
 * What of one JPEG segment (marker, length, payload) to keep, or null.
 * APP0 survives only as a canonical JFIF header without its thumbnail (a
 * thumbnail can show the uncropped original); APP14 only as the 12-byte
 * Adobe colour-transform record. Same rules as scrub.py's _kept_segment.
 */
function keptSegment(marker, segment) {
  const payload = segment.subarray(4);
  if (JPEG_DECODING.has(marker)) return segment;
  if (marker === 0xe0 && startsWith(payload, JFIF) && payload.length >= 14) {
    return joinBytes([Uint8Array.of(0xff, 0xe0, 0x00, 0x10), payload.subarray(0, 12), Uint8Array.of(0, 0)]);
  }
  if (marker === 0xee && startsWith(payload, ADOBE) && payload.length === 12) return segment;
  return null;
}

/**
 * A new JPEG rebuilt from the segments needed to decode `bytes` (see the
 * module comment); throws ScrubError if it does not parse. Like scrub.py,
 * assumes the caller has checked the SOI (sniff) and does not look at it.
 */
export function scrubJpeg(bytes) {
  const data = asBytes(bytes);
  const out = [JPEG_SOI];
  const most = maxPieces(data.length);
  let i = 2;
  let pieces = 0;
  for (;;) {
    if (i + 2 > data.length || data[i] !== 0xff) throw new ScrubError('JPEG segment expected');
    const marker = data[i + 1];
    if (marker === 0xff) { // fill byte before a marker
      i += 1;
      continue;
    }
    pieces += 1;
    if (pieces > most) throw new ScrubError('JPEG has more segments than any photo');
    if (marker === JPEG_EOI_MARKER) { // stop, dropping any trailer
      out.push(JPEG_EOI);
      return joinBytes(out);
    }
    if (STANDALONE.has(marker)) {
      out.push(data.subarray(i, i + 2));
      i += 2;
      continue;
    }
    if (i + 4 > data.length) throw new ScrubError('JPEG segment truncated');
    const length = (data[i + 2] << 8) | data[i + 3]; // counts itself, not the marker
    let end = i + 2 + length;
    if (length < 2 || end > data.length) throw new ScrubError('JPEG segment truncated');
    const kept = keptSegment(marker, data.subarray(i, end));
    if (kept !== null) out.push(kept);
    if (marker === JPEG_SOS) { // entropy-coded data follows the header
      const dataEnd = scanEnd(data, end);
      out.push(data.subarray(end, dataEnd));
      end = dataEnd;
    }
    i = end;
  }
}

/**
 * A new PNG rebuilt from the critical and rendering chunks of `bytes` (see
 * the module comment); throws ScrubError if it does not parse. Like
 * scrub.py, does not look at the signature (sniff does) or the CRCs (kept
 * chunks are copied whole, CRC included, for the decoder to check).
 */
export function scrubPng(bytes) {
  const data = asBytes(bytes);
  const out = [PNG_SIGNATURE];
  const most = maxPieces(data.length);
  let i = PNG_SIGNATURE.length;
  for (let pieces = 1; ; pieces += 1) {
    if (pieces > most) throw new ScrubError('PNG has more chunks than any picture');
    if (i + 8 > data.length) throw new ScrubError('PNG chunk truncated');
    // Unsigned 32-bit length; `* 2 ** 24` rather than `<< 24` so that it
    // cannot turn negative.
    const length = data[i] * 2 ** 24 + ((data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]);
    const kind = String.fromCharCode(data[i + 4], data[i + 5], data[i + 6], data[i + 7]);
    const end = i + 12 + length; // length, type, data, CRC
    if (end > data.length) throw new ScrubError('PNG chunk truncated');
    if (PNG_KEEP.has(kind)) out.push(data.subarray(i, end));
    if (kind === 'IEND') return joinBytes(out);
    i = end;
  }
}

/**
 * Clean a Blob (or File) before it is encrypted: returns { blob, mediaType,
 * scrubbed }. JPEG and PNG (by content) come back rebuilt with scrubbed:
 * true; anything else comes back as the same Blob, with its declared type
 * (or application/octet-stream) and scrubbed: false. Throws ScrubError for
 * a damaged JPEG or PNG.
 */
export async function scrubFile(file) {
  // Sniff from the first bytes only: an attachment that is not an image may
  // be hundreds of MB, and must not be read whole into memory. Images are
  // limited in size by the page, so reading one whole is acceptable.
  const head = new Uint8Array(await file.slice(0, PNG_SIGNATURE.length).arrayBuffer());
  const kind = sniff(head);
  if (kind === null) {
    return { blob: file, mediaType: file.type || 'application/octet-stream', scrubbed: false };
  }
  const data = new Uint8Array(await file.arrayBuffer());
  const clean = kind === 'image/jpeg' ? scrubJpeg(data) : scrubPng(data);
  return { blob: new Blob([clean], { type: kind }), mediaType: kind, scrubbed: true };
}
