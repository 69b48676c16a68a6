"""Partners: organisations whose own platforms pull incidents over TAXII 2.1, up to a clearance.

A partner (a navy, a coast guard, a CERT, an insurer) has a name, which is
also its HTTP basic user name, and a *clearance*: the highest TLP level it
may receive (``tlp.PARTNER_LEVELS``: never RED). Its API credential is
shown once, when it is made, and kept only as its SHA-256: a copy of the
database lets no one pull. ``remove`` forgets the credential and ``rotate``
replaces it; either way the old one stops working with the next request.

Every change is audited with the caller's actor; every pull is audited as
``partner:<name>`` (a handle can never take that form,
``members.store.clean_handle``). Like ``members.store``, nothing here
commits: the caller does, so a change and its audit line land together.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incident_db import tlp
from incident_db.errors import IncidentDbError
from incident_db.members import store
from incident_db.members.common import now_utc, token_hash
from incident_db.members.models import ACTOR_PARTNER, HANDLE_MAX, Partner

#: every credential starts so: a leaked one is easy to recognise (and to search for)
TOKEN_PREFIX = "idbp_"  # noqa: S105 - a prefix, not a secret
#: 32 random bytes: 256 bits
TOKEN_BYTES = 32
#: a name leaves room for ``partner:`` in the audit log's actor column
NAME_MAX = HANDLE_MAX - len(ACTOR_PARTNER) - 1
#: a hash no credential has: compared when nothing matched, so both paths cost the same
_NO_HASH = "0" * 64


class PartnerError(IncidentDbError):
    """A partner operation was refused; the message says why, in one line."""

    failure_class = "partner failure"


def clean_name(raw: object) -> str:
    """The name as stored (cleaned like a member's handle); PartnerError if it is refused.

    Beyond a handle's rules: at most :data:`NAME_MAX` characters, and no
    colon (HTTP basic cannot carry one in a user name), nor anything that
    folds to one (a fullwidth or small colon: the name's key is its NFKC
    form). Look-alikes that do not fold (U+2236 RATIO) are not caught here.
    """
    try:
        name = store.clean_handle(raw)
    except store.MemberError as error:
        raise PartnerError(str(error).replace("handle", "partner name")) from None
    if len(name) > NAME_MAX:
        raise PartnerError(f"a partner name must be 1 to {NAME_MAX} characters long")
    if ":" in name or ":" in store.handle_key(name):
        raise PartnerError("a partner name may not contain a colon (it is the HTTP user name)")
    return name


def clean_clearance(raw: str) -> str:
    """The clearance's TLP slug; PartnerError for an unknown level or RED."""
    try:
        level = tlp.parse(raw)
    except tlp.UnknownLevelError as error:
        raise PartnerError(str(error)) from None
    if level not in tlp.PARTNER_LEVELS:
        raise PartnerError("TLP:RED never leaves the service: a partner's clearance stops at "
                           f"{tlp.LABELS[tlp.PARTNER_LEVELS[-1]]}")  # fmt: skip
    return level


def actor_of(partner: Partner) -> str:
    """The audit log's actor for ``partner``'s own requests."""
    return f"{ACTOR_PARTNER}:{partner.name}"


def _new_token() -> tuple[str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token) or ""


def _any_partner(session: Session, name: str) -> Partner | None:
    key = store.handle_key(name)
    return session.scalars(select(Partner).where(Partner.name_key == key)).first()


def partner_by_name(session: Session, name: str) -> Partner | None:
    """The active partner with this name (in any case), or None."""
    try:
        cleaned = clean_name(name)
    except PartnerError:
        return None
    found = _any_partner(session, cleaned)
    return found if found is not None and found.removed_day is None else None


def _existing(session: Session, name: str) -> Partner:
    cleaned = clean_name(name)
    found = partner_by_name(session, cleaned)
    if found is None:
        raise PartnerError(f"no partner is called {cleaned!r}")
    return found


def partners(session: Session) -> list[Partner]:
    """The active partners, by name."""
    query = select(Partner).where(Partner.removed_day.is_(None)).order_by(Partner.name_key)
    return list(session.scalars(query))


def add(
    session: Session, name: str, clearance: str, *, actor: str, now: datetime | None = None
) -> str:
    """Add a partner; return its credential (shown once, only its hash is kept). Audited.

    A name in use by an active partner is refused; a removed partner's name
    may be added again, as a new partner with a new credential.
    """
    cleaned = clean_name(name)
    level = clean_clearance(clearance)
    moment = now_utc(now)
    token, digest = _new_token()
    found = _any_partner(session, cleaned)
    if found is not None and found.removed_day is None:
        raise PartnerError(f"there is already a partner called {found.name!r}")
    if found is None:
        session.add(Partner(name=cleaned, name_key=store.handle_key(cleaned), clearance=level,
                            token_hash=digest, created_day=moment.date()))  # fmt: skip
        again = False
    else:
        found.name, found.clearance, found.token_hash = cleaned, level, digest
        found.created_day, found.rotated_day, found.removed_day = moment.date(), None, None
        again = True
    detail: dict[str, Any] = {"clearance": level, "again": again}
    store.audit(session, actor, "partner.add", cleaned, detail, now=moment)
    session.flush()
    return token


def remove(session: Session, name: str, *, actor: str, now: datetime | None = None) -> None:
    """Remove a partner: its credential is forgotten at once. Audited."""
    moment = now_utc(now)
    partner = _existing(session, name)
    partner.token_hash = None
    partner.removed_day = moment.date()
    store.audit(session, actor, "partner.remove", partner.name, {}, now=moment)
    session.flush()


def rotate(session: Session, name: str, *, actor: str, now: datetime | None = None) -> str:
    """Give a partner a new credential (returned, shown once); the old one is dead at once."""
    moment = now_utc(now)
    partner = _existing(session, name)
    token, partner.token_hash = _new_token()
    partner.rotated_day = moment.date()
    store.audit(session, actor, "partner.rotate", partner.name, {}, now=moment)
    session.flush()
    return token


def verify(session: Session, credential: str | tuple[str, str]) -> Partner | None:
    """The active partner holding ``credential`` (a token, or HTTP basic's name and token).

    The database is searched by the token's SHA-256, never by the token, and
    the hash found is compared in constant time; with a name, the name must
    be the partner's too (in any case). None for anything else.
    """
    name, token = credential if isinstance(credential, tuple) else (None, credential)
    digest = token_hash(token)
    if digest is None:
        return None
    found = session.scalars(
        select(Partner).where(Partner.token_hash == digest, Partner.removed_day.is_(None))
    ).first()
    stored = found.token_hash if found is not None and found.token_hash else _NO_HASH
    matches = hmac.compare_digest(stored.encode("ascii"), digest.encode("ascii"))
    if found is None or not matches:
        return None
    if name is not None:
        try:
            key = store.handle_key(clean_name(name))
        except PartnerError:
            return None
        if not hmac.compare_digest(key.encode("utf-8"), found.name_key.encode("utf-8")):
            return None
    return found
