"""``reviewer import``: verify an inbox bundle, decrypt it, store it sealed in the workspace.

The whole bundle is verified against the pinned portal key before anything
is decrypted (crypto/SPEC.md §15.1, §15.2). Submissions are then decrypted,
checked, sealed again under the workspace key and committed in small
transactions; a submission and its attachments go in together or not at
all, and one already present is skipped (§15.3), so an import that is
interrupted, killed or run twice ends with exactly one copy of everything.

A submission whose entries carry ``"thread"`` is a reporter's follow-up
message (crypto/SPEC.md §14.4, §15; reviewer_tool/followups.py). It is
imported the same way, into the follow-up tables, whether or not the report
it follows is in this workspace: that report may have been sealed before
this reviewer's key was listed, may have been unreadable, or may come in a
bundle not imported yet.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crypto.bundle import Bundle, BundleItem, open_bundle
from crypto.envelope import open_bytes
from crypto.errors import BundleError, CryptoError, NoMatchError
from crypto.manifest import AttachmentCheck, parse_manifest
from reviewer_tool.errors import ReviewerError
from reviewer_tool.followups import check_followup
from reviewer_tool.languages import language_of
from reviewer_tool.team.exchange import ITEM_TYPE as TEAM_ITEM
from reviewer_tool.team.exchange import TeamImportResult, import_team
from reviewer_tool.vocabulary import (
    COORDINATE_FIELDS,
    COORDINATE_LIMITS,
    COUNT_FIELDS,
    DOCUMENT_MEMBERS,
    IDENTITY_FIELDS,
    LIST_FIELDS,
    LIST_LIMITS,
    MAX_LENGTH,
    REPORT_FIELDS,
)
from reviewer_tool.workspace import Workspace

#: submissions per transaction: small enough to lose little to a kill,
#: large enough that commits do not dominate a 10,000-report import
BATCH = 200
#: …and decrypted bytes per transaction, so that large attachments are not
#: all held in memory at once
BATCH_BYTES = 64 * 1024 * 1024
_HEX32 = re.compile(r"[0-9a-f]{32}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class ImportResult:
    """What an import did, for the closing message."""

    bundle_id: str
    imported: int = 0  # reports
    already: int = 0  # reports and follow-ups
    not_for_you: int = 0  # reports and follow-ups
    unreadable: list[str] = field(default_factory=list)
    #: (report id, one-line reason) of reports refused for their shape
    refused: list[tuple[str, str]] = field(default_factory=list)
    followups: int = 0
    #: new follow-ups whose report is not in the workspace after this import
    orphans: int = 0
    #: (follow-up id, report id) of follow-ups that could not be read
    unreadable_followups: list[tuple[str, str]] = field(default_factory=list)
    cursor_from: int | None = None
    cursor_to: int | None = None
    #: the bundle's key directory and team updates (reviewer_tool/team/exchange.py)
    team: TeamImportResult | None = None


@dataclass(frozen=True)
class Submission:
    """The items of one submission in a bundle, in part order."""

    id: str
    received_on: str
    parts: tuple[BundleItem, ...]
    #: the report this submission follows up, or None for a report
    thread: str | None = None


def _entry_ok(
    meta: Any, grouped: dict[str, list[BundleItem]], threads: dict[str, str | None]
) -> bool:
    """Whether one part's entry is well formed and in place (§15; ``thread`` for follow-ups)."""
    sid, day, position = meta.get("submission"), meta.get("received_on"), meta.get("position")
    if (
        meta.get("type") != "part"
        or not isinstance(sid, str)
        or not _HEX32.fullmatch(sid)
        or not isinstance(day, str)
        or not _DATE.fullmatch(day)
        or meta.get("kind") not in ("report", "attachment")
        or position != len(grouped.get(sid, ()))
        or (meta["kind"] == "report") != (position == 0)
    ):
        return False
    thread = meta.get("thread")
    if "thread" in meta and (
        not isinstance(thread, str) or not _HEX32.fullmatch(thread) or thread == sid
    ):
        return False
    # every part of a submission must say the same about the thread
    return position == 0 or bool(threads[sid] == thread)


