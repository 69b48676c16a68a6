"""TLP 2.0 on every incident, a version time partners page by, and the partners.

``incident.tlp`` holds the sharing limit (``incident_db/tlp.py``): incidents
already stored take the default of their source, AMBER for a reviewer's
confirmed report and CLEAR for a public feed's row. ``incident.version_at``
is when the incident's current version was made; existing rows take their
``added_at``. The index on (``version_at``, ``id``) lets a partner page
through what changed after a given moment (TAXII ``added_after``).
``incident.stix_uuid`` and ``incident.stix_located_uuid`` hold the UUIDs of
an incident's STIX objects (``incident_db/stix_ids.py``), indexed, so a
partner's request for one object by its id is an index lookup; existing
rows get them computed here, in batches.

``partner`` holds the organisations that pull incidents with an API
credential, of which only the SHA-256 is kept.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from incident_db.stix_ids import incident_uuid, located_at_uuid

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two incident columns (filled by source), their index, and ``partner``.

    The columns are added in place (``ADD COLUMN … NOT NULL DEFAULT``): on
    SQLite a rebuilt ``incident`` table would renumber the rowids under the
    R*Tree and lose its triggers. The defaults only fill existing rows; every
    write names both columns. PostgreSQL drops them afterwards.
    """
    op.add_column(
        "incident", sa.Column("tlp", sa.String(12), nullable=False, server_default="clear")
    )
    op.add_column(
        "incident",
        sa.Column(
            "version_at", sa.DateTime(), nullable=False, server_default="1970-01-01 00:00:00"
        ),
    )
    op.execute("UPDATE incident SET tlp = 'amber' WHERE origin = 'reviewer'")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite keeps times as text. Rows written before 0008 hold a whole second
        # as "… 08:34:32" (the driver's form), SQLAlchemy binds "… 08:34:32.000000":
        # partners page by comparing version_at, so it takes the one form
        op.execute(
            "UPDATE incident SET version_at = CASE WHEN length(added_at) = 19 "
            "THEN added_at || '.000000' ELSE added_at END"
        )
    else:
        op.execute("UPDATE incident SET version_at = added_at")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("incident", "tlp", server_default=None)
        op.alter_column("incident", "version_at", server_default=None)
    op.create_index("ix_incident_version", "incident", ["version_at", "id"])
    _add_stix_ids()
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("name_key", sa.String(480), nullable=False, unique=True),
        sa.Column("clearance", sa.String(12), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("rotated_day", sa.Date(), nullable=True),
        sa.Column("removed_day", sa.Date(), nullable=True),
    )


#: incidents given their STIX ids per statement
_BATCH = 5000


def _add_stix_ids() -> None:
    """The two STIX UUID columns, filled in for every stored incident, and their indexes.

    In place like the others (``ADD COLUMN … NOT NULL DEFAULT ''``). UUIDv5
    is a SHA-1 SQL cannot compute portably, so the values are computed here
    in Python, a batch of incident ids at a time, in id order.
    """
    for column in ("stix_uuid", "stix_located_uuid"):
        op.add_column(
            "incident", sa.Column(column, sa.String(36), nullable=False, server_default="")
        )
    bind = op.get_bind()
    incident = sa.table(
        "incident",
        sa.column("id", sa.String),
        sa.column("stix_uuid", sa.String),
        sa.column("stix_located_uuid", sa.String),
    )
    fill = (
        sa.update(incident)
        .where(incident.c.id == sa.bindparam("ident"))
        .values(stix_uuid=sa.bindparam("one"), stix_located_uuid=sa.bindparam("located"))
    )
    last = ""
    while True:
        ids = (
            bind.execute(
                sa.select(incident.c.id)
                .where(incident.c.id > last)
                .order_by(incident.c.id)
                .limit(_BATCH)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        rows = [{"ident": i, "one": incident_uuid(i), "located": located_at_uuid(i)} for i in ids]
        bind.execute(fill, rows)
        last = ids[-1]
    if bind.dialect.name == "postgresql":
        op.alter_column("incident", "stix_uuid", server_default=None)
        op.alter_column("incident", "stix_located_uuid", server_default=None)
    op.create_index("ix_incident_stix_uuid", "incident", ["stix_uuid"])
    op.create_index("ix_incident_stix_located_uuid", "incident", ["stix_located_uuid"])


def downgrade() -> None:
    """Back to 0007: no partners, no TLP, no version time, no stored STIX ids."""
    op.drop_table("partner")
    op.drop_index("ix_incident_stix_located_uuid", "incident")
    op.drop_index("ix_incident_stix_uuid", "incident")
    op.drop_column("incident", "stix_located_uuid")
    op.drop_column("incident", "stix_uuid")
    op.drop_index("ix_incident_version", "incident")
    # SQLite (3.35 and later) drops a plain column in place, keeping rowids and triggers
    op.drop_column("incident", "version_at")
    op.drop_column("incident", "tlp")
