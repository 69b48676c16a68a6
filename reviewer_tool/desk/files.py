"""A report's files on the desk: cleaned previews of images, every other file only exported.

A file a reporter sent is never shown as it came. An image is shown only as
the copy reviewer_tool/redaction/attachments.py rebuilds from its pixels (no
EXIF, GPS, maker notes or profiles), served with the type its cleaned bytes
announce, ``nosniff``, and a CSP that allows nothing and sandboxes it, so
even opened on its own in a tab it can run nothing. Anything else is never
rendered on the workstation: it is offered as a download (always
``application/octet-stream`` and ``attachment``), cleaned where it can be
(PDFs lose their metadata), or, where it cannot, exported as it is after
an explicit second button that says so.

No page decodes a file. A page needs only what a file's first bytes and
its image header say (its kind, its width, height and frame count): a
reporter can send a small file that decodes to a gigabyte of pixels, and
the desk answers one request at a time, so decoding while drawing a page
would stall every page after it. An image is cleaned when its preview is
asked for, and one of more than :data:`PREVIEW_PIXELS` is not previewed at
all: the page says so and offers it for export. Cleaned copies are kept in
memory, at most :data:`KEPT_BYTES` of them (the least recently shown
dropped first), never on disk.
"""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, abort, current_app, g
from PIL import Image

from reviewer_tool.errors import ReviewerError
from reviewer_tool.forward_flow import SHARED_TYPES
from reviewer_tool.redaction import AttachmentRefused, clean_attachment

# claimed_kind: the same rule clean_attachment holds a file's content to, so that a page
# says "cannot be cleaned" for exactly the files cleaning would refuse, without cleaning them
from reviewer_tool.redaction.attachments import claimed_kind, sniff
from reviewer_tool.workspace import Item, Workspace

#: the kinds a browser may be given to show, by the cleaned bytes' own magic
IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
#: a file that may do nothing: no script, style, frame, form, fetch or plugin
SANDBOX_CSP = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
)
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "pdf": ".pdf"}
#: the most pixels (width × height × frames) the desk decodes to preview an image: a
#: larger one is offered for export only (a 40-megapixel photo is larger than any phone's)
PREVIEW_PIXELS = 40_000_000
#: the cleaned copies kept in memory, in bytes; a larger copy is made again when asked for
KEPT_BYTES = 64 * 1024 * 1024
#: what the header of each file said, kept for the desk's life (a few numbers each)
_PROBES_KEPT = 4096
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF"}
#: the kind of the cleaned copy, by the kind of the file as sent (TIFF is cleaned into PNG)
_CLEANED_KIND = {
    "jpeg": "jpeg", "png": "png", "gif": "gif", "webp": "webp", "tiff": "png", "pdf": "pdf",
}  # fmt: skip


@dataclass(frozen=True)
class FileView:
    """One attachment as a page shows it."""

    position: int  # counted from 1, as the workspace stores it
    name: str  # the reporter's file name: shown as escaped text, never used as a name here
    media_type: str  # as the reporter's manifest claimed it
    size: int
    #: "image" (a cleaned preview is shown), "large" (an image too large to preview: its
    #: cleaned copy can be exported), "cleaned" (a cleaned copy can be exported), "raw"
    #: (it cannot be cleaned: only exported as is, after a warning)
    kind: str
    #: why it cannot be cleaned, in our words
    problem: str | None = None
    #: whether the shared database would take the cleaned copy (JPEG, PNG, PDF)
    forwardable: bool = False
    #: an image's pixels, summed over its frames, as its header gives them
    pixels: int = 0

    @property
    def megapixels(self) -> str:
        """The pixels in millions, for a sentence ("88")."""
        return f"{self.pixels / 1e6:,.0f}"


@dataclass(frozen=True)
class Probe:
    """What a file's first bytes and header say about it: no pixel is decoded."""

    kind: str  # as FileView.kind
    problem: str | None = None
    forwardable: bool = False
    pixels: int = 0


Owner = tuple[str, str]  # ("report", report id) or ("followup", follow-up id)


def _original(ws: Workspace, owner: Owner, position: int) -> bytes:
    kind, owner_id = owner
    if kind == "report":
        return ws.attachment(owner_id, position)
    return ws.followup_attachment(owner_id, position)


def _kept(name: str) -> OrderedDict[Any, Any]:
    kept: OrderedDict[Any, Any] = current_app.extensions.setdefault(name, OrderedDict())
    return kept


def cleaned(ws: Workspace, owner: Owner, position: int, entry: dict[str, Any]) -> bytes:
    """The attachment without metadata; raises AttachmentRefused when it cannot be cleaned.

    Only a preview or an export asks for it, never a page. A refusal is
    remembered, so that the pages from then on say the file cannot be cleaned.
    """
    kept = _kept("desk_cleaned")
    key = (*owner, position)
    if key in kept:
        kept.move_to_end(key)
        data: bytes = kept[key]
        return data
    original = _original(ws, owner, position)
    try:
        _, data = clean_attachment("attachment", str(entry["media_type"]), original)
    except AttachmentRefused as error:
        _remember(key, Probe("raw", str(error)))
        raise
    if len(data) <= KEPT_BYTES:
        kept[key] = data
        total = sum(len(copy) for copy in kept.values())
        while total > KEPT_BYTES:
            total -= len(kept.popitem(last=False)[1])
    return data


def _remember(key: tuple[str, str, int], probe: Probe) -> Probe:
    probes = _kept("desk_probes")
    probes[key] = probe
    while len(probes) > _PROBES_KEPT:
        probes.popitem(last=False)
    return probe


