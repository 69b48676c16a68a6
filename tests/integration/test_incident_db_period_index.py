"""Migration 0007: the map's index knows the day, and the box-and-period filter stays exact.

On SQLite the R*Tree is asked for the box and the period at once, so an
incident whose day moves must move in the index too (the update trigger);
on PostgreSQL the plain indexes are there. Both databases, real ones.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, inspect, select, text
from werkzeug.datastructures import MultiDict

from incident_db.db import downgrade, upgrade
from incident_db.models import Incident, core_table
from incident_db.web.filters import IncidentFilter

# (id, local date, latitude, longitude): the filter below asks for 2025 inside 0..10, 100..110
ROWS = (
    ("inside", "2025-03-01", 1.5, 103.8),
    ("too-old", "2019-06-30", 2.0, 104.0),
    ("undated", None, 3.0, 105.0),
    ("elsewhere", "2025-03-01", 40.0, 10.0),
    ("last-day", "2025-12-31", 9.99, 109.99),
)
CHOSEN = MultiDict({"since": "2025-01-01", "until": "2025-12-31", "bbox": "100,0,110,10"})


def chosen_ids(url: str) -> set[str]:
    """The incidents the map's filter (box and period) selects."""
    table = core_table(Incident)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = select(table.c.id).where(IncidentFilter.from_args(CHOSEN).where(table))
            return set(connection.scalars(query))
    finally:
        engine.dispose()


def change(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def index_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes("incident")}
    finally:
        engine.dispose()


def test_0007_box_and_period_follow_every_write(database_url: str) -> None:
    upgrade(database_url, "0006")
    engine = create_engine(database_url)
    insert = text(
        "INSERT INTO incident (id, origin, category, local_date, latitude, longitude, kind, "
        "verification_status, content_sha256, added_at) VALUES (:id, 'external', "
        "'piracy-or-armed-robbery', :day, :lat, :lon, 'other', 'unverified', '', "
        "'2025-01-01 00:00:00')"
    )
    with engine.begin() as connection:
        for id_, day, lat, lon in ROWS:
            when = None if day is None else dt.date.fromisoformat(day)
            connection.execute(insert, {"id": id_, "day": when, "lat": lat, "lon": lon})
    engine.dispose()
    upgrade(database_url, "0007")  # the existing incidents are indexed with their day
    assert {"ix_incident_local_date", "ix_incident_place_day"} <= index_names(database_url)
    assert chosen_ids(database_url) == {"inside", "last-day"}
    # a day moved into the period, or out of it, is found (or not) at once
    change(database_url, "UPDATE incident SET local_date = '2025-07-04' WHERE id = 'too-old'")
    change(database_url, "UPDATE incident SET local_date = '2026-01-01' WHERE id = 'last-day'")
    assert chosen_ids(database_url) == {"inside", "too-old"}
    change(database_url, "UPDATE incident SET local_date = '2025-01-01' WHERE id = 'undated'")
    change(database_url, "DELETE FROM incident WHERE id = 'inside'")
    assert chosen_ids(database_url) == {"too-old", "undated"}
    # back to the box-only index of 0003, and up again, with the same answers
    downgrade(database_url, "0006")
    assert not {"ix_incident_local_date", "ix_incident_place_day"} & index_names(database_url)
    upgrade(database_url, "0007")
    assert chosen_ids(database_url) == {"too-old", "undated"}
