"""Pending WebAuthn challenges, kept in the database so that each one is answered once.

A challenge signed into the browser's cookie alone can be sent back with a
captured answer as often as one likes; a row can be deleted, and a
conditional DELETE that must remove exactly one row lets only one of any
number of racing answers through, on every worker and on both databases.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from incident_db.members.common import MemberError, now_utc, rowcount
from incident_db.members.models import Member, WebAuthnChallenge

#: how long a challenge stays good: the browser's own timeout (60 s) and some slack
CHALLENGE_LIFETIME = timedelta(seconds=120)
_PURPOSE_MAX = 80


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def issue_challenge(
    session: Session,
    challenge: bytes,
    purpose: str,
    member: Member | None = None,
    now: datetime | None = None,
) -> None:
    """Remember ``challenge`` for one answer within :data:`CHALLENGE_LIFETIME`.

    Expired challenges (abandoned sign-in pages) are swept at the same time,
    so the table holds at most two minutes' worth of them.
    """
    if not isinstance(challenge, bytes) or len(challenge) < 16:
        raise MemberError("a WebAuthn challenge needs at least 16 random bytes")
    if not purpose or len(purpose) > _PURPOSE_MAX:
        raise MemberError("a WebAuthn challenge needs a purpose of at most 80 characters")
    moment = now_utc(now)
    session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= moment))
    session.add(
        WebAuthnChallenge(
            challenge_hash=_digest(challenge),
            purpose=purpose,
            member_id=None if member is None else member.id,
            expires_at=moment + CHALLENGE_LIFETIME,
        )
    )
    session.flush()


def take_challenge(
    session: Session,
    challenge: bytes,
    purpose: str,
    member: Member | None = None,
    now: datetime | None = None,
) -> bool:
    """Use up ``challenge``: True only for the one caller that deletes its unexpired row.

    The row must have been issued for the same ``purpose`` and ``member``.
    """
    if not isinstance(challenge, bytes) or not challenge:
        return False
    owner = (
        WebAuthnChallenge.member_id.is_(None)
        if member is None
        else WebAuthnChallenge.member_id == member.id
    )
    result = session.execute(
        delete(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.challenge_hash == _digest(challenge),
            WebAuthnChallenge.purpose == purpose,
            WebAuthnChallenge.expires_at > now_utc(now),
            owner,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1
