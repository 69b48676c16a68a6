"""Retention (``portal purge``): what expires, what is kept, and what is left behind."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from portal.cli.retention import summary
from portal.storage.blobs import BlobStore
from portal.storage.db import make_engine, make_sessions, upgrade
from portal.storage.models import (
    InboxEntry,
    Part,
    PartKind,
    Reply,
    ReviewerAccount,
    Submission,
    SyncChallenge,
    SyncSession,
)
from portal.storage.retention import PurgeResult, RetentionError, purge
from tests.conftest import ROOT, DemoPortal

TODAY = date(2026, 6, 1)


@dataclass
class Store:
    """A migrated portal database and its blob directory, filled row by row."""

    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    today: date = TODAY

    def blob(self, data: bytes) -> str:
        """Store ``data`` as a blob file; return its name."""
        with self.blobs.writer() as pending:
            pending.write(data)
        return pending.name

    def submission(
        self,
        age: int,
        *,
        thread: str | None = None,
        acknowledged: bool = True,
        receipt_hash: str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        content: bytes = b"ciphertext",
    ) -> str:
        """A report (or, with ``thread``, a follow-up) received ``age`` days ago."""
        received = self.today - timedelta(days=age)
        submission = Submission(
            id=secrets.token_hex(16),
            received_on=received,
            receipt_locator="" if thread else "k3x9",
            receipt_hash="" if thread else receipt_hash,
            thread_id=thread,
            parts=[Part(position=0, kind=PartKind.REPORT, blob=self.blob(content), size=10)],
            inbox=InboxEntry(acknowledged_on=received if acknowledged else None),
        )
        with self.sessions.begin() as session:
            session.add(submission)
        return submission.id

    def reply(self, submission: str, age: int, *, message: bool = True) -> None:
        """A reviewer's reply to ``submission``, imported ``age`` days ago."""
        with self.sessions.begin() as session:
            session.add(
                Reply(
                    reply_id=secrets.token_hex(16),
                    submission_id=submission,
                    status="under-review",
                    blob=self.blob(b"sealed reply") if message else None,
                    size=12 if message else 0,
                    received_on=self.today - timedelta(days=age),
                )
            )

    def account(self, label: str, cursor: int) -> None:
        """An enrolled reviewer who has acknowledged up to ``cursor``."""
        with self.sessions.begin() as session:
            session.add(
                ReviewerAccount(
                    label=label,
                    sync_key=f"sync-{label}",
                    signing_key=f"sign-{label}",
                    acknowledged_cursor=cursor,
                )
            )

    def seq(self, submission: str) -> int:
        """The inbox position of ``submission``."""
        with self.sessions() as session:
            found = session.scalar(
                select(InboxEntry.seq).where(InboxEntry.submission_id == submission)
            )
        assert found is not None
        return found

    def count(self, model: type) -> int:
        """How many rows ``model``'s table holds."""
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def exists(self, submission: str) -> bool:
        """Whether ``submission`` is still stored."""
        with self.sessions() as session:
            return session.get(Submission, submission) is not None

    def blob_files(self) -> list[Path]:
        """Every file in the blob directory."""
        return sorted(self.blobs.root.iterdir())

    def purge(self, days: int = 180, *, dry_run: bool = False) -> PurgeResult:
        """Run a purge as of ``today``."""
        return purge(
            self.engine, self.sessions, self.blobs, days, dry_run=dry_run, today=self.today
        )


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated portal database (SQLite and PostgreSQL) and a blob directory."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield Store(engine, make_sessions(engine), BlobStore(tmp_path / "blobs"))
    engine.dispose()


def test_a_quiet_received_conversation_goes_whole(store: Store) -> None:
    report = store.submission(200)
    followup = store.submission(190, thread=report)
    store.reply(report, 185)
    store.reply(followup, 184, message=False)  # a status change only: no blob

    result = store.purge()

    assert (result.conversations, result.followups, result.replies) == (1, 1, 2)
    assert (result.blobs, result.kept) == (3, 0)
    for model in (Submission, Part, InboxEntry, Reply):
        assert store.count(model) == 0, model
    assert store.blob_files() == []


@pytest.mark.parametrize("late", ["follow-up", "reply", "reply to a follow-up"])
def test_latest_activity_keeps_a_conversation_alive(store: Store, late: str) -> None:
    report = store.submission(400)
    if late == "follow-up":
        store.submission(10, thread=report)
    elif late == "reply":
        store.reply(report, 10)
    else:
        store.reply(store.submission(300, thread=report), 10)
    quiet = store.submission(400)

    result = store.purge()

    assert (result.conversations, result.kept) == (1, 0)
    assert store.exists(report)
    assert not store.exists(quiet)


