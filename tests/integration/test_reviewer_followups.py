"""A reporter's follow-up messages on the offline workstation: import, conversation, reply.

Inbox bundles are built here the way the portal's export builds them, with
follow-up parts carrying ``"thread"`` (tests/integration/reviewer_helpers.py).
"""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crypto.bundle import BundleWriter, open_bundle
from crypto.envelope import open_bytes, seal_bytes
from crypto.keys import EncryptionKeyPair, KeyKind, parse_public_key
from reviewer_tool import importer
from reviewer_tool.cli import main as reviewer
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE
from tests.integration.reviewer_helpers import (
    PORTAL,
    followup_document,
    report_document,
    write_inbox,
)

VESSEL = "Sextans Star"
CANARY = "CANARY-FOLLOWUP-5d1e"


def run(*args: str | Path) -> int:
    return reviewer([str(a) for a in args])


def rows_in(ws: list[str], table: str) -> int:
    with sqlite3.connect(Path(ws[1]) / "workspace.db") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def imported(ws: list[str], path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run("import", path, *ws) == 0
    return capsys.readouterr().out


def queue(ws: list[str], capsys: pytest.CaptureFixture[str], *filters: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run("list", "--json", *filters, *ws) == 0
    return list(json.loads(capsys.readouterr().out))


def shown(ws: list[str], capsys: pytest.CaptureFixture[str], submission: str) -> dict[str, Any]:
    capsys.readouterr()
    assert run("show", submission, "--json", *ws) == 0
    return dict(json.loads(capsys.readouterr().out))


def gps_photo() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0)}
    exif[0x010F] = "CANARY-CAMERA-MAKER"
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_report_and_followup_in_one_bundle(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = gps_photo()
    later = followup_document(
        "They came back with two skiffs.", [("skiff.jpg", "image/jpeg", photo)]
    )
    report, followup = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [(report_document("Paint stolen."), []), (later, [photo], 0)],
    )
    out = imported(ws, tmp_path / "inbox", capsys)
    assert "1 new report(s), 0 already" in out
    assert "1 new follow-up message(s)\n" in out  # and no "not in this workspace"
    (row,) = queue(ws, capsys)
    assert (row["id"], row["followups"], row["unread_followups"]) == (report, 1, 1)
    assert [r["id"] for r in queue(ws, capsys, "--unread")] == [report]

    capsys.readouterr()
    assert run("show", report[:8], *ws) == 0
    text = capsys.readouterr().out
    assert f"reporter  follow-up {followup[:12]}  [new]" in text
    assert "They came back with two skiffs." in text
    assert "file: skiff.jpg  image/jpeg" in text
    (row,) = queue(ws, capsys)
    assert row["unread_followups"] == 0  # showing the conversation marked it read
    assert queue(ws, capsys, "--unread") == []

    assert run("triage", followup, "--status", "confirmed", "--grade", "B2", *ws) == 1
    assert f"follow-up message to report {report[:12]}" in capsys.readouterr().err


