"""``reviewer redact|forward|detect``: from a confirmed report to a signed, anonymised batch.

Only the report is ever forwarded. The reporter's follow-up messages are
not: no field of a record is built from them, and the identity check before
signing searches for the report's own identity-section values, which a
follow-up cannot change. ``redact`` at a terminal prints the follow-ups
first, as context only, so that a name the reporter gave later can be added
to the words removed from the report's fields.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crypto.batch import Attachment, sign_batch
from reviewer_tool.cli_queue import write_new_file
from reviewer_tool.errors import ReviewerError
from reviewer_tool.forwarding import (
    MULTILINE_FIELDS,
    TEXT_FIELDS,
    build_record,
    clean_text,
    identity_values,
    incident_id,
    ship_identifiers,
)
from reviewer_tool.redaction import (
    AttachmentRefused,
    Finding,
    clean_attachment,
    detect_identifiers,
    redact_text,
)
from reviewer_tool.redaction.attachments import sniff
from reviewer_tool.session import open_workspace
from reviewer_tool.terminal import GUTTER, ask, json_text, printable, quoted, say, say_text
from reviewer_tool.workspace import Followup, Item, Workspace

_YES, _NO = frozenset({"y", "yes"}), frozenset({"n", "no"})


def _ask(question: str, default: bool) -> bool:
    """A yes/no answer; anything else (such as a terminal's own reply) asks again."""
    while True:
        try:
            answer = ask(f"{question} [{'Y/n' if default else 'y/N'}] ").strip().lower()
        except EOFError:
            raise ReviewerError("no answer (end of input); nothing stored") from None
        if not answer:
            return default
        if answer in _YES or answer in _NO:
            return answer in _YES
        say("  please answer y or n")


def _choose(text: str, findings: list[Finding], accept_all: bool) -> list[Finding]:
    if accept_all:
        return findings
    chosen = []
    for finding in findings:
        context = text[max(0, finding.start - 30) : finding.end + 30].replace("\n", " ")
        note = f", {finding.note}" if finding.note else ""
        say_text(GUTTER, f"…{context}…")
        if _ask(f"  redact {quoted(finding.text)} ({finding.kind}{note})?", default=True):
            chosen.append(finding)
    return chosen


def _extra_terms(text: str, name: str) -> list[Finding]:
    """Words the reviewer adds by hand, found wherever they occur in the field."""
    try:
        raw = ask(f"  anything else to remove from {name}? (separate with |, Enter for none) ")
    except EOFError:
        raise ReviewerError("no answer (end of input); nothing stored") from None
    findings = []
    for term in filter(None, (t.strip() for t in raw.split("|"))):
        start = text.lower().find(term.lower())
        while start >= 0:
            end = start + len(term)
            findings.append(Finding("manual", start, end, text[start:end], 1.0))
            start = text.lower().find(term.lower(), end)
    return findings


def _print_followups(followups: list[Followup]) -> None:
    """The reporter's later messages, shown while redacting; none of it is forwarded."""
    if not followups:
        return
    say(
        f"the reporter wrote {len(followups)} follow-up message(s); context only, never"
        " forwarded (a name in them can be removed below as an extra word):"
    )
    for followup in followups:
        say(f"  {followup.record['received_on']}  follow-up {followup.id[:12]}")
        for line in followup.record["followup"]["message"].splitlines():
            say_text("  " + GUTTER, line, gutter="  " + GUTTER)


def cmd_redact(args: argparse.Namespace) -> None:
    """Review the detected identifiers in every text field; store the redacted version."""
    interactive = not args.accept_suggestions
    if interactive and not sys.stdin.isatty():
        raise ReviewerError(
            "redact asks questions: run it at a terminal or pass --accept-suggestions"
        )
    ws = open_workspace(args)
    item = ws.item(args.id)
    report = item.record["report"]
    values = identity_values(item)
    known = ship_identifiers(item)
    if interactive:
        _print_followups(ws.followups(item.id))
    redacted: dict[str, str] = {}
    removed = 0
    for name in TEXT_FIELDS:
        text = report.get("report", {}).get(name)
        if not text:
            continue
        findings = detect_identifiers(text, values, known)
        if interactive:
            say(f"{name}: {len(findings)} suggestion(s)")
        chosen = _choose(text, findings, not interactive)
        if interactive:
            chosen = sorted(chosen + _extra_terms(text, name), key=lambda f: f.start)
            chosen = [f for i, f in enumerate(chosen) if i == 0 or f.start >= chosen[i - 1].end]
        cleaned, dropped = clean_text(redact_text(text, chosen), multiline=name in MULTILINE_FIELDS)
        if dropped:
            say(f"  {name}: {dropped} control or invisible character(s) dropped")
        redacted[name] = cleaned
        removed += len(chosen)
    attachments = _choose_attachments(report.get("attachments", []), values, interactive)
    item.record["redaction"] = {
        "fields": redacted,
        "position_decimals": args.coarsen,
        "attachments": attachments,
        "on": datetime.now(UTC).date().isoformat(),
    }
    with ws.transaction():
        ws.put_item(item)
    say(
        f"{item.id[:12]}: {removed} identifier(s) removed from {len(redacted)} field(s);"
        f" position to {args.coarsen} decimals; {len(attachments)} attachment(s) to forward"
    )


def _choose_attachments(
    entries: list[dict[str, Any]], values: list[str], interactive: bool
) -> list[int]:
    """Attachments are forwarded only when the reviewer says so for each one.

    Metadata cleaning cannot remove a ship's name painted on a hull in a photo
    or typed inside a PDF, so ``--accept-suggestions`` never picks one.
    """
    chosen = []
    for position, entry in enumerate(entries, start=1):
        flagged = detect_identifiers(entry["name"], values)
        if flagged:
            say(f"  attachment {position}: its name holds {', '.join(f.kind for f in flagged)}"
                  " (names are never forwarded)")  # fmt: skip
        kind = printable(entry["media_type"])
        question = f"  forward attachment {position} ({kind}), cleaned? Look first."
        if interactive and _ask(question, False):
            chosen.append(position)
    return chosen


def _forwardable(ws: Workspace, include_forwarded: bool) -> tuple[list[Item], list[str]]:
    ready: list[Item] = []
    waiting: list[Item] = []
    for item_id, summary in ws.summaries():
        if summary["status"] != "confirmed":
            continue
        item = ws.item(item_id)
        if item.record.get("forwarded") and not include_forwarded:
            continue
        (ready if item.record.get("redaction") else waiting).append(item)
    return ready, [item.id for item in waiting]


#: what the shared database accepts (crypto/SPEC.md §16.11), by the cleaned content's kind
_SHARED_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}


