"""The members' tables: who may read the database, how they sign in, and what they did.

Plain SQLAlchemy 2.0 models on the incident database's own ``Base``, made
and upgraded by migration 0002 like every other table. A member is never
deleted, only marked removed (``removed_day``), so that the audit log keeps
meaning; everything that lets a member in (sessions, passkeys, recovery
codes, invitations) is deleted with the removal. Secrets are stored only as
SHA-256 hashes, and nothing here has room for an IP address or a user agent.

Every time is UTC. SQLite keeps no zone, so :class:`UtcDateTime` stores a
naive UTC value on both databases and hands back an aware one.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from incident_db.models import Base

#: longest handle a member may have (an e-mail address fits)
HANDLE_MAX = 120
#: room for its folded form (NFKC can make one character several)
HANDLE_KEY_MAX = 4 * HANDLE_MAX


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A ``DateTime`` column holding UTC: naive in the database, aware in Python.

    An aware value is converted to UTC before it is stored; a naive one is
    taken to be UTC already, which is what SQLite hands back.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Store ``value`` as naive UTC."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Read a stored value back as an aware UTC time."""
        if not isinstance(value, dt.datetime):
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _member_key() -> Mapped[int]:
    # a member's rows go with the member (members are only marked removed,
    # but a row deleted by hand must not leave orphans behind)
    return mapped_column(ForeignKey("member.id", ondelete="CASCADE"), index=True)


class Member(Base):
    """A CSO of a member company, with a role: ``member``, ``editor`` or ``admin``."""

    __tablename__ = "member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: as the admin typed it (stripped, NFC, inner spaces squeezed): shown to people
    handle: Mapped[str] = mapped_column(String(HANDLE_MAX))
    #: case-folded (NFKC) form of the handle: what makes two handles the same
    handle_key: Mapped[str] = mapped_column(String(HANDLE_KEY_MAX), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    #: the WebAuthn user handle: 32 random bytes in hex, new for each membership
    user_handle: Mapped[str] = mapped_column(String(64), unique=True)
    created_day: Mapped[dt.date] = mapped_column(Date)
    removed_day: Mapped[dt.date | None] = mapped_column(Date)

    @property
    def active(self) -> bool:
        """Whether the member may still sign in."""
        return self.removed_day is None


class Invitation(Base):
    """A one-time link that lets a member register a passkey; only the token's hash is kept."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = _member_key()
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    #: the audit actor who made the link: the passkey it adds is audited with their name
    invited_by: Mapped[str] = mapped_column(String(HANDLE_MAX))


class Passkey(Base):
    """A WebAuthn credential of a member: its id, its COSE public key and its counter."""

    __tablename__ = "passkey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    member_id: Mapped[int] = _member_key()
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # WebAuthn's signature counter is an unsigned 32-bit number: above INTEGER's range
    sign_count: Mapped[int] = mapped_column(BigInteger)
    created_day: Mapped[dt.date] = mapped_column(Date)
    last_used_day: Mapped[dt.date | None] = mapped_column(Date)
    #: the day its counter went backwards (a copied key?): from then on it signs no one in
    suspected_day: Mapped[dt.date | None] = mapped_column(Date)

    @property
    def usable(self) -> bool:
        """Whether the passkey may still sign its member in."""
        return self.suspected_day is None


class RecoveryCode(Base):
    """One of a member's one-time recovery codes, kept as the SHA-256 of its canonical form."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = _member_key()
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class MemberSession(Base):
    """A signed-in browser: the SHA-256 of its cookie, and when it was made and last seen."""

    __tablename__ = "member_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = _member_key()
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class WebAuthnChallenge(Base):
    """A WebAuthn challenge handed out and not yet answered: each one is good for one answer.

    Only its SHA-256 is kept, with what it is for (``sign-in``, ``join:…``,
    ``add:…``), the member it was made for (none for a sign-in) and when it
    stops being good. Answering deletes the row; expired rows are swept
    whenever a new challenge is made.
    """

    __tablename__ = "webauthn_challenge"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("member.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class Partner(Base):
    """An organisation whose own platform pulls incidents (TAXII 2.1) up to its clearance.

    ``clearance`` is the highest TLP level it may receive (never RED). Only
    the SHA-256 of its API credential is kept; ``rotate`` replaces it and
    ``remove`` marks the partner removed and forgets the credential at once.
    """

    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: as the admin typed it: also the HTTP basic user name
    name: Mapped[str] = mapped_column(String(HANDLE_MAX))
    #: case-folded (NFKC) form of the name: what makes two names the same
    name_key: Mapped[str] = mapped_column(String(HANDLE_KEY_MAX), unique=True)
    clearance: Mapped[str] = mapped_column(String(12))
    #: SHA-256 (hex) of the credential; empty once removed
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_day: Mapped[dt.date] = mapped_column(Date)
    rotated_day: Mapped[dt.date | None] = mapped_column(Date)
    removed_day: Mapped[dt.date | None] = mapped_column(Date)


#: audit actors that are not members: handles may never take these forms
ACTOR_CLI = "cli"
ACTOR_SYSTEM = "system"
#: a partner's pulls are audited as ``partner:<name>`` (incident_db/partners.py)
ACTOR_PARTNER = "partner"
#: every reserved actor: a handle may be none of these nor start with one and a colon
RESERVED_ACTORS = (ACTOR_CLI, ACTOR_SYSTEM, ACTOR_PARTNER)


class AuditEvent(Base):
    """One line of the append-only audit log (the database refuses UPDATE and DELETE).

    ``actor`` is a member's handle, ``"cli"`` (the ``incident-db`` command),
    ``"system"`` (the service itself, e.g. when it disables a passkey) or
    ``"partner:<name>"`` (a partner's TAXII pull); no handle may be ``cli``,
    ``system``, ``partner`` or start with one of them and a colon
    (``store.clean_handle``), so :attr:`actor_kind` cannot be forged.
    ``detail`` is a JSON object as text. No foreign key: the log outlives
    whatever it names.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(HANDLE_MAX))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)

    @property
    def actor_kind(self) -> str:
        """``member``, ``cli``, ``system`` or ``partner``: who acted, as the log must say."""
        for kind in RESERVED_ACTORS:
            if self.actor == kind or self.actor.startswith(kind + ":"):
                return kind
        return "member"

    @property
    def details(self) -> dict[str, Any]:
        """``detail`` parsed: a dict (empty if the text is not a JSON object)."""
        try:
            value = json.loads(self.detail or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
