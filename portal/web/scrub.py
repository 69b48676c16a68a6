"""Removing identifying metadata from photos, losslessly, in memory.

Phone photos carry GPS positions, times, device models and serial numbers.
This keeps only what is needed to show the picture; the pixels are not
re-encoded, so nothing is lost and nothing is guessed.

* JPEG: keep SOI, the segments decoding needs (frames, tables, scans), a
  JFIF APP0 rewritten without its thumbnail, an Adobe APP14 colour-transform
  record, and EOI. Drop every other segment: EXIF and XMP in APP1, ICC and
  MPF in APP2, IPTC in APP13, JFXX thumbnails, comments, reserved markers,
  and anything after EOI (some phones append whole extra images there).
  Dropping EXIF also drops the orientation tag, so a photo may show rotated.
* PNG: keep the critical chunks and a short list of rendering ones (tRNS,
  gAMA, cHRM, sRGB, bKGD, pHYs, sBIT, and APNG's acTL/fcTL/fdAT). Drop text
  (tEXt, zTXt, iTXt), tIME, eXIf and anything unknown; stop at IEND.

Other types are returned unchanged and marked as not scrubbed, so that the
reviewer side knows to do it. A file that claims to be JPEG or PNG but does
not parse is refused rather than passed on half-cleaned.

Without JavaScript this runs before any budget is drawn (it is how a
damaged photo is refused for free), so its work must stay cheap whatever
the file: runs of bytes are searched for in C, never walked one by one in
Python, and a file may hold at most :func:`max_pieces` segments or chunks,
far more than any camera or encoder writes, but few enough that a file
built of tiny pieces is refused after a bounded number of steps.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

JPEG_SOI = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the markers decoding needs: SOF0-3, 5-7, 9-11, 13-15; DHT; DAC; SOS; DQT;
#: DNL; DRI; DHP; EXP. Anything else (reserved, JPG, other APPn, COM) goes.
_JPEG_DECODING = {
    *range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0),
    0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
}  # fmt: skip
_JFIF = b"JFIF\x00"
_ADOBE = b"Adobe"
_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB",
    b"bKGD", b"pHYs", b"sBIT", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
#: in entropy-coded data, 0xFF followed by anything but a stuffed zero, a
#: restart marker or another 0xFF (fill) starts the next marker
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")  # a marker's 0xFF, with any fill bytes before it
#: pieces any file may have, and one more for each this many bytes of it
PIECES_FLOOR, BYTES_PER_PIECE = 1024, 512


class ScrubError(Exception):
    """The file looks like an image of a known type but is damaged."""


@dataclass(frozen=True)
class Scrubbed:
    """The result: bytes to encrypt, their media type, and whether they were cleaned."""

    data: bytes
    media_type: str
    scrubbed: bool


def sniff(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the content, else None."""
    if data.startswith(JPEG_SOI):
        return "image/jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    return None


def scrub(data: bytes, declared_type: str) -> Scrubbed:
    """Clean JPEG and PNG files; pass anything else through, marked unscrubbed."""
    kind = sniff(data)
    if kind == "image/jpeg":
        return Scrubbed(scrub_jpeg(data), kind, True)
    if kind == "image/png":
        return Scrubbed(scrub_png(data), kind, True)
    return Scrubbed(data, declared_type or "application/octet-stream", False)


def max_pieces(data: bytes) -> int:
    """The most JPEG segments or PNG chunks a file of this size may have.

    Real photos have tens of JPEG segments, and PNG encoders write image data
    in chunks of 8 KiB or more; a file of more, smaller pieces is refused
    (by the browser's scrub.js too, so both sides agree).
    """
    return PIECES_FLOOR + len(data) // BYTES_PER_PIECE


def _scan_end(data: bytes, start: int) -> int:
    """Index of the first marker after entropy-coded data starting at ``start``.

    Stuffed zeros, restart markers and fill bytes belong to the scan; the
    search for what ends it runs in C, however many of them there are.
    """
    found = _MARKER_AFTER_SCAN.search(data, start)
    if found is None:
        raise ScrubError("JPEG scan data runs past the end")
    return found.start()


def _kept_segment(marker: int, segment: bytes) -> bytes | None:
    """What of one JPEG segment (marker, length, payload) to keep, if anything.

    APP0 survives only as a canonical JFIF header *without its thumbnail*: a
    thumbnail can show the uncropped original. APP14 survives only as the
    12-byte Adobe colour-transform record.
    """
    payload = segment[4:]
    if marker in _JPEG_DECODING:
        return segment
    if marker == 0xE0 and payload.startswith(_JFIF) and len(payload) >= 14:
        return b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00"
    if marker == 0xEE and payload.startswith(_ADOBE) and len(payload) == 12:
        return segment
    return None


def scrub_jpeg(data: bytes) -> bytes:
    """Rebuild a JPEG from the segments needed to decode it (see module doc)."""
    out = [JPEG_SOI]
    i = 2
    for _ in range(max_pieces(data)):
        fill = _FILL.match(data, i)
        if fill is None or fill.end() >= len(data):
            raise ScrubError("JPEG segment expected")
        i = fill.end() - 1  # fill bytes before a marker are dropped
        marker = data[i + 1]
        if marker == 0xD9:  # EOI: stop, dropping any trailer
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in _STANDALONE:
            out.append(data[i : i + 2])
            i += 2
            continue
        if i + 4 > len(data):
            raise ScrubError("JPEG segment truncated")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise ScrubError("JPEG segment truncated")
        kept = _kept_segment(marker, data[i:end])
        if kept is not None:
            out.append(kept)
        if marker == 0xDA:  # SOS: entropy-coded data follows the header
            scan_end = _scan_end(data, end)
            out.append(data[end:scan_end])
            end = scan_end
        i = end
    raise ScrubError("JPEG has more segments than any photo")


def scrub_png(data: bytes) -> bytes:
    """Rebuild a PNG from its critical and rendering chunks (see module doc)."""
    out = [PNG_SIGNATURE]
    i = len(PNG_SIGNATURE)
    for _ in range(max_pieces(data)):
        if i + 8 > len(data):
            raise ScrubError("PNG chunk truncated")
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            raise ScrubError("PNG chunk truncated")
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        if kind == b"IEND":
            return b"".join(out)
        i = end
    raise ScrubError("PNG has more chunks than any picture")