def _chosen_count(items: list[Item]) -> int:
    return sum(len(item.record["redaction"].get("attachments", [])) for item in items)


def _cleaned_attachments(
    ws: Workspace, items: list[Item], ids: dict[str, str]
) -> tuple[list[Attachment], dict[str, bytes]]:
    """Every chosen attachment, cleaned, in memory, with its entry for the batch header
    (§16.9): refused before anything is written. ``items`` are in record order."""
    entries_out: list[Attachment] = []
    files: dict[str, bytes] = {}
    for record, item in enumerate(items, start=1):
        entries = item.record["report"].get("attachments", [])
        for position in item.record["redaction"].get("attachments", []):
            entry = entries[position - 1]
            where = f"report {item.id[:12]} attachment {position}"
            try:
                # the name is made from the record id: the reporter's file name is never sent
                name, data = clean_attachment(
                    f"{ids[item.id]}-{position}", entry["media_type"],
                    ws.attachment(item.id, position),
                )  # fmt: skip
            except AttachmentRefused as error:
                raise ReviewerError(f"{where}: {error}; nothing written") from None
            media_type = _SHARED_TYPES.get(sniff(data) or "")
            if media_type is None:
                raise ReviewerError(
                    f"{where}: the shared database takes JPEG, PNG and PDF only; leave it out "
                    "with `reviewer redact` or send it another way. Nothing written."
                )
            digest = hashlib.sha256(data).hexdigest()
            files[digest] = data
            entries_out.append(Attachment(record, digest, media_type, len(data), name))
    return entries_out, files


