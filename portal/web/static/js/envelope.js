// Sealing and opening cso-envelope/v1 envelopes in constant memory
// (SPEC.md §3–§7, §12).
//
// The payload is the padded plaintext (padding.js) cut into 64 KiB chunks,
// each sealed with AES-256-GCM under the payload key and the nonce
// counter (11 bytes, big-endian) ‖ 0x01 for the last chunk, else 0x00.
// Reordered, dropped, duplicated, truncated or appended chunks therefore all
// fail to authenticate.
//
// A source is a Blob (or File) or a Uint8Array. Blobs are read in slices:
// sealing reads 16 MiB batches and opening one chunk at a time, so memory is
// bounded whatever the size of the file.

import { concatBytes, joinBytes, uintBE } from './bytes.js';
import { EnvelopeError, KeyFormatError } from './errors.js';
import { MAX_HEADER_LENGTH, headerLength, openHeader, readHeader, buildHeader } from './header.js';
import { PAD_MARKER, PaddingStripper, paddedLength } from './padding.js';

export {
  MAGIC, assembleHeader, buildHeader, deriveKeys, headerBody, headerLength, headerMac,
  openHeader, readHeader, sealStanza,
} from './header.js';

export const CHUNK_SIZE = 64 * 1024;
export const TAG_LENGTH = 16;
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_LENGTH;
/** Chunks read from a Blob and encrypted together (16 MiB): see sealEnvelope. */
export const SEAL_BATCH_CHUNKS = 256;
const PRIVATE_KEY_LENGTH = 32;

/** SPEC.md §7: the 12-byte nonce of chunk number `counter`. */
export function chunkNonce(counter, last) {
  return concatBytes(uintBE(counter, 11), Uint8Array.of(last ? 0x01 : 0x00));
}

function gcm(counter, last) {
  return { name: 'AES-GCM', iv: chunkNonce(counter, last), tagLength: 128 }; // empty AAD
}

