"""The report page: every field, the identity section apart, files, conversation and triage.

``GET /report/<id>`` shows one report as the reviewer works on it: its
fields with their labels, the reporter's language, the identity section in
a region of its own that says it is never forwarded, its files (images as
cleaned previews, anything else for export only: reviewer_tool/desk/files.py),
the whole conversation with the reply composer and the status the reporter
sees, and the team's work on it (triage with the Admiralty scales explained,
labels, assignment, duplicate links with suggestions, team and personal
notes, history). Follow-up messages shown here are marked read.

Every change is a POST handled in reviewer_tool/desk/triage.py through
reviewer_tool/team/actions.py, answered with a 303 back to this page and a
fixed message key (``?done=``); nothing a reviewer or reporter wrote is ever
put in an address.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from reviewer_tool import admiralty
from reviewer_tool.desk import display, files, triage
from reviewer_tool.desk.state import current
from reviewer_tool.followups import conversation
from reviewer_tool.languages import describe, language_of
from reviewer_tool.team import actions
from reviewer_tool.team.wire import REPORTER_STATUSES, TRIAGE_STATUSES
from reviewer_tool.workspace import Item, Workspace

bp = Blueprint("report", __name__)

_ID = re.compile(r"[0-9a-f]{32}")
#: what the page says after a change, by the key the redirect carries
DONE = {
    "triaged": "Triage saved.",
    "labelled": "Label added.",
    "unlabelled": "Label removed.",
    "assigned": "Assignment saved.",
    "linked": "Link saved.",
    "unlinked": "Link removed.",
    "noted": "Team note added. The team sees it after the next replies bundle.",
    "noted-personal": "Personal note kept on this workstation.",
    "replied": "Reply queued. It leaves with the next replies bundle (Export replies).",
}
#: what each triage status means, for the radio buttons
TRIAGE_MEANINGS = {
    "confirmed": "Confirmed: a real incident, to be redacted and forwarded",
    "unconfirmed": "Unconfirmed: not yet known to be true",
    "rejected": "Rejected: not an incident, or not credible",
}
#: what the reporter reads for each status they can be shown
REPORTER_MEANINGS = {
    "received": "Received: the report has arrived",
    "under-review": "Under review: a reviewer is working on it",
    "closed": "Closed: nothing more will be done",
}


def find_item(ws: Workspace, item_id: str) -> Item:
    """The report whose full id is ``item_id``; 404 for anything else."""
    if not _ID.fullmatch(item_id):
        abort(404)
    item = ws.report(item_id)
    if item is None:
        abort(404)
    return item


def _identity_rows(identity: dict[str, Any]) -> list[tuple[str, str]]:
    known = [name for name in display.IDENTITY_LABELS if identity.get(name)]
    unknown = sorted(name for name in identity if name not in display.IDENTITY_LABELS)
    return [(display.field_label(name), str(identity[name])) for name in known + unknown]


def _reporter_status(events: list[dict[str, Any]]) -> str | None:
    """The status the reporter sees now: the last one a reply set."""
    statuses = [e["status"] for e in events if e["from"] == "reviewer" and e.get("status")]
    return statuses[-1] if statuses else None


def _conversation(ws: Workspace, item: Item) -> tuple[list[dict[str, Any]], list[Any]]:
    """The conversation's events, each follow-up with its files, and the follow-ups."""
    followups = ws.followups(item.id)
    replies = item.record.get("replies") or []
    events = conversation(replies, followups)  # a reply event names its author ("who")
    for event in events:
        if event["from"] == "reporter":
            owner = ("followup", event["id"])
            event["files"] = files.file_views(ws, owner, event["attachments"])
    return events, followups


