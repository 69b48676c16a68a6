"""``reviewer label|note|assign|link|history|trust-org|team``: work shared with the team.

Each change is a team update (reviewer_tool/team/): applied here at once,
carried to the other reviewers' workstations by the next replies bundle,
and merged there into the same state. A personal note (``note --personal``)
is the exception: it stays on this workstation. Labels, notes, reasons and
reviewer labels come from teammates, so everything printed goes through
reviewer_tool/terminal.py like a reporter's text.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reviewer_tool.errors import ReviewerError
from reviewer_tool.session import open_workspace
from reviewer_tool.team import actions, directories, log
from reviewer_tool.team.merge import short_author
from reviewer_tool.terminal import json_text, say, say_text
from reviewer_tool.workspace import Workspace


def cmd_label(args: argparse.Namespace) -> None:
    """Add a label to a report, or remove it."""
    ws = open_workspace(args)
    item = actions.set_label(ws, args.id, args.name, present=not args.remove)
    shown = ", ".join(item.record.get("team", {}).get("labels", [])) or "none"
    say_text(f"{item.id[:12]}: labels now ", shown)


def _note_text(args: argparse.Namespace) -> str:
    if args.file is not None:
        try:
            return Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ReviewerError(f"cannot read {args.file} as UTF-8 text") from None
    if args.text is None:
        raise ReviewerError("give the note's text, or --file F")
    return str(args.text)


def cmd_note(args: argparse.Namespace) -> None:
    """Write a team note on a report (or, with --personal, a note for yourself)."""
    text = _note_text(args)
    ws = open_workspace(args)
    item = ws.item(args.id)
    note = actions.add_note(ws, item.id, text, personal=args.personal)
    if args.personal:
        say(f"{item.id[:12]}: personal note {note['note_id'][:8]} kept on this workstation only")
    else:
        say(f"{item.id[:12]}: team note {note['note_id'][:8]} added; it reaches the team with"
            " the next replies bundle")  # fmt: skip


def cmd_assign(args: argparse.Namespace) -> None:
    """Assign a report to a reviewer (a key directory label), or to nobody."""
    if (args.label is None) == (not args.nobody):
        raise ReviewerError("give a reviewer's label or --nobody")
    ws = open_workspace(args)
    item = actions.assign(ws, args.id, None if args.nobody else args.label)
    assignee = item.record.get("team", {}).get("assignee")
    say_text(f"{item.id[:12]}: assigned to ", assignee or "nobody")


def cmd_link(args: argparse.Namespace) -> None:
    """Mark a report as a likely duplicate of another, or remove that link."""
    ws = open_workspace(args)
    item = actions.link(ws, args.id, args.other, present=not args.remove)
    links = item.record.get("team", {}).get("links", [])
    say(f"{item.id[:12]}: linked to " + (", ".join(other[:12] for other in links) or "none"))


def cmd_history(args: argparse.Namespace) -> None:
    """Who did what to a report, and when (UTC)."""
    ws = open_workspace(args)
    entries = actions.history(ws, args.id)
    if args.json:
        say(json_text(entries))
        return
    if not entries:
        say("no team history for this report yet")
    for entry in entries:
        say_text(f"{entry['at']}  ", f"{entry['who']}: {entry['what']}")


def cmd_trust_org(args: argparse.Namespace) -> None:
    """Pin the organisation key that signs the key directories."""
    ws = open_workspace(args)
    key = directories.pin_organisation(ws, args.token, replace=args.replace)
    say(f"organisation key pinned: {key.fingerprint}")


def _problem_line(ws: Workspace, row: dict[str, Any]) -> str:
    who = directories.label_of(ws, row["author"]) or short_author(row["author"])
    return (
        f"  {row['state']}  {row['id'][:8]}  report {row['report'][:12]}  {row['field']}  by {who}"
    )


def cmd_team(args: argparse.Namespace) -> None:
    """What this workstation holds of the team's work, and what it could not apply."""
    ws = open_workspace(args)
    counts = log.counts(ws)
    newest = directories.newest(ws)
    problems = log.not_applied(ws)
    if args.json:
        say(json_text({"label": directories.my_label(ws), "counts": counts,
                       "directory_serial": newest.serial if newest else None,
                       "not_applied": problems}))  # fmt: skip
        return
    say_text("this workstation: ", directories.my_label(ws))
    if newest is None:
        say("key directory: none held yet (import an inbox bundle after `reviewer trust-org`)")
    else:
        say(f"key directory: serial {newest.serial}, {len(newest.reviewers)} reviewer(s)")
    say(f"own updates waiting for export-replies: {counts['waiting']}")
    say(f"team updates: {counts['accepted']} applied, {counts['pending']} pending,"
        f" {counts['refused']} refused")  # fmt: skip
    for row in problems:
        say_text(_problem_line(ws, row) + ": ", row["reason"])


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the team subcommands."""
    label = verbs.add_parser("label", parents=[common], help="add or remove a report's label")
    label.add_argument("id")
    label.add_argument("name", help="1 to 40 letters, digits, spaces, - _ .")
    label.add_argument("--remove", action="store_true")
    label.set_defaults(run=cmd_label)
    note = verbs.add_parser("note", parents=[common], help="a team note, or a personal one")
    note.add_argument("id")
    text = note.add_mutually_exclusive_group()
    text.add_argument("text", nargs="?")
    text.add_argument("--file", help="read the note from this UTF-8 file")
    note.add_argument("--personal", action="store_true", help="for you alone, never shared")
    note.set_defaults(run=cmd_note)
    assign = verbs.add_parser("assign", parents=[common], help="assign a report to a reviewer")
    assign.add_argument("id")
    assign.add_argument("label", nargs="?", help="the reviewer's label in the key directory")
    assign.add_argument("--nobody", action="store_true", help="remove the assignment")
    assign.set_defaults(run=cmd_assign)
    link = verbs.add_parser("link", parents=[common], help="mark a likely duplicate")
    link.add_argument("id")
    link.add_argument("other", help="the report this one likely repeats")
    link.add_argument("--remove", action="store_true")
    link.set_defaults(run=cmd_link)
    history = verbs.add_parser("history", parents=[common], help="who did what to a report")
    history.add_argument("id")
    history.add_argument("--json", action="store_true")
    history.set_defaults(run=cmd_history)
    trust = verbs.add_parser("trust-org", parents=[common], help="pin the organisation key")
    trust.add_argument("token", help="csosig1… (the operator has it)")
    trust.add_argument("--replace", action="store_true", help="replace a different pinned key")
    trust.set_defaults(run=cmd_trust_org)
    team = verbs.add_parser("team", parents=[common], help="the state of team updates")
    team.add_argument("--json", action="store_true")
    team.set_defaults(run=cmd_team)
