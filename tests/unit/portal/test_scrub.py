"""Server-side photo scrubbing (test_scrub_parity.py holds the JS to the same bytes)."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from portal.web.scrub import ScrubError, scrub, scrub_jpeg


def _jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def _with_app0(jpeg: bytes, *segments: bytes) -> bytes:
    """Replace Pillow's APP0 with the given segments."""
    assert jpeg[2:4] == b"\xff\xe0"
    (length,) = struct.unpack(">H", jpeg[4:6])
    return jpeg[:2] + b"".join(segments) + jpeg[4 + length :]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def test_jfif_thumbnail_and_jfxx_are_removed() -> None:
    """A thumbnail can show the uncropped original: it must not survive."""
    thumbnail = bytes([8, 8]) + b"\x99" * (8 * 8 * 3)
    jfif = _segment(0xE0, b"JFIF\x00\x01\x01\x01\x00\x48\x00\x48" + thumbnail)
    exif_thumb = b"\xff\xd8" + _segment(0xE1, b"Exif\x00\x00GPS-CANARY") + b"\xff\xd9"
    jfxx = _segment(0xE0, b"JFXX\x00\x10" + exif_thumb)
    photo = _with_app0(_jpeg(), jfif, jfxx)
    cleaned = scrub_jpeg(photo)
    assert b"\x99" * 16 not in cleaned
    assert b"JFXX" not in cleaned
    assert b"Exif" not in cleaned
    assert cleaned[2:20] == b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00\x48\x00\x48\x00\x00"
    assert Image.open(io.BytesIO(cleaned)).tobytes() == Image.open(io.BytesIO(photo)).tobytes()


def test_comments_exif_and_trailers_are_removed() -> None:
    image = Image.new("RGB", (20, 10))
    exif = Image.Exif()
    exif[0x010F] = "CANARY-MAKE"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"CANARY-COMMENT")
    result = scrub(out.getvalue() + b"CANARY-TRAILER", "image/jpeg")
    assert result.scrubbed
    assert result.media_type == "image/jpeg"
    assert b"CANARY" not in result.data


def test_other_types_pass_through_marked_unscrubbed() -> None:
    result = scrub(b"%PDF-1.7 CANARY", "application/pdf")
    assert result == type(result)(b"%PDF-1.7 CANARY", "application/pdf", False)


@pytest.mark.parametrize("cut", [3, 10, 30, -3])
def test_damaged_images_are_refused(cut: int) -> None:
    with pytest.raises(ScrubError):
        scrub(_jpeg()[:cut], "image/jpeg")
