"""Attachments an editor adds on an incident's page: no signed batch binds them.

Until now every attachment came with a reviewer batch, so
``incident_attachment.batch_id`` was required. An editor's photo or document
has no batch; who added it and when is the incident's history
(``incident_change``, action "attachment") and the audit log, so the column
only becomes optional here.

Downgrading removes the editor-added bindings (they could not be kept under
the old rule) and any content no binding refers to any more.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Let ``incident_attachment.batch_id`` be empty."""
    with op.batch_alter_table("incident_attachment") as table:
        table.alter_column("batch_id", existing_type=sa.String(32), nullable=True)


def downgrade() -> None:
    """Drop the bindings without a batch, then require a batch again."""
    op.execute("DELETE FROM incident_attachment WHERE batch_id IS NULL")
    op.execute(
        "DELETE FROM attachment_content WHERE sha256 NOT IN "
        "(SELECT sha256 FROM incident_attachment)"
    )
    with op.batch_alter_table("incident_attachment") as table:
        table.alter_column("batch_id", existing_type=sa.String(32), nullable=False)
