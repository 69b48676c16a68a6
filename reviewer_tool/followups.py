"""A reporter's follow-up messages: their document, and the conversation of a report.

A reporter who comes back to the portal with their receipt (crypto/SPEC.md
§14.4) can write again, with attachments, in the conversation of their report.
The portal stores each message as a submission of its own; in an inbox
bundle (§15) its parts carry the same entries as a report's plus
``"thread"``, the id of the report it follows. Part 0 opens with the
reviewer's key, like a report, to UTF-8 JSON::

    {"schema": "cso-followup/v1", "encrypted_by": "browser" | "server",
     "message": "<1 to 20,000 characters>", "attachments": [<§11 manifest entries>]}

and parts 1…n are its attachments, checked against that manifest (§11.2).
The sender chose these bytes, so :func:`check_followup` accepts exactly this
shape and nothing more (§14.4: other members or another shape MUST be
refused); anything else is "unreadable", like a malformed report.

A conversation is a report's follow-up messages and this workstation's own
replies, oldest first. The portal dates a submission to the day only (a finer
time would help to identify the sender), so days order the conversation,
and within one day the workstation's clock decides: a follow-up imported
before a reply was written comes before it, one imported later comes after
it, since the reviewer cannot have answered what they had not seen.
Follow-ups that tie keep their inbox order.

Follow-up text is never forwarded to the shared database: only the report's
redacted fields are (reviewer_tool/forwarding.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crypto.manifest import parse_manifest
from reviewer_tool.workspace import Followup

FOLLOWUP_SCHEMA = "cso-followup/v1"
MAX_MESSAGE = 20_000
ENCRYPTED_BY = ("browser", "server")
_MEMBERS = frozenset({"schema", "encrypted_by", "message", "attachments"})


def check_followup(document: Any) -> dict[str, Any]:
    """Return ``document`` if it is exactly a cso-followup/v1 document (SPEC.md §14.4).

    Raises ``ValueError`` for the wrong shape and ``ManifestError`` (a
    ``CryptoError``) for a manifest that breaks crypto/SPEC.md §11.1.
    """
    if not isinstance(document, dict) or set(document) != _MEMBERS:
        raise ValueError("not a cso-followup/v1 document")
    if document["schema"] != FOLLOWUP_SCHEMA:
        raise ValueError("not a cso-followup/v1 document")
    if document["encrypted_by"] not in ENCRYPTED_BY:  # a list or an object is never equal
        raise ValueError("encrypted_by must be browser or server")
    message = document["message"]
    if not isinstance(message, str) or not 1 <= len(message) <= MAX_MESSAGE:
        raise ValueError(f"the message must be text of 1 to {MAX_MESSAGE} characters")
    # json.loads lets "\ud800" through; such text cannot be stored or shown.
    message.encode("utf-8")  # UnicodeEncodeError is a ValueError
    if not isinstance(document["attachments"], list):
        raise ValueError("attachments must be a list")
    parse_manifest(document)
    return document


def _followup_event(followup: Followup) -> dict[str, Any]:
    document = followup.record["followup"]
    return {
        "from": "reporter",
        "id": followup.id,
        "received_on": followup.record["received_on"],
        "message": document["message"],
        "attachments": document["attachments"],
        "encrypted_by": document["encrypted_by"],
        "new": not followup.summary.get("read"),
    }


def _reply_event(reply: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "from": "reviewer",
        "reply_id": reply["reply_id"],
        "written_on": reply["written_on"],
        "status": reply.get("status"),
        "message": reply.get("message"),
        "in_reply_to": reply.get("in_reply_to"),
        # a teammate's reply (reviewer_tool/team/merge.py) names its author; None: this
        # workstation's own. Carried on the event itself: two authors may share a reply id
        "who": (reply.get("who") or "a teammate") if reply.get("team") else None,
        "shortened": bool(reply.get("shortened")),
    }


def conversation(
    replies: Sequence[Mapping[str, Any]], followups: Sequence[Followup]
) -> list[dict[str, Any]]:
    """A report's follow-ups (given in inbox order) and replies as events, oldest first."""
    keyed = [
        ((f.record["received_on"], f.record.get("imported_at", "")), _followup_event(f))
        for f in followups
    ]
    # replies written before this version have no time; they go first in their day
    keyed += [((r["written_on"], r.get("written_at", "")), _reply_event(r)) for r in replies]
    keyed.sort(key=lambda pair: pair[0])  # stable: ties keep inbox order
    return [event for _, event in keyed]
