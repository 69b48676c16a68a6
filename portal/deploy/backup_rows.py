"""What a restore keeps of a backup's rows, and the shape every kept row must have.

:mod:`portal.deploy.backup_schema` makes sure a backup's SQLite database has the
tables this code makes, and :mod:`portal.deploy.backup_pgdump` loads a PostgreSQL
dump's rows into tables this code made; this module looks at those rows.
Anyone with the public backup key can write any row (see
:mod:`portal.deploy.restore`), so:

* nothing that grants access is kept from a backup: every sync session and
  spent challenge goes, and sync accounts (the keys that log in and sign
  replies) are either exactly those of the operator's enrolment record
  (``--accounts``), or all removed, to be enrolled again;
* every other row must look as this code writes it: ids and blob names in
  their formats, statuses from the known set, days no earlier than 2000 and
  no later than tomorrow, parts numbered from a report part, blob names used
  once, each submission in the inbox once, and an inbox counter that leaves
  room to grow and that no reviewer's cursor passes;
* a relayed team update must be what ``portal/storage/team_relay.py`` stores:
  one well-formed envelope of at most 64 KiB, its size recorded, under a
  well-formed id; its counter, like the inbox's, leaves room and is not
  passed by any reviewer's team cursor;
* a report filed before the receipt index (migration 0005) must hold an
  argon2id hash with exactly the server's parameters, and no locator may hold
  more than :data:`MAX_UNINDEXED` of them: each lookup there checks them all.

The first row that breaks a rule refuses the whole backup, with a reason
that names the table and the rule, never the row's contents.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from crypto.errors import CryptoError
from crypto.keys import KeyKind, parse_public_key
from portal.cli.sync import LABEL  # labels as ``portal accounts add`` accepts them
from portal.deploy.backup import BackupError
from portal.storage.db import make_engine
from portal.storage.inbox import STATUSES
from portal.storage.receipts import is_lookup_hash
from portal.storage.team_relay import MAX_UPDATE_BYTES, TeamRelayError, check_envelope

#: the inbox counter may not start above this: room for a billion more reports
MAX_SEQUENCE = 2**30
#: reports from before the receipt index one locator may hold (each lookup checks them all)
MAX_UNINDEXED = 32
_MAX_SIZE = 2**31 - 1  # an Integer column on PostgreSQL
_EARLIEST = date(2000, 1, 1)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_LOCATOR = re.compile(r"[0-9]{4}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Account(NamedTuple):
    """A sync account as the operator enrolled it: label and both public keys."""

    label: str
    sync_key: str
    signing_key: str


@dataclass
class KeptRows:
    """What the check found: the blob names rows use, and what the operator should hear."""

    blobs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def read_accounts(path: Path) -> list[Account]:
    """The operator's enrolment record: ``LABEL SYNC_KEY SIGNING_KEY`` a line.

    Blank lines and lines starting with ``#`` are skipped; the keys are the
    ``csosig1…`` tokens given to ``portal accounts add``.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise BackupError(f"cannot read the enrolment record {path}") from None
    accounts = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        account = _account(*words) if len(words) == 3 else None
        if account is None:
            raise BackupError(
                f"{path}, line {number}: not LABEL SYNC_KEY SIGNING_KEY (csosig1… keys)"
            )
        accounts.append(account)
    if len({a.label for a in accounts}) != len(accounts):
        raise BackupError(f"{path} names one label twice")
    return accounts


def _account(label: Any, sync_key: Any, signing_key: Any) -> Account | None:
    """An account if all three are well formed, with the keys in their canonical spelling."""
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        return None
    keys = []
    for value in (sync_key, signing_key):
        if not isinstance(value, str) or len(value) > 200:
            return None
        try:
            keys.append(str(parse_public_key(value, KeyKind.SIGNING)))
        except CryptoError:
            return None
    if keys[0] == keys[1]:
        return None
    return Account(label, keys[0], keys[1])


