"""Indexes for the members' pages on a million incidents: by day, by place and day, map by day.

Every page of the members' service asks for a period (the last 24 months
unless told otherwise), so ``incident.local_date`` gets an index of its own
(the first and last day on record, the busiest places, a period with no box)
and one behind ``place_key`` (a place page reads one place's period, not all
its years).

The map asks for a box *and* a period. On SQLite the R*Tree of 0003 knew
only the box, so a view over a busy ocean fetched every incident ever
recorded there and threw most away by date; it now holds the day too
(the Julian day number of ``local_date``, 0 when unknown: such incidents fall
in no period), so the index hands back just the incidents of the box and the
period. On PostgreSQL the planner combines the GiST index on the point with
the new index on the day by itself.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Connection

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_incident_local_date", ("local_date",)),
    ("ix_incident_place_day", ("place_key", "local_date")),
)
TRIGGERS = ("insert", "update", "delete")
#: the R*Tree with the day, and the triggers that keep it in step (fixed statements)
SQLITE_DAY_INDEX = (
    "CREATE VIRTUAL TABLE incident_rtree USING "
    "rtree(id, min_lat, max_lat, min_lon, max_lon, min_day, max_day)",
    "CREATE TRIGGER incident_rtree_insert AFTER INSERT ON incident "
    "WHEN new.latitude IS NOT NULL AND new.longitude IS NOT NULL BEGIN "
    "INSERT OR REPLACE INTO incident_rtree VALUES (new.rowid, new.latitude, new.latitude, "
    "new.longitude, new.longitude, coalesce(julianday(new.local_date), 0), "
    "coalesce(julianday(new.local_date), 0)); END",
    "CREATE TRIGGER incident_rtree_update AFTER UPDATE OF latitude, longitude, local_date "
    "ON incident BEGIN "
    "DELETE FROM incident_rtree WHERE id = old.rowid; "
    "INSERT OR REPLACE INTO incident_rtree SELECT new.rowid, new.latitude, new.latitude, "
    "new.longitude, new.longitude, coalesce(julianday(new.local_date), 0), "
    "coalesce(julianday(new.local_date), 0) "
    "WHERE new.latitude IS NOT NULL AND new.longitude IS NOT NULL; END",
    "CREATE TRIGGER incident_rtree_delete AFTER DELETE ON incident BEGIN "
    "DELETE FROM incident_rtree WHERE id = old.rowid; END",
)
SQLITE_DAY_FILL = (
    "INSERT INTO incident_rtree SELECT rowid, latitude, latitude, longitude, longitude, "
    "coalesce(julianday(local_date), 0), coalesce(julianday(local_date), 0) "
    "FROM incident WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
)


def rebuild_rtree(connection: Connection) -> None:
    """Fill the SQLite R*Tree afresh from ``incident`` (after a VACUUM renumbered rowids)."""
    connection.exec_driver_sql("DELETE FROM incident_rtree")
    connection.exec_driver_sql(SQLITE_DAY_FILL)


def _drop_rtree() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER incident_rtree_{name}")
    op.execute("DROP TABLE incident_rtree")


def upgrade() -> None:
    """The two indexes; on SQLite the R*Tree rebuilt with the day."""
    for name, columns in INDEXES:
        op.create_index(name, "incident", list(columns))
    if op.get_bind().dialect.name == "sqlite":
        _drop_rtree()
        for statement in SQLITE_DAY_INDEX:
            op.execute(statement)
        op.execute(SQLITE_DAY_FILL)


def downgrade() -> None:
    """Back to 0006: the box-only R*Tree of 0003, without the two indexes."""
    if op.get_bind().dialect.name == "sqlite":
        from importlib import import_module

        # the 0003 module's name starts with a digit: imported by name
        earlier = import_module("incident_db.migrations.versions.0003_incident_kind_and_map_index")
        _drop_rtree()
        for statement in earlier.SQLITE_INDEX:
            op.execute(statement)
        op.execute(earlier.SQLITE_FILL)
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, "incident")
