"""The report page's changes: triage, labels, assignment, links, notes and replies.

Each is a POST from a form on the report page, done by the same function the
command line uses (reviewer_tool/team/actions.py), so a change made here is
a team update like any other. A refusal is shown on the report page itself,
as a 400 with the one-line message, the page otherwise as it was; a change
is answered with a 303 back to the page (Post/Redirect/Get) carrying only a
fixed message key and the section to return to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from reviewer_tool.desk.state import current
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team import actions
from reviewer_tool.workspace import Item, Workspace

Page = Callable[..., Response]
#: the report an address names (404 when there is none)
Find = Callable[[Workspace, str], Item]
#: a change: (workspace, report id, form) → (message key, section of the page to go back to)
Change = Callable[[Workspace, str, Any], tuple[str, str]]


def _text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _triage(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    reliability, credibility = _text(form, "reliability"), _text(form, "credibility")
    if not reliability or not credibility:
        raise ReviewerError(
            "choose both parts of the grade: how reliable the source is, and how credible"
            " the information is"
        )
    if not _text(form, "status"):
        raise ReviewerError("choose a status: confirmed, unconfirmed or rejected")
    duplicate = _text(form, "duplicate_of").strip().lower() or None
    actions.triage(ws, item_id, _text(form, "status"), reliability + credibility, duplicate)
    return "triaged", "triage"


def _label(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    present = _text(form, "present") != "0"
    actions.set_label(ws, item_id, _text(form, "name"), present)
    return ("labelled" if present else "unlabelled"), "labels"


def _assign(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    actions.assign(ws, item_id, _text(form, "label") or None)
    return "assigned", "assignment"


def _link(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    present = _text(form, "present") != "0"
    other = _text(form, "other").strip().lower()
    if not other:
        raise ReviewerError("give the id of the report this one may repeat (6 characters or more)")
    actions.link(ws, item_id, other, present)
    return ("linked" if present else "unlinked"), "links"


def _note(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    personal = _text(form, "kind") == "personal"
    actions.add_note(ws, item_id, _text(form, "text"), personal=personal)
    return ("noted-personal" if personal else "noted"), "notes"


def _reply(ws: Workspace, item_id: str, form: Any) -> tuple[str, str]:
    target = _text(form, "answering") or item_id
    if target != item_id and target not in {f.id for f in ws.followups(item_id)}:
        raise ReviewerError("that follow-up message is not in this report's conversation")
    actions.reply(ws, target, _text(form, "message"), _text(form, "status") or None)
    return "replied", "conversation"


CHANGES: dict[str, Change] = {
    "triage": _triage,
    "label": _label,
    "assign": _assign,
    "link": _link,
    "note": _note,
    "reply": _reply,
}


def _view(name: str, change: Change, page: Page, find: Find) -> Callable[[str], Response]:
    def view(item_id: str) -> Response:
        state = current()
        item = find(state.ws, item_id)
        try:
            done, section = change(state.ws, item.id, request.form)
        except ReviewerError as error:
            return page(item.id, error=error.diagnostics(), status=400)
        state.changed([item.id])
        target = url_for("report.view", item_id=item.id, done=done, _anchor=section)
        return redirect(target, 303)  # type: ignore[return-value]

    view.__name__ = name
    view.__doc__ = f"POST: the report page's {name} form."
    return view


def register(bp: Blueprint, page: Page, find: Find) -> None:
    """Add ``POST /report/<id>/<change>`` for each change to the report page's blueprint."""
    for name, change in CHANGES.items():
        bp.add_url_rule(
            f"/report/<item_id>/{name}", name, _view(name, change, page, find), methods=["POST"]
        )
