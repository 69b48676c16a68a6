"""Global rate budgets: a token bucket per kind of request, never per sender.

Sending without JavaScript skips the proof-of-work, and every receipt
lookup costs the server argon2id work; both draw on a bucket shared by
everyone, refilled at the operator's hourly rate. Nothing about a sender
is read: when a bucket is empty, everyone waits. The bucket row holds its
level and the time it was last drawn on (to the second), nothing else; that
time would date the latest lookup or plain submission, so the row lives in
the volatile runtime store (``runtime.py``), never in the data directory.
``sessions`` below are the runtime store's.

The update is one SQL statement, so concurrent workers and threads cannot
both spend the last token. A request refused after it drew on a budget, for
a reason only found out later (a follow-up message to a wrong receipt), gives
its token back with :func:`give_back`, also in one statement.
"""

from __future__ import annotations

import time

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from portal.storage.runtime import RateBudget

PLAIN = "plain"  # reports sent without JavaScript
FOLLOWUP = "followup"  # follow-up messages sent without JavaScript
LOOKUP = "lookup"  # receipt lookups, with or without JavaScript, and sending a follow-up


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


def give_back(sessions: sessionmaker[Session], name: str, per_hour: int) -> None:
    """Return one token taken from bucket ``name`` by a request that was then refused.

    Only a token this request took may be given back, so the level never
    passes what :func:`take` left plus one, nor the bucket's capacity. The
    time of the last draw is left alone: refilling goes on as before.
    """
    full = capacity(per_hour)
    returned = RateBudget.tokens + 1
    with sessions.begin() as session:
        session.execute(
            update(RateBudget)
            .where(RateBudget.name == name)
            .values(tokens=case((returned > full, full), else_=returned))
            .execution_options(synchronize_session=False)
        )


def _ensure(session: Session, name: str, full: float, now: float) -> None:
    """Create the bucket, full, unless it exists (both databases say ON CONFLICT)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(RateBudget)
        .values(name=name, tokens=full, updated_at=now)
        .on_conflict_do_nothing()
    )
