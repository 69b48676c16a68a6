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
from pathlib import Path
from typing import Any

from reviewer_tool.errors import ReviewerError
from reviewer_tool.replies_flow import export_replies
from reviewer_tool.session import open_workspace
from reviewer_tool.team import actions
from reviewer_tool.team.wire import MAX_MESSAGE, REPORTER_STATUSES
from reviewer_tool.terminal import say

REPLY_SCHEMA = actions.REPLY_SCHEMA


def _message(args: argparse.Namespace) -> str | None:
    if args.message_file is not None:
        try:
            return Path(args.message_file).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            raise ReviewerError(f"cannot read {args.message_file} as UTF-8 text") from None
    return args.message.strip() if args.message else None


def cmd_reply(args: argparse.Namespace) -> None:
    """Seal a message to the reporter and/or set the status the reporter sees.

    reviewer_tool/team/actions.py does the work, and shares the reply with
    the team so that every reviewer sees the whole conversation.
    """
    message = _message(args)
    if message is None and args.status is None:
        raise ReviewerError("give --message, --message-file or --status")
    if message is not None and len(message) > MAX_MESSAGE:
        raise ReviewerError(f"a reply has at most {MAX_MESSAGE} characters")
    ws = open_workspace(args)
    reply = actions.reply(ws, args.id, message, args.status)
    answering = reply["in_reply_to"]
    what = ", ".join(
        part
        for part in ("message sealed to the reporter" if message else "", args.status or "")
        if part
    )
    thread = f" to follow-up {answering[:12]} in the thread of this report" if answering else ""
    shown = f"{reply['report'][:12]}: reply {reply['reply_id'][:8]}{thread}"
    say(f"{shown} queued ({what}); run export-replies")


def cmd_export_replies(args: argparse.Namespace) -> None:
    """Write the replies bundle (and inbox acknowledgements) to carry to the portal."""
    ws = open_workspace(args)
    done = export_replies(ws, Path(args.out), include_all=args.all, force=args.force)
    shown = ", ".join(f"{a}-{b}" for a, b in done.acknowledges) or "nothing"
    say(
        f"{done.out}: {done.replies} reply(ies), {done.team_updates} team update(s),"
        f" acknowledging inbox cursors {shown}; carry it back"
    )
    if done.held_back:
        say(done.held_back)


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
