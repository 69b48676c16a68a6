"""Follow-up messages (reviewer_tool.followups): the document check and conversation order."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from crypto.errors import CryptoError, ManifestError
from reviewer_tool.followups import MAX_MESSAGE, check_followup, conversation
from reviewer_tool.workspace import Followup

REPORT = "ab" * 16


def _entry(name: str = "skiff.jpg", data: bytes = b"jpeg") -> dict[str, Any]:
    return {"name": name, "media_type": "image/jpeg", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "scrubbed": True}  # fmt: skip


def _document(**changes: Any) -> dict[str, Any]:
    document = {"schema": "cso-followup/v1", "encrypted_by": "browser",
                "message": "They came back.", "attachments": [_entry()]}  # fmt: skip
    document.update(changes)
    return document


def test_a_well_formed_document_is_returned_unchanged() -> None:
    document = _document(encrypted_by="server", message="x" * MAX_MESSAGE)
    assert check_followup(document) is document
    assert check_followup(_document(attachments=[])) == _document(attachments=[])


def _without(member: str) -> dict[str, Any]:
    document = _document()
    del document[member]
    return document


REFUSED: dict[str, Any] = {
    "not an object": ["cso-followup/v1"],
    "a report": {"schema": "cso-report/v1", "report": {}, "identity": {}},
    "other version": _document(schema="cso-followup/v2"),
    "extra member": _document(reporter_key="csoenc1…"),
    "no message": _without("message"),
    "no attachments": _without("attachments"),
    "no encrypted_by": _without("encrypted_by"),
    "encrypted_by unknown": _document(encrypted_by="robot"),
    "encrypted_by a list": _document(encrypted_by=["browser"]),
    "empty message": _document(message=""),
    "message too long": _document(message="x" * (MAX_MESSAGE + 1)),
    "message a number": _document(message=7),
    "message a list": _document(message=["hi"]),
    "lone surrogate": _document(message="a\ud800b"),
    "attachments an object": _document(attachments={"skiff.jpg": {}}),
    "attachments null": _document(attachments=None),
}


@pytest.mark.parametrize("document", REFUSED.values(), ids=REFUSED.keys())
def test_anything_else_is_refused_as_a_value_error(document: Any) -> None:
    """The importer turns ValueError into "unreadable"; nothing else may escape."""
    with pytest.raises(ValueError, match=r"."):
        check_followup(document)


MANIFESTS: dict[str, list[Any]] = {
    "path in a name": [_entry("../skiff.jpg")],
    "bidi override in a name": [_entry("\u202egpj.exe")],
    "two with one name": [_entry(), _entry()],
    "missing field": [{"name": "a.jpg"}],
    "upper-case digest": [dict(_entry(), sha256="A" * 64)],
    "too many": [_entry(f"{n}.jpg") for n in range(65)],
}


@pytest.mark.parametrize("entries", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_manifest_that_breaks_section_11_1_is_refused(entries: list[Any]) -> None:
    """crypto/SPEC.md §11.1 holds for a follow-up's attachments as for a report's."""
    with pytest.raises(ManifestError):
        check_followup(_document(attachments=entries))
    assert issubclass(ManifestError, CryptoError)  # which the importer counts as unreadable


def _followup(name: str, day: str, imported_at: str) -> Followup:
    record = {"followup": _document(message=name), "received_on": day,
              "imported_at": imported_at}  # fmt: skip
    return Followup(name, REPORT, {"read": name == "read"}, record)


def _reply(name: str, day: str, written_at: str | None) -> dict[str, Any]:
    reply = {"reply_id": name, "written_on": day, "status": None, "message": name}
    return reply if written_at is None else {**reply, "written_at": written_at}


def _order(events: list[dict[str, Any]]) -> list[str]:
    return [event.get("id") or event["reply_id"] for event in events]


def test_days_order_the_conversation_before_import_times() -> None:
    followups = [
        _followup("late-import-early-day", "2026-11-20", "2026-11-23T09:00:00.000000+00:00"),
        _followup("early-import-late-day", "2026-11-22", "2026-11-22T09:00:00.000000+00:00"),
    ]
    replies = [_reply("reply", "2026-11-21", "2026-11-21T10:00:00.000000+00:00")]
    assert _order(conversation(replies, followups)) == [
        "late-import-early-day", "reply", "early-import-late-day",
    ]  # fmt: skip


def test_within_a_day_a_reply_follows_what_was_imported_before_it() -> None:
    day = "2026-11-21"
    followups = [
        _followup("seen", day, f"{day}T08:00:00.000000+00:00"),
        _followup("after", day, f"{day}T12:00:00.000001+00:00"),
    ]
    replies = [_reply("reply", day, f"{day}T12:00:00.000000+00:00")]
    assert _order(conversation(replies, followups)) == ["seen", "reply", "after"]


def test_ties_keep_inbox_order_and_old_replies_lead_their_day() -> None:
    day, at = "2026-11-21", "2026-11-21T08:00:00.000000+00:00"
    followups = [_followup(name, day, at) for name in ("b-first", "a-second", "c-third")]
    replies = [_reply("old-reply", day, None)]
    assert _order(conversation(replies, followups)) == [
        "old-reply", "b-first", "a-second", "c-third",
    ]  # fmt: skip


def test_events_say_who_wrote_them_and_what_is_new() -> None:
    events = conversation(
        [_reply("r", "2026-11-22", None)],
        [_followup("read", "2026-11-21", ""), _followup("unread", "2026-11-21", "")],
    )
    assert [(e["from"], e.get("new")) for e in events] == [
        ("reporter", False), ("reporter", True), ("reviewer", None),
    ]  # fmt: skip
    assert events[0]["attachments"] == [_entry()]
    assert events[2]["message"] == "r"
