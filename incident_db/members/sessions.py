"""Members' server-side sessions: a random cookie whose SHA-256 is the row's key."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from incident_db.members.common import MemberError, aware, now_utc, rowcount, sha256_hex, token_hash
from incident_db.members.models import Member, MemberSession

SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)
#: a session's ``last_seen_at`` is written at most this often
SESSION_REFRESH = timedelta(minutes=1)


def start_session(session: Session, member: Member, now: datetime | None = None) -> str:
    """Sign ``member`` in; return the cookie value (only its SHA-256 is kept)."""
    if not member.active:
        raise MemberError("a removed member cannot sign in")
    moment = now_utc(now)
    token = secrets.token_urlsafe(32)
    session.add(
        MemberSession(
            token_hash=sha256_hex(token),
            member_id=member.id,
            created_at=moment,
            last_seen_at=moment,
        )
    )
    session.flush()
    return token


def session_member(session: Session, token: str, now: datetime | None = None) -> Member | None:
    """The member a session cookie belongs to, or None if it is unknown or over.

    A session is over after :data:`SESSION_IDLE` without use, after
    :data:`SESSION_MAX` in all, or as soon as its member is removed; an
    over session's row is deleted. ``last_seen_at`` is refreshed at most once
    per :data:`SESSION_REFRESH`, so that reading a page rarely writes.
    """
    digest = token_hash(token)
    if digest is None:
        return None
    found = session.get(MemberSession, digest)
    if found is None:
        return None
    moment = now_utc(now)
    member = session.get(Member, found.member_id)
    if (
        member is None
        or not member.active
        or moment - aware(found.last_seen_at) > SESSION_IDLE
        or moment - aware(found.created_at) > SESSION_MAX
    ):
        # a Core DELETE: another request may have ended the same session a moment ago
        session.execute(
            delete(MemberSession)
            .where(MemberSession.token_hash == digest)
            .execution_options(synchronize_session=False)
        )
        session.expunge(found)
        return None
    if moment - aware(found.last_seen_at) >= SESSION_REFRESH:
        found.last_seen_at = moment
        session.flush()
    return member


def end_session(session: Session, token: str) -> None:
    """Sign one browser out (nothing happens for an unknown token)."""
    digest = token_hash(token)
    if digest is not None:
        session.execute(delete(MemberSession).where(MemberSession.token_hash == digest))


def end_all_sessions(session: Session, member: Member) -> int:
    """Sign ``member`` out everywhere; return how many sessions ended."""
    result = session.execute(delete(MemberSession).where(MemberSession.member_id == member.id))
    return rowcount(result)


def end_stale_sessions(session: Session, now: datetime | None = None) -> int:
    """Delete every session that is over by time; return how many (for a periodic sweep)."""
    moment = now_utc(now)
    result = session.execute(
        delete(MemberSession).where(
            (MemberSession.last_seen_at < moment - SESSION_IDLE)
            | (MemberSession.created_at < moment - SESSION_MAX)
        )
    )
    return rowcount(result)
