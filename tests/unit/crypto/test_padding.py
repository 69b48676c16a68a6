"""Padmé padding and the streaming stripper (SPEC §6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import PayloadError
from crypto.padding import (
    MIN_PADDED_LENGTH,
    PaddingStripper,
    padded_length,
    padme,
)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (1, 1),
        (2, 2),
        (7, 7),
        (9, 10),  # E=3, S=2: one low bit cleared
        (1000, 1024),  # E=9, S=4: five low bits cleared
        (1025, 1088),  # E=10, S=4: six low bits
        (65537, 67584),  # E=16, S=5: eleven low bits
        (10**9, 1_006_632_960),
    ],
)
def test_padme_known_values(length: int, expected: int) -> None:
    assert padme(length) == expected


@given(st.integers(min_value=1, max_value=2**40))
def test_padme_bounds(length: int) -> None:
    padded = padme(length)
    assert padded >= length
    # Overhead is bounded by 1/(2 log2 L) relative, i.e. at most ~12 % for small L.
    assert padded - length <= max(1, length // 8)
    assert padme(padded) == padded  # Padmé sizes are fixed points


def test_short_payloads_share_one_size() -> None:
    assert {padded_length(n) for n in range(0, 1000)} == {MIN_PADDED_LENGTH}


def _pad(data: bytes) -> bytes:
    """Canonical padding, written out from SPEC §6 rather than taken from the library."""
    return data + b"\x80" + bytes(padded_length(len(data)) - len(data) - 1)


def _strip(pieces: list[bytes]) -> tuple[bytes, int]:
    stripper = PaddingStripper()
    out = bytearray()
    for piece in pieces:
        stripper.feed(memoryview(piece), out.extend)
    return bytes(out), stripper.finish()


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_stripper_recovers_data_in_any_cut(data: bytes, cut: int) -> None:
    padded = _pad(data)
    assert len(padded) == padded_length(len(data))
    pieces = [padded[i : i + cut] for i in range(0, len(padded), cut)]
    assert _strip(pieces) == (data, len(data))


def test_stripper_keeps_trailing_zeros_of_data() -> None:
    data = b"abc" + bytes(3000)
    padded = _pad(data)
    assert _strip([padded[:10], padded[10:2000], padded[2000:]])[0] == data


@pytest.mark.parametrize(
    "padded",
    [
        b"abc" + b"\x80" + bytes(1021),  # one zero too many
        b"abc" + b"\x81" + bytes(1020),  # marker is not 0x80
        b"abc" + b"\x80" + bytes(10),  # shorter than the 1024 floor
        bytes(1024),  # no marker at all
        b"abc" * 342,  # no padding
    ],
)
def test_non_canonical_padding_is_refused(padded: bytes) -> None:
    with pytest.raises(PayloadError):
        _strip([padded])


def test_stripper_memory_is_a_count_not_a_buffer() -> None:
    stripper = PaddingStripper()
    written: list[bytes] = []
    for _ in range(100):
        stripper.feed(memoryview(bytes(65536)), written.append)
    assert written == []
    assert stripper._zeros == 100 * 65536