def check_rows(
    url: str, blobs: dict[str, tuple[int, str]], accounts: list[Account] | None
) -> KeptRows:
    """Check every row of the (upgraded) database at ``url``; drop what grants access.

    ``blobs`` maps each blob file in the backup to its size and SHA-256 (from
    the checked manifest). ``accounts`` is the operator's enrolment record, or
    None to remove every account. Raises :class:`BackupError` on the first bad
    row; otherwise commits the removals.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            return check_rows_on(connection, blobs, accounts)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        raise BackupError(f"the backup's database cannot be checked: {reason!a}") from None
    finally:
        engine.dispose()


def check_rows_on(
    connection: Connection, blobs: dict[str, tuple[int, str]], accounts: list[Account] | None
) -> KeptRows:
    """:func:`check_rows` inside the caller's transaction, which commits or not."""
    connection.execute(text("DELETE FROM sync_session"))
    connection.execute(text("DELETE FROM sync_challenge"))
    kept = KeptRows()
    days = _check_submissions(connection)
    _check_parts(connection, days, blobs, kept)
    _check_replies(connection, days, blobs, kept)
    counter = _check_inbox(connection, days)
    team_counter = _check_team_updates(connection)
    kept.warnings += _check_accounts(connection, counter, team_counter, accounts)
    return kept


def _refuse(table: str, rule: str) -> BackupError:
    return BackupError(
        f"the backup's database holds a row no portal writes ({table}: {rule}); "
        "nothing was restored"
    )


def _text(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _day(value: Any) -> date | None:
    """A day as SQLAlchemy stores one (a date, or ``YYYY-MM-DD`` on SQLite), if plausible."""
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, date) or isinstance(value, datetime):
        return None
    latest = datetime.now(UTC).date() + timedelta(days=1)
    return value if _EARLIEST <= value <= latest else None


def _check_submissions(connection: Connection) -> dict[str, date]:
    """Every submission's id and day, once each passes; follow-ups follow reports."""
    days: dict[str, date] = {}
    threads: dict[str, str] = {}
    unindexed: Counter[str] = Counter()
    rows = connection.execute(
        text(
            "SELECT id, received_on, receipt_locator, receipt_hash, receipt_index, status, "
            "thread_id FROM submission"
        )
    )
    for sid, received, locator, hashed, index, status, thread in rows:
        day = _day(received)
        if not _text(sid, _HEX32) or day is None or status not in STATUSES:
            raise _refuse("submission", "id, day or status malformed")
        days[sid] = day
        if thread is not None:
            if not _text(thread, _HEX32) or (locator, hashed, index) != ("", "", None):
                raise _refuse("submission", "a follow-up names no report, or has a receipt")
            threads[sid] = thread
        elif not _text(locator, _LOCATOR):
            raise _refuse("submission", "receipt locator malformed")
        elif index is None:
            if not isinstance(hashed, str) or not is_lookup_hash(hashed):
                raise _refuse("submission", "receipt hash not argon2id with the server's costs")
            unindexed[locator] += 1
        elif not _text(index, _HEX64) or hashed != "":
            raise _refuse("submission", "receipt index malformed")
    for sid, thread in threads.items():
        if thread not in days or thread in threads or days[sid] < days[thread]:
            raise _refuse("submission", "a follow-up does not follow an earlier report")
    if unindexed and max(unindexed.values()) > MAX_UNINDEXED:
        raise _refuse("submission", f"more than {MAX_UNINDEXED} unindexed reports on one locator")
    return days


def _blob(
    table: str, name: Any, size: Any, digest: Any, blobs: dict[str, tuple[int, str]], kept: KeptRows
) -> None:
    """A blob name, used once, whose file (if the backup has it) has the recorded size/hash."""
    if not _text(name, _HEX32) or not _whole(size, 0, _MAX_SIZE) or name in kept.blobs:
        raise _refuse(table, "blob name or size malformed, or a blob used twice")
    kept.blobs.add(name)
    stored = blobs.get(name)
    if stored is not None and (stored[0] != size or digest not in (None, stored[1])):
        raise _refuse(table, "its blob file has another size or SHA-256 than recorded")


