"""What a reviewer does to a report, for the CLI and the desk alike.

Each action checks what it is given and raises a ReviewerError with a one-line
message before anything is stored; then it records a team update
(reviewer_tool/team/log.py), which applies it here at once and queues it
for the teammates. Personal notes are the exception: they stay on this
workstation and are never part of an update. A reply is also sealed to the
reporter and queued in ``outgoing`` for the portal, as it always was; its team
copy only lets teammates read the conversation.
"""

from __future__ import annotations

import json
import math
import secrets
from datetime import UTC, date, datetime
from typing import Any

from crypto.envelope import seal_bytes
from crypto.errors import KeyFormatError
from crypto.keys import KeyKind, parse_public_key
from reviewer_tool.admiralty import check_grade
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team import directories, log, merge
from reviewer_tool.team.wire import (
    MAX_MESSAGE,
    MAX_NOTE,
    REPORTER_STATUSES,
    TRIAGE_STATUSES,
    TeamUpdateError,
    check_value,
    shareable,
)
from reviewer_tool.workspace import Followup, Item, Workspace

REPLY_SCHEMA = "cso-reply/v1"
#: reports this close (great-circle distance) are suggested as likely duplicates
NEAR_KM = 25.0
#: …when they were received within this many days of each other
NEAR_DAYS = 7
#: report fields that name a place; the same name in any of them counts as the same place
PLACE_FIELDS = ("place_name", "stowaway_embarkation_port")
_EARTH_KM = 6371.0088


def _fresh(ws: Workspace, item_id: str) -> Item:
    item = ws.report(item_id)
    if item is None:  # pragma: no cover - it was there a moment ago, in this process
        raise ReviewerError(f"report {item_id[:12]} disappeared from the workspace")
    return item


def _team(item: Item) -> dict[str, Any]:
    return item.record.get("team") or {}


# --- triage, labels, assignment, links --------------------------------------------------


def triage(
    ws: Workspace, item_id: str, status: str, grade: str, duplicate_of: str | None = None
) -> Item:
    """Set a report's status and Admiralty grade (reviewer_tool/admiralty.py), and
    optionally the report it repeats."""
    check_grade(grade)
    if status not in TRIAGE_STATUSES:
        raise ReviewerError(f"a triage status is one of: {', '.join(TRIAGE_STATUSES)}")
    item = ws.item(item_id)
    duplicate = None
    if duplicate_of:
        duplicate = ws.item(duplicate_of).id
        if duplicate == item.id:
            raise ReviewerError("a report cannot be a duplicate of itself")
    value = {"status": status, "grade": grade, "duplicate_of": duplicate}
    log.record(ws, item.id, "triage", value)
    return _fresh(ws, item.id)


def _label_name(name: str) -> str:
    name = " ".join(name.split())
    try:
        check_value("label", {"name": name, "present": True})
    except TeamUpdateError as error:
        raise ReviewerError(str(error)) from None
    return name


def set_label(ws: Workspace, item_id: str, name: str, present: bool = True) -> Item:
    """Add (or with ``present=False`` remove) a label; adding one already there does nothing."""
    name = _label_name(name)
    item = ws.item(item_id)
    labels = _team(item).get("labels", [])
    if present and name in labels:
        return item
    if not present and name not in labels:
        raise ReviewerError(f"report {item.id[:12]} has no label '{name}'")
    log.record(ws, item.id, "label", {"name": name, "present": present})
    return _fresh(ws, item.id)


def reviewer_labels(ws: Workspace) -> list[str]:
    """The labels of the newest key directory: whom a report can be assigned to."""
    newest = directories.newest(ws)
    return [] if newest is None else [entry.label for entry in newest.reviewers]


def assign(ws: Workspace, item_id: str, label: str | None) -> Item:
    """Assign a report to the reviewer with directory label ``label``, or to nobody (None)."""
    if label is not None:
        labels = reviewer_labels(ws)
        if not labels:
            raise ReviewerError(
                "no key directory is held yet, so no reviewer can be named: import an inbox"
                " bundle from the portal first (after `reviewer trust-org`)"
            )
        if label not in labels:
            raise ReviewerError(
                f"no reviewer has that label in the newest key directory; it lists: "
                f"{', '.join(labels)}"
            )
    item = ws.item(item_id)
    if _team(item).get("assignee") == label:
        return item
    log.record(ws, item.id, "assignee", {"label": label})
    return _fresh(ws, item.id)


