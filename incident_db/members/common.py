"""What the members' modules share: their error, the clock and the hashing of secrets."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import CursorResult

from incident_db.errors import IncidentDbError

#: longest token or code worth hashing; anything longer is simply unknown
TOKEN_MAX = 200


class MemberError(IncidentDbError):
    """A member operation was refused; the message says why, in one line."""

    failure_class = "member failure"


def now_utc(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def aware(moment: datetime) -> datetime:
    # what a session still holds may be naive until it is read back
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_hash(token: object) -> str | None:
    if not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX:
        return None
    return sha256_hex(token)


def rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
