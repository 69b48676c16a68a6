"""Global rate budgets: a token bucket per kind of request, never per sender.

Sending without JavaScript skips the proof-of-work, and every receipt
lookup costs the server argon2id work; both draw on a bucket shared by
everyone, refilled at the operator's hourly rate. Nothing about a sender
is read: when a bucket is empty, everyone waits. The bucket row holds its
level and the time it was last drawn on (to the second), nothing else.

The update is one SQL statement, so concurrent workers and threads cannot
both spend the last token.
"""

from __future__ import annotations

import time

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from portal.models import RateBudget

PLAIN = "plain"  # submissions and follow-up messages sent without JavaScript
LOOKUP = "lookup"  # receipt lookups, with or without JavaScript


def capacity(per_hour: int) -> float:
    """How many requests may come at once after a quiet spell: a quarter of the hour's."""
    return max(1.0, per_hour / 4)


def take(
    sessions: sessionmaker[Session], name: str, per_hour: int, now: float | None = None
) -> bool:
    """Spend one token from bucket ``name``; False (nothing spent) if it is empty."""
    now = float(int(now if now is not None else time.time()))
    full = capacity(per_hour)
    with sessions.begin() as session:
        _ensure(session, name, full, now)
        refilled = RateBudget.tokens + (now - RateBudget.updated_at) * (per_hour / 3600)
        level = case((refilled > full, full), else_=refilled)
        result = session.execute(
            update(RateBudget)
            .where(RateBudget.name == name, level >= 1)
            .values(tokens=level - 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _ensure(session: Session, name: str, full: float, now: float) -> None:
    """Create the bucket, full, unless it exists (both databases say ON CONFLICT)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(RateBudget)
        .values(name=name, tokens=full, updated_at=now)
        .on_conflict_do_nothing()
    )