def test_expiry_counts_whole_days_after_the_retention_period(store: Store) -> None:
    on_the_day = store.submission(180)
    a_day_later = store.submission(181)

    assert store.purge().conversations == 1
    assert store.exists(on_the_day)
    assert not store.exists(a_day_later)


def test_unacknowledged_conversations_are_kept(store: Store) -> None:
    never_received = store.submission(200, acknowledged=False)
    report = store.submission(200)
    store.submission(190, thread=report, acknowledged=False)

    result = store.purge()

    assert (result.conversations, result.kept, result.behind) == (0, 2, ())
    assert store.exists(never_received)
    assert store.exists(report)
    assert len(store.blob_files()) == 3


def test_acknowledged_by_one_of_two_reviewers_is_kept_until_both(store: Store) -> None:
    report = store.submission(200)
    seq = store.seq(report)
    store.account("alice", seq)
    store.account("bob", seq - 1)

    kept = store.purge()
    assert (kept.conversations, kept.kept, kept.behind) == (0, 1, ("bob",))
    assert store.exists(report)

    with store.sessions.begin() as session:
        session.execute(
            update(ReviewerAccount)
            .where(ReviewerAccount.label == "bob")
            .values(acknowledged_cursor=seq)
        )
    assert store.purge().conversations == 1
    assert not store.exists(report)


def test_dry_run_changes_nothing(store: Store) -> None:
    report = store.submission(200)
    store.reply(report, 190)
    _expired_tokens(store)
    before = store.blob_files()

    result = store.purge(dry_run=True)

    assert result.dry_run
    assert (result.conversations, result.replies, result.blobs) == (1, 1, 2)
    assert store.exists(report)
    assert store.blob_files() == before
    assert all(path.exists() for path in before)
    for model in (Reply, SyncChallenge, SyncSession):
        assert store.count(model) == 1, model


def test_expired_challenges_and_sessions_go(store: Store) -> None:
    _expired_tokens(store)
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    with store.sessions.begin() as session:
        session.add(SyncChallenge(id="d" * 64, account_label="alice", expires_at=soon))

    store.purge()

    for model, left in ((SyncChallenge, 1), (SyncSession, 0)):
        assert store.count(model) == left, model


def test_purging_again_finds_nothing_and_a_missing_blob_is_no_error(store: Store) -> None:
    report = store.submission(200)
    store.reply(report, 190)
    store.blob_files()[0].unlink()  # as if an earlier purge had stopped half-way

    first = store.purge()
    again = store.purge()

    assert (first.conversations, first.blobs) == (1, 1)
    assert (again.conversations, again.blobs, again.kept) == (0, 0, 0)


def test_a_failed_transaction_unlinks_nothing(store: Store) -> None:
    report = store.submission(200)
    store.submission(190, thread=report)
    store.reply(report, 185)
    before = store.blob_files()
    _refuse_deleting_submissions(store.engine)

    with pytest.raises(RetentionError, match="nothing was deleted: refused by the test"):
        store.purge()

    assert store.exists(report)
    assert (store.count(Submission), store.count(Part), store.count(Reply)) == (2, 2, 1)
    assert store.blob_files() == before


def test_a_blob_that_cannot_be_unlinked_is_reported_after_trying_all(store: Store) -> None:
    report = store.submission(200)
    store.reply(report, 190)
    stuck, other = store.blob_files()
    stuck.unlink()
    stuck.mkdir()  # unlink() refuses a directory, even to root
    (stuck / "x").write_bytes(b"")

    with pytest.raises(RetentionError, match=r"rows are purged, but 1 blob file\(s\)"):
        store.purge()

    assert not store.exists(report)
    assert not other.exists()


def test_a_purged_canary_is_nowhere_on_disk(store: Store) -> None:
    canary = f"canary-{secrets.token_hex(12)}"
    store.submission(200, receipt_hash=canary, content=canary.encode() * 3)
    store.submission(10)  # a live conversation: its rows and blob stay
    database = _sqlite_file(store.engine)
    if database is not None:
        assert canary.encode() in _bytes_of(database)

    assert store.purge().conversations == 1

    assert len(store.blob_files()) == 1
    assert all(canary.encode() not in path.read_bytes() for path in store.blob_files())
    if database is not None:  # secure_delete zeroed the row where it lay
        assert canary.encode() not in _bytes_of(database)


