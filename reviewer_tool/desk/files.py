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

Cleaned copies are kept in memory for the pages that show them (a few, the
most recent), never on disk.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, Response, abort, current_app, g

from reviewer_tool.errors import ReviewerError
from reviewer_tool.forward_flow import SHARED_TYPES
from reviewer_tool.redaction import AttachmentRefused, clean_attachment
from reviewer_tool.redaction.attachments import sniff
from reviewer_tool.workspace import Item, Workspace

#: the kinds a browser may be given to show, by the cleaned bytes' own magic
IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
#: a file that may do nothing: no script, style, frame, form, fetch or plugin
SANDBOX_CSP = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
)
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "pdf": ".pdf"}
_KEPT = 16  # cleaned copies held in memory


@dataclass(frozen=True)
class FileView:
    """One attachment as a page shows it."""

    position: int  # counted from 1, as the workspace stores it
    name: str  # the reporter's file name: shown as escaped text, never used as a name here
    media_type: str  # as the reporter's manifest claimed it
    size: int
    #: "image" (a cleaned preview is shown), "cleaned" (a cleaned copy can be exported),
    #: "raw" (it cannot be cleaned: only exported as is, after a warning)
    kind: str
    #: why it cannot be cleaned, in our words
    problem: str | None = None
    #: whether the shared database would take the cleaned copy (JPEG, PNG, PDF)
    forwardable: bool = False


Owner = tuple[str, str]  # ("report", report id) or ("followup", follow-up id)


def _original(ws: Workspace, owner: Owner, position: int) -> bytes:
    kind, owner_id = owner
    if kind == "report":
        return ws.attachment(owner_id, position)
    return ws.followup_attachment(owner_id, position)


def cleaned(ws: Workspace, owner: Owner, position: int, entry: dict[str, Any]) -> bytes:
    """The attachment without metadata; raises AttachmentRefused when it cannot be cleaned."""
    kept: OrderedDict[tuple[str, str, int], bytes] = current_app.extensions.setdefault(
        "desk_cleaned", OrderedDict()
    )
    key = (*owner, position)
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    original = _original(ws, owner, position)
    _, data = clean_attachment("attachment", str(entry["media_type"]), original)
    kept[key] = data
    while len(kept) > _KEPT:
        kept.popitem(last=False)
    return data


def file_views(ws: Workspace, owner: Owner, entries: list[dict[str, Any]]) -> list[FileView]:
    """How each of ``entries`` (a report's or follow-up's manifest) is offered."""
    views = []
    for position, entry in enumerate(entries, start=1):
        base = FileView(
            position, str(entry.get("name", "")), str(entry.get("media_type", "")),
            int(entry.get("size", 0)), kind="raw",
        )  # fmt: skip
        try:
            data = cleaned(ws, owner, position, entry)
        except AttachmentRefused as error:
            views.append(replace(base, problem=str(error)))
            continue
        except ReviewerError:
            views.append(replace(base, problem="it is not in the workspace"))
            continue
        found = sniff(data) or ""
        kind = "image" if found in IMAGE_TYPES else "cleaned"
        views.append(replace(base, kind=kind, forwardable=found in SHARED_TYPES))
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
    """The cleaned copy of an image, to be shown in a page; 404 for anything else."""
    entry = _entry(entries, position)
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
