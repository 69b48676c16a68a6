"""``portal purge``: delete the conversations past the retention period.

It also removes what unfinished uploads left behind: resumable uploads past
their expiry day (``pending_cleanup.py``) and abandoned one-shot uploads (``blob_locks.py``),
and what crashes left: blobs no row names (``reconcile.py``).

Meant to run daily from a timer (``portal --data-dir D purge``): it is
idempotent, prints one line of counts and nothing that names a report, and
fails with one line on stderr. The logic is in :mod:`portal.storage.retention`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn

from portal.config import environ_snapshot, load_config
from portal.storage import pending, pending_cleanup
from portal.storage.blobs import BlobStore
from portal.storage.db import make_engine, make_sessions
from portal.storage.reconcile import reconcile
from portal.storage.retention import (
    MAX_DAYS,
    MIN_DAYS,
    PurgeResult,
    RetentionError,
    purge,
    validate_days,
)


def cmd_purge(args: argparse.Namespace) -> None:
    """Purge (or with --dry-run, count) the expired conversations reviewers hold."""
    days = None if args.older_than is None else _days(args.older_than)
    config = load_config(environ_snapshot(), data_dir=args.data_dir.resolve())
    days = config.retention_days if days is None else days
    engine = make_engine(config.database_url)
    blobs = BlobStore(config.blob_dir)
    try:
        sessions = make_sessions(engine)
        result = purge(engine, sessions, blobs, days, dry_run=args.dry_run)
        # reconcile.py: blobs no row names and uploads whose writer died (crashes)
        found = reconcile(sessions, blobs, dry_run=args.dry_run)
    finally:
        engine.dispose()
    line = summary(result, days)
    if found.orphan_blobs or found.stale_temps:
        verb = "would remove" if args.dry_run else "removed"
        line += f"; after crashes: {verb} {found.line()}"
    if found.missing_blobs:
        line += f"; {found.missing_blobs} stored part(s) have lost their blob file: see doctor"
    if not args.dry_run:
        # pending_cleanup.py: resumable uploads past their expiry day (by their file
        # names: this process does not see the intake's runtime store)
        expired = pending_cleanup.purge_files(blobs, pending.today())
        # blobs.py with blob_locks.py: uploads abandoned for longer than a form stays valid, the
        # file times of past days, and the spare files for the day ahead
        abandoned = blobs.tidy(timedelta(seconds=config.csrf_time_limit))
        if abandoned:
            line += f"; {abandoned} abandoned upload(s) removed"
        if expired:
            line += f"; {expired} expired resumable upload(s) removed"
    print(line)


def _days(raw: str) -> int:
    """--older-than as a number of days, or a one-line refusal."""
    try:
        return validate_days(int(raw))
    except (ValueError, RetentionError):
        raise RetentionError(
            f"--older-than takes a whole number of days from {MIN_DAYS} to {MAX_DAYS}"
        ) from None


def summary(result: PurgeResult, days: int) -> str:
    """One line of counts: what went (or would go) and what was kept, and why."""
    if result.dry_run:
        line = (
            f"dry run, nothing changed: would purge {result.conversations} conversation(s)"
            f" quiet for more than {days} days ({result.followups} follow-up(s),"
            f" {result.replies} reply(ies), {result.blobs} blob file(s))"
        )
    else:
        line = (
            f"purged {result.conversations} conversation(s) quiet for more than {days} days"
            f" ({result.followups} follow-up(s), {result.replies} reply(ies),"
            f" {result.blobs} blob file(s) unlinked)"
        )
    if result.kept and result.behind:
        line += (
            f"; kept {result.kept} expired conversation(s) not yet acknowledged by:"
            f" {', '.join(result.behind)}"
        )
    elif result.kept:
        line += f"; kept {result.kept} expired conversation(s) no reviewer has acknowledged yet"
    if result.team_updates:
        verb = "would purge" if result.dry_run else "purged"
        line += f"; {verb} {result.team_updates} relayed team update(s)"
    if result.team_kept:
        line += f"; kept {result.team_kept} expired team update(s) a reviewer has not taken yet"
    if result.log_busy:
        line += "; SQLite's write-ahead log was in use, a later purge empties it"
    return line


def _one_line_errors(run: Callable[[argparse.Namespace], None]) -> Callable[..., None]:
    """Show a :class:`RetentionError` as one line on stderr and exit 2.

    ``portal.cli.main`` does this for the errors it knows; catching here keeps
    ``portal/cli/main.py`` down to the registration.
    """

    def guarded(args: argparse.Namespace) -> None:
        try:
            run(args)
        except RetentionError as error:
            _fail(str(error))

    return guarded


def _fail(message: str) -> NoReturn:
    print(f"portal: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def register(verbs: Any) -> None:
    """Add ``purge`` to the ``portal`` parser."""
    purge_command = verbs.add_parser(
        "purge", help="delete conversations past the retention period (PORTAL_RETENTION_DAYS)"
    )
    purge_command.add_argument(
        "--dry-run", action="store_true", help="change nothing; say what would go"
    )
    purge_command.add_argument(
        "--older-than",
        metavar="DAYS",
        help="retention period for this run, instead of PORTAL_RETENTION_DAYS (default 180)",
    )
    purge_command.set_defaults(run=_one_line_errors(cmd_purge))
