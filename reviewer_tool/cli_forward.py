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
import sys
from pathlib import Path
from typing import Any

from reviewer_tool.errors import ReviewerError
from reviewer_tool.forward_flow import build_records, chosen_count, forwardable, write_batch
from reviewer_tool.forwarding import identity_values
from reviewer_tool.redaction import Finding, detect_identifiers
from reviewer_tool.redaction_flow import (
    name_flags,
    redact_field,
    redaction_record,
    split_terms,
    store_redaction,
    suggestions,
    text_fields,
    words_in,
)
from reviewer_tool.session import open_workspace
from reviewer_tool.terminal import GUTTER, ask, json_text, printable, quoted, say, say_text
from reviewer_tool.workspace import Followup

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
    return words_in(text, split_terms(raw))


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
    values = identity_values(item)
    if interactive:
        _print_followups(ws.followups(item.id))
    found = suggestions(item)
    redacted: dict[str, str] = {}
    removed = 0
    for name, text in text_fields(item).items():
        findings = found[name]
        if interactive:
            say(f"{name}: {len(findings)} suggestion(s)")
        chosen = _choose(text, findings, not interactive)
        if interactive:
            # overlaps are kept: redact_text merges them, so a typed word that
            # reaches past an accepted finding removes both
            chosen = chosen + _extra_terms(text, name)
        cleaned, dropped = redact_field(name, text, chosen)
        if dropped:
            say(f"  {name}: {dropped} control or invisible character(s) dropped")
        redacted[name] = cleaned
        removed += len(chosen)
    attachments = _choose_attachments(
        item.record["report"].get("attachments", []), values, interactive
    )
    store_redaction(ws, item, redaction_record(redacted, args.coarsen, attachments))
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
        flagged = name_flags(entry["name"], values)
        if flagged:
            say(f"  attachment {position}: its name holds {', '.join(flagged)}"
                  " (names are never forwarded)")  # fmt: skip
        kind = printable(entry["media_type"])
        question = f"  forward attachment {position} ({kind}), cleaned? Look first."
        if interactive and _ask(question, False):
            chosen.append(position)
    return chosen


def cmd_forward(args: argparse.Namespace) -> None:
    """Sign a batch of confirmed, redacted records; refuse any that still holds an identity."""
    ws = open_workspace(args)
    items, waiting = forwardable(ws, args.all)
    for item_id in waiting:
        say(f"not forwarded: {item_id[:12]} is confirmed but not redacted yet", err=True)
    if not items:
        raise ReviewerError("nothing to forward: no confirmed, redacted reports")
    records = build_records(ws, items)  # refuses a record that is not clean
    if args.attachments_dir is None and chosen_count(items):
        say(f"{chosen_count(items)} chosen attachment(s) not forwarded: give --attachments-dir")
    done = write_batch(ws, items, records, args.out, args.attachments_dir)
    extra = (
        f"; {done.attachments} cleaned attachment(s) in {args.attachments_dir}"
        if done.attachments
        else ""
    )
    say(f"{done.out}: {done.records} record(s) signed by {done.signer}{extra}")


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