def _linked(item: Item, other_id: str) -> str:
    """The linked report an id or prefix names, for removing a link (it may not be here)."""
    links: list[str] = _team(item).get("links", [])
    matches = [other for other in links if other.startswith(other_id)]
    if len(other_id) < 6 or len(matches) != 1:
        raise ReviewerError(f"report {item.id[:12]} has no link to {other_id[:32]}")
    return matches[0]


def link(ws: Workspace, item_id: str, other_id: str, present: bool = True) -> Item:
    """Mark ``item_id`` as a likely duplicate of ``other_id`` (or, not present, undo it)."""
    item = ws.item(item_id)
    other = ws.item(other_id).id if present else _linked(item, other_id.lower())
    if other == item.id:
        raise ReviewerError("a report cannot be linked to itself")
    if present and other in _team(item).get("links", []):
        return item
    log.record(ws, item.id, "link", {"other": other, "present": present})
    return _fresh(ws, item.id)


# --- notes and history -------------------------------------------------------------------


def add_note(ws: Workspace, item_id: str, text: str, personal: bool = False) -> dict[str, Any]:
    """A team note (shared with every reviewer) or, ``personal``, one for this reviewer alone.

    Neither is ever forwarded to the shared database.
    """
    text = text.strip()
    if not 1 <= len(text) <= MAX_NOTE:
        raise ReviewerError(f"a note is 1 to {MAX_NOTE} characters")
    item = ws.item(item_id)
    if personal:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ReviewerError("a note must be text (it holds a lone surrogate)") from None
        return log.add_personal_note(ws, item.id, text)
    note = {"note_id": secrets.token_hex(16), "text": text}
    log.record(ws, item.id, "note", note)
    return note


def personal_notes(ws: Workspace, item_id: str) -> list[dict[str, Any]]:
    """This reviewer's personal notes on a report, oldest first."""
    return log.personal_notes(ws, ws.item(item_id).id)


def history(ws: Workspace, item_id: str) -> list[dict[str, Any]]:
    """Who did what to a report, when: ``{"at", "who", "what"}``, oldest first."""
    item = ws.item(item_id)
    return merge.merge(log.accepted(ws, item.id), merge.author_labels(ws)).history


# --- replies -----------------------------------------------------------------------------


def _thread(ws: Workspace, submission_id: str) -> tuple[Item, str | None]:
    """The report to answer, and the follow-up being answered if the id names one."""
    found = ws.find(submission_id)
    if not isinstance(found, Followup):
        return found, None
    report = ws.report(found.thread)
    if report is None:
        raise ReviewerError(
            f"follow-up {found.id[:12]} belongs to report {found.thread[:12]}, which is not in"
            " this workspace, so its sender cannot be answered from here"
        )
    return report, found.id


def _seal_to_reporter(item: Item, message: str, today: str) -> bytes:
    token = item.record["report"].get("reporter_key")
    if not token:
        raise ReviewerError(
            f"report {item.id[:12]} carries no reporter key, so its sender cannot be answered"
        )
    try:
        reporter = parse_public_key(token, KeyKind.ENCRYPTION)
    except KeyFormatError:
        raise ReviewerError(f"report {item.id[:12]} has a malformed reporter key") from None
    plaintext = {"schema": REPLY_SCHEMA, "message": message, "written_on": today}
    return seal_bytes(json.dumps(plaintext, ensure_ascii=False).encode(), [reporter.key])


