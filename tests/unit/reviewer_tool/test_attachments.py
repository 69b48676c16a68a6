"""Attachment cleaning before forwarding (reviewer_tool.redaction.attachments)."""

from __future__ import annotations

import io
import struct

import pikepdf
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from reviewer_tool.redaction import AttachmentRefused, clean_attachment

GPS_IFD = 0x8825


def _ifd(entries: list[tuple[int, int, int, bytes]], at: int, next_ifd: int) -> bytes:
    """A little-endian TIFF IFD at offset ``at``; values over 4 bytes follow the IFD."""
    size = 2 + 12 * len(entries) + 4
    head = struct.pack("<H", len(entries))
    tail = b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            head += struct.pack("<HHII", tag, kind, count, at + size + len(tail))
            tail += value + b"\x00" * (len(value) % 2)
    return head + struct.pack("<I", next_ifd) + tail


def _exif_with_gps_and_thumbnail(thumbnail: bytes) -> bytes:
    """EXIF with camera make, orientation 6, a GPS IFD and an IFD1 thumbnail."""
    ascii_, short, long_, rational, undefined = 2, 3, 4, 5, 7
    degrees = struct.pack("<6I", 1, 1, 16, 1, 3012, 100)
    gps = [
        (1, ascii_, 2, b"N\x00"),
        (2, rational, 3, degrees),
        (3, ascii_, 2, b"E\x00"),
        (4, rational, 3, degrees),
        (0x1B, undefined, 17, b"ASCII\x00\x00\x00GPSCANARY"),
    ]
    make = b"CANARYMAKER\x00"
    ifd0_at = 8
    ifd0_len = len(
        _ifd([(0x10F, ascii_, len(make), make), (0x112, short, 1, b""), (0, 0, 0, b"")], 0, 0)
    )
    gps_at = ifd0_at + ifd0_len
    gps_blob = _ifd(gps, gps_at, 0)
    ifd1_at = gps_at + len(gps_blob)
    thumb_at = ifd1_at + 2 + 2 * 12 + 4
    ifd0 = _ifd(
        [
            (0x10F, ascii_, len(make), make),
            (0x112, short, 1, struct.pack("<H", 6)),
            (GPS_IFD, long_, 1, struct.pack("<I", gps_at)),
        ],
        ifd0_at,
        ifd1_at,
    )
    assert len(ifd0) == ifd0_len
    ifd1 = _ifd(
        [
            (0x201, long_, 1, struct.pack("<I", thumb_at)),
            (0x202, long_, 1, struct.pack("<I", len(thumbnail))),
        ],
        ifd1_at,
        0,
    )
    return (
        b"Exif\x00\x00"
        + b"II*\x00"
        + struct.pack("<I", ifd0_at)
        + ifd0
        + gps_blob
        + ifd1
        + thumbnail
    )


def _thumbnail() -> bytes:
    """A tiny JPEG carrying its own canary in a comment."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(out, "JPEG", comment=b"THUMBCANARY")
    return out.getvalue()


def _srgb_icc() -> bytes:
    """An ICC profile whose bytes can be looked for."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _photo() -> bytes:
    """A 40×20 JPEG with EXIF (GPS, make, thumbnail, orientation 6), XMP and an ICC profile."""
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    out = io.BytesIO()
    exif = _exif_with_gps_and_thumbnail(_thumbnail())
    image.save(
        out, "JPEG", exif=exif, xmp=b"<x:xmpmeta>XMPCANARY</x:xmpmeta>", icc_profile=_srgb_icc()
    )
    return out.getvalue()


def test_jpeg_loses_exif_gps_thumbnail_xmp_and_icc() -> None:
    """Nothing but pixels survives; the orientation is applied first."""
    photo = _photo()
    with Image.open(io.BytesIO(photo)) as original:
        assert original.getexif()[0x10F] == "CANARYMAKER"
        assert original.getexif().get_ifd(GPS_IFD)
    for canary in (b"CANARYMAKER", b"GPSCANARY", b"THUMBCANARY", b"XMPCANARY"):
        assert canary in photo
    name, cleaned = clean_attachment("IMG_0001.JPG", "image/jpeg", photo)
    assert name == "IMG_0001.jpg"
    for canary in (
        b"CANARYMAKER",
        b"GPSCANARY",
        b"THUMBCANARY",
        b"XMPCANARY",
        b"Exif",
        b"ICC_PROFILE",
    ):
        assert canary not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert not image.getexif().get_ifd(GPS_IFD)
        assert not {"exif", "xmp", "icc_profile"} & image.info.keys()
        assert image.size == (20, 40)  # orientation 6 turned the picture upright


def test_png_loses_text_chunks_and_exif() -> None:
    """tEXt, zTXt, iTXt and eXIf chunks are gone; the pixels are the same."""
    info = PngInfo()
    info.add_text("Author", "TEXTCANARY")
    info.add_text("Comment", "ZTXTCANARY" * 20, zip=True)
    info.add_itxt("Description", "ITXTCANARY")
    image = Image.new("RGBA", (16, 16), (10, 20, 30, 128))
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=_exif_with_gps_and_thumbnail(b"THUMB"))
    png = out.getvalue()
    assert b"tEXt" in png
    assert b"iTXt" in png
    name, cleaned = clean_attachment("deck.png", "image/png", png)
    assert name == "deck.png"
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"TEXTCANARY", b"ITXTCANARY", b"GPSCANARY"):
        assert chunk not in cleaned
    with Image.open(io.BytesIO(cleaned)) as result:
        assert result.text == {}  # type: ignore[attr-defined]
        assert result.getpixel((3, 3)) == (10, 20, 30, 128)


