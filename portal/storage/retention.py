"""Retention: a conversation goes once it has been quiet for the retention period.

A conversation is a report, the reporter's follow-up messages (``thread_id``)
and the reviewers' replies to any of them. Its latest activity is the newest
``received_on`` among them; once that is more than the retention period ago,
the conversation has expired. An expired conversation is purged only when the
reviewers have received all of it: every inbox entry acknowledged and, when
reviewer accounts exist, every account's cursor at or past every entry.
Otherwise it is kept and counted, so that the operator can chase whoever is
behind.

The team updates the portal relays between reviewers (``team_relay.py``)
follow the same rule on their own: one received more than the retention
period ago goes once every account's team cursor is at or past it.

Rows go in one transaction, together with expired sync challenges and sync
sessions; blob files are unlinked only after it commits, so a purge that
fails removes nothing. README "Retention" says what deletion does and does
not guarantee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Engine, Select, delete, func, select, text, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from portal.storage.blobs import BlobStore
from portal.storage.disk import sync_directory
from portal.storage.models import (
    InboxEntry,
    Part,
    Reply,
    ReviewerAccount,
    Submission,
    SyncChallenge,
    SyncSession,
    TeamUpdate,
)

MIN_DAYS = 1
MAX_DAYS = 3650
_CHUNK = 500  # ids per IN (…) list: far below every driver's parameter limit
_T = TypeVar("_T")


class RetentionError(Exception):
    """A purge could not be done or finished; the message says what happened and what to do."""


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (in a dry run: would remove) and what it kept."""

    conversations: int
    followups: int
    replies: int
    #: blob files unlinked (in a dry run: blob files the rows name)
    blobs: int
    #: expired conversations kept because a reviewer has not acknowledged all of them
    kept: int
    #: labels of the reviewer accounts whose cursor is short of a kept conversation
    behind: tuple[str, ...]
    dry_run: bool
    #: SQLite in WAL mode only: a reader kept the checkpoint from emptying the log
    log_busy: bool = False
    #: relayed team updates purged (in a dry run: would purge), and expired ones kept
    #: because a reviewer's team cursor is short of them
    team_updates: int = 0
    team_kept: int = 0


@dataclass
class _Conversation:
    """One expired conversation, as gathered from its rows."""

    followups: list[str] = field(default_factory=list)
    newest_seq: int = 0
    unacknowledged: bool = False
    replies: int = 0
    blobs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _TeamPlan:
    """Expired team updates: how many go, how many are kept, and the cursor floor."""

    purged: int
    kept: int
    #: the lowest team cursor of any account (None: no accounts)
    floor: int | None


@dataclass(frozen=True)
class _Plan:
    """The conversations to purge, their rows and blobs, and those kept."""

    reports: tuple[str, ...]
    followups: tuple[str, ...]
    replies: int
    blobs: tuple[str, ...]
    kept: int
    behind: tuple[str, ...]
    team: _TeamPlan


