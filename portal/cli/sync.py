"""``portal accounts …``, ``portal export`` and ``portal import-replies``.

Accounts hold a reviewer's two public keys: the *sync key* that the transfer
machine logs in with, and the *signing key* of the offline workstation that
signs replies bundles (``reviewer pubkey`` prints both). ``export`` and
``import-replies`` are the fully offline path: the operator carries bundle
files instead of the reviewers using the sync API.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from crypto.keys import KeyKind, parse_public_key
from portal.config import environ_snapshot, load_config
from portal.storage.blobs import BlobStore
from portal.storage.db import make_engine, make_sessions
from portal.storage.inbox import (
    SyncError,
    directory_text,
    export_inbox,
    import_replies,
    load_signing_key,
)
from portal.storage.models import ACCOUNT_LABEL, ReviewerAccount

#: a sync account's label (also what a restore accepts from the enrolment record)
LABEL = ACCOUNT_LABEL  # one rule for enrolment, restore and the sync API


class AccountError(Exception):
    """An account command cannot be done; the message says why."""


def _open(args: argparse.Namespace) -> tuple[Any, Any, BlobStore, Path]:
    config = load_config(environ_snapshot(), data_dir=args.data_dir.resolve())
    engine = make_engine(config.database_url)
    return engine, make_sessions(engine), BlobStore(config.blob_dir), config.data_dir


def _cursor(text: str) -> int:
    """A cursor option: a whole number from 0."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError("a cursor is a whole number from 0")
    return int(text)


def cmd_accounts_add(args: argparse.Namespace) -> None:
    """Enrol a reviewer for sync: label, sync key and replies-signing key."""
    if not LABEL.fullmatch(args.label):
        raise AccountError("a label is 1-64 letters, digits, dots, dashes or underscores")
    sync_key = parse_public_key(args.sync_key, KeyKind.SIGNING)
    signing_key = parse_public_key(args.signing_key, KeyKind.SIGNING)
    if sync_key == signing_key:
        raise AccountError(
            "the sync key and the signing key must differ: the signing key never leaves "
            "the offline workstation"
        )
    engine, sessions, _, _ = _open(args)
    try:
        with sessions.begin() as session:
            clash = session.scalar(
                select(ReviewerAccount).where(
                    (ReviewerAccount.label == args.label)
                    | (ReviewerAccount.sync_key == str(sync_key))
                    | (ReviewerAccount.signing_key == str(signing_key))
                )
            )
            if clash is not None:
                raise AccountError("that label, sync key or signing key is already enrolled")
            session.add(
                ReviewerAccount(
                    label=args.label, sync_key=str(sync_key), signing_key=str(signing_key)
                )
            )
    finally:
        engine.dispose()
    print(f"enrolled {args.label}: sync key {sync_key.fingerprint}")
    print(f"  replies signed by {signing_key.fingerprint}")
    print("  add this line to the enrolment record (`portal restore --accounts`):")
    print(f"  {_record_line(args.label, str(sync_key), str(signing_key))}")


def _record_line(label: str, sync_key: str, signing_key: str) -> str:
    """One account as the enrolment record that ``restore --accounts`` reads holds it."""
    return f"{label} {sync_key} {signing_key}"


def cmd_accounts_remove(args: argparse.Namespace) -> None:
    """Remove a reviewer's sync account (their sessions end with it)."""
    engine, sessions, _, _ = _open(args)
    try:
        with sessions.begin() as session:
            account = session.scalar(
                select(ReviewerAccount).where(ReviewerAccount.label == args.label)
            )
            if account is None:
                raise AccountError(f"no account {args.label!r}")
            session.delete(account)
    finally:
        engine.dispose()
    print(f"removed {args.label}")


def cmd_accounts_list(args: argparse.Namespace) -> None:
    """Show the enrolled reviewers and how far each has acknowledged."""
    engine, sessions, _, _ = _open(args)
    try:
        with sessions() as session:
            for account in session.scalars(select(ReviewerAccount).order_by(ReviewerAccount.label)):
                if args.record:
                    print(_record_line(account.label, account.sync_key, account.signing_key))
                    continue
                print(
                    f"{account.label}\tacknowledged up to {account.acknowledged_cursor},"
                    f" {account.failures} failed login(s) since the last good one"
                )
                print(f"\tsync {parse_public_key(account.sync_key).fingerprint}")
                print(f"\treplies {parse_public_key(account.signing_key).fingerprint}")
    finally:
        engine.dispose()


def cmd_export(args: argparse.Namespace) -> None:
    """Write an inbox bundle of everything after --since (team updates: --team-since) to --out."""
    engine, sessions, blobs, data_dir = _open(args)
    out: Path = args.out
    temp = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            result = export_inbox(
                sessions, blobs, load_signing_key(data_dir), handle, args.since,
                team_since=args.team_since,
                directory=directory_text(data_dir / "key-directory.json"),
            )  # fmt: skip
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
        engine.dispose()
    print(
        f"{out}: {result.submissions} submission(s), cursor {result.cursor_from} to"
        f" {result.cursor_to}; {result.team_updates} team update(s), team cursor"
        f" {result.team_from} to {result.team_to} (bundle {result.bundle_id})"
    )


def cmd_import_replies(args: argparse.Namespace) -> None:
    """Verify and store a replies bundle carried from a reviewer's workstation."""
    engine, sessions, blobs, _ = _open(args)
    try:
        result = import_replies(sessions, blobs, args.file)
    finally:
        engine.dispose()
    print(
        f"{result.imported} reply(ies) imported, {result.already} already present,"
        f" {result.unknown} for unknown submissions; acknowledged up to"
        f" {result.acknowledged_cursor}; {result.team_imported} team update(s) relayed,"
        f" {result.team_already} already present, team cursor {result.team_cursor}"
    )


def register(verbs: Any) -> None:
    """Add the account and bundle subcommands to the ``portal`` parser."""
    accounts = verbs.add_parser("accounts", help="reviewer sync accounts")
    actions = accounts.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="enrol a reviewer for sync")
    add.add_argument("label")
    add.add_argument("--sync-key", required=True, help="csosig1… key of the transfer machine")
    add.add_argument("--signing-key", required=True, help="csosig1… key from `reviewer pubkey`")
    add.set_defaults(run=cmd_accounts_add)
    remove = actions.add_parser("remove")
    remove.add_argument("label")
    remove.set_defaults(run=cmd_accounts_remove)
    listing = actions.add_parser("list")
    listing.add_argument(
        "--record",
        action="store_true",
        help="print the accounts as enrolment-record lines (LABEL SYNC_KEY SIGNING_KEY)",
    )
    listing.set_defaults(run=cmd_accounts_list)
    export = verbs.add_parser("export", help="write an inbox bundle for offline transfer")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--since", type=int, default=0, help="cursor to start after (default 0)")
    export.add_argument(
        "--team-since",
        type=_cursor,
        default=0,
        help="team cursor to start after (default 0: every team update the portal holds,"
        " which a workstation takes again without harm)",
    )
    export.set_defaults(run=cmd_export)
    replies = verbs.add_parser("import-replies", help="store a replies bundle")
    replies.add_argument("file", type=Path)
    replies.set_defaults(run=cmd_import_replies)


ERRORS = (AccountError, SyncError)