def reply(
    ws: Workspace, item_or_followup_id: str, message: str | None, status: str | None
) -> dict[str, Any]:
    """Seal ``message`` to the reporter and/or set the status the reporter sees.

    The reply is queued for the next replies bundle, kept in the report's
    record, and shared with the team as a "reply" update, all in one
    transaction. Returns the reply as stored, plus ``report`` (the report's id)
    and ``team_copy_shortened`` (whether teammates get a shortened copy).
    """
    message = (message or "").strip() or None
    if message is None and status is None:
        raise ReviewerError("give a message, a status, or both")
    if status is not None and status not in REPORTER_STATUSES:
        raise ReviewerError(f"the reporter's status is one of: {', '.join(REPORTER_STATUSES)}")
    if message is not None and len(message) > MAX_MESSAGE:
        raise ReviewerError(f"a reply has at most {MAX_MESSAGE} characters")
    item, answering = _thread(ws, item_or_followup_id)
    now = datetime.now(UTC)
    today = now.date().isoformat()
    envelope = b"" if message is None else _seal_to_reporter(item, message, today)
    reply = {
        "reply_id": secrets.token_hex(16),
        "status": status,
        "message": message,
        "written_on": today,
        # orders the reply among same-day follow-ups (reviewer_tool/followups.py)
        "written_at": now.isoformat(timespec="microseconds"),
        "in_reply_to": answering,
    }
    shared = {key: reply[key] for key in ("reply_id", "status", "message", "written_on",
                                          "in_reply_to")}  # fmt: skip
    shared = team_copy(str(ws.keys.signing.token), item.id, shared)
    serial = log.directory_serial(ws)
    log.ensure_tables(ws)
    item.record.setdefault("replies", []).append(reply)
    with ws.transaction():
        ws.put_item(item)
        ws.db.execute(
            "INSERT INTO outgoing (reply_id, item_id, sealed, envelope) VALUES (?, ?, ?, ?)",
            (reply["reply_id"], item.id, ws.seal_json(reply), ws.seal(envelope)),
        )
        log.record_in(ws, item.id, "reply", shared, serial)
        merge.write_states(ws, {item.id})
    return {**reply, "report": item.id, "team_copy_shortened": "shortened" in shared}


def team_copy(author: str, report: str, value: dict[str, Any]) -> dict[str, Any]:
    """The team's copy of a reply: ``value`` itself when it can be shared (§17.5), else a
    copy whose message is cut, at a character, to the longest start that can, marked
    ``shortened`` (crypto/SPEC.md §17, reply).

    Only the teammates' copy is cut; the reporter gets the whole message. A
    reply must never be refused for its team copy: 20,000 characters of a
    script written in 3-byte characters do not fit the relay's 64 KiB.
    """
    message = value.get("message")
    if not message or shareable(author, report, "reply", value):
        return value

    def cut(length: int) -> dict[str, Any]:
        return {**value, "message": message[:length].rstrip(), "shortened": True}

    fits, too_long = 1, len(message)  # the message was stripped: its first character is text
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if shareable(author, report, "reply", cut(middle)):
            fits = middle
        else:
            too_long = middle
    return cut(fits)


# --- likely duplicates -------------------------------------------------------------------


def _places(fields: dict[str, Any]) -> set[str]:
    return {
        " ".join(value.casefold().split())
        for name in PLACE_FIELDS
        if isinstance(value := fields.get(name), str) and value.strip()
    }


def _position(fields: dict[str, Any]) -> tuple[float, float] | None:
    latitude, longitude = fields.get("latitude"), fields.get("longitude")
    numbers = (int, float)
    if isinstance(latitude, numbers) and isinstance(longitude, numbers):
        return float(latitude), float(longitude)
    return None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points, in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def duplicate_suggestions(ws: Workspace, item_id: str) -> list[dict[str, Any]]:
    """Reports that may describe the same incident: the same place, or within
    :data:`NEAR_KM`, received within :data:`NEAR_DAYS` days either way.

    One pass over the summaries picks the reports received near the day;
    only those are opened to compare places and positions. Returns
    ``{"id", "received_on", "place", "why", "linked"}``, nearest in time first.
    """
    item = ws.item(item_id)
    fields = item.record["report"].get("report", {})
    places, position = _places(fields), _position(fields)
    day = date.fromisoformat(item.record["received_on"])
    links = set(_team(item).get("links", []))
    found = []
    for other_id, summary in ws.summaries():
        apart = abs((date.fromisoformat(summary["received_on"]) - day).days)
        if other_id == item.id or apart > NEAR_DAYS:
            continue
        other = ws.report(other_id)
        if other is None:  # pragma: no cover - removed while listing
            continue
        other_fields = other.record["report"].get("report", {})
        why = []
        if places & _places(other_fields):
            why.append("same place")
        there = _position(other_fields)
        if position is not None and there is not None:
            km = distance_km(position, there)
            if km <= NEAR_KM:
                why.append(f"{km:.0f} km apart")
        if why:
            found.append((apart, other_id, {
                "id": other_id, "received_on": summary["received_on"],
                "place": summary.get("place"), "why": ", ".join(why), "linked": other_id in links,
            }))  # fmt: skip
    return [entry for _, _, entry in sorted(found, key=lambda row: row[:2])]
