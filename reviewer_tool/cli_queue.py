"""``reviewer import|list|triage|export-attachment``: the queue of reports.

``list`` counts each report's follow-up messages from the reporter and how
many of them the reviewer has not been shown yet, and names the language the
reporter wrote in (reviewer_tool/languages.py); follow-ups whose report is
not in this workspace are listed apart. ``export-attachment`` takes a report's
id, or a follow-up message's id for the attachments sent with it.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

from reviewer_tool.admiralty import check_grade
from reviewer_tool.errors import ReviewerError
from reviewer_tool.importer import import_bundle, submission_count, verify
from reviewer_tool.languages import describe
from reviewer_tool.session import open_workspace
from reviewer_tool.team import actions
from reviewer_tool.team.wire import TRIAGE_STATUSES
from reviewer_tool.terminal import json_text, printable, render, say
from reviewer_tool.workspace import Followup, Item, Workspace

QUEUE_STATUSES = ("new", *TRIAGE_STATUSES)


def cmd_import(args: argparse.Namespace) -> None:
    """Verify, decrypt and store an inbox bundle, with a progress bar; rerun to resume."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    ws = open_workspace(args)
    bundle = verify(ws, Path(args.file))
    total = submission_count(bundle)
    # the bar shows only counts: nothing a sender chose reaches rich's own output
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), transient=not args.progress
    ) as progress:
        task = progress.add_task("import", total=total)
        result = import_bundle(ws, bundle, lambda n: progress.advance(task, n))
    say(
        f"{result.imported} new report(s), {result.already} already in the workspace"
        + (f", {result.not_for_you} not addressed to this key" if result.not_for_you else "")
    )
    if result.followups:
        orphans = f", {result.orphans} of them to a report not in this workspace"
        say(f"{result.followups} new follow-up message(s)" + (orphans if result.orphans else ""))
    team = result.team.summary() if result.team else None
    if team:
        say(team)
    for update_id, reason in result.team.problems if result.team else ():
        say(f"warning: team update {update_id} refused: {reason}")
    for item_id in result.unreadable:
        say(f"warning: report {item_id} could not be decrypted or is malformed; skipped")
    for item_id, reason in result.refused:
        say(f"warning: report {item_id} refused: {printable(reason)}")
    for followup_id, thread in result.unreadable_followups:
        say(
            f"warning: follow-up {followup_id} (to report {thread}) could not be decrypted"
            " or is malformed; skipped"
        )


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _in_range(args: argparse.Namespace, received_on: str) -> bool:
    received = date.fromisoformat(received_on)
    return not ((args.since and received < args.since) or (args.until and received > args.until))


def _followup_counts(ws: Workspace) -> tuple[dict[str, list[int]], list[dict[str, Any]]]:
    """Per report id, [follow-ups, unread]; and the follow-ups whose report is not here."""
    reports = ws.item_ids()
    counts: dict[str, list[int]] = {}
    orphans = []
    for followup_id, thread, summary in ws.followup_summaries():
        unread = not summary.get("read")
        if thread in reports:
            count = counts.setdefault(thread, [0, 0])
            count[0] += 1
            count[1] += unread
        else:
            orphans.append({"kind": "followup", "id": followup_id, "thread": thread,
                            "received_on": summary["received_on"],
                            "attachments": summary["attachments"], "unread": unread})  # fmt: skip
    return counts, orphans


def _report_rows(ws: Workspace, args: argparse.Namespace) -> list[dict[str, Any]]:
    counts, orphans = _followup_counts(ws)
    rows = []
    for item_id, summary in ws.summaries():
        followups, unread = counts.get(item_id, (0, 0))
        if args.status and summary["status"] != args.status:
            continue
        if args.category and summary.get("category") != args.category:
            continue
        if args.label and args.label not in (summary.get("labels") or []):
            continue
        if args.assignee and summary.get("assignee") != args.assignee:
            continue
        if not _in_range(args, summary["received_on"]) or (args.unread and not unread):
            continue
        # a summary written before issue 15 has no language: its report had none
        rows.append({"kind": "report", "id": item_id, "language": None, **summary,
                     "followups": followups, "unread_followups": unread})  # fmt: skip
    rows.sort(key=lambda row: (row["received_on"], row["id"]))
    # a follow-up alone has no status, category, label or assignee
    if not (args.status or args.category or args.label or args.assignee):
        rows += sorted(
            (
                o
                for o in orphans
                if _in_range(args, o["received_on"]) and (o["unread"] or not args.unread)
            ),
            key=lambda row: (row["received_on"], row["id"]),
        )
    return rows


def _messages_cell(row: dict[str, Any]) -> str:
    if not row["followups"]:
        return ""
    unread = row["unread_followups"]
    return f"{row['followups']} ({unread} new)" if unread else str(row["followups"])


def cmd_list(args: argparse.Namespace) -> None:
    """The queue, filtered by status, category, the day received and unread follow-ups."""
    ws = open_workspace(args)
    rows = _report_rows(ws, args)
    if args.json:
        say(json_text(rows))
        return
    from rich.box import ASCII2
    from rich.table import Table
    from rich.text import Text

    reports = [row for row in rows if row["kind"] == "report"]
    # ASCII borders: box-drawing characters are East Asian "ambiguous", so render()
    # counts each as two cells (as a CJK terminal draws them) and would wrap every
    # border wider than half the terminal
    table = Table(
        "id", "received", "status", "grade", "category", "place", "language", "files",
        "follow-ups", box=ASCII2,
    )  # fmt: skip
    for row in reports:
        cells = (
            row["id"][:12], row["received_on"], row["status"], row.get("grade") or "",
            row.get("category") or "", row.get("place") or "", describe(row["language"]),
            row.get("attachments", 0), _messages_cell(row),
        )  # fmt: skip
        table.add_row(*(Text(printable(cell)) for cell in cells))  # Text: no markup is parsed
    say(render(table))
    say(f"{len(reports)} report(s)")
    _print_orphans([row for row in rows if row["kind"] == "followup"])


