"""Submissions and their ciphertext parts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PART_KIND = sa.Enum("REPORT", "ATTACHMENT", name="part_kind")


def upgrade() -> None:
    """Create the submission and part tables."""
    op.create_table(
        "submission",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("received_on", sa.Date, nullable=False),
    )
    op.create_index("ix_submission_received_on", "submission", ["received_on"])
    op.create_table(
        "part",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submission.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", PART_KIND, nullable=False),
        sa.Column("blob", sa.String(64), nullable=False, unique=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.UniqueConstraint("submission_id", "position"),
    )
    op.create_index("ix_part_submission_id", "part", ["submission_id"])


def downgrade() -> None:
    """Drop both tables (and the enum type where the database has one)."""
    op.drop_index("ix_part_submission_id", table_name="part")
    op.drop_table("part")
    op.drop_index("ix_submission_received_on", table_name="submission")
    op.drop_table("submission")
    PART_KIND.drop(op.get_bind(), checkfirst=True)
