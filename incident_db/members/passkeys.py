"""Members' passkeys: registering, counting uses, disabling a suspected copy, removing one.

``store`` names every function here too; callers need only ``store``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from incident_db.members.audit import audit
from incident_db.members.common import MemberError, now_utc, rowcount
from incident_db.members.models import ACTOR_SYSTEM, Member, Passkey
from incident_db.members.sessions import end_all_sessions

#: WebAuthn: a credential id is at most 1023 bytes; the counter is 32 bits
_CREDENTIAL_MAX = 1023
_COUNTER_MAX = 2**32 - 1


def _check_counter(sign_count: object) -> int:
    if not isinstance(sign_count, int) or not 0 <= sign_count <= _COUNTER_MAX:
        raise MemberError("a passkey's signature counter must be a 32-bit unsigned number")
    return sign_count


def add_passkey(
    session: Session,
    member: Member,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    now: datetime | None = None,
) -> Passkey:
    """Register a passkey for an active member; MemberError if its id is already registered."""
    if not member.active:
        raise MemberError("a removed member cannot add a passkey")
    if not isinstance(credential_id, bytes) or not 0 < len(credential_id) <= _CREDENTIAL_MAX:
        raise MemberError("a passkey's credential id must be 1 to 1023 bytes")
    if not isinstance(public_key, bytes) or not public_key:
        raise MemberError("a passkey needs a public key")
    if passkey_by_id(session, credential_id) is not None:
        raise MemberError("this passkey is already registered")
    passkey = Passkey(
        credential_id=credential_id,
        member_id=member.id,
        public_key=public_key,
        sign_count=_check_counter(sign_count),
        created_day=now_utc(now).date(),
    )
    session.add(passkey)
    session.flush()
    return passkey


def passkey_by_id(session: Session, credential_id: bytes) -> Passkey | None:
    """The passkey with this credential id, or None."""
    if not isinstance(credential_id, bytes) or not 0 < len(credential_id) <= _CREDENTIAL_MAX:
        return None
    return session.scalars(select(Passkey).where(Passkey.credential_id == credential_id)).first()


def passkeys_of(session: Session, member: Member) -> list[Passkey]:
    """A member's passkeys (disabled ones included), oldest first."""
    query = select(Passkey).where(Passkey.member_id == member.id).order_by(Passkey.id)
    return list(session.scalars(query))


def record_passkey_use(
    session: Session, passkey: Passkey, sign_count: int, now: datetime | None = None
) -> None:
    """Note a sign-in with ``passkey``: its new counter and the day.

    One conditional UPDATE: it writes only if the passkey is still usable and
    the counter advances past the stored one (or both are 0, for
    authenticators that keep none), so of two sign-ins racing with the same
    counter exactly one is recorded; the other gets MemberError.
    """
    count = _check_counter(sign_count)
    # WebAuthn: a counter advances past the stored one, or both are 0 (no counter kept)
    advances = Passkey.sign_count < count if count > 0 else Passkey.sign_count == 0
    result = session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.suspected_day.is_(None), advances)
        .values(sign_count=count, last_used_day=now_utc(now).date())
        .execution_options(synchronize_session=False)
    )
    session.expire(passkey)
    if rowcount(result) != 1:
        raise MemberError("this passkey was used by another sign-in just now: please try again")


def suspect_passkey(
    session: Session, passkey: Passkey, reported: int, now: datetime | None = None
) -> int:
    """Disable ``passkey`` as a possible copy and sign its member out everywhere. Audited.

    Called when its counter did not advance. Returns how many sessions ended;
    the audit line's actor is ``system``.
    """
    moment = now_utc(now)
    member = session.get(Member, passkey.member_id)
    stored = passkey.sign_count
    passkey.suspected_day = moment.date()
    ended = end_all_sessions(session, member) if member is not None else 0
    detail = {"stored_counter": stored, "reported_counter": reported, "sessions_ended": ended}
    subject = member.handle if member is not None else ""
    audit(session, ACTOR_SYSTEM, "passkey.clone-suspected", subject, detail, now=moment)
    session.flush()
    return ended


def remove_passkey(
    session: Session, member: Member, passkey_id: int, *, actor: str, now: datetime | None = None
) -> None:
    """Remove one of ``member``'s passkeys; audited as ``passkey.remove``.

    A disabled passkey may always go; a usable one only if another usable one stays.
    """
    passkey = session.get(Passkey, passkey_id)
    if passkey is None or passkey.member_id != member.id:
        raise MemberError("no such passkey of yours")
    if passkey.usable:
        others = session.scalar(
            select(func.count())
            .select_from(Passkey)
            .where(
                Passkey.member_id == member.id,
                Passkey.id != passkey.id,
                Passkey.suspected_day.is_(None),
            )
        )
        if not others:
            raise MemberError("this is your last working passkey: add another one first")
    session.execute(delete(Passkey).where(Passkey.id == passkey.id))
    session.expunge(passkey)
    detail = {"added": passkey.created_day.isoformat(), "disabled": not passkey.usable}
    audit(session, actor, "passkey.remove", member.handle, detail, now=now)
    session.flush()


def passkey_counts(session: Session) -> dict[int, int]:
    """How many passkeys each member has, by member id (members without any are absent)."""
    query = select(Passkey.member_id, func.count()).group_by(Passkey.member_id)
    return {int(row[0]): int(row[1]) for row in session.execute(query)}