def _print_orphans(orphans: list[dict[str, Any]]) -> None:
    """Follow-ups that cannot be shown in a conversation, each on a line of its own."""
    if not orphans:
        return
    say(
        f"{len(orphans)} follow-up message(s) whose report is not in this workspace"
        " (not addressed to this key, unreadable, or not imported yet):"
    )
    for row in orphans:
        new = "  new" if row["unread"] else ""
        say(f"  {row['id'][:12]}  received {row['received_on']}  to report "
              f"{row['thread'][:12]}  {row['attachments']} file(s){new}")  # fmt: skip


def cmd_triage(args: argparse.Namespace) -> None:
    """Set a report's status and Admiralty grade, and optionally link a duplicate.

    A team update (reviewer_tool/team/actions.py): the team sees it after the
    next replies bundle.
    """
    check_grade(args.grade)
    ws = open_workspace(args)
    item = actions.triage(ws, args.id, args.status, args.grade, args.duplicate_of)
    say(f"{item.id}: {args.status}, graded {args.grade}")


def _attachment(ws: Workspace, found: Item | Followup, name: str) -> tuple[dict[str, Any], bytes]:
    """The manifest entry and bytes of attachment ``name`` of a report or follow-up."""
    if isinstance(found, Followup):
        what, entries = f"follow-up {found.id[:12]}", found.record["followup"]["attachments"]
    else:
        what, entries = f"report {found.id[:12]}", found.record["report"].get("attachments", [])
    for position, entry in enumerate(entries, start=1):
        if entry["name"] == name:
            if isinstance(found, Followup):
                return entry, ws.followup_attachment(found.id, position)
            return entry, ws.attachment(found.id, position)
    hint = ""
    if isinstance(found, Item):
        holders = [
            f.id[:12]
            for f in ws.followups(found.id)
            if any(e["name"] == name for e in f.record["followup"]["attachments"])
        ]
        if holders:
            hint = f"; follow-up {holders[0]} has one: give that id instead"
    raise ReviewerError(f"{what} has no attachment called {name!r}{hint}")


def write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet, mode 0600.

    Created exclusively and never through a link (a link planted under the
    name, even one pointing nowhere, counts as existing); a file that cannot
    be written whole is removed again.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ReviewerError(f"{path} exists; choose another name") from None
    except OSError as error:
        raise ReviewerError(f"cannot write {path}: {error.strerror or 'refused'}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise ReviewerError(f"cannot write {path}: {error.strerror or 'failed'}") from None


def cmd_export_attachment(args: argparse.Namespace) -> None:
    """Write a scrubbed copy of an attachment (images re-encoded, PDFs stripped).

    The id is a report's, or a follow-up message's for the files it brought.
    """
    from reviewer_tool.redaction import AttachmentRefused, clean_attachment

    ws = open_workspace(args)
    entry, original = _attachment(ws, ws.find(args.id), args.name)
    try:
        _, data = clean_attachment(
            entry["name"], entry["media_type"], original, allow_other=args.allow_other
        )
    except AttachmentRefused as error:
        raise ReviewerError(str(error)) from None
    write_new_file(args.out, data)
    say(f"{args.out}: {len(data)} bytes, metadata removed")


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the queue subcommands."""
    importing = verbs.add_parser("import", parents=[common], help="import an inbox bundle")
    importing.add_argument("file")
    importing.add_argument("--progress", action="store_true", help="keep the finished bar")
    importing.set_defaults(run=cmd_import)
    listing = verbs.add_parser("list", parents=[common], help="the queue")
    listing.add_argument("--status", choices=QUEUE_STATUSES)
    listing.add_argument("--category")
    listing.add_argument("--since", type=_date, help="received on or after (YYYY-MM-DD)")
    listing.add_argument("--until", type=_date, help="received on or before (YYYY-MM-DD)")
    listing.add_argument(
        "--unread", action="store_true", help="only reports with follow-ups not shown yet"
    )
    listing.add_argument("--label", help="only reports with this label")
    listing.add_argument("--assignee", help="only reports assigned to this reviewer label")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_list)
    triage = verbs.add_parser("triage", parents=[common], help="confirm, grade, link")
    triage.add_argument("id")
    triage.add_argument("--status", choices=TRIAGE_STATUSES, required=True)
    triage.add_argument("--grade", required=True, help="Admiralty grade, A1 to F6")
    triage.add_argument("--duplicate-of", help="the id of the report this one repeats")
    triage.set_defaults(run=cmd_triage)
    export = verbs.add_parser("export-attachment", parents=[common], help="a scrubbed copy")
    export.add_argument("id", help="the report's id, or the follow-up message's that brought it")
    export.add_argument("name", help="the attachment's name, as `reviewer show` prints it")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument(
        "--allow-other", action="store_true", help="export a type that cannot be scrubbed, as is"
    )
    export.set_defaults(run=cmd_export_attachment)