def validate_days(days: int) -> int:
    """Return ``days`` if it is a retention period the portal accepts; else raise."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise RetentionError(f"the retention period is {MIN_DAYS} to {MAX_DAYS} days")
    return days


def purge(
    engine: Engine,
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    days: int,
    *,
    dry_run: bool = False,
    today: date | None = None,
) -> PurgeResult:
    """Purge the conversations quiet for more than ``days`` days that reviewers hold.

    Raises :class:`RetentionError` if the database fails (nothing is then
    deleted or unlinked) or if blob files cannot be unlinked after the rows
    are gone (the message names the first one).
    """
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=validate_days(days))
    if dry_run:
        plan = _guarded("could not read the database", lambda: _read_plan(sessions, cutoff))
        return _result(plan, len(plan.blobs), dry_run=True)
    plan, housekeeping = _guarded(
        "the purge failed and nothing was deleted", lambda: _delete_rows(sessions, cutoff)
    )
    unlinked, failures = _unlink(blobs, plan.blobs)
    busy = False
    if plan.reports or housekeeping:
        busy = _guarded(
            "purged, but SQLite's write-ahead log could not be emptied",
            lambda: _checkpoint(engine),
        )
    if failures:
        raise _unlink_error(failures)
    return _result(plan, unlinked, dry_run=False, log_busy=busy)


def _guarded(what: str, step: Callable[[], _T]) -> _T:
    """Run ``step``; turn a database error into one line that names no row."""
    try:
        return step()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise RetentionError(f"{what}: {reason}") from None


def _result(plan: _Plan, blobs: int, *, dry_run: bool, log_busy: bool = False) -> PurgeResult:
    return PurgeResult(
        conversations=len(plan.reports),
        followups=len(plan.followups),
        replies=plan.replies,
        blobs=blobs,
        kept=plan.kept,
        behind=plan.behind,
        dry_run=dry_run,
        log_busy=log_busy,
        team_updates=plan.team.purged,
        team_kept=plan.team.kept,
    )


# --- what goes -------------------------------------------------------------


def _conversation() -> ColumnElement[str]:
    """The id of the report a submission belongs to: its own, or the one it follows."""
    return func.coalesce(Submission.thread_id, Submission.id)


def _expired(cutoff: date) -> Select[tuple[str]]:
    """The conversations whose latest activity (submission or reply) is before ``cutoff``."""
    conversation = _conversation()
    days = union_all(
        select(conversation.label("conversation"), Submission.received_on.label("day")),
        select(conversation, Reply.received_on)
        .select_from(Submission)
        .join(Reply, Reply.submission_id == Submission.id),
    ).subquery()
    return (
        select(days.c.conversation)
        .group_by(days.c.conversation)
        .having(func.max(days.c.day) < cutoff)
    )


def _plan(session: Session, cutoff: date) -> _Plan:
    """Gather the expired conversations and split them into purged and kept."""
    expired = _gather(session, _expired(cutoff))
    cursors = {
        account.label: account.acknowledged_cursor
        for account in session.scalars(select(ReviewerAccount))
    }
    floor = min(cursors.values(), default=None)
    purged: dict[str, _Conversation] = {}
    kept: list[_Conversation] = []
    for report, conversation in expired.items():
        received = not conversation.unacknowledged and (
            floor is None or conversation.newest_seq <= floor
        )
        if received:
            purged[report] = conversation
        else:
            kept.append(conversation)
    team, team_behind = _team_plan(session, cutoff)
    behind = sorted(
        label
        for label, cursor in cursors.items()
        if any(cursor < conversation.newest_seq for conversation in kept) or label in team_behind
    )
    return _Plan(
        reports=tuple(purged),
        followups=tuple(f for c in purged.values() for f in c.followups),
        replies=sum(c.replies for c in purged.values()),
        blobs=tuple(b for c in purged.values() for b in c.blobs),
        kept=len(kept),
        behind=tuple(behind),
        team=team,
    )


def _team_plan(session: Session, cutoff: date) -> tuple[_TeamPlan, set[str]]:
    """Expired team updates split into purged and kept; the labels of the accounts behind.

    Cursors only move forward and new updates arrive dated today, so what
    this counts is still what :func:`_purge_team_updates` deletes.
    """
    cursors: dict[str, int] = {
        label: cursor
        for label, cursor in session.execute(
            select(ReviewerAccount.label, ReviewerAccount.team_cursor)
        )
    }
    floor = min(cursors.values(), default=None)
    expired = TeamUpdate.received_on < cutoff
    purged = session.scalar(
        select(func.count())
        .select_from(TeamUpdate)
        .where(expired, *_team_purgeable(TeamUpdate.seq, floor))
    )
    kept, newest_kept = 0, None
    if floor is not None:
        kept, newest_kept = session.execute(
            select(func.count(), func.max(TeamUpdate.seq)).where(expired, TeamUpdate.seq > floor)
        ).one()
    behind = {
        label
        for label, cursor in cursors.items()
        if newest_kept is not None and cursor < newest_kept
    }
    return _TeamPlan(purged or 0, kept, floor), behind


def _team_purgeable(seq: ColumnElement[int], floor: int | None) -> tuple[ColumnElement[bool], ...]:
    """What an expired update's ``seq`` must meet: every account holds it (if there are any)."""
    return () if floor is None else (seq <= floor,)


def _gather(session: Session, expired: Select[tuple[str]]) -> dict[str, _Conversation]:
    """Each expired conversation's follow-ups, inbox state, replies and blob names."""
    conversation = _conversation()
    found: dict[str, _Conversation] = {}
    rows = session.execute(
        select(conversation, Submission.id, InboxEntry.seq, InboxEntry.acknowledged_on)
        .outerjoin(InboxEntry, InboxEntry.submission_id == Submission.id)
        .where(conversation.in_(expired))
    )
    for report, submission, seq, acknowledged_on in rows:
        entry = found.setdefault(report, _Conversation())
        if submission != report:
            entry.followups.append(submission)
        # no inbox entry at all: no reviewer can have received it
        entry.unacknowledged |= seq is None or acknowledged_on is None
        entry.newest_seq = max(entry.newest_seq, seq or 0)
    parts = session.execute(
        select(conversation, Part.blob)
        .join(Part, Part.submission_id == Submission.id)
        .where(conversation.in_(expired))
    )
    for report, blob in parts:
        found[report].blobs.append(blob)
    replies = session.execute(
        select(conversation, Reply.blob)
        .join(Reply, Reply.submission_id == Submission.id)
        .where(conversation.in_(expired))
    )
    for report, message in replies:
        found[report].replies += 1
        if message is not None:  # a status change alone has no blob
            found[report].blobs.append(message)
    return found