def _check_parts(
    connection: Connection,
    days: dict[str, date],
    blobs: dict[str, tuple[int, str]],
    kept: KeptRows,
) -> None:
    positions: dict[str, list[int]] = {}
    rows = connection.execute(
        text("SELECT id, submission_id, position, kind, blob, size, sha256 FROM part")
    )
    for pid, sid, position, kind, name, size, digest in rows:
        if not _whole(pid, 1, _MAX_SIZE) or sid not in days or not _whole(position, 0, 10_000):
            raise _refuse("part", "id, submission or position malformed")
        if kind != ("REPORT" if position == 0 else "ATTACHMENT"):
            raise _refuse("part", "only the first part is the report")
        if digest is not None and not _text(digest, _HEX64):
            raise _refuse("part", "SHA-256 malformed")
        _blob("part", name, size, digest, blobs, kept)
        positions.setdefault(sid, []).append(position)
    for sid in days:
        if sorted(positions.get(sid, ())) != list(range(len(positions.get(sid, ())) or 1)):
            raise _refuse("part", "a submission's parts are not numbered from its report")


def _check_replies(
    connection: Connection,
    days: dict[str, date],
    blobs: dict[str, tuple[int, str]],
    kept: KeptRows,
) -> None:
    rows = connection.execute(
        text("SELECT id, reply_id, submission_id, status, blob, size, received_on FROM reply")
    )
    for rid, reply_id, sid, status, name, size, received in rows:
        day = _day(received)
        if not _whole(rid, 1, _MAX_SIZE) or not _text(reply_id, _HEX32) or sid not in days:
            raise _refuse("reply", "id or submission malformed")
        if day is None or day < days[sid]:
            raise _refuse("reply", "day malformed or before its submission's")
        if (status is not None and status not in STATUSES) or (status is None and name is None):
            raise _refuse("reply", "status unknown, or neither message nor status")
        if name is not None:
            _blob("reply", name, size, None, blobs, kept)
        elif not _whole(size, 0, _MAX_SIZE):
            raise _refuse("reply", "size malformed")


def _check_inbox(connection: Connection, days: dict[str, date]) -> int:
    """Each submission in the inbox once; returns the inbox counter (the last seq issued)."""
    seen: set[str] = set()
    newest = 0
    for seq, sid, acknowledged in connection.execute(
        text("SELECT seq, submission_id, acknowledged_on FROM inbox_entry")
    ):
        if not _whole(seq, 1, MAX_SEQUENCE) or sid not in days or sid in seen:
            raise _refuse("inbox_entry", "seq or submission malformed")
        if acknowledged is not None and ((day := _day(acknowledged)) is None or day < days[sid]):
            raise _refuse("inbox_entry", "acknowledged on a malformed day or before arrival")
        seen.add(sid)
        newest = max(newest, seq)
    if len(seen) != len(days):
        raise _refuse("inbox_entry", "a submission is not in the inbox")
    counter = _counter(connection, "inbox_entry")
    if not newest <= counter <= MAX_SEQUENCE:
        raise _refuse("inbox_entry", "the inbox counter is behind the inbox or near its end")
    return counter


def _check_team_updates(connection: Connection) -> int:
    """Each relayed team update as the relay stores it; returns the team counter."""
    newest = 0
    rows = connection.execute(
        text("SELECT seq, update_id, data, size, received_on, account_id FROM team_update")
    )
    for seq, update_id, data, size, received, account in rows:
        if not _whole(seq, 1, MAX_SEQUENCE) or not _text(update_id, _HEX32):
            raise _refuse("team_update", "seq or id malformed")
        if _day(received) is None or (account is not None and not _whole(account, 1, _MAX_SIZE)):
            raise _refuse("team_update", "day or account malformed")
        if not isinstance(data, bytes) or len(data) != size or size > MAX_UPDATE_BYTES:
            raise _refuse("team_update", "not bytes of its recorded size, or too large")
        try:
            check_envelope(data)
        except TeamRelayError:
            raise _refuse("team_update", "not one well-formed envelope") from None
        newest = max(newest, seq)
    counter = _counter(connection, "team_update")
    if not newest <= counter <= MAX_SEQUENCE:
        raise _refuse("team_update", "the team counter is behind the updates or near its end")
    return counter


