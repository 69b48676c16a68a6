"""Sealing and opening envelopes over streams, in constant memory.

The payload (SPEC.md §6–§7) is the padded plaintext cut into 64 KiB chunks,
each sealed with AES-256-GCM under the payload key. The nonce is an 11-byte
big-endian chunk counter followed by one flag byte, 0x01 for the last chunk
and 0x00 otherwise, so reordered, dropped, duplicated, truncated or appended
chunks all fail to authenticate.

Two ways in:

* :func:`seal` / :func:`open_envelope` pull from one binary stream and push to
  another (files, stdin/stdout, sockets);
* :class:`Sealer` is pushed to piece by piece, for a web request body that
  arrives in parts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto._streams import fill, write_all
from crypto.errors import PayloadError
from crypto.header import Header, build_header, header_length, open_header, read_header
from crypto.keys import EncryptionKeyPair
from crypto.padding import (
    MIN_PADDED_LENGTH,
    PAD_MARKER,
    PaddingStripper,
    padded_length,
    padding_for,
    padme,
)

CHUNK_SIZE = 64 * 1024
TAG_LENGTH = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_LENGTH
_LAST = b"\x01"
_NOT_LAST = b"\x00"
_ZERO_CHUNK = bytes(CHUNK_SIZE)


def chunk_nonce(counter: int, last: bool) -> bytes:
    """The 12-byte nonce of chunk number ``counter`` (SPEC.md §7)."""
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


@dataclass(frozen=True)
class EnvelopeInfo:
    """What can be learnt about an envelope without any key (``inspect``)."""

    version: int
    recipients: tuple[bytes, ...]
    chunk_count: int
    padded_size: int
    envelope_size: int


class Sealer:
    """Push-style sealing: feed plaintext with :meth:`update`, then :meth:`finalize`.

    Each call returns the ciphertext it completed; concatenated, the header
    and those returns form the envelope. Memory stays under two chunks.
    """

    def __init__(self, recipients: Sequence[bytes]) -> None:
        self.header, payload_key = build_header(recipients)
        self._aead = AESGCM(payload_key)
        self._pending = bytearray()
        self._counter = 0
        self._length = 0
        self._done = False

    @property
    def header_bytes(self) -> bytes:
        """The header, to be written before any chunk."""
        return self.header.to_bytes()

    def _seal_chunk(self, plaintext: bytes | bytearray | memoryview, last: bool) -> bytes:
        sealed = self._aead.encrypt(chunk_nonce(self._counter, last), bytes(plaintext), None)
        self._counter += 1
        return sealed

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Absorb ``data``; return the chunks it completed (maybe empty)."""
        if self._done:
            raise ValueError("sealer already finalized")
        view = memoryview(data).cast("B")  # count bytes, not items of a typed view
        self._length += len(view)
        self._pending += view
        out = []
        # A full chunk of data is never the last: the padding marker follows it.
        while len(self._pending) >= CHUNK_SIZE:
            out.append(self._seal_chunk(memoryview(self._pending)[:CHUNK_SIZE], last=False))
            del self._pending[:CHUNK_SIZE]
        return b"".join(out)

    def finalize(self) -> Iterator[bytes]:
        """Yield the remaining chunks: the tail of the data and the padding."""
        if self._done:
            raise ValueError("sealer already finalized")
        self._done = True
        yield from self._tail_chunks(bytes(self._pending), self._length)
        self._pending.clear()

    def _tail_chunks(self, tail: bytes, data_length: int) -> Iterator[bytes]:
        # SPEC.md §6: the tail is data ‖ 0x80 ‖ zeros up to padded_length.
        remaining = len(tail) + padding_for(data_length)
        first = tail + bytes([PAD_MARKER])
        first += bytes(min(CHUNK_SIZE, remaining) - len(first))
        remaining -= len(first)
        yield self._seal_chunk(first, last=remaining == 0)
        while remaining > 0:
            size = min(CHUNK_SIZE, remaining)
            remaining -= size
            yield self._seal_chunk(_ZERO_CHUNK[:size], last=remaining == 0)

    def seal_stream(self, src: BinaryIO, dst: BinaryIO) -> int:
        """Write header and payload for all of ``src`` to ``dst``; return data length."""
        write_all(dst, self.header_bytes)
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        sealed = bytearray(SEALED_CHUNK_SIZE)
        while True:
            filled = fill(src, view)
            if filled < CHUNK_SIZE:
                break
            self._aead.encrypt_into(chunk_nonce(self._counter, False), buffer, None, sealed)
            self._counter += 1
            self._length += CHUNK_SIZE
            write_all(dst, sealed)
        self._length += filled
        self._done = True
        for chunk in self._tail_chunks(bytes(view[:filled]), self._length):
            write_all(dst, chunk)
        return self._length


