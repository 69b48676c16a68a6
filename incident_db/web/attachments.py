"""Attachments forwarded by reviewers: served to signed-in members, never as active content.

``GET /attachments/<sha256>`` answers with the stored bytes under the media
type the signed batch declared and the database checked (JPEG, PNG or PDF,
see incident_db/attachments.py). Re-encoded images (the reviewer tool
rebuilt them from their pixels) may be shown in a page; anything else, a PDF
included, is only ever a download (``Content-Disposition: attachment``),
whose fetch is written to the audit log like every export. Every answer
says ``nosniff`` and carries a CSP with ``sandbox`` and nothing allowed, so
even a file opened on its own, in its own tab, can run nothing and reach
nothing.

The incident page lists an incident's files with the template global
``incident_attachments(incident_id)`` and ``incident_attachments.html``.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, abort, g

from incident_db.attachments import INLINE_TYPES, StoredAttachment, attachments_of, stored_file
from incident_db.members import store
from incident_db.web import sessions

attachments = Blueprint("attachments", __name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the names a batch may give (crypto/SPEC.md §16.9), checked again before a header holds one
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
#: a document that may do nothing: no script, style, frame, form, fetch or plugin
SANDBOX_CSP = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
)


@attachments.app_template_global()
def incident_attachments(incident_id: str) -> list[StoredAttachment]:
    """The attachments of an incident, for its page."""
    return attachments_of(sessions.database().connection(), str(incident_id))


@attachments.get("/attachments/<sha256>")
@sessions.requires("member")
def download(sha256: str) -> Response:
    """One stored file, by its SHA-256."""
    if not _SHA256.fullmatch(sha256):
        abort(404, "No such attachment.")
    db = sessions.database()
    found = stored_file(db.connection(), sha256)
    if found is None:
        abort(404, "No such attachment.")
    attachment, content = found
    name = attachment.name if _SAFE_NAME.fullmatch(attachment.name) else "attachment"
    inline = attachment.media_type in INLINE_TYPES
    if not inline:
        store.audit(db, sessions.member().handle, "attachment.download", sha256,
                    {"name": name, "media_type": attachment.media_type})  # fmt: skip
        db.commit()
    g.attachment_served = True
    response = Response(content, 200, mimetype=attachment.media_type)
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


def _sandboxed(response: Response) -> Response:
    """Replace the page CSP with :data:`SANDBOX_CSP` on an answer that carries a file.

    Only there: the sign-in page a stranger gets instead needs its script.
    """
    if g.get("attachment_served"):
        response.headers["Content-Security-Policy"] = SANDBOX_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@attachments.record_once
def _install(state: object) -> None:
    """Run :func:`_sandboxed` after the shared headers are set.

    web_hardening sets its headers in an app-wide after-request hook, which
    would overwrite any header this blueprint set; Flask runs those hooks in
    reverse order of registration, so the first in the list runs last.
    """
    app: Flask = state.app  # type: ignore[attr-defined]
    app.after_request_funcs.setdefault(None, []).insert(0, _sandboxed)
