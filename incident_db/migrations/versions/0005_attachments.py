"""Attachments forwarded with reviewer batches: their content and which incident holds them.

``attachment_content`` keeps each distinct file once, keyed by its SHA-256
(content-addressed: the same photo forwarded twice is stored once).
``incident_attachment`` says which incident a file belongs to, under which
media type and display name, and which signed batch bound it
(crypto/SPEC.md §16.9).

The content lives in the database rather than in files beside it so that an
ingest is one transaction: a refused batch leaves neither rows nor files,
and a backup of the database is a backup of the attachments. Files are
bounded (``incident_db.attachments.MAX_BYTES``), so a BLOB/bytea column is
the right size of tool.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the content store and the incident's list of attachments."""
    op.create_table(
        "attachment_content",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "incident_attachment",
        sa.Column(
            "incident_id",
            sa.String(32),
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "sha256", sa.String(64), sa.ForeignKey("attachment_content.sha256"), primary_key=True
        ),
        sa.Column("media_type", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column(
            "batch_id", sa.String(32), sa.ForeignKey("reviewer_batch.batch_id"), nullable=False
        ),
    )
    op.create_index("ix_incident_attachment_sha256", "incident_attachment", ["sha256"])


def downgrade() -> None:
    """Drop both tables, the list first."""
    op.drop_index("ix_incident_attachment_sha256", table_name="incident_attachment")
    op.drop_table("incident_attachment")
    op.drop_table("attachment_content")
