"""The one way to change the members' tables: invitations, roles, passkeys, sessions, audit.

Sessions (``sessions.py``), passkeys (``passkeys.py``), WebAuthn challenges
(``challenges.py``) and the audit log (``audit.py``) live in modules of their
own; this module names them too, so that callers need only this one.

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

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from crypto.characters import unsafe
from incident_db.members.audit import audit as audit
from incident_db.members.audit import audit_events as audit_events
from incident_db.members.challenges import CHALLENGE_LIFETIME as CHALLENGE_LIFETIME
from incident_db.members.challenges import issue_challenge as issue_challenge
from incident_db.members.challenges import take_challenge as take_challenge
from incident_db.members.common import TOKEN_MAX, aware, now_utc, rowcount, sha256_hex, token_hash
from incident_db.members.common import MemberError as MemberError
from incident_db.members.models import (
    HANDLE_KEY_MAX,
    HANDLE_MAX,
    RESERVED_ACTORS,
    Invitation,
    Member,
    MemberSession,
    Passkey,
    RecoveryCode,
)
from incident_db.members.passkeys import add_passkey as add_passkey
from incident_db.members.passkeys import passkey_by_id as passkey_by_id
from incident_db.members.passkeys import passkey_counts as passkey_counts
from incident_db.members.passkeys import passkeys_of as passkeys_of
from incident_db.members.passkeys import record_passkey_use as record_passkey_use
from incident_db.members.passkeys import remove_passkey as remove_passkey
from incident_db.members.passkeys import suspect_passkey as suspect_passkey
from incident_db.members.sessions import SESSION_IDLE as SESSION_IDLE
from incident_db.members.sessions import SESSION_MAX as SESSION_MAX
from incident_db.members.sessions import SESSION_REFRESH as SESSION_REFRESH
from incident_db.members.sessions import end_all_sessions as end_all_sessions
from incident_db.members.sessions import end_session as end_session
from incident_db.members.sessions import end_stale_sessions as end_stale_sessions
from incident_db.members.sessions import session_member as session_member
from incident_db.members.sessions import start_session as start_session

ROLES = ("member", "editor", "admin")
#: most combining marks a handle may stack on one character
COMBINING_MAX = 3
INVITATION_LIFETIME = timedelta(days=7)
#: recovery codes: 10 random bytes (80 bits) are 16 base32 characters
_CODE_BYTES = 10
_CODE = re.compile(r"[A-Z2-7]{16}")
#: a recovery attempt compares at least this many hashes, known handle or not
_CODES_COMPARED = 10


# -- handles and members -------------------------------------------------------------


def _combining_run(text: str) -> int:
    """The longest run of consecutive combining marks in ``text``."""
    longest = run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) or unicodedata.category(char) in {
            "Mn", "Me", "Mc"} else 0  # fmt: skip
        longest = max(longest, run)
    return longest


def clean_handle(raw: object) -> str:
    """The handle as stored: stripped, NFC, inner white space squeezed; MemberError if bad.

    Refused: control, format and invisible characters; more than
    :data:`COMBINING_MAX` combining marks in a row (text that spills over its
    neighbours); a handle whose folded form (:func:`handle_key`) outgrows its
    column; and the audit log's non-member actors (``cli``, ``system``,
    ``partner``, and anything starting ``cli:``, ``system:`` or ``partner:``),
    in any case or width. The message never repeats the handle: it may be the
    very thing refused.
    """
    if not isinstance(raw, str):
        raise MemberError("a handle must be text")
    text = raw.strip()
    if any(unsafe(char) for char in text):
        raise MemberError("a handle may not contain control, format or invisible characters")
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if not 0 < len(text) <= HANDLE_MAX:
        raise MemberError(f"a handle must be 1 to {HANDLE_MAX} characters long")
    if _combining_run(text) > COMBINING_MAX:
        raise MemberError(f"a handle may not stack more than {COMBINING_MAX} accents")
    key = handle_key(text)
    if len(key) > HANDLE_KEY_MAX:
        raise MemberError(f"a handle must be 1 to {HANDLE_MAX} characters long")
    if key in RESERVED_ACTORS or key.startswith(tuple(kind + ":" for kind in RESERVED_ACTORS)):
        raise MemberError("the handles cli, system and partner are kept for the audit log")
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


def _change_guarded(session: Session, member: Member, what: str, **values: object) -> None:
    """Write ``values`` to ``member``, unless that would leave no active admin.

    The check is part of the UPDATE itself: of two admins removing (or
    demoting) each other at once, the second statement finds no other admin
    and changes nothing. SQLite runs writers one at a time, so that is
    enough there; on PostgreSQL each statement sees only what was committed
    when it began, so the admins' rows are locked first and the second
    request waits for the first to commit.
    """
    other = aliased(Member)
    others = (
        select(func.count())
        .select_from(other)
        .where(other.role == "admin", other.removed_day.is_(None), other.id != member.id)
        .scalar_subquery()
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Member.id)
            .where(Member.role == "admin", Member.removed_day.is_(None))
            .order_by(Member.id)
            .with_for_update()
        )
    result = session.execute(
        update(Member)
        .where(
            Member.id == member.id,
            Member.removed_day.is_(None),
            or_(Member.role != "admin", others >= 1),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire(member)
    if rowcount(result) != 1:
        raise MemberError(f"cannot {what} the last admin: make another member admin first")


def _signed_up(session: Session, member: Member) -> bool:
    """Whether ``member`` has a passkey or recovery codes (has used an invitation)."""
    return any(
        session.scalar(select(table.id).where(table.member_id == member.id).limit(1)) is not None
        for table in (Passkey, RecoveryCode)
    )


def _reset_access(session: Session, member: Member) -> dict[str, int]:
    """End ``member``'s sessions, passkeys and recovery codes; how many of each went."""
    return {
        name: rowcount(session.execute(delete(table).where(table.member_id == member.id)))
        for name, table in (("sessions", MemberSession), ("passkeys", Passkey),
                            ("recovery_codes", RecoveryCode))
    }  # fmt: skip


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
    reset_access: bool = False,
    now: datetime | None = None,
) -> str:
    """Invite ``handle`` as ``role``; return the one-time token of the invitation link.

    A new handle becomes a member at once (without a passkey until the link is
    used); a removed member becomes one again, with a new WebAuthn user
    handle; an active member who has not signed up yet gets a new link and,
    if ``role`` differs, the role as :func:`set_role` would set it. Earlier
    links of the member stop working. Audited as ``member.invite``.

    An active member who has signed up (a passkey or recovery codes) is not
    invited again: whoever held the link could then sign in as them. They add
    devices themselves. Only with ``reset_access`` (the ``incident-db``
    command, whose operator holds the database anyway) are they invited
    again, and then their sessions, passkeys and recovery codes end first.
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
        session.flush()
    detail: dict[str, object] = {}
    signed_up = member.active and member.id is not None and _signed_up(session, member)
    if signed_up and not reset_access:
        raise MemberError(
            f"{member.handle} has signed up already: ask them to add a device on their "
            "passkeys page, or remove them and invite them again"
        )
    if member.active and member.role != role:
        set_role(session, cleaned, role, actor=actor, now=moment)
    if signed_up:
        detail["reset"] = _reset_access(session, member)
    session.flush()
    session.execute(delete(Invitation).where(Invitation.member_id == member.id))
    token = secrets.token_urlsafe(32)
    expires = moment + lifetime
    session.add(
        Invitation(
            token_hash=sha256_hex(token),
            member_id=member.id,
            expires_at=expires,
            invited_by=actor,
        )
    )
    detail |= {"role": role, "expires_at": expires.isoformat(timespec="seconds")}
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


def invitation_inviter(session: Session, token: str, now: datetime | None = None) -> str:
    """Who made a valid invitation (an audit actor); MemberError otherwise."""
    return _valid_invitation(session, token, now_utc(now))[0].invited_by


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
    role = member.role
    _change_guarded(session, member, "remove", removed_day=moment.date())
    _drop_access(session, member)
    audit(session, actor, "member.remove", member.handle, {"role": role}, now=moment)
    session.flush()


def set_role(
    session: Session, handle: str, role: str, *, actor: str, now: datetime | None = None
) -> None:
    """Give a member another role; audited as ``member.role``. The last admin stays admin."""
    role = _check_role(role)
    member = _existing(session, handle)
    if member.role == role:
        return
    previous = member.role
    _change_guarded(session, member, "demote", role=role)
    audit(session, actor, "member.role", member.handle, {"from": previous, "to": role}, now=now)
    session.flush()


# -- passkeys and recovery codes -------------------------------------------------------


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

    Dashes, spaces and case do not matter. The same two queries and at least
    :data:`_CODES_COMPARED` constant-time comparisons run whether or not the
    handle is known and the code well formed, so the time taken says neither
    whether a member exists nor how close a guess was.
    """
    canonical = _canonical_code(code)
    digest = sha256_hex(canonical or "")
    try:
        key = handle_key(clean_handle(handle))
    except MemberError:
        key = ""
    member = session.scalars(select(Member).where(Member.handle_key == key)).first()
    known = member is not None and member.active
    unused = session.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.member_id == (member.id if member is not None and known else -1),
            RecoveryCode.used_at.is_(None),
        )
    ).all()
    candidates = [(int(row[0]), str(row[1])) for row in unused]
    candidates += [(-1, "0" * 64)] * max(0, _CODES_COMPARED - len(candidates))
    match = None
    for row_id, code_hash in candidates:
        if hmac.compare_digest(code_hash, digest) and row_id > 0:
            match = row_id
    if match is None or canonical is None or member is None or not known:
        return None
    result = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == match, RecoveryCode.used_at.is_(None))
        .values(used_at=now_utc(now))
        .execution_options(synchronize_session=False)
    )
    return member if rowcount(result) == 1 else None
