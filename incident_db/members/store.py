"""The one way to change the members' tables: invitations, roles, passkeys, sessions, audit.

Sessions (``sessions.py``) and the audit log (``audit.py``) live in modules of
their own; this module names them too, so that callers need only this one.

Every function takes a SQLAlchemy ``Session`` first and commits nothing: the
caller commits, so that a change and its audit line land together or not at
all. ``now=None`` means the current UTC time; tests pass their own.

Secrets handed out here (invitation tokens, session cookies, recovery codes)
are shown once and stored only as their SHA-256: a copy of the database lets
no one sign in. A handle is chosen by an admin but typed by anyone, and is
shown in terminals and pages, so :func:`clean_handle` refuses every
character that acts rather than reads (``crypto/characters.py``).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from crypto.characters import unsafe
from incident_db.members.audit import audit as audit
from incident_db.members.audit import audit_events as audit_events
from incident_db.members.common import TOKEN_MAX, aware, now_utc, rowcount, sha256_hex, token_hash
from incident_db.members.common import MemberError as MemberError
from incident_db.members.models import (
    HANDLE_MAX,
    Invitation,
    Member,
    MemberSession,
    Passkey,
    RecoveryCode,
)
from incident_db.members.sessions import SESSION_IDLE as SESSION_IDLE
from incident_db.members.sessions import SESSION_MAX as SESSION_MAX
from incident_db.members.sessions import SESSION_REFRESH as SESSION_REFRESH
from incident_db.members.sessions import end_all_sessions as end_all_sessions
from incident_db.members.sessions import end_session as end_session
from incident_db.members.sessions import end_stale_sessions as end_stale_sessions
from incident_db.members.sessions import session_member as session_member
from incident_db.members.sessions import start_session as start_session

ROLES = ("member", "editor", "admin")
INVITATION_LIFETIME = timedelta(days=7)
#: WebAuthn: a credential id is at most 1023 bytes; the counter is 32 bits
_CREDENTIAL_MAX = 1023
_COUNTER_MAX = 2**32 - 1
#: recovery codes: 10 random bytes (80 bits) are 16 base32 characters
_CODE_BYTES = 10
_CODE = re.compile(r"[A-Z2-7]{16}")


# -- handles and members -------------------------------------------------------------


def clean_handle(raw: object) -> str:
    """The handle as stored: stripped, NFC, inner white space squeezed; MemberError if bad.

    The message never repeats the handle: it may be the very thing refused.
    """
    if not isinstance(raw, str):
        raise MemberError("a handle must be text")
    text = raw.strip()
    if any(unsafe(char) for char in text):
        raise MemberError("a handle may not contain control, format or invisible characters")
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if not 0 < len(text) <= HANDLE_MAX:
        raise MemberError(f"a handle must be 1 to {HANDLE_MAX} characters long")
    return text


def handle_key(handle: str) -> str:
    """What makes two handles the same: case and compatibility forms folded."""
    return unicodedata.normalize("NFKC", handle).casefold()


def _check_role(role: object) -> str:
    if role not in ROLES:
        raise MemberError(f"a role is one of {', '.join(ROLES)}")
    return str(role)


def _any_member(session: Session, handle: str) -> Member | None:
    return session.scalars(select(Member).where(Member.handle_key == handle_key(handle))).first()


def member_by_handle(session: Session, handle: str) -> Member | None:
    """The active member with this handle (in any case), or None."""
    try:
        cleaned = clean_handle(handle)
    except MemberError:
        return None
    found = _any_member(session, cleaned)
    return found if found is not None and found.active else None


def _existing(session: Session, handle: str) -> Member:
    cleaned = clean_handle(handle)
    found = member_by_handle(session, cleaned)
    if found is None:
        raise MemberError(f"no member has the handle {cleaned!r}")
    return found


def members(session: Session) -> list[Member]:
    """The active members (invited ones included), by handle."""
    query = select(Member).where(Member.removed_day.is_(None)).order_by(Member.handle_key)
    return list(session.scalars(query))


def _refuse_last_admin(session: Session, member: Member, what: str) -> None:
    if member.role != "admin":
        return
    # lock the admins' rows: two admins removing each other at once must not both succeed
    admins = session.scalars(
        select(Member.id)
        .where(Member.role == "admin", Member.removed_day.is_(None))
        .with_for_update()
    ).all()
    if len(admins) <= 1:
        raise MemberError(f"cannot {what} the last admin: make another member admin first")


def _drop_access(session: Session, member: Member) -> None:
    for table in (MemberSession, Passkey, RecoveryCode, Invitation):
        session.execute(delete(table).where(table.member_id == member.id))


def invite(
    session: Session,
    handle: str,
    role: str,
    *,
    actor: str,
    lifetime: timedelta = INVITATION_LIFETIME,
    now: datetime | None = None,
) -> str:
    """Invite ``handle`` as ``role``; return the one-time token of the invitation link.

    A new handle becomes a member at once (without a passkey until the link is
    used); a removed member becomes one again, with a new WebAuthn user
    handle; an active member gets a new link (for a new device) and, if
    ``role`` differs, the role as :func:`set_role` would set it. Earlier links
    of the member stop working. Audited as ``member.invite``.
    """
    moment = now_utc(now)
    cleaned = clean_handle(handle)
    role = _check_role(role)
    if lifetime <= timedelta(0):
        raise MemberError("an invitation must last some time")
    member = _any_member(session, cleaned)
    if member is None:
        member = Member(
            handle=cleaned,
            handle_key=handle_key(cleaned),
            role=role,
            user_handle=secrets.token_hex(32),
            created_day=moment.date(),
        )
        session.add(member)
    elif not member.active:
        member.handle, member.role, member.removed_day = cleaned, role, None
        member.user_handle = secrets.token_hex(32)
        member.created_day = moment.date()
    elif member.role != role:
        set_role(session, cleaned, role, actor=actor, now=moment)
    session.flush()
    session.execute(delete(Invitation).where(Invitation.member_id == member.id))
    token = secrets.token_urlsafe(32)
    expires = moment + lifetime
    session.add(Invitation(token_hash=sha256_hex(token), member_id=member.id, expires_at=expires))
    detail = {"role": role, "expires_at": expires.isoformat(timespec="seconds")}
    audit(session, actor, "member.invite", member.handle, detail, now=moment)
    session.flush()
    return token


_BAD_INVITATION = "this invitation link is unknown, already used or expired"


def _valid_invitation(session: Session, token: str, moment: datetime) -> tuple[Invitation, Member]:
    digest = token_hash(token)
    found = None
    if digest is not None:
        found = session.scalars(select(Invitation).where(Invitation.token_hash == digest)).first()
    if found is None or found.used_at is not None or aware(found.expires_at) <= moment:
        raise MemberError(_BAD_INVITATION)
    member = session.get(Member, found.member_id)
    if member is None or not member.active:
        raise MemberError(_BAD_INVITATION)
    return found, member


def invitation_member(session: Session, token: str, now: datetime | None = None) -> Member:
    """The member a valid (unused, unexpired) invitation is for; MemberError otherwise."""
    return _valid_invitation(session, token, now_utc(now))[1]


def consume_invitation(session: Session, token: str, now: datetime | None = None) -> Member:
    """Use up a valid invitation and return its member; a second use raises MemberError.

    One conditional UPDATE marks it used, so of two requests racing with the
    same link (even in two processes), exactly one succeeds.
    """
    moment = now_utc(now)
    invitation, member = _valid_invitation(session, token, moment)
    result = session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.used_at.is_(None),
            Invitation.expires_at > moment,
        )
        .values(used_at=moment)
        .execution_options(synchronize_session=False)
    )
    session.expire(invitation)
    if rowcount(result) != 1:
        raise MemberError(_BAD_INVITATION)
    return member


def remove(session: Session, handle: str, *, actor: str, now: datetime | None = None) -> None:
    """Remove a member: sessions end at once; passkeys, codes and invitations go. Audited.

    The last admin cannot be removed.
    """
    moment = now_utc(now)
    member = _existing(session, handle)
    _refuse_last_admin(session, member, "remove")
    _drop_access(session, member)
    member.removed_day = moment.date()
    audit(session, actor, "member.remove", member.handle, {"role": member.role}, now=moment)
    session.flush()


def set_role(
    session: Session, handle: str, role: str, *, actor: str, now: datetime | None = None
) -> None:
    """Give a member another role; audited as ``member.role``. The last admin stays admin."""
    role = _check_role(role)
    member = _existing(session, handle)
    if member.role == role:
        return
    if role != "admin":
        _refuse_last_admin(session, member, "demote")
    previous, member.role = member.role, role
    audit(session, actor, "member.role", member.handle, {"from": previous, "to": role}, now=now)
    session.flush()


# -- passkeys and recovery codes -------------------------------------------------------


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
    """A member's passkeys, oldest first."""
    query = select(Passkey).where(Passkey.member_id == member.id).order_by(Passkey.id)
    return list(session.scalars(query))