def test_followup_in_a_later_bundle_joins_its_report(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (report,) = write_inbox(
        tmp_path / "first", PORTAL, [recipient], [(report_document("Paint stolen."), [])]
    )
    (followup,) = write_inbox(
        tmp_path / "second",
        PORTAL,
        [recipient],
        [(followup_document("Berth 4."), [], report)],
        received_on="2026-11-22",
        cursor_from=1,
    )
    imported(ws, tmp_path / "first", capsys)
    assert "1 new follow-up message(s)\n" in imported(ws, tmp_path / "second", capsys)
    (row,) = queue(ws, capsys)
    assert (row["followups"], row["unread_followups"]) == (1, 1)
    (event,) = shown(ws, capsys, report)["conversation"]
    assert (event["id"], event["message"], event["new"]) == (followup, "Berth 4.", True)
    assert shown(ws, capsys, followup)["id"] == report  # a follow-up's id opens its thread


def test_followup_before_its_report_waits_for_it(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (report,) = write_inbox(
        tmp_path / "first", PORTAL, [recipient], [(report_document("Paint stolen."), [])]
    )
    (followup,) = write_inbox(
        tmp_path / "second",
        PORTAL,
        [recipient],
        [(followup_document("Berth 4."), [], report)],
        cursor_from=1,
    )
    out = imported(ws, tmp_path / "second", capsys)
    assert "1 new follow-up message(s), 1 of them to a report not in this workspace" in out
    (orphan,) = queue(ws, capsys)
    assert (orphan["kind"], orphan["id"], orphan["thread"]) == ("followup", followup, report)
    assert queue(ws, capsys, "--status", "new") == []  # a follow-up alone has no status

    capsys.readouterr()
    assert run("list", *ws) == 0
    assert f"{followup[:12]}  received 2026-11-20  to report {report[:12]}" in (
        capsys.readouterr().out
    )
    assert run("show", followup, *ws) == 0
    assert "which is not in this workspace" in capsys.readouterr().out
    assert run("reply", followup, "--message", "Which berth?", *ws) == 1
    assert "cannot be answered" in capsys.readouterr().err

    imported(ws, tmp_path / "first", capsys)
    (row,) = queue(ws, capsys)
    assert (row["kind"], row["id"], row["followups"]) == ("report", report, 1)
    assert row["unread_followups"] == 0  # it was shown while it waited


def test_followups_whose_report_or_self_is_sealed_to_other_keys(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report not for this reviewer: the follow-up is kept alone; not for them: skipped."""
    other = EncryptionKeyPair.generate().public
    (report,) = write_inbox(
        tmp_path / "first", PORTAL, [other], [(report_document("Paint stolen."), [])]
    )
    (mine,) = write_inbox(
        tmp_path / "second",
        PORTAL,
        [recipient],
        [(followup_document("For me."), [], report)],
        cursor_from=1,
    )
    write_inbox(
        tmp_path / "third",
        PORTAL,
        [other],
        [(followup_document("Other key only."), [], report)],
        cursor_from=2,
    )
    assert "1 not addressed to this key" in imported(ws, tmp_path / "first", capsys)
    out = imported(ws, tmp_path / "second", capsys)
    assert "1 new follow-up message(s), 1 of them to a report not in this workspace" in out
    out = imported(ws, tmp_path / "third", capsys)
    assert "0 already in the workspace, 1 not addressed to this key" in out
    assert "follow-up" not in out
    assert (rows_in(ws, "item"), rows_in(ws, "followup")) == (0, 1)
    assert [row["id"] for row in queue(ws, capsys)] == [mine]


MALFORMED_FOLLOWUPS = {
    "report schema": dict(followup_document("x"), schema="cso-report/v1"),
    "extra member": dict(followup_document("x"), reporter_key="csoenc1…"),
    "empty message": followup_document(""),
    "message too long": followup_document("x" * 20_001),
    "encrypted_by unknown": dict(followup_document("x"), encrypted_by="robot"),
    "lone surrogate": b'{"schema": "cso-followup/v1", "encrypted_by": "server", '
    b'"message": "a\\ud800", "attachments": []}',
    "path in a name": followup_document("x", [("../x.txt", "text/plain", b"")]),
    "manifest without its part": followup_document("x", [("a.txt", "text/plain", b"a")]),
    "not json": b"\xff\xfe not json",
}


@pytest.mark.parametrize("document", MALFORMED_FOLLOWUPS.values(), ids=MALFORMED_FOLLOWUPS.keys())
def test_a_malformed_followup_is_skipped_and_named(
    ws: list[str],
    recipient: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    document: dict[str, Any] | bytes,
) -> None:
    ids = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [
            (report_document("Paint stolen."), []),
            (document, [], 0),
            (followup_document("Fine."), [], 0),
        ],
    )
    out = imported(ws, tmp_path / "inbox", capsys)
    assert f"warning: follow-up {ids[1]} (to report {ids[0]}) could not be decrypted" in out
    assert "1 new follow-up message(s)" in out
    assert rows_in(ws, "followup") == 1
    assert [e["message"] for e in shown(ws, capsys, ids[0])["conversation"]] == ["Fine."]


@pytest.mark.parametrize("damage", ["other bytes", "truncated"])
def test_a_followup_attachment_must_match_its_manifest(
    ws: list[str],
    recipient: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    """crypto/SPEC.md §11.2, for the files a follow-up brings."""
    photo = gps_photo()
    sent = photo[:-1] + b"\x00" if damage == "other bytes" else photo[:-1]
    document = followup_document("Photo.", [("skiff.jpg", "image/jpeg", photo)])
    ids = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [(report_document("Paint stolen."), []), (document, [sent], 0)],
    )
    out = imported(ws, tmp_path / "inbox", capsys)
    assert f"warning: follow-up {ids[1]}" in out
    assert (rows_in(ws, "item"), rows_in(ws, "followup")) == (1, 0)
    assert rows_in(ws, "followup_attachment") == 0


def _raw_inbox(path: Path, recipient: bytes, metas: list[dict[str, Any]]) -> None:
    """An inbox whose entries are written exactly as given (a portal fault, or a forgery)."""
    with path.open("wb") as out:
        writer = BundleWriter(out, PORTAL, "inbox", {"cursor": {"from": 0, "to": 1}})
        for meta in metas:
            writer.add(meta, seal_bytes(json.dumps(followup_document("x")).encode(), [recipient]))
        writer.finish()


BAD_THREADS = {
    "upper case": {"thread": "AB" * 16},
    "too short": {"thread": "ab" * 15},
    "not text": {"thread": 7},
    "null": {"thread": None},
    "itself": {"thread": "cd" * 16},
}


@pytest.mark.parametrize(
    "thread", [*BAD_THREADS.values(), "parts disagree"], ids=[*BAD_THREADS.keys(), "parts disagree"]
)
def test_a_malformed_thread_entry_refuses_the_bundle(
    ws: list[str],
    recipient: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    thread: dict[str, Any] | str,
) -> None:
    base = {"type": "part", "submission": "cd" * 16, "received_on": "2026-11-20"}
    if thread == "parts disagree":  # the attachment part does not say it follows a report
        metas = [
            {**base, "position": 0, "kind": "report", "thread": "ab" * 16},
            {**base, "position": 1, "kind": "attachment"},
        ]
    else:
        assert isinstance(thread, dict)
        metas = [{**base, "position": 0, "kind": "report", **thread}]
    _raw_inbox(tmp_path / "inbox", recipient, metas)
    assert run("import", tmp_path / "inbox", *ws) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "malformed entry; nothing imported" in error
    assert rows_in(ws, "followup") == 0


def test_reimport_and_an_interrupted_import_leave_one_copy(
    ws: list[str],
    recipient: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """crypto/SPEC.md §15.3, for follow-ups: rerun after a kill, then again."""
    photo = gps_photo()
    with_photo = followup_document("Photo.", [("skiff.jpg", "image/jpeg", photo)])
    entries = [
        (report_document("One."), []),
        (report_document("Two."), []),
        (with_photo, [photo], 0),
        (followup_document("More."), [], 1),
        (followup_document("Again."), [], 0),
    ]
    write_inbox(tmp_path / "inbox", PORTAL, [recipient], entries)
    store, calls = importer._store, []

    def interrupted(workspace: Workspace, batch: Any) -> None:
        calls.append(len(batch))
        if len(calls) == 4:
            raise KeyboardInterrupt
        store(workspace, batch)

    monkeypatch.setattr(importer, "BATCH", 1)
    monkeypatch.setattr(importer, "_store", interrupted)
    assert run("import", tmp_path / "inbox", *ws) == 130
    assert rows_in(ws, "item") + rows_in(ws, "followup") == 3
    monkeypatch.setattr(importer, "_store", store)
    out = imported(ws, tmp_path / "inbox", capsys)
    assert "0 new report(s), 3 already" in out
    assert "2 new follow-up message(s)" in out
    before = (Path(ws[1]) / "workspace.db").read_bytes()
    out = imported(ws, tmp_path / "inbox", capsys)
    assert "0 new report(s), 5 already" in out
    assert "follow-up" not in out
    assert (rows_in(ws, "item"), rows_in(ws, "followup"), rows_in(ws, "followup_attachment")) == (
        2,
        3,
        1,
    )
    assert len(before) == len((Path(ws[1]) / "workspace.db").read_bytes())


def test_show_puts_the_conversation_in_order(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Days first; within a day, what was imported before a reply was written comes first."""
    today = datetime.now(UTC).date()
    day = {n: (today - timedelta(days=n)).isoformat() for n in range(3)}
    (report,) = write_inbox(
        tmp_path / "report",
        PORTAL,
        [recipient],
        [(report_document("Paint stolen."), [])],
        received_on=day[2],
    )
    first, second = write_inbox(
        tmp_path / "early",
        PORTAL,
        [recipient],
        [(followup_document("FIRST"), [], report), (followup_document("SECOND"), [], report)],
        received_on=day[1],
        cursor_from=1,
    )
    imported(ws, tmp_path / "report", capsys)
    imported(ws, tmp_path / "early", capsys)
    assert run("reply", second[:10], "--message", "REPLY", "--status", "under-review", *ws) == 0
    (late,) = write_inbox(
        tmp_path / "late",
        PORTAL,
        [recipient],
        [(followup_document("LATE BUT YESTERDAY"), [], report)],
        received_on=day[1],
        cursor_from=3,
    )
    (last,) = write_inbox(
        tmp_path / "today",
        PORTAL,
        [recipient],
        [(followup_document("TODAY"), [], report)],
        received_on=day[0],
        cursor_from=4,
    )
    imported(ws, tmp_path / "today", capsys)  # carried in the other order
    imported(ws, tmp_path / "late", capsys)

    conversation = shown(ws, capsys, report)["conversation"]
    order = [event.get("id") or event["reply_id"] for event in conversation]
    reply_id = conversation[3]["reply_id"]
    assert order == [first, second, late, reply_id, last]
    assert conversation[3]["in_reply_to"] == second
    capsys.readouterr()
    assert run("show", report, *ws) == 0
    text = capsys.readouterr().out
    positions = [text.index(word) for word in ("FIRST", "SECOND", "LATE BUT", "REPLY", "TODAY")]
    assert positions == sorted(positions)
    assert "status under-review  (to follow-up" in text


def test_reply_to_a_followup_lands_on_its_report(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = EncryptionKeyPair.generate()
    document = report_document("Paint stolen.", reporter_key=False)
    document["reporter_key"] = str(reporter.token)
    report, followup = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [(document, []), (followup_document("Berth 4?"), [], 0)],
    )
    imported(ws, tmp_path / "inbox", capsys)
    assert run("reply", followup[:8], "--message", "Which berth?", *ws) == 0
    assert f"to follow-up {followup[:12]}" in capsys.readouterr().out
    assert run("export-replies", "--out", tmp_path / "replies", *ws) == 0
    assert run("pubkey", *ws) == 0
    signing = parse_public_key(capsys.readouterr().out.split()[-1], KeyKind.SIGNING)
    bundle = open_bundle(tmp_path / "replies", {signing})
    (item,) = bundle.items
    assert item.meta["submission"] == report
    message = json.loads(open_bytes(bundle.read_item(item), reporter))
    assert message["message"] == "Which berth?"
    assert shown(ws, capsys, report)["replies"][0]["in_reply_to"] == followup


def test_a_followups_attachment_is_exported_cleaned(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = gps_photo()
    document = followup_document("Photo.", [("skiff.jpg", "image/jpeg", photo)])
    report, followup = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [(report_document("Paint stolen."), []), (document, [photo], 0)],
    )
    imported(ws, tmp_path / "inbox", capsys)
    out = tmp_path / "clean.jpg"
    assert run("export-attachment", followup[:8], "skiff.jpg", "--out", out, *ws) == 0
    assert b"CANARY-CAMERA-MAKER" not in out.read_bytes()
    assert not Image.open(io.BytesIO(out.read_bytes())).getexif()
    assert run("export-attachment", report, "skiff.jpg", "--out", tmp_path / "again", *ws) == 1
    assert f"follow-up {followup[:12]} has one" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


def test_workspace_holds_no_followup_plaintext(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = f"{CANARY} note".encode()
    document = followup_document(
        f"The {CANARY} came back.", [(f"{CANARY}.txt", "text/plain", note)]
    )
    orphan = followup_document(f"{CANARY} orphan")
    report, followup, _ = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [
            (report_document("Paint stolen."), []),
            (document, [note], 0),
            (orphan, [], "ab" * 16),
        ],
    )
    imported(ws, tmp_path / "inbox", capsys)
    assert run("show", report, *ws) == 0
    assert CANARY in capsys.readouterr().out  # it was decrypted and shown...
    assert run("reply", followup, "--message", f"About {CANARY}?", *ws) == 0
    assert run("list", *ws) == 0
    for path in Path(ws[1]).rglob("*"):
        assert CANARY.encode() not in path.read_bytes(), path  # ...but never stored in the clear


def test_followup_text_is_never_forwarded(
    ws: list[str],
    recipient: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    narrative = f"Thieves boarded the {VESSEL} at the outer anchorage."
    document = report_document(narrative, {"identity_vessel": VESSEL})
    later = followup_document(f"Master {CANARY} saw them; the {VESSEL} lost paint.")
    report, followup = write_inbox(
        tmp_path / "inbox", PORTAL, [recipient], [(document, []), (later, [], 0)]
    )
    imported(ws, tmp_path / "inbox", capsys)
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws) == 0
    # Enter at every question: redact each suggestion, add no words, forward no file
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    monkeypatch.setattr("sys.stdin", _Terminal())
    capsys.readouterr()
    assert run("redact", report, *ws) == 0
    context = capsys.readouterr().out
    assert f"Master {CANARY} saw them" in context  # shown while redacting, as context
    assert CANARY not in json.dumps(shown(ws, capsys, report)["redaction"])
    assert run("forward", "--out", tmp_path / "batch", *ws) == 0
    batch = (tmp_path / "batch").read_text()
    assert CANARY not in batch
    assert VESSEL not in batch

    # the identity check still searches the report's identity section
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    item = workspace.item(report)
    item.record["redaction"]["fields"]["narrative"] = narrative
    with workspace.transaction():
        workspace.put_item(item)
    workspace.close()
    assert run("forward", "--all", "--out", tmp_path / "again", *ws) == 1
    assert "refused" in capsys.readouterr().err
    assert run("redact", followup, "--accept-suggestions", *ws) == 1
    assert "is a follow-up message" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_followups_cannot_drive_the_terminal(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "boarded\x1b]52;c;cm0gLXJmIH4=\x07 \u202egpj.exe\r\x1b[2J"
    report, _, orphan = write_inbox(
        tmp_path / "inbox",
        PORTAL,
        [recipient],
        [
            (report_document("Paint stolen."), []),
            (followup_document(hostile), [], 0),
            (followup_document(hostile), [], "ab" * 16),
        ],
    )
    imported(ws, tmp_path / "inbox", capsys)
    assert run("show", report, *ws) == 0
    assert run("show", orphan, *ws) == 0
    assert run("list", *ws) == 0
    out = capsys.readouterr().out
    assert out.count("boarded") == 2
    for character in ("\x1b", "\u202e", "\x07", "\r"):
        assert character not in out