def _read_plan(sessions: sessionmaker[Session], cutoff: date) -> _Plan:
    """The plan alone, for a dry run: reads, takes no lock, changes nothing."""
    with sessions() as session:
        return _plan(session, cutoff)


# --- deleting --------------------------------------------------------------


def _delete_rows(sessions: sessionmaker[Session], cutoff: date) -> tuple[_Plan, int]:
    """In one transaction: plan, then delete the purged rows and the expired tokens.

    Returns the plan and how many expired tokens went.
    """
    with sessions.begin() as session:
        _exclude_writers(session)
        plan = _plan(session, cutoff)
        for chunk in _chunks(plan.reports + plan.followups):
            for model in (Part, Reply, InboxEntry):
                session.execute(delete(model).where(model.submission_id.in_(chunk)))
        for ids in (plan.followups, plan.reports):  # follow-ups before the reports they follow
            for chunk in _chunks(ids):
                session.execute(delete(Submission).where(Submission.id.in_(chunk)))
        _purge_team_updates(session, cutoff, plan.team)
        housekeeping = _delete_expired_tokens(session)
    return plan, housekeeping


def _purge_team_updates(session: Session, cutoff: date, team: _TeamPlan) -> None:
    """Delete the expired team updates every account holds (the rows are their envelopes)."""
    session.execute(
        delete(TeamUpdate).where(
            TeamUpdate.received_on < cutoff, *_team_purgeable(TeamUpdate.seq, team.floor)
        )
    )


def _exclude_writers(session: Session) -> None:
    """Hold off new messages, replies and acknowledgements until this transaction ends.

    Otherwise a follow-up or a reply could arrive between the plan and the
    deletes, and go with a conversation that it had just brought back to life.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # intake takes SHARE ROW EXCLUSIVE on inbox_entry before inserting;
        # importing replies writes reply, then inbox_entry: lock in that order
        session.execute(text("LOCK TABLE reply, inbox_entry IN SHARE ROW EXCLUSIVE MODE"))
    elif dialect == "sqlite":
        # the driver starts a deferred transaction only at the first write;
        # IMMEDIATE takes the write lock before the plan is read
        session.execute(text("BEGIN IMMEDIATE"))


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """``ids`` in slices short enough for one IN (…) list."""
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _delete_expired_tokens(session: Session) -> int:
    """Delete sync challenges and sessions past their expiry; count them.

    Spent puzzles are not here: the runtime store drops them as they expire.
    """
    # naive UTC, as portal/web/sync.py stores them (SQLite drops the zone)
    now = datetime.now(UTC).replace(tzinfo=None)
    removed = 0
    for model in (SyncChallenge, SyncSession):
        done = session.execute(delete(model).where(model.expires_at <= now))
        removed += done.rowcount  # type: ignore[attr-defined]
    return removed


# --- after the commit ------------------------------------------------------


def _unlink(blobs: BlobStore, names: Sequence[str]) -> tuple[int, list[Exception]]:
    """Unlink the purged blob files; return how many went and what failed.

    A file already gone is fine (an earlier purge stopped after unlinking it).
    The rows are gone already, so every file is tried whatever fails.
    """
    unlinked = 0
    failures: list[Exception] = []
    for name in names:
        try:
            blobs.path(name).unlink()
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as error:
            failures.append(error)
            continue
        unlinked += 1
    if unlinked:
        sync_directory(blobs.root)
    return unlinked, failures


def _unlink_error(failures: Sequence[Exception]) -> RetentionError:
    """One line for the operator: how many blob files are left, and the first reason."""
    first = failures[0]
    reason = f"{first.filename}: {first.strerror}" if isinstance(first, OSError) else first
    return RetentionError(
        f"rows are purged, but {len(failures)} blob file(s) could not be unlinked"
        f" (first: {reason}); remove them by hand"
    )


def _checkpoint(engine: Engine) -> bool:
    """SQLite in WAL mode: move the zeroed pages into the file and empty the log.

    Returns True if a reader kept the checkpoint from finishing.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        if str(mode).lower() != "wal":
            return False
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    return bool(busy)