def _probe(ws: Workspace, owner: Owner, position: int, entry: dict[str, Any]) -> Probe:
    """What the file's header says (raises ReviewerError when it is not in the workspace)."""
    probes = _kept("desk_probes")
    key = (*owner, position)
    if key in probes:
        probes.move_to_end(key)
        found: Probe = probes[key]
        return found
    original = _original(ws, owner, position)
    return _remember(key, header_probe(original, str(entry.get("media_type", ""))))


def header_probe(data: bytes, media_type: str) -> Probe:
    """How a file would be offered, from its first bytes and its image header alone."""
    actual = sniff(data) or ""
    claimed = claimed_kind(media_type)
    if actual not in _CLEANED_KIND or (claimed is not None and claimed != actual):
        try:  # refused on these grounds before any content is read: cheap, and its words
            clean_attachment("attachment", media_type, data)
        except AttachmentRefused as error:
            return Probe("raw", str(error))
        return Probe("raw", "it cannot be cleaned")  # not reached: cleaning refuses it
    forwardable = _CLEANED_KIND[actual] in SHARED_TYPES
    if actual == "pdf":
        return Probe("cleaned", forwardable=forwardable)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the size is checked below, against our budget
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[actual]]) as image:
                width, height = image.size  # from the header: no pixel is decoded
                frames = max(1, int(getattr(image, "n_frames", 1)))
    except Image.DecompressionBombError:
        return Probe("raw", "the image is too large to open safely")
    except (OSError, SyntaxError, ValueError, EOFError):
        return Probe("raw", f"the {actual.upper()} image could not be read")
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        return Probe("raw", "the image is too large to open safely")  # as cleaning says
    pixels = width * height * frames
    kind = "image" if pixels <= PREVIEW_PIXELS else "large"
    return Probe(kind, forwardable=forwardable, pixels=pixels)


def file_views(ws: Workspace, owner: Owner, entries: list[dict[str, Any]]) -> list[FileView]:
    """How each of ``entries`` (a report's or follow-up's manifest) is offered.

    Nothing is decoded or cleaned here: see the module's docstring.
    """
    views = []
    for position, entry in enumerate(entries, start=1):
        try:
            found = _probe(ws, owner, position, entry)
        except ReviewerError:
            found = Probe("raw", "it is not in the workspace")
        view = FileView(
            position, str(entry.get("name", "")), str(entry.get("media_type", "")),
            int(entry.get("size", 0)), kind=found.kind, problem=found.problem,
            forwardable=found.forwardable, pixels=found.pixels,
        )  # fmt: skip
        views.append(view)
    return views


def entries_of(ws: Workspace, item: Item, followup_id: str | None) -> tuple[Owner, list[Any]]:
    """The owner and manifest of a report's files, or of one of its follow-ups' (404 if the
    follow-up is not this report's)."""
    if followup_id is None:
        return ("report", item.id), item.record["report"].get("attachments", [])
    for followup in ws.followups(item.id):
        if followup.id == followup_id:
            return ("followup", followup.id), followup.record["followup"]["attachments"]
    abort(404)


def _entry(entries: list[Any], position: int) -> dict[str, Any]:
    if not 1 <= position <= len(entries):
        abort(404)
    entry: dict[str, Any] = entries[position - 1]
    return entry


def preview(ws: Workspace, owner: Owner, entries: list[Any], position: int) -> Response:
    """The cleaned copy of an image, to be shown in a page; 404 for anything else.

    An image over :data:`PREVIEW_PIXELS` is refused before any of it is decoded.
    """
    entry = _entry(entries, position)
    try:
        found = _probe(ws, owner, position, entry)
    except ReviewerError:
        abort(404)
    if found.kind == "large":
        raise ReviewerError(
            f"photo {position} is too large to preview ({found.pixels / 1e6:,.0f} megapixels):"
            " download its cleaned copy instead"
        )
    if found.kind != "image":
        abort(404)
    try:
        data = cleaned(ws, owner, position, entry)
    except (AttachmentRefused, ReviewerError):
        abort(404)
    kind = sniff(data) or ""
    if kind not in IMAGE_TYPES:
        abort(404)
    g.desk_file = True
    response = Response(data, 200, mimetype=IMAGE_TYPES[kind])
    response.headers["Content-Disposition"] = "inline"
    return response


def export(
    ws: Workspace, owner: Owner, entries: list[Any], position: int, *, as_is: bool, stem: str
) -> Response:
    """A download of the cleaned copy, or (``as_is``) of the file exactly as it came.

    The name is made here from ``stem`` and the position: the reporter's
    file name never reaches a header or the reviewer's disk.
    """
    entry = _entry(entries, position)
    if as_is:
        data, extension = _original(ws, owner, position), ".bin"
    else:
        try:
            data = cleaned(ws, owner, position, entry)
        except AttachmentRefused as error:
            raise ReviewerError(
                f"attachment {position} cannot be cleaned ({error}); export it as is instead"
            ) from None
        extension = _EXTENSIONS.get(sniff(data) or "", ".bin")
    g.desk_file = True
    response = Response(data, 200, mimetype="application/octet-stream")
    label = "as-sent" if as_is else "cleaned"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{stem}-{position}-{label}{extension}"'
    )
    return response


def _sandboxed(response: Response) -> Response:
    """Give a file's answer :data:`SANDBOX_CSP` instead of the page policy."""
    if g.get("desk_file"):
        response.headers["Content-Security-Policy"] = SANDBOX_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install(app: Flask) -> None:
    """Run :func:`_sandboxed` after the shared headers are set.

    web_hardening sets its headers in an app-wide after-request hook, which
    would overwrite this one; Flask runs those hooks in reverse order of
    registration, so the first in the list runs last.
    """
    funcs = app.after_request_funcs.setdefault(None, [])
    if _sandboxed not in funcs:
        funcs.insert(0, _sandboxed)
