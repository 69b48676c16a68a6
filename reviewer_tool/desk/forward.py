"""Moving bundles and batches: forward to the shared database, import an inbox, export replies.

``/forward`` lists the confirmed reports: those redacted can be ticked and
signed into a batch written to a folder the reviewer names (removable media,
say), as ``batch-YYYY-MM-DD-<8 hex>.jsonl`` with the chosen attachments,
cleaned, in its ``attachments/`` subfolder; those not redacted yet are shown
greyed with a link to redact them. The same code as ``reviewer forward``
does it (reviewer_tool/forward_flow.py), so every refusal (an identity
value left in a field, named; a file that cannot be cleaned; a batch file
already there) comes before anything is written and is shown as a 400.

``/import`` takes the path of an inbox bundle and ``/export`` the path for
the replies bundle, as ``reviewer import`` and ``reviewer export-replies``
do. Paths are the reviewer's own and must be absolute. What a change did
is kept in memory under a random key the redirect carries (the page shows
it once loaded); nothing the reviewer or a reporter wrote goes in an address.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from reviewer_tool.desk.state import current
from reviewer_tool.errors import ReviewerError
from reviewer_tool.forward_flow import (
    ATTACHMENTS_FOLDER,
    batch_file_name,
    build_records,
    forwardable,
    write_batch,
)
from reviewer_tool.importer import import_bundle, verify
from reviewer_tool.replies_flow import export_replies

bp = Blueprint("forward", __name__)

_KEPT_RESULTS = 8


def _absolute(raw: Any, what: str) -> Path:
    """A path the reviewer typed: it must be absolute (the desk has no working folder)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise ReviewerError(f"give the full path of {what}")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise ReviewerError(f"give the full path of {what}, starting with /")
    return path


def _keep(result: dict[str, Any]) -> str:
    """Keep a result for the page the redirect leads to; return its key."""
    kept: dict[str, dict[str, Any]] = current_app.extensions.setdefault("desk_results", {})
    key = secrets.token_hex(8)
    kept[key] = result
    while len(kept) > _KEPT_RESULTS:
        kept.pop(next(iter(kept)))
    return key


def _kept(kind: str) -> dict[str, Any] | None:
    kept: dict[str, dict[str, Any]] = current_app.extensions.get("desk_results", {})
    result = kept.get(request.args.get("result", ""))
    return result if result is not None and result.get("kind") == kind else None


# --- forwarding ---------------------------------------------------------------------------


def _lists() -> dict[str, Any]:
    ws = current().ws
    ready, waiting = forwardable(ws, include_forwarded=True)
    return {
        "ready": [item for item in ready if not item.record.get("forwarded")],
        "again": [item for item in ready if item.record.get("forwarded")],
        "waiting": waiting,
    }


def _forward_page(error: str | None = None, status: int = 200, **keep: Any) -> Response:
    context = {**_lists(), "error": error, "result": _kept("forward"), **keep}
    return Response(render_template("forward.html", **context), status)


@bp.get("/forward")
def page() -> Response:
    """The reports that can be forwarded, and the form to sign a batch of them."""
    return _forward_page(chosen=None, folder="")


@bp.post("/forward")
def send() -> Response:
    """Sign the chosen reports into a batch in the chosen folder, or refuse, writing nothing."""
    state = current()
    ws = state.ws
    ids = set(request.form.getlist("report"))
    folder_text = request.form.get("folder", "")
    try:
        ready, _ = forwardable(ws, include_forwarded=True)
        items = [item for item in ready if item.id in ids]
        if len(items) != len(ids):
            raise ReviewerError("a report chosen is not confirmed and redacted; reload the page")
        if not items:
            raise ReviewerError("choose at least one report to forward")
        folder = _absolute(folder_text, "the folder to write the batch to")
        if not folder.is_dir():
            raise ReviewerError(f"{folder} is not an existing folder; nothing written")
        records = build_records(ws, items)  # refuses a record that still names anyone
        out, attachments = folder / batch_file_name(), folder / ATTACHMENTS_FOLDER
        done = write_batch(ws, items, records, out, attachments)
    except ReviewerError as error:
        return _forward_page(error.diagnostics(), 400, chosen=ids, folder=folder_text)
    state.changed([item.id for item in items])
    key = _keep({
        "kind": "forward", "out": str(done.out), "records": done.records,
        "signer": done.signer, "attachments": done.attachments,
        "attachments_dir": str(done.attachments_dir) if done.attachments else None,
    })  # fmt: skip
    return redirect(url_for("forward.page", result=key), 303)  # type: ignore[return-value]