def test_wal_mode_log_is_emptied_after_a_purge(tmp_path: Path) -> None:
    path = tmp_path / "portal.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
    engine = make_engine(url)
    store = Store(engine, make_sessions(engine), BlobStore(tmp_path / "blobs"))
    canary = f"canary-{secrets.token_hex(12)}"
    # the running portal's connection: it keeps the log file from being removed
    portal = sqlite3.connect(path)
    try:
        store.submission(200, receipt_hash=canary)
        assert canary.encode() in _bytes_of(path)

        assert store.purge().log_busy is False

        assert canary.encode() not in _bytes_of(path)
        assert path.with_name("portal.sqlite3-wal").stat().st_size == 0
    finally:
        portal.close()
        engine.dispose()


# --- the command -------------------------------------------------------------


def _portal(demo: DemoPortal, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal", "--data-dir", str(demo.data_dir), *args],
        env={**os.environ, **demo.environ(**settings)},
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_purge_command_prints_one_line_of_counts(demo: DemoPortal) -> None:
    engine = make_engine(demo.database_url)
    store = Store(
        engine, make_sessions(engine), BlobStore(demo.data_dir / "blobs"), datetime.now(UTC).date()
    )
    expired = store.submission(200)
    store.submission(200, acknowledged=False)
    engine.dispose()

    dry = _portal(demo, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run, nothing changed: would purge 1 conversation(s)")
    done = _portal(demo, "purge")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("purged 1 conversation(s) quiet for more than 180 days")
    assert "1 blob file(s) unlinked" in done.stdout
    assert "kept 1 expired conversation(s)" in done.stdout
    assert expired not in done.stdout + dry.stdout
    shorter = _portal(demo, "purge", "--older-than", "30", PORTAL_RETENTION_DAYS="3650")
    assert shorter.stdout.startswith("purged 0 conversation(s) quiet for more than 30 days")


def test_the_summary_names_the_reviewers_behind_and_no_report() -> None:
    result = PurgeResult(2, 1, 3, 4, kept=1, behind=("bob", "carol"), dry_run=False)
    assert summary(result, 180) == (
        "purged 2 conversation(s) quiet for more than 180 days (1 follow-up(s), 3 reply(ies),"
        " 4 blob file(s) unlinked); kept 1 expired conversation(s) not yet acknowledged by:"
        " bob, carol"
    )
    teamwork = PurgeResult(0, 0, 0, 0, 0, (), dry_run=True, team_updates=5, team_kept=2)
    assert summary(teamwork, 30).endswith(
        "; would purge 5 relayed team update(s); kept 2 expired team update(s) a reviewer has"
        " not taken yet"
    )


@pytest.mark.parametrize(
    ("args", "settings"),
    [
        (("--older-than", "0"), {}),
        (("--older-than", "3651"), {}),
        (("--older-than", "-5"), {}),
        (("--older-than", "a week"), {}),
        ((), {"PORTAL_RETENTION_DAYS": "0"}),
    ],
)
def test_a_bad_retention_period_is_a_one_line_error(
    demo_template: DemoPortal, args: tuple[str, ...], settings: dict[str, str]
) -> None:
    done = _portal(demo_template, "purge", *args, **settings)
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("portal: error:")


# --- helpers -----------------------------------------------------------------


def _expired_tokens(store: Store) -> None:
    """One expired sync challenge and sync session (spent puzzles are not in the database)."""
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    store.account("carol", 1_000_000)  # has acknowledged everything
    with store.sessions.begin() as session:
        account = session.scalars(select(ReviewerAccount)).one()
        session.add(SyncChallenge(id="c" * 64, account_label="carol", expires_at=past))
        session.add(SyncSession(token_hash="e" * 64, account_id=account.id, expires_at=past))


def _refuse_deleting_submissions(engine: Engine) -> None:
    """A trigger that fails the purge after its first deletes (parts, replies)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE DELETE ON submission "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE DELETE ON submission "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )


def _sqlite_file(engine: Engine) -> Path | None:
    """The database file, for SQLite."""
    if engine.dialect.name != "sqlite" or engine.url.database is None:
        return None
    return Path(engine.url.database)


def _bytes_of(database: Path) -> bytes:
    """The database file and its journal or log, whichever exist."""
    return b"".join(path.read_bytes() for path in sorted(database.parent.glob(f"{database.name}*")))
