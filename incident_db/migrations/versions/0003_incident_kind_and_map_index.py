"""The kind of each incident as a column, and a spatial index for the map.

``incident.kind`` is :func:`incident_db.brief.trend.kind` of the row's
incident type, category and outcome, set on every write (``store.py``), so
that the map and its filter can count and select kinds in plain SQL. The
backfill runs one UPDATE per distinct (type, category, outcome): a few
dozen statements, whatever the number of incidents.

The map asks "which incidents lie in this box?". On SQLite an R*Tree
(``incident_rtree``) answers, keyed by the incident's own integer rowid
(``incident`` has a string key, so its rowid is implicit) and kept in step
by triggers. A VACUUM may renumber implicit rowids: the map's queries also
compare the columns themselves, so a stale index can hide an incident but
never misplace one; refilling it (``rebuild_rtree`` in migration 0007, which
gives it the day as well) puts it right. The project itself never vacuums.
On PostgreSQL a GiST index on ``point(longitude, latitude)`` answers
``<@ box``; both are built into the database (no PostGIS).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RTREE = "incident_rtree"
PG_INDEX = "ix_incident_point"
# the table and trigger names are spelled out: these are fixed statements
SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE incident_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon)",
    "CREATE TRIGGER incident_rtree_insert AFTER INSERT ON incident "
    "WHEN new.latitude IS NOT NULL AND new.longitude IS NOT NULL BEGIN "
    "INSERT OR REPLACE INTO incident_rtree VALUES (new.rowid, new.latitude, new.latitude, "
    "new.longitude, new.longitude); END",
    "CREATE TRIGGER incident_rtree_update AFTER UPDATE OF latitude, longitude ON incident BEGIN "
    "DELETE FROM incident_rtree WHERE id = old.rowid; "
    "INSERT OR REPLACE INTO incident_rtree SELECT new.rowid, new.latitude, new.latitude, "
    "new.longitude, new.longitude "
    "WHERE new.latitude IS NOT NULL AND new.longitude IS NOT NULL; END",
    "CREATE TRIGGER incident_rtree_delete AFTER DELETE ON incident BEGIN "
    "DELETE FROM incident_rtree WHERE id = old.rowid; END",
)
SQLITE_FILL = (
    "INSERT INTO incident_rtree SELECT rowid, latitude, latitude, longitude, longitude "
    "FROM incident WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
)
POSTGRES_INDEX = (
    "CREATE INDEX ix_incident_point ON incident USING gist (point(longitude, latitude))"
)


def _kind(incident_type: str | None, category: str | None, outcome: str | None) -> str:
    # imported here: a migration module is loaded by Alembic, not by the package
    from incident_db.brief.trend import kind

    return kind(incident_type, category, outcome)


def backfill(connection: sa.Connection) -> None:
    """Set ``kind`` on every incident, one UPDATE per distinct (type, category, outcome)."""
    incident = sa.table(
        "incident",
        sa.column("incident_type"),
        sa.column("category"),
        sa.column("outcome"),
        sa.column("kind"),
    )
    columns = (incident.c.incident_type, incident.c.category, incident.c.outcome)
    combinations = connection.execute(sa.select(*columns).distinct()).all()
    for incident_type, category, outcome in combinations:
        connection.execute(
            sa.update(incident)
            .where(
                incident.c.incident_type.is_not_distinct_from(incident_type),
                incident.c.category.is_not_distinct_from(category),
                incident.c.outcome.is_not_distinct_from(outcome),
            )
            .values(kind=_kind(incident_type, category, outcome))
        )


def upgrade() -> None:
    """Add ``incident.kind`` (backfilled, then required) and the map's spatial index."""
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    # SQLite cannot make a column NOT NULL later without copying the table, so
    # there it starts NOT NULL with a default the backfill overwrites at once
    op.add_column(
        "incident",
        sa.Column("kind", sa.String(24), nullable=not sqlite, server_default="other"),
    )
    backfill(connection)
    if sqlite:
        for statement in SQLITE_INDEX:
            op.execute(statement)
        op.execute(SQLITE_FILL)
    else:
        op.alter_column("incident", "kind", nullable=False, server_default=None)
        op.execute(POSTGRES_INDEX)


def downgrade() -> None:
    """Remove the triggers and the R*Tree, or the GiST index, and the column."""
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER {RTREE}_{name}")
        op.execute(f"DROP TABLE {RTREE}")
    else:
        op.execute(f"DROP INDEX {PG_INDEX}")
    # SQLite (3.35 and later) drops a column in place; a batch copy of the
    # table would cascade-delete the tags and provenance of every incident
    op.drop_column("incident", "kind")