def test_gif_loses_comment_and_keeps_frames() -> None:
    """An animation keeps its frames and timing, not its comment."""
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], duration=200, comment=b"GIFCANARY"
    )
    assert b"GIFCANARY" in out.getvalue()
    _, cleaned = clean_attachment("a.gif", "image/gif", out.getvalue())
    assert b"GIFCANARY" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as result:
        assert result.n_frames == 2  # type: ignore[attr-defined]
        assert "comment" not in result.info


def test_webp_loses_exif_and_xmp() -> None:
    """WebP's EXIF and XMP chunks are gone."""
    out = io.BytesIO()
    exif = _exif_with_gps_and_thumbnail(b"THUMB")
    Image.new("RGB", (12, 12), (1, 2, 3)).save(out, "WEBP", exif=exif, xmp=b"XMPCANARY")
    assert b"GPSCANARY" in out.getvalue()
    _, cleaned = clean_attachment("a.webp", "image/webp", out.getvalue())
    for canary in (b"GPSCANARY", b"XMPCANARY", b"EXIF", b"XMP "):
        assert canary not in cleaned
    with Image.open(io.BytesIO(cleaned)) as result:
        assert result.format == "WEBP"


def test_tiff_becomes_png_without_tags() -> None:
    """TIFF tags (artist, description) do not survive; the result is a PNG."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "TIFF", tiffinfo={315: "ARTISTCANARY", 270: "DESCCANARY"})
    name, cleaned = clean_attachment("scan.tif", "image/tiff", out.getvalue())
    assert name == "scan.png"
    assert cleaned.startswith(b"\x89PNG")
    assert b"ARTISTCANARY" not in cleaned
    assert b"DESCCANARY" not in cleaned


def test_type_is_decided_by_content() -> None:
    """A JPEG sent as octet-stream is cleaned as a JPEG and named as one."""
    name, cleaned = clean_attachment(
        "C:\\Users\\jsmith\\photo.bin", "application/octet-stream", _photo()
    )
    assert name == "photo.jpg"
    assert b"GPSCANARY" not in cleaned


@pytest.mark.parametrize(
    ("claimed", "data"),
    [
        ("image/jpeg", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32),
        ("image/png", b"%PDF-1.7\n"),
        ("application/pdf", b"\xff\xd8\xff\xe0" + b"\x00" * 32),
        ("image/jpeg", b"just some text"),
        ("image/heic", b"\xff\xd8\xff\xe0" + b"\x00" * 32),
    ],
)
def test_claimed_type_and_content_must_agree(claimed: str, data: bytes) -> None:
    """A mismatch between the claimed image/PDF type and the content is refused."""
    with pytest.raises(AttachmentRefused, match="does not match"):
        clean_attachment("x", claimed, data, allow_other=True)


def test_unknown_type_is_refused_unless_allowed() -> None:
    """Other files pass through unchanged only when the reviewer allows it."""
    with pytest.raises(AttachmentRefused, match="not forwarded"):
        clean_attachment("notes.txt", "text/plain", b"hello")
    assert clean_attachment("../../notes.txt", "text/plain", b"hello", allow_other=True) == (
        "notes.txt",
        b"hello",
    )


def test_unreadable_image_is_refused() -> None:
    """A truncated JPEG is refused, not half-cleaned."""
    photo = _photo()
    with pytest.raises(AttachmentRefused, match="could not be read"):
        clean_attachment("a.jpg", "image/jpeg", photo[: len(photo) // 2])


@pytest.mark.parametrize("side", [40, 100])
def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    """Above the pixel limit Pillow warns (40×40 here) or errors (100×100): both are refusals."""
    out = io.BytesIO()
    Image.new("L", (side, side)).save(out, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(AttachmentRefused, match="too large"):
        clean_attachment("big.png", "image/png", out.getvalue())


def _pdf(**save: object) -> bytes:
    """A one-page PDF with canaries in /Info and XMP, streams left uncompressed."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Author"] = "AUTHORCANARY"
    pdf.docinfo["/Producer"] = "PRODUCERCANARY"
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["dc:creator"] = ["XMPCANARY"]
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, **save)  # type: ignore[arg-type]
    return out.getvalue()


def test_pdf_loses_info_and_xmp() -> None:
    """Document information and XMP are gone; the page stays."""
    original = _pdf()
    for canary in (b"AUTHORCANARY", b"PRODUCERCANARY", b"XMPCANARY"):
        assert canary in original
    name, cleaned = clean_attachment("report.PDF", "application/pdf", original)
    assert name == "report.pdf"
    for canary in (b"AUTHORCANARY", b"PRODUCERCANARY", b"XMPCANARY", b"pikepdf"):
        assert canary not in cleaned
    with pikepdf.open(io.BytesIO(cleaned)) as pdf:
        assert "/Info" not in pdf.trailer
        assert "/Metadata" not in pdf.Root
        assert len(pdf.pages) == 1


@pytest.mark.parametrize("user", ["secret", ""])
def test_encrypted_pdf_is_refused(user: str) -> None:
    """Encrypted PDFs are refused, with or without a password to open them."""
    data = _pdf(encryption=pikepdf.Encryption(owner="owner", user=user))
    with pytest.raises(AttachmentRefused, match="encrypted"):
        clean_attachment("locked.pdf", "application/pdf", data)


def test_unparseable_pdf_is_refused() -> None:
    """A PDF header over garbage is refused."""
    with pytest.raises(AttachmentRefused, match="PDF could not be read"):
        clean_attachment("bad.pdf", "application/pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)


def test_refusal_message_is_one_line() -> None:
    """Messages go straight to the reviewer's terminal."""
    with pytest.raises(AttachmentRefused) as caught:
        clean_attachment("x", "image/png", b"%PDF-1.7\n")
    assert "\n" not in str(caught.value)
