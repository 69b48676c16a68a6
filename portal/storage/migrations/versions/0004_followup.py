"""Follow-up: reporters' messages in threads, spent proof-of-work puzzles, rate budgets.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the thread link and the two anti-spam tables."""
    with op.batch_alter_table("submission") as table:
        table.add_column(sa.Column("thread_id", sa.String(32), nullable=True))
        table.create_foreign_key(
            "fk_submission_thread", "submission", ["thread_id"], ["id"], ondelete="CASCADE"
        )
        table.create_index("ix_submission_thread_id", ["thread_id"])
    op.create_table(
        "spent_puzzle",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )
    op.create_table(
        "rate_budget",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Remove them; follow-up messages go with their column."""
    op.drop_table("rate_budget")
    op.drop_table("spent_puzzle")
    op.execute("DELETE FROM submission WHERE thread_id IS NOT NULL")
    with op.batch_alter_table("submission") as table:
        table.drop_index("ix_submission_thread_id")
        table.drop_constraint("fk_submission_thread", type_="foreignkey")
        table.drop_column("thread_id")