def record_passkey_use(
    session: Session, passkey: Passkey, sign_count: int, now: datetime | None = None
) -> None:
    """Note a sign-in with ``passkey``: its new counter and the day."""
    passkey.sign_count = _check_counter(sign_count)
    passkey.last_used_day = now_utc(now).date()
    session.flush()


def _canonical_code(code: object) -> str | None:
    if not isinstance(code, str) or len(code) > TOKEN_MAX:
        return None
    text = "".join(code.split()).replace("-", "").upper()
    return text if _CODE.fullmatch(text) else None


def new_recovery_codes(session: Session, member: Member, count: int = 10) -> list[str]:
    """Make ``count`` fresh one-time codes (``XXXX-XXXX-XXXX-XXXX``, 80 bits), dropping the old.

    Only their SHA-256 is kept: the list returned is the only copy.
    """
    if not member.active:
        raise MemberError("a removed member cannot have recovery codes")
    if not 0 < count <= 100:
        raise MemberError("between 1 and 100 recovery codes at a time")
    session.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    codes = []
    for _ in range(count):
        text = base64.b32encode(secrets.token_bytes(_CODE_BYTES)).decode("ascii")
        session.add(RecoveryCode(member_id=member.id, code_hash=sha256_hex(text)))
        codes.append("-".join(text[at : at + 4] for at in range(0, len(text), 4)))
    session.flush()
    return codes


def use_recovery_code(
    session: Session, handle: str, code: str, now: datetime | None = None
) -> Member | None:
    """The member, if ``code`` is one of their unused codes (now used up); else None.

    Dashes, spaces and case do not matter. Every unused code of the member is
    compared in constant time, so the time taken does not say how close a guess was.
    """
    canonical = _canonical_code(code)
    digest = sha256_hex(canonical or "")
    member = member_by_handle(session, handle)
    if member is None or canonical is None:
        return None
    unused = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.member_id == member.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    match = None
    for row in unused:
        if hmac.compare_digest(row.code_hash, digest):
            match = row
    if match is None:
        return None
    result = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
        .values(used_at=now_utc(now))
        .execution_options(synchronize_session=False)
    )
    session.expire(match)
    return member if rowcount(result) == 1 else None


def passkey_counts(session: Session) -> dict[int, int]:
    """How many passkeys each member has, by member id (members without any are absent)."""
    query = select(Passkey.member_id, func.count()).group_by(Passkey.member_id)
    return {int(row[0]): int(row[1]) for row in session.execute(query)}