def _submissions(bundle: Bundle) -> list[Submission]:
    """Group the bundle's parts by submission and check their entries."""
    grouped: dict[str, list[BundleItem]] = {}
    dates: dict[str, str] = {}
    threads: dict[str, str | None] = {}
    for item in bundle.items:
        if item.meta.get("type") == TEAM_ITEM:
            continue  # a team update: reviewer_tool/team/exchange.py reads those
        if not _entry_ok(item.meta, grouped, threads):
            raise ReviewerError(
                f"bundle item {item.index + 1} has a malformed entry; nothing imported"
            )
        sid = item.meta["submission"]
        grouped.setdefault(sid, []).append(item)
        dates[sid] = item.meta["received_on"]
        threads.setdefault(sid, item.meta.get("thread"))
    return [
        Submission(sid, dates[sid], tuple(parts), threads[sid]) for sid, parts in grouped.items()
    ]


class RefusedReportError(ValueError):
    """A report that decrypted but is not one the portal's form could have produced."""


def _name(key: str) -> str:
    return key if len(key) <= 40 else key[:40] + "…"


def _check_names(report: dict[str, Any]) -> None:
    """Refuse names outside the field vocabulary (reviewer_tool/vocabulary.py)."""
    for where, names, allowed in (
        ("document", report, DOCUMENT_MEMBERS),
        ("report section", report["report"], REPORT_FIELDS),
        ("identity section", report["identity"], IDENTITY_FIELDS),
    ):
        unknown = sorted(set(names) - allowed)
        if unknown:
            raise RefusedReportError(f"unknown field in the {where}: {_name(unknown[0])!r}")


def _type_ok(name: str, value: Any) -> bool:
    """Whether ``value`` has the type the form gives field ``name``."""
    if name in LIST_FIELDS:
        return type(value) is list and all(type(v) is str for v in value)
    if name in COUNT_FIELDS:
        return type(value) is int  # its range is the shared database's to check
    if name in COORDINATE_FIELDS:
        return type(value) in (int, float) and math.isfinite(value)
    return type(value) is str


def _size_problem(name: str, value: Any) -> str | None:
    """Why ``value`` (of the right type) is larger than the form allows in field
    ``name``, or None; the reason names the limit, never the value."""
    if name in COORDINATE_FIELDS:
        limit = COORDINATE_LIMITS[name]
        return None if abs(value) <= limit else f"{name} is outside -{limit}..{limit}"
    if name in LIST_LIMITS:
        items, length = LIST_LIMITS[name]
        if len(value) > items:
            return f"{name} holds {len(value)} items; the form has {items} choices"
        if any(len(item) > length for item in value):
            return f"{name} holds an item longer than any choice ({length} characters)"
        return None
    if name in MAX_LENGTH and len(value) > MAX_LENGTH[name]:
        return f"{name} is {len(value)} characters long; the form allows {MAX_LENGTH[name]}"
    return None


def _check_types(report: dict[str, Any]) -> None:
    """Refuse a field whose value is not of its kind, or larger than the form allows
    (reviewer_tool/vocabulary.py)."""
    for section in ("report", "identity"):
        for name, value in report[section].items():
            if value is None:
                continue
            if not _type_ok(name, value):
                raise RefusedReportError(f"{name} holds a {type(value).__name__}, not its kind")
            problem = _size_problem(name, value)
            if problem:
                raise RefusedReportError(problem)


