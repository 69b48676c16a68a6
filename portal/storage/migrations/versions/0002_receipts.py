"""Receipt lookup: the public locator and an argon2id hash of the lookup token.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two receipt columns (crypto/SPEC.md §14.3)."""
    with op.batch_alter_table("submission") as table:
        table.add_column(sa.Column("receipt_locator", sa.String(4), nullable=False))
        table.add_column(sa.Column("receipt_hash", sa.String(200), nullable=False))
        table.create_index("ix_submission_receipt_locator", ["receipt_locator"])


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("submission") as table:
        table.drop_index("ix_submission_receipt_locator")
        table.drop_column("receipt_hash")
        table.drop_column("receipt_locator")
