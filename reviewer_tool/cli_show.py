"""``reviewer show``: a report and its conversation with the anonymous reporter.

``show REPORT`` prints the report (the language the reporter used, its
fields, narrative, identity section and attachments), what the team has said
about it (labels, assignment, likely duplicates, team notes) with this
reviewer's personal notes (reviewer_tool/team/), then the conversation,
oldest first: the reporter's follow-up messages with the names of the files
they brought, and the replies written on this workstation or shared by a
teammate (reviewer_tool/followups.py says how the two are put in order). Given a
follow-up's id it shows the conversation that message belongs to; a
follow-up whose report is not in this workspace is shown alone, and said to
be. Whatever is shown is marked read, which is what ``reviewer list``
counts. Everything goes to the terminal through reviewer_tool/terminal.py;
every string the sender chose, keys and names included, is kept to one line
by :func:`printable` and wrapped behind a gutter by :func:`say_text`, so
none of it can start a row of its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from reviewer_tool.followups import conversation
from reviewer_tool.languages import describe, language_of
from reviewer_tool.session import open_workspace
from reviewer_tool.team import log
from reviewer_tool.terminal import GUTTER, json_text, printable, say, say_text
from reviewer_tool.workspace import Followup, Item

EXPORT_HINT = "open a follow-up's file with: reviewer export-attachment FOLLOW-UP-ID NAME --out F"


def _attachment_line(entry: Mapping[str, Any]) -> str:
    scrubbed = "metadata removed by sender" if entry["scrubbed"] else "not scrubbed"
    name = printable(entry["name"])
    return (
        f"{name}  {printable(entry['media_type'])}  {printable(entry['size'])} bytes  ({scrubbed})"
    )


def _print_text(text: str, gutter: str) -> None:
    for line in text.splitlines() or [""]:
        say_text(gutter, line, gutter=gutter)


def _show_report(item: Item) -> None:
    report = item.record["report"]
    say(f"report {item.id}  received {item.record['received_on']}  [{item.summary['status']}]")
    say(f"language: {describe(language_of(report))}")
    triage = item.record.get("triage")
    if triage:
        line = f"triage: {triage['status']} {triage['grade']}"
        if triage.get("duplicate_of"):
            line += f" (duplicate of {triage['duplicate_of']})"
        say(line)
    for name, value in report.get("report", {}).items():
        if name != "narrative":
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            say_text(f"  {printable(name)}: ", str(shown))
    if report.get("report", {}).get("narrative"):
        say("narrative:")
        _print_text(str(report["report"]["narrative"]), GUTTER)
    identity = report.get("identity", {})
    if identity:
        say("identity section (never forwarded):")
        for name, value in identity.items():
            say_text(f"  {printable(name)}: ", str(value))
    say(f"reporter key: {'present' if report.get('reporter_key') else 'none (cannot reply)'}")
    attachments = report.get("attachments", [])
    say(f"attachments: {len(attachments)}")
    for entry in attachments:
        say_text("  ", _attachment_line(entry))


def _show_team(item: Item, personal: Sequence[Mapping[str, Any]]) -> None:
    """Labels, assignment, links and notes: the team's words, so shown as a sender's are."""
    team = item.record.get("team") or {}
    if team.get("labels"):
        say_text("labels: ", ", ".join(team["labels"]))
    if team.get("assignee"):
        say_text("assigned to: ", team["assignee"])
    if team.get("links"):
        say("likely duplicate of: " + ", ".join(other[:12] for other in team["links"]))
    for title, notes in (
        ("team notes (shared with the team, never forwarded)", team.get("notes") or []),
        ("personal notes (yours alone, never shared or forwarded)", personal),
    ):
        if notes:
            say(f"{title}: {len(notes)}")
        for note in notes:
            say_text(f"  {printable(note['at'])}  ", str(note.get("who", "you")))
            _print_text(note["text"], "  " + GUTTER)


def _show_event(event: Mapping[str, Any]) -> None:
    if event["from"] == "reporter":
        new = "  [new]" if event["new"] else ""
        say(f"  {event['received_on']}  reporter  follow-up {event['id'][:12]}{new}")
        _print_text(event["message"], "  " + GUTTER)
        for entry in event["attachments"]:
            say_text("    file: ", _attachment_line(entry))
        return
    who = printable(event.get("who") or "you")  # a teammate's label, or "you"
    line = f"  {event['written_on']}  {who}  reply {event['reply_id'][:8]}"
    if event["status"]:
        line += f"  status {event['status']}"
    if event["in_reply_to"]:
        line += f"  (to follow-up {event['in_reply_to'][:12]})"
    say(line)
    if event["message"]:
        _print_text(event["message"], "  " + GUTTER)
        if event.get("shortened"):
            say("    (the team's copy is shortened; the reporter received it whole)")
    else:
        say("    (status change only, no message)")


def _show_conversation(events: Sequence[Mapping[str, Any]]) -> None:
    """The conversation; a reply event names its teammate author in ``who`` (None: this
    workstation's own)."""
    followups = [e for e in events if e["from"] == "reporter"]
    if not events:
        say("conversation: no follow-up messages or replies yet")
        return
    new = sum(e["new"] for e in followups)
    theirs = sum(e["from"] == "reviewer" and bool(e.get("who")) for e in events)
    say(
        f"conversation: {len(followups)} follow-up message(s) from the reporter ({new} new),"
        f" {len(events) - len(followups) - theirs} reply(ies) from this workstation"
        + (f", {theirs} from teammates" if theirs else "")
    )
    for event in events:
        _show_event(event)
    if any(e["attachments"] for e in followups):
        say(EXPORT_HINT)


def _show_orphan(followup: Followup) -> None:
    document = followup.record["followup"]
    new = "  [new]" if not followup.summary.get("read") else ""
    say(f"follow-up {followup.id}  received {followup.record['received_on']}{new}")
    say(
        f"to report {followup.thread}, which is not in this workspace"
        " (not addressed to this key, unreadable, or not imported yet); it cannot be answered"
    )
    say("message:")
    _print_text(document["message"], GUTTER)
    say(f"attachments: {len(document['attachments'])}")
    for entry in document["attachments"]:
        say_text("  ", _attachment_line(entry))


def cmd_show(args: argparse.Namespace) -> None:
    """One report and its conversation (or a follow-up whose report is not here)."""
    ws = open_workspace(args)
    found = ws.find(args.id)
    if isinstance(found, Followup):
        item = ws.report(found.thread)
        if item is None:
            if args.json:
                shown = {"id": found.id, "thread": found.thread, "report_in_workspace": False}
                say(json_text({**shown, **found.record}))
            else:
                _show_orphan(found)
            ws.mark_read([found])
            return
    else:
        item = found
    followups = ws.followups(item.id)
    events = conversation(item.record.get("replies", []), followups)
    personal = log.personal_notes(ws, item.id)
    if args.json:
        # the document's own member stays as sent (escaped); this one is checked
        language = language_of(item.record["report"])
        shown = {"id": item.id, "language": language, **item.record, "conversation": events,
                 "personal_notes": personal}  # fmt: skip
        say(json_text(shown))
    else:
        _show_report(item)
        _show_team(item, personal)
        _show_conversation(events)
    ws.mark_read(followups)


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the show subcommand."""
    show = verbs.add_parser("show", parents=[common], help="one report and its conversation")
    show.add_argument("id", help="a report's id, or a follow-up message's (6 characters or more)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=cmd_show)
