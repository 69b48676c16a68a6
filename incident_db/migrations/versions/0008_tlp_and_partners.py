"""TLP 2.0 on every incident, a version time partners page by, and the partners.

``incident.tlp`` holds the sharing limit (``incident_db/tlp.py``): incidents
already stored take the default of their source, AMBER for a reviewer's
confirmed report and CLEAR for a public feed's row. ``incident.version_at``
is when the incident's current version was made; existing rows take their
``added_at``. The index on (``version_at``, ``id``) lets a partner page
through what changed after a given moment (TAXII ``added_after``).

``partner`` holds the organisations that pull incidents with an API
credential, of which only the SHA-256 is kept.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    """Back to 0007: no partners, no TLP, no version time."""
    op.drop_table("partner")
    op.drop_index("ix_incident_version", "incident")
    # SQLite (3.35 and later) drops a plain column in place, keeping rowids and triggers
    op.drop_column("incident", "version_at")
    op.drop_column("incident", "tlp")
