"""Team updates: the reviewers' shared triage, relayed by the portal it cannot read.

Each reviewer's workstation seals its team updates (crypto/SPEC.md §17) to
every reviewer key in the directory and sends them in its replies bundles;
the portal keeps the envelopes in arrival order and hands them out again in
inbox bundles. ``team_update.seq`` is the order, and each account's
``team_cursor`` the last update that reviewer has said it holds. Like the
inbox, the sequence never reuses a value after old rows are purged, so a
cursor never points at a newer update than the one it was given for.

The envelopes are small (at most 64 KiB each) and are kept in the database
rather than as blob files: they are written in the same transaction that
checks their ids, so an import either stores all of them or none.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the relay table and each account's team cursor."""
    op.create_table(
        "team_update",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("update_id", sa.String(32), nullable=False, unique=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("received_on", sa.Date, nullable=False, index=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("reviewer_account.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sqlite_autoincrement=True,  # never reuse a cursor value after a purge
    )
    with op.batch_alter_table("reviewer_account") as table:
        table.add_column(sa.Column("team_cursor", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop them; the relayed updates are lost (each workstation keeps its own)."""
    with op.batch_alter_table("reviewer_account") as table:
        table.drop_column("team_cursor")
    op.drop_table("team_update")  # its index goes with it
