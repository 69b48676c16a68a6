"""Strip identifying metadata from attachments before a report is forwarded.

Images (JPEG, PNG, GIF, WebP, TIFF; the type is decided by the content's magic
bytes) are decoded and re-encoded from their pixels alone, after applying the
EXIF orientation, so no EXIF (GPS, camera make and model, serial numbers,
thumbnail), XMP, IPTC, PNG text chunks or GIF comments survive. ICC profiles are
dropped too, since their description and copyright fields can name the device
maker; pixels are first converted to sRGB so colours do not shift. TIFF is written
out as PNG, since TIFF tags are another place for metadata to hide.

PDFs lose their document information dictionary, every /Metadata (XMP) stream and
/PieceInfo (application private data), and get a file identifier derived from the
content. Text, images and attachments *inside* a PDF are not rewritten: the
reviewer must still read it before forwarding.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings

import pikepdf
from PIL import Image, ImageCms, ImageOps

_IMAGE_KINDS = ("jpeg", "png", "gif", "webp", "tiff")
_CLAIMED = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/x-png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/tiff": "tiff",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
}
_EXTENSION = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "tiff": ".png"}
_PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF"}
_SAVE_AS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "PNG"}
_SAVE_MODES = {
    "JPEG": ("L", "RGB"),
    "PNG": ("1", "L", "LA", "RGB", "RGBA", "I;16"),
    "GIF": ("L", "RGB", "RGBA"),
    "WEBP": ("RGB", "RGBA"),
}
_MAX_FRAMES = 1000


# The name is the reviewer CLI's interface; "Refused" already says it is a failure.
class AttachmentRefused(Exception):  # noqa: N818
    """An attachment that cannot be forwarded; the message is one line for the reviewer."""


def sniff(data: bytes) -> str | None:
    """The attachment kind its first bytes announce, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"%PDF-"):
        return "pdf"
    return None


def claimed_kind(media_type: str) -> str | None:
    """The kind a declared media type promises ("image" for an image type we do
    not know by name), or None when it promises nothing we hold it to."""
    declared = media_type.split(";", 1)[0].strip().lower()
    return _CLAIMED.get(declared, "image" if declared.startswith("image/") else None)


def clean_attachment(
    name: str, media_type: str, data: bytes, *, allow_other: bool = False
) -> tuple[str, bytes]:
    """Return a safe file name and the bytes without metadata; raises ``AttachmentRefused``."""
    declared = media_type.split(";", 1)[0].strip().lower()
    claimed = claimed_kind(declared)
    actual = sniff(data)
    if claimed is not None and claimed != actual and (actual or claimed != "image"):
        shown = actual.upper() if actual else "not a recognised image or PDF"
        raise AttachmentRefused(f"claimed type {declared} does not match the content ({shown})")
    if actual == "pdf":
        return _file_name(name, ".pdf"), _clean_pdf(data)
    if actual in _IMAGE_KINDS:
        return _file_name(name, _EXTENSION[actual]), _clean_image(data, actual)
    if allow_other:
        return _file_name(name, None), data
    raise AttachmentRefused(f"attachments of type {declared or 'unknown'} are not forwarded")


def _file_name(name: str, extension: str | None) -> str:
    """The last path component without control characters, with the given extension."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C"))
    base = base.strip().lstrip(".") or "attachment"
    if extension is None:
        return base
    stem, dot, _ = base.rpartition(".")
    return (stem if dot and stem else base) + extension


def _clean_image(data: bytes, kind: str) -> bytes:
    """Decode an image and encode its pixels alone."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd metadata we drop anyway; a decompression bomb
            # warning, though, must stop us before the pixels are decoded.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]]) as image:
                frames, durations = _frames(image, kind)
                loop = image.info.get("loop", 0)
                return _encode(frames, durations, loop, _SAVE_AS[kind])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AttachmentRefused("the image is too large to open safely") from None
    except (OSError, SyntaxError, ValueError, EOFError, ImageCms.PyCMSError):
        raise AttachmentRefused(f"the {kind.upper()} image could not be read") from None


def _frames(image: Image.Image, kind: str) -> tuple[list[Image.Image], list[int]]:
    """Every frame as a fresh image (pixels only) and each frame's duration."""
    count = getattr(image, "n_frames", 1)
    pixels = image.width * image.height * count
    if count > _MAX_FRAMES or (Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS):
        raise AttachmentRefused("the image has too many frames to open safely")
    if kind == "tiff" and count > 1:
        raise AttachmentRefused("multi-page TIFF is not supported: send the pages as images")
    icc = image.info.get("icc_profile")
    frames: list[Image.Image] = []
    durations: list[int] = []
    for index in range(count):
        image.seek(index)
        durations.append(int(image.info.get("duration", 0) or 0))
        frames.append(_fresh(ImageOps.exif_transpose(image), icc, _SAVE_AS[kind]))
    return frames, durations


def _fresh(frame: Image.Image, icc: bytes | None, fmt: str) -> Image.Image:
    """The frame's pixels in sRGB, in a new image that carries no info at all."""
    has_alpha = "A" in frame.getbands() or "transparency" in frame.info
    if frame.mode not in ("RGB", "RGBA", "L", "LA", "1", "I;16"):
        frame = frame.convert("RGBA" if has_alpha else "RGB")
    if icc and frame.mode in ("RGB", "RGBA"):
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(frame, source, ImageCms.createProfile("sRGB"))
        frame = converted if converted is not None else frame
    if frame.mode not in _SAVE_MODES[fmt]:
        frame = frame.convert("RGBA" if "A" in frame.getbands() and fmt != "JPEG" else "RGB")
    # frombytes builds an image from raw pixels alone, so no info dict, EXIF cache or
    # text chunk of the decoded file can reach the encoder.
    return Image.frombytes(frame.mode, frame.size, frame.tobytes())


def _encode(frames: list[Image.Image], durations: list[int], loop: int, fmt: str) -> bytes:
    """Encode fresh frames; only timing is carried over from the original."""
    out = io.BytesIO()
    first, rest = frames[0], frames[1:]
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 90
    if rest:
        options.update(save_all=True, append_images=rest, duration=durations, loop=loop)
    first.save(out, fmt, **options)
    return out.getvalue()


def _clean_pdf(data: bytes) -> bytes:
    """Drop a PDF's document information, XMP metadata and application private data."""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                raise AttachmentRefused("encrypted PDFs are not forwarded: send it unprotected")
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                    for key in ("/Metadata", "/PieceInfo"):
                        if key in obj:
                            del obj[key]
            out = io.BytesIO()
            # A content-derived /ID cannot link the copy to the reporter's original file.
            pdf.save(out, deterministic_id=True, fix_metadata_version=False)
            return out.getvalue()
    except pikepdf.PasswordError:
        raise AttachmentRefused("encrypted PDFs are not forwarded: send it unprotected") from None
    except pikepdf.PdfError:
        raise AttachmentRefused("the PDF could not be read") from None