#: the tables whose counter a reviewer's cursor follows, so a restore keeps it
_COUNTED = ("inbox_entry", "team_update")


def _counter(connection: Connection, table: str) -> int:
    """The last seq ``table`` handed out: SQLite's sqlite_sequence, or PostgreSQL's sequence."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text("SELECT name, seq FROM sqlite_sequence")).all()
        if any(name not in _COUNTED or type(seq) is not int for name, seq in rows):
            raise _refuse("sqlite_sequence", "a counter for another table, or not a number")
        if len({name for name, _ in rows}) != len(rows):
            raise _refuse("sqlite_sequence", "two counters for one table")
        return next((int(seq) for name, seq in rows if name == table), 0)
    if connection.dialect.name != "postgresql":
        raise BackupError("a restore checks SQLite and PostgreSQL databases only")
    name = f"{table}_seq_seq"  # table is one of _COUNTED: never from the backup
    default = connection.execute(
        text(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = :table AND column_name = 'seq'"
        ),
        {"table": table},
    ).scalar_one_or_none()
    sequence = connection.execute(
        text(
            "SELECT last_value, increment_by, min_value, max_value, cycle FROM pg_sequences "
            "WHERE schemaname = 'public' AND sequencename = :name"
        ),
        {"name": name},
    ).one_or_none()
    if (
        default != f"nextval('{name}'::regclass)"
        or sequence is None
        or tuple(sequence[1:]) != (1, 1, 2**31 - 1, False)
    ):
        raise _refuse(table, "its sequence is not the one the migrations make")
    return int(sequence[0] or 0)


def _check_accounts(
    connection: Connection, counter: int, team_counter: int, enrolled: list[Account] | None
) -> list[str]:
    """Keep exactly the enrolled accounts (or none); return what the operator must hear."""
    found: dict[str, Account] = {}
    rows = connection.execute(
        text(
            "SELECT id, label, sync_key, signing_key, acknowledged_cursor, failures, team_cursor "
            "FROM reviewer_account"
        )
    )
    for aid, label, sync_key, signing_key, cursor, failures, team_cursor in rows:
        account = _account(label, sync_key, signing_key)
        if account is None or (account.sync_key, account.signing_key) != (sync_key, signing_key):
            raise _refuse("reviewer_account", "label or keys malformed")
        if not _whole(aid, 1, _MAX_SIZE) or not _whole(failures, 0, _MAX_SIZE):
            raise _refuse("reviewer_account", "id or failure count malformed")
        if not _whole(cursor, 0, counter):
            raise _refuse("reviewer_account", "a cursor past the inbox counter")
        if not _whole(team_cursor, 0, team_counter):
            raise _refuse("reviewer_account", "a team cursor past the team counter")
        found[account.label] = account
    if enrolled is None:
        connection.execute(text("DELETE FROM reviewer_account"))
        if not found:
            return []
        return [
            f"the backup listed sync account(s) {', '.join(sorted(found))}; none was kept "
            "(a backup cannot enrol anyone): enrol again, from your enrolment record, those "
            "you still trust (portal accounts add), or restore again with --accounts"
        ]
    differ = sorted({a.label for a in set(found.values()) ^ set(enrolled)})
    if differ:
        raise BackupError(
            f"the backup's sync accounts differ from the enrolment record for {', '.join(differ)}; "
            "nothing was restored (restore without --accounts to enrol everyone again)"
        )
    connection.execute(text("UPDATE reviewer_account SET failures = 0"))
    return []