/** The raw 32-byte payload key as a WebCrypto AES-GCM key. */
export function importPayloadKey(raw) {
  return globalThis.crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

/**
 * Seal one chunk of plaintext as chunk number `counter`; `payloadKey` is a
 * key from importPayloadKey or 32 raw bytes. Returns plaintext ‖ tag
 * encrypted. Does not check the chunk size, so that vectors can break §7.1.
 */
export async function sealChunk(payloadKey, counter, last, plaintext) {
  const key = payloadKey instanceof Uint8Array ? await importPayloadKey(payloadKey) : payloadKey;
  return new Uint8Array(await globalThis.crypto.subtle.encrypt(gcm(counter, last), key, plaintext));
}

async function openChunk(key, counter, last, sealed) {
  try {
    return new Uint8Array(await globalThis.crypto.subtle.decrypt(gcm(counter, last), key, sealed));
  } catch {
    throw new EnvelopeError('payload failure', 'a chunk did not authenticate'); // never why (§9.1)
  }
}

// A uniform view of the two kinds of source: its size, and exact reads.
function byteSource(source) {
  if (source instanceof Uint8Array) {
    const read = async (start, end) => exact(source.subarray(start, end), start, end);
    return { size: source.length, read };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const read = async (start, end) => {
      const bytes = new Uint8Array(await source.slice(start, end).arrayBuffer());
      return exact(bytes, start, end);
    };
    return { size: source.size, read };
  }
  throw new TypeError('an envelope source is a Blob or a Uint8Array');
}

function exact(bytes, start, end) {
  if (bytes.length !== end - start) throw new Error('the source changed while it was read');
  return bytes;
}

/** SPEC.md §12: exact envelope size for `dataLength` bytes to `recipientCount` keys. */
export function sealedSize(dataLength, recipientCount) {
  const padded = paddedLength(dataLength);
  return headerLength(recipientCount) + padded + TAG_LENGTH * Math.ceil(padded / CHUNK_SIZE);
}

/**
 * Seal `source` (Blob or Uint8Array) to `recipients` (1 to 64 distinct raw
 * 32-byte X25519 public keys). Yields Uint8Array pieces: the header, then
 * each sealed chunk; together they are the envelope. Throws KeyFormatError
 * for a bad recipient list.
 */
export async function* sealEnvelope(source, recipients) {
  const input = byteSource(source);
  const { header, payloadKey } = await buildHeader(recipients);
  const key = await importPayloadKey(payloadKey);
  yield header;
  // SPEC.md §6: padded = data ‖ 0x80 ‖ zeros; the data length is known in
  // advance, so each chunk is built directly in place.
  const n = input.size;
  const padded = paddedLength(n);
  const count = Math.ceil(padded / CHUNK_SIZE);
  // Read SEAL_BATCH_CHUNKS chunks at a time and encrypt them concurrently:
  // per-chunk Blob reads and awaited WebCrypto calls cost 4x the encryption
  // itself in Chromium (bench/browser_encrypt.py). Memory stays bounded by
  // one batch of plaintext and its ciphertext (32 MiB), whatever the size.
  for (let first = 0; first < count; first += SEAL_BATCH_CHUNKS) {
    const last = Math.min(first + SEAL_BATCH_CHUNKS, count);
    const blockStart = first * CHUNK_SIZE;
    const dataEnd = Math.min(last * CHUNK_SIZE, n);
    const block = blockStart < dataEnd ? await input.read(blockStart, dataEnd) : new Uint8Array(0);
    const sealed = [];
    for (let i = first; i < last; i++) {
      const start = i * CHUNK_SIZE;
      const end = Math.min(start + CHUNK_SIZE, padded);
      let chunk;
      if (end <= n) {
        chunk = block.subarray(start - blockStart, end - blockStart); // pure data: no copy
      } else {
        chunk = new Uint8Array(end - start); // zeros
        if (start < n) chunk.set(block.subarray(start - blockStart, n - blockStart));
        if (start <= n && n < end) chunk[n - start] = PAD_MARKER;
      }
      sealed.push(sealChunk(key, i, i === count - 1, chunk));
    }
    for (const piece of sealed) yield await piece;
  }
}

/** Seal into one Blob (see sealEnvelope). */
export async function sealToBlob(source, recipients) {
  const pieces = [];
  for await (const piece of sealEnvelope(source, recipients)) pieces.push(piece);
  return new Blob(pieces, { type: 'application/octet-stream' });
}

/** Seal into one Uint8Array (see sealEnvelope). */
export async function sealToBytes(source, recipients) {
  const pieces = [];
  for await (const piece of sealEnvelope(source, recipients)) pieces.push(piece);
  return joinBytes(pieces);
}

/**
 * Open an envelope (Blob or Uint8Array) with a raw 32-byte X25519 private
 * key, yielding the plaintext in Uint8Array pieces as each chunk
 * authenticates (SPEC.md §7.3).
 *
 * The envelope is genuine only if the generator COMPLETES NORMALLY (its
 * return value is the data length). If it throws, the caller MUST discard
 * every piece it has already received: a truncated or tampered envelope
 * yields plausible plaintext before the failure is found. Failures are
 * EnvelopeError with failureClass 'header failure' (checked before any key
 * is used), 'no match', 'MAC failure' (checked before any payload is
 * decrypted) or 'payload failure'; a wrong-sized key is a KeyFormatError.
 */
export async function* openEnvelope(source, privateKey) {
  const input = byteSource(source);
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== PRIVATE_KEY_LENGTH) {
    throw new KeyFormatError('an X25519 private key is 32 bytes');
  }
  const header = readHeader(await input.read(0, Math.min(input.size, MAX_HEADER_LENGTH)));
  const key = await importPayloadKey(await openHeader(header, privateKey));
  const stripper = new PaddingStripper();
  let offset = header.length;
  for (let counter = 0, last = false; !last; counter++) {
    const end = Math.min(offset + SEALED_CHUNK_SIZE, input.size);
    last = end === input.size; // §7.2: last exactly when the input ends after it
    // §7.1: a full chunk is SEALED_CHUNK_SIZE by construction; a sealed chunk
    // of a tag or less (an empty plaintext, or no payload) is never valid.
    if (end - offset <= TAG_LENGTH) throw new EnvelopeError('payload failure', 'truncated or empty chunk');
    yield* stripper.feed(await openChunk(key, counter, last, await input.read(offset, end)));
    offset = end;
  }
  return stripper.finish();
}

/** Open into one Uint8Array; nothing is returned unless the whole envelope checks out. */
export async function openToBytes(source, privateKey) {
  const pieces = [];
  for await (const piece of openEnvelope(source, privateKey)) pieces.push(piece);
  return joinBytes(pieces);
}
