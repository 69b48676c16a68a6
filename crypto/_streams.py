"""Reading helpers for binary streams that may return short reads (pipes)."""

from __future__ import annotations

from typing import BinaryIO


def read_up_to(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only when the stream ends."""
    parts = []
    remaining = size
    while remaining > 0:
        piece = src.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)


def fill(src: BinaryIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or the stream ends; return the count."""
    readinto = getattr(src, "readinto", None)
    if readinto is None:
        data = read_up_to(src, len(view))
        view[: len(data)] = data
        return len(data)
    filled = int(readinto(view) or 0)  # one call is enough for files and BytesIO
    while 0 < filled < len(view):
        got = readinto(view[filled:])
        if not got:
            break
        filled += int(got)
    return filled


def write_all(dst: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data``, even to a raw stream that takes only part.

    Buffered streams and files take everything in one call; raw streams
    (sockets, pipes opened unbuffered) may return a smaller count.
    """
    view = memoryview(data).cast("B")
    while view:
        written = dst.write(view)
        if written is None:  # a non-blocking raw stream that could take nothing
            raise BlockingIOError("the output stream would block")
        if written >= len(view):
            return
        view = view[written:]
