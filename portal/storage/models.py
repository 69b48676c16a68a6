"""The portal's tables: plain SQLAlchemy 2.0, importable without Flask.

The database knows as little as it can: a random 128-bit submission id, the
*day* it arrived (never the time), the receipt's public locator and an
argon2id of its lookup token (the receipt index), and per part its
position, kind, blob name, ciphertext size and SHA-256. Nothing about the
reporter, and no plaintext. The reviewer side adds accounts (public keys
only), the inbox sequence that sync cursors count in, and replies sealed to
reporters, and the reviewers' team updates, which the portal only relays:
each is an envelope sealed to the reviewers' keys (crypto/SPEC.md §17).

A reporter's later messages are submissions too, with ``thread_id`` naming
the report they follow; they have no receipt of their own. Anti-spam state
(spent puzzles, rate budgets) needs times finer than a day, so it is not
here but in the volatile runtime store (``runtime.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base for the portal's tables."""


class PartKind(Enum):
    """What a stored envelope carries (crypto/SPEC.md §11)."""

    REPORT = "report"
    ATTACHMENT = "attachment"


class Submission(Base):
    """One report as received: only ciphertext parts and a coarse date."""

    __tablename__ = "submission"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # 128 random bits, hex
    received_on: Mapped[dt.date] = mapped_column(Date, index=True)
    # crypto/SPEC.md §14.3: the public locator and the receipt index, a deterministic
    # argon2id of the lookup token that finds the report in one step; reports filed
    # before 0005 have no index and instead a per-report argon2id hash of the token
    receipt_locator: Mapped[str] = mapped_column(String(4), index=True)
    receipt_hash: Mapped[str] = mapped_column(String(200))
    receipt_index: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    # what the reporter sees at /followup; set by reviewers through replies
    status: Mapped[str] = mapped_column(String(20), default="received")
    # a reporter's follow-up message: the report it follows (its locator and hash are empty)
    thread_id: Mapped[str | None] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True, nullable=True
    )
    parts: Mapped[list[Part]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="Part.position"
    )
    inbox: Mapped[InboxEntry | None] = relationship(
        back_populates="submission", cascade="all, delete-orphan"
    )
    replies: Mapped[list[Reply]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="Reply.id"
    )


class Part(Base):
    """One envelope of a submission, stored as a blob file."""

    __tablename__ = "part"
    __table_args__ = (UniqueConstraint("submission_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # 0 = the report, 1..n attachments
    kind: Mapped[PartKind] = mapped_column(SqlEnum(PartKind, name="part_kind"))
    blob: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)  # ciphertext bytes
    # crypto/SPEC.md §15.4: taken on arrival (null only for rows older than 0003)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    submission: Mapped[Submission] = relationship(back_populates="parts")


class InboxEntry(Base):
    """A submission's place in the order reviewers receive them (the sync cursor)."""

    __tablename__ = "inbox_entry"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), unique=True
    )
    # the day a reviewer first acknowledged a bundle holding it (a purge waits for it)
    acknowledged_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    submission: Mapped[Submission] = relationship(back_populates="inbox")


#: what a sync account's label may be: enrolment (``portal accounts add``), a restore and
#: the sync API's login all hold to it, so a label never carries NUL, a lone surrogate or
#: anything else that one database stores and another refuses
ACCOUNT_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ReviewerAccount(Base):
    """A reviewer allowed to sync: public keys only, so a stolen database opens nothing."""

    __tablename__ = "reviewer_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), unique=True)
    sync_key: Mapped[str] = mapped_column(String(80), unique=True)  # csosig1…: signs logins
    signing_key: Mapped[str] = mapped_column(String(80), unique=True)  # signs replies bundles
    acknowledged_cursor: Mapped[int] = mapped_column(Integer, default=0)
    # the last team update (TeamUpdate.seq) this reviewer has said it holds
    team_cursor: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # since the last good login


class SyncChallenge(Base):
    """A login challenge already used; issuing one stores nothing (portal/web/sync.py)."""

    __tablename__ = "sync_challenge"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the challenge
    account_label: Mapped[str] = mapped_column(String(64))  # the label it was issued for
    # midnight after the challenge expired: a day, never a time of day
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class SyncSession(Base):
    """A short sync session; only the SHA-256 of its bearer token is stored."""

    __tablename__ = "sync_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("reviewer_account.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class Reply(Base):
    """A reviewer's answer: an envelope sealed to the reporter, and/or a status."""

    __tablename__ = "reply"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reply_id: Mapped[str] = mapped_column(String(32), unique=True)  # chosen offline
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    blob: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    received_on: Mapped[dt.date] = mapped_column(Date)
    submission: Mapped[Submission] = relationship(back_populates="replies")


class TeamUpdate(Base):
    """One reviewer's team update, relayed to the others: an envelope the portal cannot open.

    ``seq`` is the team cursor: inbox bundles carry the updates after a
    reviewer's cursor, and replies bundles move it forward. Migration 0007
    makes it never reuse a value, as the inbox sequence does.
    """

    __tablename__ = "team_update"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    update_id: Mapped[str] = mapped_column(String(32), unique=True)  # chosen by its author
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[dt.date] = mapped_column(Date, index=True)
    # the account whose bundle brought it; kept when the account goes
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("reviewer_account.id", ondelete="SET NULL"), nullable=True
    )
