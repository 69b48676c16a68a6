"""``reviewer import|list|show|triage|export-attachment``: the queue of reports."""

from __future__ import annotations

import argparse
import json
import os
import re
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from reviewer_tool.cli import open_workspace
from reviewer_tool.errors import ReviewerError
from reviewer_tool.importer import import_bundle, submission_count, verify
from reviewer_tool.workspace import Item, Workspace

TRIAGE_STATUSES = ("confirmed", "unconfirmed", "rejected")
#: what a sender could use to drive the reviewer's terminal: controls, bidi overrides
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def printable(value: object) -> str:
    """Text from a report made safe for a terminal: escape and format characters shown as �."""
    return "".join(
        "\ufffd" if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in str(value)
    )


QUEUE_STATUSES = ("new", *TRIAGE_STATUSES)
_GRADE = re.compile(r"[A-F][1-6]")


def cmd_import(args: argparse.Namespace) -> None:
    """Verify, decrypt and store an inbox bundle, with a progress bar; rerun to resume."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    ws = open_workspace(args)
    bundle = verify(ws, Path(args.file))
    total = submission_count(bundle)
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), transient=not args.progress
    ) as progress:
        task = progress.add_task("import", total=total)
        result = import_bundle(ws, bundle, lambda n: progress.advance(task, n))
    print(
        f"{result.imported} new report(s), {result.already} already in the workspace"
        + (f", {result.not_for_you} not addressed to this key" if result.not_for_you else "")
    )
    for item_id in result.unreadable:
        print(f"warning: report {item_id} could not be decrypted or is malformed; skipped")


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def cmd_list(args: argparse.Namespace) -> None:
    """The queue, filtered by status, category and the day received."""
    ws = open_workspace(args)
    rows = []
    for item_id, summary in ws.summaries():
        received = date.fromisoformat(summary["received_on"])
        if args.status and summary["status"] != args.status:
            continue
        if args.category and summary.get("category") != args.category:
            continue
        if (args.since and received < args.since) or (args.until and received > args.until):
            continue
        rows.append({"id": item_id, **summary})
    rows.sort(key=lambda row: (row["received_on"], row["id"]))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "received", "status", "grade", "category", "place", "files")
    from rich.text import Text

    for row in rows:
        cells = (
            row["id"][:12], row["received_on"], row["status"], row.get("grade") or "",
            row.get("category") or "", row.get("place") or "", row.get("attachments", 0),
        )  # fmt: skip
        table.add_row(*(Text(printable(cell)) for cell in cells))  # Text: no markup is parsed
    Console().print(table)
    print(f"{len(rows)} report(s)")


def _show_text(item: Item) -> None:
    report = item.record["report"]
    print(f"report {item.id}  received {item.record['received_on']}  [{item.summary['status']}]")
    triage = item.record.get("triage")
    if triage:
        line = f"triage: {triage['status']} {triage['grade']}"
        if triage.get("duplicate_of"):
            line += f" (duplicate of {triage['duplicate_of']})"
        print(line)
    for name, value in report.get("report", {}).items():
        if name != "narrative":
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"  {name}: {printable(shown)}")
    if report.get("report", {}).get("narrative"):
        print("narrative:")
        for line in str(report["report"]["narrative"]).splitlines():
            print(f"  {printable(line)}")
    identity = report.get("identity", {})
    if identity:
        print("identity section (never forwarded):")
        for name, value in identity.items():
            print(f"  {name}: {printable(value)}")
    print(f"reporter key: {'present' if report.get('reporter_key') else 'none (cannot reply)'}")
    attachments = report.get("attachments", [])
    print(f"attachments: {len(attachments)}")
    for entry in attachments:
        scrubbed = "metadata removed by sender" if entry["scrubbed"] else "not scrubbed"
        name = printable(entry["name"])
        print(f"  {name}  {entry['media_type']}  {entry['size']} bytes  ({scrubbed})")
    for reply in item.record.get("replies", []):
        print(f"reply {reply['reply_id'][:8]} on {reply['written_on']}: status {reply['status']}")


def cmd_show(args: argparse.Namespace) -> None:
    """One report: its fields, identity section and attachments."""
    item = open_workspace(args).item(args.id)
    if args.json:
        print(json.dumps({"id": item.id, **item.record}, ensure_ascii=False, indent=2))
    else:
        _show_text(item)


def cmd_triage(args: argparse.Namespace) -> None:
    """Set a report's status and Admiralty grade, and optionally link a duplicate."""
    if not _GRADE.fullmatch(args.grade):
        raise ReviewerError("a grade is a letter A-F and a digit 1-6, such as B2")
    ws = open_workspace(args)
    item = ws.item(args.id)
    duplicate = None
    if args.duplicate_of:
        duplicate = ws.item(args.duplicate_of).id
        if duplicate == item.id:
            raise ReviewerError("a report cannot be a duplicate of itself")
    item.record["triage"] = {
        "status": args.status,
        "grade": args.grade,
        "duplicate_of": duplicate,
        "on": datetime.now(UTC).date().isoformat(),
    }
    item.summary.update(status=args.status, grade=args.grade)
    with ws.transaction():
        ws.put_item(item)
    print(f"{item.id}: {args.status}, graded {args.grade}")


def _attachment_index(ws: Workspace, item: Item, name: str) -> tuple[int, dict[str, Any]]:
    for position, entry in enumerate(item.record["report"].get("attachments", []), start=1):
        if entry["name"] == name:
            return position, entry
    raise ReviewerError(f"report {item.id[:12]} has no attachment called {name!r}")


def write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet, mode 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ReviewerError(f"{path} exists; choose another name") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def cmd_export_attachment(args: argparse.Namespace) -> None:
    """Write a scrubbed copy of one attachment (images re-encoded, PDFs stripped)."""
    from reviewer_tool.redaction import AttachmentRefused, clean_attachment

    ws = open_workspace(args)
    item = ws.item(args.id)
    position, entry = _attachment_index(ws, item, args.name)
    try:
        _, data = clean_attachment(
            entry["name"], entry["media_type"], ws.attachment(item.id, position),
            allow_other=args.allow_other,
        )  # fmt: skip
    except AttachmentRefused as error:
        raise ReviewerError(str(error)) from None
    write_new_file(args.out, data)
    print(f"{args.out}: {len(data)} bytes, metadata removed")


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
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_list)
    show = verbs.add_parser("show", parents=[common], help="one report")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=cmd_show)
    triage = verbs.add_parser("triage", parents=[common], help="confirm, grade, link")
    triage.add_argument("id")
    triage.add_argument("--status", choices=TRIAGE_STATUSES, required=True)
    triage.add_argument("--grade", required=True, help="Admiralty grade, A1 to F6")
    triage.add_argument("--duplicate-of", help="the id of the report this one repeats")
    triage.set_defaults(run=cmd_triage)
    export = verbs.add_parser("export-attachment", parents=[common], help="a scrubbed copy")
    export.add_argument("id")
    export.add_argument("name")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument(
        "--allow-other", action="store_true", help="export a type that cannot be scrubbed, as is"
    )
    export.set_defaults(run=cmd_export_attachment)