def _check_shape(report: Any) -> dict[str, Any]:
    """The sender chose these bytes: refuse any report that is not the expected shape."""
    if not isinstance(report, dict) or report.get("schema") != "cso-report/v1":
        raise ValueError("not a cso-report/v1 document")
    if not isinstance(report.get("report", {}), dict) or not isinstance(
        report.get("identity", {}), dict
    ):
        raise ValueError("report and identity must be objects")
    _check_names({"report": {}, "identity": {}, **report})
    _check_types({"report": {}, "identity": {}, **report})
    key = report.get("reporter_key")
    if key is not None and not isinstance(key, str):
        raise ValueError("reporter_key must be a string")
    for value in (*report.get("report", {}).values(), *report.get("identity", {}).values()):
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ValueError("a list field holds something other than text")
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("a field holds something other than text or a number")
    return report


def _summary(report: dict[str, Any], received_on: str) -> dict[str, Any]:
    fields = report.get("report", {})
    local = fields.get("incident_local_time")
    return {
        "status": "new",
        "category": fields.get("category"),
        "received_on": received_on,
        "incident_date": local[:10] if isinstance(local, str) else None,
        "place": fields.get("place_name"),
        "grade": None,
        "attachments": len(report.get("attachments", [])),
        "language": language_of(report),
    }


@dataclass(frozen=True)
class _Sealed:
    """One submission, decrypted, checked and sealed again for the workspace."""

    id: str
    thread: str | None
    summary: bytes
    record: bytes
    attachments: tuple[bytes, ...]


def _open_parts(
    ws: Workspace, bundle: Bundle, submission: Submission
) -> tuple[dict[str, Any], list[bytes]]:
    """Open the document and its attachments; check each against the manifest (§11.2)."""
    document = json.loads(open_bytes(bundle.read_item(submission.parts[0]), ws.identity))
    document = _check_shape(document) if submission.thread is None else check_followup(document)
    entries = parse_manifest(document)
    if len(entries) != len(submission.parts) - 1:
        raise ValueError("the manifest and the parts disagree")
    attachments = []
    for entry, part in zip(entries, submission.parts[1:], strict=True):
        data = open_bytes(bundle.read_item(part), ws.identity)
        check = AttachmentCheck(entry)
        check.write(data)
        check.verify()
        attachments.append(data)
    return document, attachments


def _decrypt(ws: Workspace, bundle: Bundle, submission: Submission) -> _Sealed:
    """Open, check and seal one report or follow-up message.

    Sealing happens here rather than at commit so that text which cannot be
    stored (a lone surrogate let through by ``json.loads``) makes this one
    submission unreadable instead of failing the whole batch.
    """
    document, attachments = _open_parts(ws, bundle, submission)
    day = submission.received_on
    record: dict[str, Any]
    if submission.thread is None:
        summary = _summary(document, day)
        record = {"report": document, "received_on": day, "bundle": bundle.bundle_id,
                  "triage": None, "redaction": None, "replies": []}  # fmt: skip
    else:
        summary = {"received_on": day, "attachments": len(attachments), "read": False}
        imported_at = datetime.now(UTC).isoformat(timespec="microseconds")
        record = {"followup": document, "received_on": day, "bundle": bundle.bundle_id,
                  "imported_at": imported_at}  # fmt: skip
    return _Sealed(
        submission.id,
        submission.thread,
        ws.seal_json(summary),
        ws.seal_json(record),
        tuple(ws.seal(data) for data in attachments),
    )


def _store(ws: Workspace, batch: Sequence[_Sealed]) -> None:
    """Insert new reports, follow-ups and their attachments; one statement per table."""
    reports = [s for s in batch if s.thread is None]
    followups = [s for s in batch if s.thread is not None]
    ws.db.executemany(
        "INSERT INTO item (id, summary, record) VALUES (?, ?, ?)",
        [(s.id, s.summary, s.record) for s in reports],
    )
    ws.db.executemany(
        "INSERT INTO attachment (item_id, position, data) VALUES (?, ?, ?)",
        [(s.id, n, data) for s in reports for n, data in enumerate(s.attachments, start=1)],
    )
    ws.db.executemany(
        "INSERT INTO followup (id, thread_id, summary, record) VALUES (?, ?, ?, ?)",
        [(s.id, s.thread, s.summary, s.record) for s in followups],
    )
    ws.db.executemany(
        "INSERT INTO followup_attachment (followup_id, position, data) VALUES (?, ?, ?)",
        [(s.id, n, data) for s in followups for n, data in enumerate(s.attachments, start=1)],
    )


