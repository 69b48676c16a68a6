"""Records, batches and database snapshots for the incident database's tests."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Engine, select

from crypto.batch import sign_batch
from crypto.keys import SigningKeyPair
from incident_db.models import Base

WHEN = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
#: fixed keys: tests must not depend on randomness they cannot replay
REVIEWER = SigningKeyPair.from_seed(bytes(range(32)))
STRANGER = SigningKeyPair.from_seed(bytes(range(100, 132)))


def record(number: int, **changes: Any) -> dict[str, Any]:
    """A valid cso-incident/v1 record; ``changes`` replace or (with None) remove members."""
    base: dict[str, Any] = {
        "schema": "cso-incident/v1",
        "id": f"{number:032x}",
        "category": "piracy-or-armed-robbery",
        "incident_type": "boarded",
        "occurred_local": "2024-03-01T02:30",
        "utc_offset": "+06:00",
        "position": {"lat": 22.2, "lon": 91.7, "decimals": 1},
        "place": "Chittagong Anchorage 'B', Bangladesh",
        "location_type": "inner-anchorage",
        "vessel_type": "bulk-carrier",
        "vessel_status": "anchored",
        "perpetrators_min": 3,
        "perpetrators_max": 5,
        "weapons": ["knives-or-machetes"],
        "boarding_method": "anchor-chain-or-hawse-pipe",
        "boarding_points": ["forecastle-or-forecastle-store"],
        "stolen": ["ship-s-stores"],
        "crew": {"threatened": 1, "tied_up": 1},
        "actions_taken": ["alarm-raised", "crew-mustered"],
        "outcome": "successful-items-stolen-or-control-taken",
        "reported_to": ["coastal-or-port-authority"],
        "narrative": "Four robbers climbed the anchor chain and took paint from the store.",
        "verification": {"status": "confirmed", "grade": "B2"},
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def batch(
    records: list[dict[str, Any]],
    signer: SigningKeyPair = REVIEWER,
    batch_id: str | None = None,
) -> bytes:
    """A signed batch of ``records``."""
    return sign_batch(records, signer, batch_id=batch_id or secrets.token_hex(16), created_at=WHEN)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal snapshots mean an unchanged database."""
    tables = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table)).all()
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return tables
