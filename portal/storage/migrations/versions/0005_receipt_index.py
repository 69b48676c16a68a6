"""Receipts: an index that finds a report from its lookup token in one step.

Until now a lookup ran argon2id once for every report under the locator,
which the browser chooses: stuffing one locator made its lookups as slow as
an attacker liked. A report now stores a receipt index (crypto/SPEC.md
§14.3), a deterministic argon2id of its lookup token, and is found by it.

Existing reports keep their per-report hash and no index; lookups still
check those one by one (their number only falls from now on), and a
successful lookup gives the report its index. After a downgrade, reports
filed since this revision (which have only the index) can no longer be found
by a receipt; their ciphertext and their place in the inbox are kept.

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
    """Add the indexed column, empty for every report filed before it."""
    with op.batch_alter_table("submission") as table:
        table.add_column(sa.Column("receipt_index", sa.String(64), nullable=True))
        table.create_index("ix_submission_receipt_index", ["receipt_index"])


def downgrade() -> None:
    """Remove it."""
    with op.batch_alter_table("submission") as table:
        table.drop_index("ix_submission_receipt_index")
        table.drop_column("receipt_index")