def seal(src: BinaryIO, dst: BinaryIO, recipients: Sequence[bytes]) -> int:
    """Seal all of ``src`` to ``recipients`` (raw X25519 keys) into ``dst``.

    Returns the number of plaintext bytes read.
    """
    return Sealer(recipients).seal_stream(src, dst)


def seal_bytes(data: bytes, recipients: Sequence[bytes]) -> bytes:
    """Seal a byte string held in memory; return the whole envelope."""
    out = io.BytesIO()
    seal(io.BytesIO(data), out, recipients)
    return out.getvalue()


def open_payload(src: BinaryIO, dst: BinaryIO, header: Header, identity: EncryptionKeyPair) -> int:
    """Decrypt the payload that follows ``header``; return the data length.

    Plaintext is written as each chunk authenticates; on any failure a
    :class:`PayloadError` is raised and the caller must discard what was
    written (SPEC.md §7.3; the CLI removes its output file). ``dst.write``
    receives views into a buffer that is reused for the next chunk: it must
    consume the bytes before returning, as files, BytesIO and sockets do.
    """
    aead = AESGCM(open_header(header, identity))
    stripper = PaddingStripper()
    # Two sealed-chunk buffers: the current chunk and one chunk of lookahead,
    # which tells whether the current one is the last (SPEC.md §7.2).
    views = (memoryview(bytearray(SEALED_CHUNK_SIZE)), memoryview(bytearray(SEALED_CHUNK_SIZE)))
    plain = memoryview(bytearray(CHUNK_SIZE))
    current = 0
    filled = fill(src, views[current])
    counter = 0
    while True:
        following = fill(src, views[1 - current]) if filled == SEALED_CHUNK_SIZE else 0
        last = following == 0
        # SPEC.md §7.1: a chunk must carry at least one byte of plaintext.
        if filled <= TAG_LENGTH:
            raise PayloadError("payload failure: truncated or empty chunk")
        sealed = views[current] if filled == SEALED_CHUNK_SIZE else views[current][:filled]
        out = plain if filled == SEALED_CHUNK_SIZE else plain[: filled - TAG_LENGTH]
        try:
            aead.decrypt_into(chunk_nonce(counter, last), sealed, None, out)
        except InvalidTag:
            out[:] = bytes(len(out))  # do not keep unauthenticated plaintext around
            raise PayloadError("payload failure: a chunk did not authenticate") from None
        stripper.feed(out, lambda piece: write_all(dst, piece))
        if last:
            return stripper.finish()
        current, filled, counter = 1 - current, following, counter + 1


def open_envelope(src: BinaryIO, dst: BinaryIO, identity: EncryptionKeyPair) -> int:
    """Open a whole envelope from ``src`` into ``dst``; return the data length."""
    return open_payload(src, dst, read_header(src), identity)


def open_bytes(envelope: bytes, identity: EncryptionKeyPair) -> bytes:
    """Open an envelope held in memory; return the plaintext."""
    out = io.BytesIO()
    open_envelope(io.BytesIO(envelope), out, identity)
    return out.getvalue()


def inspect(src: BinaryIO) -> EnvelopeInfo:
    """Describe an envelope without decrypting it (reads the whole stream)."""
    header = read_header(src)
    payload = 0
    while True:
        piece = src.read(1 << 20)
        if not piece:
            break
        payload += len(piece)
    chunks = max(1, -(-payload // SEALED_CHUNK_SIZE))
    padded = payload - chunks * TAG_LENGTH
    if padded <= 0:
        raise PayloadError("payload failure: no payload")
    return EnvelopeInfo(
        version=1,
        recipients=header.recipients,
        chunk_count=chunks,
        padded_size=padded,
        envelope_size=header_length(len(header.stanzas)) + payload,
    )


def sealed_size(data_length: int, recipient_count: int) -> int:
    """Exact envelope size for ``data_length`` bytes to ``recipient_count`` keys."""
    padded = padded_length(data_length)
    chunks = -(-padded // CHUNK_SIZE)
    return header_length(recipient_count) + padded + chunks * TAG_LENGTH


def payload_is_well_formed(payload_length: int) -> bool:
    """Whether a sealed payload (SPEC §5) can be ``payload_length`` bytes long.

    Checks the sizes alone, without a key: the chunking, the tags and the
    Padmé padding fix which lengths a writer can produce. The portal refuses
    any other length before it stores anything.
    """
    if payload_length <= TAG_LENGTH:
        return False
    chunks = -(-payload_length // SEALED_CHUNK_SIZE)
    last = payload_length - (chunks - 1) * SEALED_CHUNK_SIZE
    padded = payload_length - chunks * TAG_LENGTH
    return last > TAG_LENGTH and padded >= MIN_PADDED_LENGTH and padme(padded) == padded
