"""What an attachment's bytes may be, and an editor's file cleaned of metadata.

Both ways in share these checks: a file a reviewer batch lists
(:func:`incident_db.attachments.load_attachments`) and a file an editor
attaches on an incident's page (:func:`clean_upload`). A file must be of a
type in :data:`ALLOWED_TYPES`, within :data:`MAX_BYTES`, and look like that
type (:func:`looks_like`: its first bytes, and for images a full decode).

An editor's file was cleaned by nobody before, so images are rebuilt here
from their pixels alone and PDFs lose their document metadata. Nothing here
touches the database; storing is :mod:`incident_db.attachments`.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

import pikepdf
from PIL import Image, ImageCms, ImageOps

from incident_db.errors import IncidentDbError

#: what the database accepts, and the format Pillow must be able to open it as
ALLOWED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": None}
#: the first bytes each allowed type begins with
_MAGIC = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "application/pdf": b"%PDF-",
}
#: the database's own limit on one file (the format allows more, §16.9)
MAX_BYTES = 10 * 1024 * 1024
#: a decoded image larger than this is refused rather than opened: a small file may
#: describe a huge picture, and every member's browser would decode it (4 bytes a pixel)
_MAX_PIXELS = 16_000_000


def looks_like(media_type: str, content: bytes) -> bool:
    """§16.11: the content's first bytes, and for images Pillow, agree with the type."""
    if not content.startswith(_MAGIC[media_type]):
        return False
    pillow_format = ALLOWED_TYPES[media_type]
    if pillow_format is None:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=[pillow_format]) as image:
                if image.width * image.height > _MAX_PIXELS:
                    return False
                image.verify()  # the structure (PNG checksums)
            with Image.open(io.BytesIO(content), formats=[pillow_format]) as image:
                image.load()  # and every pixel decodes, within the limit above
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return False
    except (OSError, SyntaxError, ValueError, EOFError):
        return False
    return True


# --- files an editor attaches on an incident's page ------------------------------------

#: a stored name: what crypto/SPEC.md §16.9 allows a batch to give
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


class UploadError(IncidentDbError):
    """An editor's file was refused; the message is one line for the page."""

    failure_class = "attachment refused"


@dataclass(frozen=True)
class Upload:
    """A cleaned file, ready to store: its name, type and bytes."""

    name: str
    media_type: str
    content: bytes


def upload_name(filename: str, media_type: str) -> str:
    """A name for an uploaded file that a batch could carry too (:data:`NAME`).

    The last path component, folded to ASCII, every run of other characters
    a hyphen, at most 120 characters, with the extension of its real type.
    """
    extension = _EXTENSIONS[media_type]
    base = re.split(r"[\\/]", filename)[-1]
    stem, dot, _ = base.rpartition(".")
    stem = stem if dot and stem.strip(".") else base
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_stem).strip("._-")
    stem = stem[: 120 - len(extension)].rstrip("._-") or "attachment"
    name = stem + extension
    assert NAME.fullmatch(name), name  # noqa: S101 (the steps above make it so)
    return name


def _sniffed(content: bytes) -> str:
    for media_type, magic in _MAGIC.items():
        if content.startswith(magic):
            return media_type
    raise UploadError("only JPEG and PNG photos and PDF documents can be attached")


def _pixels_only(content: bytes, pillow_format: str) -> bytes:
    """The image's pixels in a new file: no EXIF (GPS!), XMP, text chunk or ICC profile.

    The EXIF orientation is applied first and the colours brought to sRGB,
    so the picture looks as it did. An animated PNG keeps its first frame.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=[pillow_format]) as image:
                icc = image.info.get("icc_profile")
                frame = ImageOps.exif_transpose(image)
                alpha = "A" in frame.getbands() or "transparency" in frame.info
                if frame.mode not in ("RGB", "RGBA", "L", "LA"):
                    frame = frame.convert("RGBA" if alpha else "RGB")
                if icc and frame.mode in ("RGB", "RGBA"):
                    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                    srgb = ImageCms.createProfile("sRGB")
                    frame = ImageCms.profileToProfile(frame, source, srgb) or frame
                if pillow_format == "JPEG" and frame.mode not in ("L", "RGB"):
                    frame = frame.convert("RGB")
                # built from raw pixels: nothing of the decoded file's info can follow
                fresh = Image.frombytes(frame.mode, frame.size, frame.tobytes())
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError("the image is too large to open safely") from None
    except (OSError, SyntaxError, ValueError, EOFError, ImageCms.PyCMSError):
        raise UploadError(f"the {pillow_format} image could not be read") from None
    out = io.BytesIO()
    options = {"quality": 90} if pillow_format == "JPEG" else {}
    fresh.save(out, pillow_format, **options)
    return out.getvalue()


def _without_pdf_metadata(content: bytes) -> bytes:
    """The PDF without its document information, XMP streams and private application data.

    What the pages say is not rewritten: the editor must read it first.
    """
    try:
        with pikepdf.open(io.BytesIO(content)) as pdf:
            if pdf.is_encrypted:
                raise UploadError("an encrypted PDF cannot be attached: save it unprotected")
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                    for key in ("/Metadata", "/PieceInfo"):
                        if key in obj:
                            del obj[key]
            out = io.BytesIO()
            pdf.save(out, deterministic_id=True, fix_metadata_version=False)
            return out.getvalue()
    except pikepdf.PasswordError:
        raise UploadError("an encrypted PDF cannot be attached: save it unprotected") from None
    except pikepdf.PdfError:
        raise UploadError("the PDF could not be read") from None


def clean_upload(filename: str, content: bytes, *, max_bytes: int = MAX_BYTES) -> Upload:
    """Check an editor's file as a batch's are checked, and strip its metadata.

    The type is what the content is (JPEG, PNG or PDF), whatever the name or
    the browser says. Raises :class:`UploadError`.
    """
    if not content:
        raise UploadError("the file is empty")
    if len(content) > max_bytes:
        raise UploadError(f"the file is over the limit of {max_bytes // (1024 * 1024)} MB")
    media_type = _sniffed(content)
    if not looks_like(media_type, content):
        raise UploadError(f"the content is not a valid {media_type} file")
    pillow_format = ALLOWED_TYPES[media_type]
    if pillow_format is None:
        cleaned = _without_pdf_metadata(content)
    else:
        cleaned = _pixels_only(content, pillow_format)
    if len(cleaned) > max_bytes or not looks_like(media_type, cleaned):
        raise UploadError("the file could not be cleaned within the limit")
    return Upload(upload_name(filename, media_type), media_type, cleaned)
