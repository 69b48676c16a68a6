"""Round trips and tamper resistance of whole envelopes (SPEC §3-§7)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.envelope import (
    CHUNK_SIZE,
    SEALED_CHUNK_SIZE,
    Sealer,
    inspect,
    open_bytes,
    open_envelope,
    seal,
    seal_bytes,
    sealed_size,
)
from crypto.errors import CryptoError, HeaderError, NoMatchError, PayloadError
from crypto.keys import EncryptionKeyPair

BOUNDARY_SIZES = [
    0,
    1,
    1023,
    1024,
    CHUNK_SIZE - 2,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    5 * CHUNK_SIZE + 3,
]


def _data(length: int) -> bytes:
    return bytes((i * 131 + 17) & 0xFF for i in range(length))


@pytest.mark.parametrize("length", BOUNDARY_SIZES)
def test_round_trip_around_chunk_boundaries(
    identities: list[EncryptionKeyPair], length: int
) -> None:
    data = _data(length)
    envelope = seal_bytes(data, [k.public for k in identities])
    assert len(envelope) == sealed_size(length, len(identities))
    for identity in identities:
        assert open_bytes(envelope, identity) == data


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.integers(min_value=CHUNK_SIZE - 40, max_value=CHUNK_SIZE + 40).map(_data),
    ),
    piece=st.integers(min_value=1, max_value=CHUNK_SIZE + 100),
)
def test_push_sealer_matches_stream_sealer(
    identities: list[EncryptionKeyPair], data: bytes, piece: int
) -> None:
    sealer = Sealer([identities[0].public])
    parts = [sealer.header_bytes]
    for i in range(0, len(data), piece):
        parts.append(sealer.update(data[i : i + piece]))
    parts.extend(sealer.finalize())
    envelope = b"".join(parts)
    assert len(envelope) == sealed_size(len(data), 1)
    assert open_bytes(envelope, identities[0]) == data


@pytest.fixture(scope="module")
def small_envelope(identities: list[EncryptionKeyPair]) -> bytes:
    return seal_bytes(b"report: boarded at anchorage, 3 robbers", [k.public for k in identities])


@pytest.fixture(scope="module")
def two_chunk_envelope(identities: list[EncryptionKeyPair]) -> bytes:
    return seal_bytes(_data(CHUNK_SIZE + 10), [identities[0].public])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_byte_fails(
    identities: list[EncryptionKeyPair], small_envelope: bytes, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(small_envelope) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    mutated = bytearray(small_envelope)
    mutated[position] ^= flip
    with pytest.raises(CryptoError):
        open_bytes(bytes(mutated), identities[0])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_dropped_or_added_byte_fails(
    identities: list[EncryptionKeyPair], two_chunk_envelope: bytes, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(two_chunk_envelope)))
    if data.draw(st.booleans()) and position < len(two_chunk_envelope):
        mutated = two_chunk_envelope[:position] + two_chunk_envelope[position + 1 :]
    else:
        extra = data.draw(st.binary(min_size=1, max_size=3))
        mutated = two_chunk_envelope[:position] + extra + two_chunk_envelope[position:]
    with pytest.raises(CryptoError):
        open_bytes(mutated, identities[0])


def test_truncation_at_every_chunk_boundary_fails(
    identities: list[EncryptionKeyPair], two_chunk_envelope: bytes
) -> None:
    header = len(two_chunk_envelope) - 2 * TAG - 67584
    for cut in (header, header + SEALED_CHUNK_SIZE, len(two_chunk_envelope) - 1):
        with pytest.raises(PayloadError):
            open_bytes(two_chunk_envelope[:cut], identities[0])


TAG = 16


def test_every_envelope_has_fresh_keys(identities: list[EncryptionKeyPair]) -> None:
    """§4.1: a fresh data key, salt and HPKE ephemeral key every time."""
    from crypto.header import parse_header

    recipients = [k.public for k in identities]
    headers = [
        parse_header(seal_bytes(b"same report", recipients)[: 50 + 112 * 3 + 32]) for _ in range(2)
    ]
    first, second = headers
    assert first.salt != second.salt
    encs = [s.enc for h in headers for s in h.stanzas]
    assert len(set(encs)) == len(encs)  # no ephemeral key reused, across stanzas or envelopes
    assert {s.sealed_key for s in first.stanzas}.isdisjoint(s.sealed_key for s in second.stanzas)


def test_wrong_identity_is_no_match(small_envelope: bytes) -> None:
    with pytest.raises(NoMatchError):
        open_bytes(small_envelope, EncryptionKeyPair.generate())


def test_inspect_reports_structure_without_keys(
    identities: list[EncryptionKeyPair], two_chunk_envelope: bytes
) -> None:
    info = inspect(io.BytesIO(two_chunk_envelope))
    assert info.recipients == (identities[0].public,)
    assert info.chunk_count == 2
    assert info.padded_size == 67584
    assert info.envelope_size == len(two_chunk_envelope)


def test_inspect_refuses_garbage() -> None:
    with pytest.raises(HeaderError):
        inspect(io.BytesIO(b"not an envelope"))


def test_sealer_refuses_bad_recipient_lists(identities: list[EncryptionKeyPair]) -> None:
    with pytest.raises(CryptoError):
        Sealer([])
    with pytest.raises(CryptoError):
        Sealer([identities[0].public, identities[0].public])
    with pytest.raises(CryptoError):
        Sealer([b"short"])
    with pytest.raises(CryptoError):
        Sealer([bytes(32)])  # a low-order point: HPKE refuses it


def test_sealer_cannot_be_used_after_finalize(identities: list[EncryptionKeyPair]) -> None:
    sealer = Sealer([identities[0].public])
    list(sealer.finalize())
    with pytest.raises(ValueError, match="finalized"):
        sealer.update(b"more")


class _StingyStream(io.RawIOBase):
    """A raw stream that accepts at most 1000 bytes per write, like a socket."""

    def __init__(self) -> None:
        self.received = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:  # type: ignore[override]
        piece = bytes(memoryview(data)[:1000])  # type: ignore[arg-type]
        self.received += piece
        return len(piece)


def test_partial_writes_are_completed(identities: list[EncryptionKeyPair]) -> None:
    data = _data(300_000)
    sealed = _StingyStream()
    seal(io.BytesIO(data), sealed, [identities[0].public])
    opened = _StingyStream()
    assert open_envelope(io.BytesIO(bytes(sealed.received)), opened, identities[0]) == len(data)
    assert bytes(opened.received) == data


def test_typed_memoryviews_are_counted_in_bytes(identities: list[EncryptionKeyPair]) -> None:
    words = memoryview(bytearray(range(256)) * 40).cast("I")
    sealer = Sealer([identities[0].public])
    envelope = sealer.header_bytes + sealer.update(words) + b"".join(sealer.finalize())
    assert open_bytes(envelope, identities[0]) == words.tobytes()
