"""The portal's tables: plain SQLAlchemy 2.0, importable without Flask.

The database knows as little as it can: a random 128-bit submission id, the
*day* it arrived (never the time), the receipt's public locator and an
argon2id hash of its lookup token, and per part its position, kind, blob
name and ciphertext size. Nothing about the reporter, and no plaintext.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
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
    # crypto/SPEC.md §14.3: the public locator and argon2id(lookup token), nothing else
    receipt_locator: Mapped[str] = mapped_column(String(4), index=True)
    receipt_hash: Mapped[str] = mapped_column(String(200))
    parts: Mapped[list[Part]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="Part.position"
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
    submission: Mapped[Submission] = relationship(back_populates="parts")