def page(item_id: str, *, error: str | None = None, status: int = 200) -> Response:
    """The report page, with ``error`` (a one-line ReviewerError message) when a change failed."""
    state = current()
    ws = state.ws
    item = find_item(ws, item_id)
    report = item.record["report"]
    fields = report.get("report", {})
    events, followups = _conversation(ws, item)
    team = item.record.get("team") or {}
    triage_now = item.record.get("triage") or {}
    grade = triage_now.get("grade")
    context = {
        "item": item,
        "done": DONE.get(request.args.get("done", "")),
        "error": error,
        "language": describe(language_of(report)),
        "rows": display.report_rows(fields),
        "narrative": fields.get("narrative"),
        "identity": _identity_rows(report.get("identity") or {}),
        "reporter_key": bool(report.get("reporter_key")),
        "files": files.file_views(ws, ("report", item.id), report.get("attachments", [])),
        "events": events,
        "followups": followups,
        "reporter_status": _reporter_status(events),
        "triage": triage_now,
        "grade_words": admiralty.describe(grade) if grade else None,
        "team": team,
        "personal_notes": actions.personal_notes(ws, item.id),
        "history": actions.history(ws, item.id),
        "suggestions": actions.duplicate_suggestions(ws, item.id),
        "reviewers": actions.reviewer_labels(ws),
        "reliability": admiralty.RELIABILITY,
        "credibility": admiralty.CREDIBILITY,
        "triage_statuses": {s: TRIAGE_MEANINGS.get(s, s) for s in TRIAGE_STATUSES},
        "reporter_statuses": {s: REPORTER_MEANINGS.get(s, s) for s in REPORTER_STATUSES},
        "visible": display.visible,
    }
    html = render_template("report.html", **context)
    if any(not followup.summary.get("read") for followup in followups):
        ws.mark_read(followups)  # shown now: the queue stops counting them as unread
        state.changed([item.id])
    return Response(html, status)


@bp.get("/report/<item_id>")
def view(item_id: str) -> Response:
    """One report, everything about it, and the forms to work on it."""
    return page(item_id)


@bp.get("/report/<item_id>/preview/<int:position>")
def preview(item_id: str, position: int) -> Response:
    """The cleaned copy of one of the report's images."""
    ws = current().ws
    owner, entries = files.entries_of(ws, find_item(ws, item_id), None)
    return files.preview(ws, owner, entries, position)


@bp.get("/report/<item_id>/followup/<followup_id>/preview/<int:position>")
def followup_preview(item_id: str, followup_id: str, position: int) -> Response:
    """The cleaned copy of an image a follow-up message brought."""
    ws = current().ws
    owner, entries = files.entries_of(ws, find_item(ws, item_id), followup_id)
    return files.preview(ws, owner, entries, position)


@bp.get("/report/<item_id>/file/<int:position>")
@bp.get("/report/<item_id>/file/<int:position>/as-is", endpoint="file_as_is")
def file(item_id: str, position: int) -> Response:
    """A download of one of the report's files: cleaned, or (``/as-is``) as it came."""
    ws = current().ws
    owner, entries = files.entries_of(ws, find_item(ws, item_id), None)
    as_is = request.endpoint == "report.file_as_is"
    return files.export(ws, owner, entries, position, as_is=as_is, stem=f"report-{item_id[:12]}")


@bp.get("/report/<item_id>/followup/<followup_id>/file/<int:position>")
@bp.get(
    "/report/<item_id>/followup/<followup_id>/file/<int:position>/as-is",
    endpoint="followup_file_as_is",
)
def followup_file(item_id: str, followup_id: str, position: int) -> Response:
    """A download of a file a follow-up message brought: cleaned, or as it came."""
    ws = current().ws
    owner, entries = files.entries_of(ws, find_item(ws, item_id), followup_id)
    as_is = request.endpoint == "report.followup_file_as_is"
    stem = f"followup-{followup_id[:12]}"
    return files.export(ws, owner, entries, position, as_is=as_is, stem=stem)


triage.register(bp, page, find_item)


@bp.record_once
def _install(state: Any) -> None:
    files.install(state.app)