# --- import -------------------------------------------------------------------------------


def _import_page(error: str | None = None, status: int = 200, path: str = "") -> Response:
    context = {"error": error, "result": _kept("import"), "path": path}
    return Response(render_template("import.html", **context), status)


@bp.get("/import")
def import_page() -> Response:
    """The form to import an inbox bundle from a path."""
    return _import_page()


@bp.post("/import")
def import_send() -> Response:
    """Verify and import an inbox bundle, as ``reviewer import`` does."""
    state = current()
    ws = state.ws
    text = request.form.get("path", "")
    before = ws.submission_ids()
    try:
        path = _absolute(text, "the inbox bundle")
        if not path.is_file():
            raise ReviewerError(f"{path} is not an existing file")
        result = import_bundle(ws, verify(ws, path))
    except ReviewerError as error:
        return _import_page(error.diagnostics(), 400, text)
    team = getattr(result, "team", None)
    if team is not None and (team.accepted or team.directory == "new"):
        state.rebuild()  # team updates may have changed any report
    else:
        state.changed(ws.submission_ids() - before)
    key = _keep({
        "kind": "import", "imported": result.imported, "already": result.already,
        "not_for_you": result.not_for_you, "followups": result.followups,
        "orphans": result.orphans, "unreadable": list(result.unreadable),
        "refused": [item_id for item_id, _ in result.refused],
        "unreadable_followups": [f for f, _ in result.unreadable_followups],
        "team": team.summary() if team is not None else None,
        "team_problems": list(team.problems) if team is not None else [],
    })  # fmt: skip
    return redirect(url_for("forward.import_page", result=key), 303)  # type: ignore[return-value]


# --- export -------------------------------------------------------------------------------


def _export_page(error: str | None = None, status: int = 200, path: str = "") -> Response:
    context = {"error": error, "result": _kept("export"), "path": path}
    return Response(render_template("export.html", **context), status)


@bp.get("/export")
def export_page() -> Response:
    """The form to write the replies bundle to a path."""
    return _export_page()


@bp.post("/export")
def export_send() -> Response:
    """Write the replies bundle, as ``reviewer export-replies`` does (never overwriting)."""
    state = current()
    text = request.form.get("path", "")
    try:
        out = _absolute(text, "the replies bundle (or a folder for it)")
        if out.is_dir():
            day = datetime.now(UTC).date().isoformat()
            out = out / f"replies-{day}-{secrets.token_hex(4)}.bundle"
        if out.exists():
            raise ReviewerError(f"{out} exists; choose another name. Nothing written.")
        if not out.parent.is_dir():
            raise ReviewerError(f"{out.parent} is not an existing folder; nothing written")
        done = export_replies(state.ws, out)
    except ReviewerError as error:
        return _export_page(error.diagnostics(), 400, text)
    key = _keep({
        "kind": "export", "out": str(done.out), "replies": done.replies,
        "team_updates": done.team_updates,
        "acknowledges": ", ".join(f"{a}-{b}" for a, b in done.acknowledges) or "nothing",
        "held_back": done.held_back,
    })  # fmt: skip
    return redirect(url_for("forward.export_page", result=key), 303)  # type: ignore[return-value]
