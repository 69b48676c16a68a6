"""Length hiding for envelope payloads (SPEC.md §6).

The padded payload is ``data ‖ 0x80 ‖ 0x00 * k`` whose total length is
``padded_length(len(data))``: the Padmé size of ``len(data) + 1``, but never
less than :data:`MIN_PADDED_LENGTH`. Padmé leaks O(log log n) bits of the
length and costs at most about 12 % overhead (lower for larger payloads).

:class:`PaddingStripper` removes the padding from a stream of decrypted
chunks while holding back at most one 0x80 byte and a count of zeros, so
memory stays constant however much padding there is.
"""

from __future__ import annotations

from collections.abc import Callable

from crypto.errors import PayloadError

#: the padding always starts with this byte (ISO/IEC 7816-4 style)
PAD_MARKER = 0x80
#: short payloads all share one size, so a "yes" and a "no" look alike
MIN_PADDED_LENGTH = 1024
#: a run of zeros is written out in pieces no larger than this
_ZERO_BLOCK = bytes(64 * 1024)
_SINGLE_BYTES = [bytes([value]) for value in range(256)]


def padme(length: int) -> int:
    """Return the Padmé size for ``length`` (≥ 1) bytes (SPEC.md §6)."""
    if length < 1:
        raise ValueError("padme is defined for lengths of at least 1")
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # floor(log2 length)
    mantissa_bits = exponent.bit_length()  # floor(log2 exponent) + 1
    low_bits = exponent - mantissa_bits
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def padded_length(data_length: int) -> int:
    """Total payload plaintext length for ``data_length`` bytes of data."""
    if data_length < 0:
        raise ValueError("negative length")
    return max(padme(data_length + 1), MIN_PADDED_LENGTH)


def padding_for(data_length: int) -> int:
    """Number of padding bytes (marker included) that follow the data."""
    return padded_length(data_length) - data_length


class PaddingStripper:
    """Turn decrypted payload chunks back into data, checking the padding.

    ``feed`` passes on the pieces of data that are certainly not padding;
    ``finish`` checks that what was held back is exactly canonical padding
    and raises :class:`PayloadError` otherwise.
    """

    def __init__(self) -> None:
        self._held: int | None = None  # a trailing 0x80 not yet emitted: maybe the marker
        self._zeros = 0  # zero bytes after the last non-zero byte, not yet emitted
        self._emitted = 0

    def feed(self, chunk: memoryview, write: Callable[[memoryview | bytes], object]) -> None:
        """Pass to ``write`` the data in ``chunk`` that can no longer be padding."""
        size = len(chunk)
        if size == 0:
            return
        if chunk[size - 1] != 0:
            last_nonzero = size - 1
        elif chunk == _ZERO_BLOCK[:size]:  # a whole chunk of zeros: memcmp, no copy
            self._zeros += size
            return
        else:
            last_nonzero = len(bytes(chunk).rstrip(b"\x00")) - 1
        # Everything held back so far turns out to be data.
        if self._held is not None:
            write(_SINGLE_BYTES[self._held])
            self._emitted += 1
        while self._zeros > 0:
            piece = min(self._zeros, len(_ZERO_BLOCK))
            write(_ZERO_BLOCK[:piece])
            self._emitted += piece
            self._zeros -= piece
        # Only a 0x80 can be the padding marker: any other last non-zero byte
        # is data, and goes out with the rest (one write per chunk, usually).
        keep = last_nonzero if chunk[last_nonzero] == PAD_MARKER else last_nonzero + 1
        if keep > 0:
            write(chunk[:keep] if keep < size else chunk)
            self._emitted += keep
        self._held = PAD_MARKER if keep == last_nonzero else None
        self._zeros = size - last_nonzero - 1

    def finish(self) -> int:
        """Check the held-back padding; return the data length."""
        if self._held != PAD_MARKER:
            raise PayloadError("payload failure: bad padding")
        total = self._emitted + 1 + self._zeros
        if total != padded_length(self._emitted):
            raise PayloadError("payload failure: bad padding")
        return self._emitted