def _write_attachments(directory: Path, files: dict[str, bytes]) -> None:
    """Write each file under its SHA-256 (§16.10); one already there with that name is
    the same file, but is checked anyway."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for digest, data in files.items():
        path = directory / digest
        if path.exists():
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                raise ReviewerError(f"{path} exists with other content; remove it first")
            continue
        write_new_file(path, data)


def cmd_forward(args: argparse.Namespace) -> None:
    """Sign a batch of confirmed, redacted records; refuse any that still holds an identity."""
    ws = open_workspace(args)
    items, waiting = _forwardable(ws, args.all)
    for item_id in waiting:
        say(f"not forwarded: {item_id[:12]} is confirmed but not redacted yet", err=True)
    if not items:
        raise ReviewerError("nothing to forward: no confirmed, redacted reports")
    ids = {item.id: incident_id(ws, item) for item in items}
    all_ids = {item_id: incident_id(ws, ws.item(item_id)) for item_id, _ in ws.summaries()}
    records = []
    for item in items:
        record = build_record(ws, item, all_ids)  # refuses a record that is not clean
        records.append(record)
    attachments: list[Attachment] = []
    files: dict[str, bytes] = {}
    if args.attachments_dir is not None:
        attachments, files = _cleaned_attachments(ws, items, ids)
    elif _chosen_count(items):
        say(f"{_chosen_count(items)} chosen attachment(s) not forwarded: give --attachments-dir")
    batch_id = secrets.token_hex(16)
    data = sign_batch(records, ws.keys.signing, batch_id=batch_id,
                      created_at=datetime.now(UTC), attachments=attachments)  # fmt: skip
    out: Path = args.out
    if out.exists():
        raise ReviewerError(f"{out} exists; choose another name")
    if files:
        # the files first: a batch is never on disk without the files it lists
        _write_attachments(args.attachments_dir, files)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ReviewerError(f"{out} exists; choose another name") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    files_count = len(attachments)
    today = datetime.now(UTC).date().isoformat()
    with ws.transaction():
        for item in items:
            item.record["forwarded"] = {"batch": batch_id, "on": today, "id": ids[item.id]}
            ws.put_item(item)
    extra = (
        f"; {files_count} cleaned attachment(s) in {args.attachments_dir}" if files_count else ""
    )
    say(f"{out}: {len(records)} record(s) signed by {ws.keys.signing.token.fingerprint}{extra}")


def cmd_detect(args: argparse.Namespace) -> None:
    """Print the identifiers found in a text (a file or stdin) as JSON lines."""
    if args.file in (None, "-"):
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ReviewerError(f"{args.file} is not UTF-8 text") from None
    for finding in detect_identifiers(text, args.identity or ()):
        say(json_text(finding.to_json(), indent=None))


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the redaction and forwarding subcommands."""
    redact = verbs.add_parser("redact", parents=[common], help="confirm what to remove")
    redact.add_argument("id")
    redact.add_argument(
        "--accept-suggestions", action="store_true", help="apply every detected redaction"
    )
    redact.add_argument(
        "--coarsen", type=int, default=2, choices=range(7), metavar="N",
        help="round the position to N decimals (default 2, about 1 km)",
    )  # fmt: skip
    redact.set_defaults(run=cmd_redact)
    forward = verbs.add_parser("forward", parents=[common], help="sign a batch for the shared DB")
    forward.add_argument("--out", type=Path, required=True, help="the batch file (JSON Lines)")
    forward.add_argument("--all", action="store_true", help="include reports forwarded before")
    forward.add_argument(
        "--attachments-dir", type=Path,
        help="also forward the chosen attachments, cleaned, as files named by their SHA-256;"
        " the batch lists and signs them (JPEG, PNG and PDF only)",
    )  # fmt: skip
    forward.set_defaults(run=cmd_forward)
    detect = verbs.add_parser(
        "detect", parents=[common], help="find identifiers in a text (JSON lines)"
    )
    detect.add_argument("file", nargs="?", help="a UTF-8 text file, or - for stdin")
    detect.add_argument("--identity", action="append", help="a value to find (repeatable)")
    detect.set_defaults(run=cmd_detect)
