"""Reviewer sync: envelope hashes, the inbox sequence, accounts, sessions and replies.

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


def upgrade() -> None:
    """Add what the reviewer sync endpoints and replies need."""
    with op.batch_alter_table("part") as table:
        table.add_column(sa.Column("sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("submission") as table:
        table.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="received")
        )
    op.create_table(
        "inbox_entry",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submission.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("acknowledged_on", sa.Date, nullable=True),
        sqlite_autoincrement=True,  # never reuse a cursor value after a purge
    )
    # Submissions stored before this revision join the inbox in arrival order.
    op.execute(
        "INSERT INTO inbox_entry (submission_id) SELECT id FROM submission ORDER BY received_on, id"
    )
    op.create_table(
        "reviewer_account",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(64), nullable=False, unique=True),
        sa.Column("sync_key", sa.String(80), nullable=False, unique=True),
        sa.Column("signing_key", sa.String(80), nullable=False, unique=True),
        sa.Column("acknowledged_cursor", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "sync_challenge",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_label", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )
    op.create_table(
        "sync_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("reviewer_account.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )
    op.create_table(
        "reply",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reply_id", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "submission_id",
            sa.String(32),
            sa.ForeignKey("submission.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("blob", sa.String(64), nullable=True, unique=True),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_on", sa.Date, nullable=False),
    )


def downgrade() -> None:
    """Drop it all again."""
    for name in ("reply", "sync_session", "sync_challenge", "reviewer_account", "inbox_entry"):
        op.drop_table(name)
    with op.batch_alter_table("submission") as table:
        table.drop_column("status")
    with op.batch_alter_table("part") as table:
        table.drop_column("sha256")