def verify(ws: Workspace, path: Path) -> Bundle:
    """Open and verify an inbox bundle against the pinned portal key."""
    try:
        bundle = open_bundle(path, {ws.portal_key()})
    except BundleError as error:
        raise ReviewerError(f"{path}: {error.diagnostics()}; nothing imported") from None
    except OSError as error:
        raise ReviewerError(f"{path}: {error.strerror}") from None
    if bundle.kind != "inbox":
        raise ReviewerError(f"{path} is a {bundle.kind} bundle, not an inbox bundle")
    return bundle


def submission_count(bundle: Bundle) -> int:
    """How many submissions a verified bundle holds (a progress bar's total)."""
    return len(
        {item.meta.get("submission") for item in bundle.items if item.meta.get("type") != TEAM_ITEM}
    )


def import_bundle(
    ws: Workspace, bundle: Bundle, advance: Callable[[int], None] = lambda _: None
) -> ImportResult:
    """Import every submission of a verified bundle; ``advance(n)`` reports progress."""
    submissions = _submissions(bundle)
    path = bundle.path
    cursor = bundle.fields.get("cursor", {})
    result = ImportResult(bundle.bundle_id)
    if (
        isinstance(cursor, dict)
        and isinstance(cursor.get("from"), int)
        and isinstance(cursor.get("to"), int)
        and 0 <= cursor["from"] <= cursor["to"]
    ):
        result.cursor_from, result.cursor_to = cursor["from"], cursor["to"]
    pending: list[_Sealed] = []
    held = 0

    def flush() -> None:
        nonlocal held
        held = 0
        with ws.transaction():
            _store(ws, pending)
        advance(len(pending))
        pending.clear()

    present = ws.submission_ids()
    new_followups: list[str] = []
    #: every report of the bundle, new or not: an import interrupted before its team part
    #: stored some of them, and held team updates must reach those too
    reports_here: list[str] = []
    for submission in submissions:
        if submission.thread is None:
            reports_here.append(submission.id)
        if submission.id in present:
            result.already += 1
            advance(1)
            continue
        try:
            pending.append(_decrypt(ws, bundle, submission))
            held += sum(part.size for part in submission.parts)
            if submission.thread is None:
                result.imported += 1
            else:
                new_followups.append(submission.thread)
        except RefusedReportError as error:
            result.refused.append((submission.id, str(error)))
            advance(1)
        except NoMatchError:
            result.not_for_you += 1  # sealed before this reviewer was in the directory
            advance(1)
        except BundleError as error:
            raise ReviewerError(f"{path}: {error.diagnostics()}") from None
        except (CryptoError, ValueError, UnicodeDecodeError, RecursionError, TypeError, KeyError):
            # The portal vouches only for the bytes; a sender can still seal
            # something malformed. Say which one, and keep going: one bad
            # report must not block every later import.
            if submission.thread is None:
                result.unreadable.append(submission.id)
            else:
                result.unreadable_followups.append((submission.id, submission.thread))
            advance(1)
        if len(pending) >= BATCH or held >= BATCH_BYTES:
            flush()
    flush()
    # after the reports are stored, so that updates about them apply; before the
    # bundle counts as complete, so that an interrupted import runs this again
    result.team = import_team(ws, bundle, reports_here)
    reports = ws.item_ids()
    result.followups = len(new_followups)
    result.orphans = sum(thread not in reports for thread in new_followups)
    with ws.transaction():
        ws.db.execute(
            "INSERT OR REPLACE INTO bundle (id, kind, cursor_from, cursor_to, complete) "
            "VALUES (?, ?, ?, ?, 1)",
            (bundle.bundle_id, bundle.kind, result.cursor_from, result.cursor_to),
        )
    return result
