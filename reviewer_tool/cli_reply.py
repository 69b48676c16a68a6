"""``reviewer reply`` and ``reviewer export-replies``: answering the anonymous reporter.

A reply is sealed on this workstation to the reporter's own key, which the
report carries (crypto/SPEC.md §14.3), so the portal stores it without
being able to read it. Its plaintext is ``cso-reply/v1`` JSON::

    {"schema": "cso-reply/v1", "message": "…", "written_on": "2026-11-21"}

Replies leave in a replies bundle (§15) signed with the reviewer's key,
which also acknowledges the inbox bundles imported so far.

A reporter's follow-up messages are submissions of their own, but the
conversation belongs to the report: ``reviewer reply`` given a follow-up's
id answers in the thread of its report, so the reply's ``submission`` is
the report's id and the reporter key is the one the report carries. The
workspace remembers which follow-up a reply answered (``in_reply_to``);
the reporter is not told.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crypto.bundle import BundleWriter
from crypto.envelope import seal_bytes
from crypto.errors import KeyFormatError
from crypto.keys import KeyKind, parse_public_key
from reviewer_tool.errors import ReviewerError
from reviewer_tool.session import open_workspace
from reviewer_tool.terminal import say
from reviewer_tool.workspace import Followup, Item, Workspace

REPLY_SCHEMA = "cso-reply/v1"
REPORTER_STATUSES = ("received", "under-review", "closed")
MAX_MESSAGE = 20_000


def _message(args: argparse.Namespace) -> str | None:
    if args.message_file is not None:
        try:
            return Path(args.message_file).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            raise ReviewerError(f"cannot read {args.message_file} as UTF-8 text") from None
    return args.message.strip() if args.message else None


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


def cmd_reply(args: argparse.Namespace) -> None:
    """Seal a message to the reporter and/or set the status the reporter sees."""
    message = _message(args)
    if message is None and args.status is None:
        raise ReviewerError("give --message, --message-file or --status")
    if message is not None and len(message) > MAX_MESSAGE:
        raise ReviewerError(f"a reply has at most {MAX_MESSAGE} characters")
    ws = open_workspace(args)
    item, answering = _thread(ws, args.id)
    now = datetime.now(UTC)
    today = now.date().isoformat()
    envelope = b""
    if message is not None:
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
        envelope = seal_bytes(json.dumps(plaintext, ensure_ascii=False).encode(), [reporter.key])
    reply = {
        "reply_id": secrets.token_hex(16),
        "status": args.status,
        "message": message,
        "written_on": today,
        # orders the reply among same-day follow-ups (reviewer_tool/followups.py)
        "written_at": now.isoformat(timespec="microseconds"),
        "in_reply_to": answering,
    }
    item.record.setdefault("replies", []).append(reply)
    with ws.transaction():
        ws.put_item(item)
        ws.db.execute(
            "INSERT INTO outgoing (reply_id, item_id, sealed, envelope) VALUES (?, ?, ?, ?)",
            (reply["reply_id"], item.id, ws.seal_json(reply), ws.seal(envelope)),
        )
    what = ", ".join(
        part
        for part in ("message sealed to the reporter" if message else "", args.status or "")
        if part
    )
    thread = f" to follow-up {answering[:12]} in the thread of this report" if answering else ""
    say(
        f"{item.id[:12]}: reply {reply['reply_id'][:8]}{thread} queued ({what}); run export-replies"
    )


def cmd_export_replies(args: argparse.Namespace) -> None:
    """Write the replies bundle (and inbox acknowledgements) to carry to the portal."""
    ws = open_workspace(args)
    where = "" if args.all else " WHERE exported_in IS NULL"
    rows = ws.db.execute(
        f"SELECT reply_id, item_id, sealed, envelope FROM outgoing{where} ORDER BY rowid"  # noqa: S608 - fixed text
    ).fetchall()
    acknowledges = ws.imported_ranges()
    if not rows and not acknowledges:
        raise ReviewerError("nothing to export: no new replies and no imported inbox bundles")
    out: Path = args.out
    temp = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            writer = BundleWriter(
                handle, ws.keys.signing, "replies", {"acknowledges": acknowledges}
            )
            for reply_id, item_id, sealed, envelope in rows:
                reply: dict[str, Any] = ws.unseal_json(sealed)
                meta = {
                    "type": "reply",
                    "reply_id": reply_id,
                    "submission": item_id,
                    "status": reply["status"],
                }
                writer.add(meta, ws.unseal(envelope))
            bundle_id = writer.finish()
        if out.exists() and not args.force:
            raise ReviewerError(f"{out} exists; choose another name or pass --force")
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    with ws.transaction():
        ws.db.executemany(
            "UPDATE outgoing SET exported_in = ? WHERE reply_id = ?",
            [(bundle_id, row[0]) for row in rows],
        )
    shown = ", ".join(f"{a}-{b}" for a, b in acknowledges) or "nothing"
    say(f"{out}: {len(rows)} reply(ies), acknowledging inbox cursors {shown}; carry it back")


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the reply subcommands."""
    reply = verbs.add_parser("reply", parents=[common], help="answer the anonymous reporter")
    reply.add_argument("id", help="a report's id, or one of its follow-up messages'")
    text = reply.add_mutually_exclusive_group()
    text.add_argument("--message")
    text.add_argument("--message-file")
    reply.add_argument("--status", choices=REPORTER_STATUSES, help="what the reporter sees")
    reply.set_defaults(run=cmd_reply)
    export = verbs.add_parser("export-replies", parents=[common], help="the replies bundle")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--all", action="store_true", help="include replies already exported")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.set_defaults(run=cmd_export_replies)
