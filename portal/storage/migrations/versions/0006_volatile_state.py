"""Anti-abuse state leaves the database: spent puzzles and rate budgets.

Both held times finer than a day (a budget's last use to the second, a
puzzle's expiry to the minute), which dated submissions and lookups. They
now live in the volatile runtime store (portal/storage/runtime.py). Their rows are
not carried over: they are worth nothing after a restart anyway.

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
    """Drop the two tables, and with them every time they held."""
    op.drop_table("rate_budget")
    op.drop_table("spent_puzzle")  # its expiry index goes with it


def downgrade() -> None:
    """Make them again, empty, as 0004 made them."""
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
