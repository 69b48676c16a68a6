"""The history of every change to an incident: ``incident_change``, append-only.

An editor's verification or grade change, a note, a merge, a link, and a
reviewer's new version of a record each add one row holding what was there
before, what is there after, who did it and why. Like ``audit_event``
(0002), the database refuses to rewrite it: triggers refuse UPDATE and
DELETE on SQLite and PostgreSQL (and TRUNCATE on PostgreSQL). On SQLite a
third trigger refuses an INSERT whose id is already taken, because
``INSERT OR REPLACE`` deletes the old row without firing a DELETE trigger
(recursive triggers are off by default) and would otherwise rewrite it.

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

REFUSAL = "incident_change is append-only"
PG_FUNCTION = "incident_db_incident_change_append_only"

SQLITE_TRIGGERS = (
    *(
        f"CREATE TRIGGER incident_change_no_{verb.lower()} BEFORE {verb} ON incident_change "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        for verb in ("UPDATE", "DELETE")
    ),
    "CREATE TRIGGER incident_change_no_replace BEFORE INSERT ON incident_change "  # noqa: S608
    "WHEN EXISTS (SELECT 1 FROM incident_change WHERE id = NEW.id) "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
)
POSTGRES_TRIGGERS = (
    f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER incident_change_no_change BEFORE UPDATE OR DELETE ON incident_change "
    f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
    "CREATE TRIGGER incident_change_no_truncate BEFORE TRUNCATE ON incident_change "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
)


def upgrade() -> None:
    """Create ``incident_change``, its index, and its guard."""
    op.create_table(
        "incident_change",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_change_incident_id", "incident_change", ["incident_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        statements = SQLITE_TRIGGERS
    elif dialect == "postgresql":
        statements = POSTGRES_TRIGGERS
    else:
        raise NotImplementedError(f"no append-only guard for {dialect}: SQLite and PostgreSQL only")
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    """Drop the guard, then the table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER incident_change_no_truncate ON incident_change")
        op.execute("DROP TRIGGER incident_change_no_change ON incident_change")
        op.execute(f"DROP FUNCTION {PG_FUNCTION}()")
    else:
        op.execute("DROP TRIGGER incident_change_no_replace")
        op.execute("DROP TRIGGER incident_change_no_delete")
        op.execute("DROP TRIGGER incident_change_no_update")
    op.drop_index("ix_incident_change_incident_id", table_name="incident_change")
    op.drop_table("incident_change")
