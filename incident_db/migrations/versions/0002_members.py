"""Members, their invitations, passkeys, recovery codes and sessions, pending WebAuthn
challenges, and the audit log.

The audit log is append-only, and the database itself says so: triggers
refuse every UPDATE and DELETE of ``audit_event`` on SQLite and PostgreSQL
(and TRUNCATE on PostgreSQL, which has it), so that no code path, bug or
hand-typed statement through the application's connection rewrites history.
SQLite's ``REPLACE`` (``INSERT OR REPLACE``) deletes the old row without
firing a DELETE trigger, so an INSERT that names an existing id is refused
too; PostgreSQL's ``INSERT ... ON CONFLICT DO UPDATE`` is an UPDATE, which
its trigger already refuses.

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

#: the owned tables, each indexed on ``member_id``
OWNED = ("invitation", "passkey", "recovery_code", "member_session", "webauthn_challenge")
REFUSAL = "audit_event is append-only"
PG_FUNCTION = "incident_db_audit_event_append_only"

SQLITE_TRIGGERS = (
    *(
        f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        for verb in ("UPDATE", "DELETE")
    ),
    # REPLACE fires the INSERT trigger before it deletes the row it conflicts with
    "CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event "  # noqa: S608 (constants)
    "WHEN EXISTS (SELECT 1 FROM audit_event WHERE id = NEW.id) "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
)
POSTGRES_TRIGGERS = (
    f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
    f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
)


def _member_id() -> sa.Column[int]:
    return sa.Column(
        "member_id", sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    """Create the seven tables, their indexes, and the audit log's guard."""
    op.create_table(
        "member",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(120), nullable=False),
        sa.Column("handle_key", sa.String(480), nullable=False, unique=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("user_handle", sa.String(64), nullable=False, unique=True),
        sa.Column("created_day", sa.Date, nullable=False),
        sa.Column("removed_day", sa.Date, nullable=True),
    )
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _member_id(),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=True),
        sa.Column("invited_by", sa.String(120), nullable=False),
    )
    op.create_table(
        "passkey",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("credential_id", sa.LargeBinary, nullable=False, unique=True),
        _member_id(),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("created_day", sa.Date, nullable=False),
        sa.Column("last_used_day", sa.Date, nullable=True),
        sa.Column("suspected_day", sa.Date, nullable=True),
    )
    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _member_id(),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "member_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _member_id(),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "webauthn_challenge",
        sa.Column("challenge_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(80), nullable=False),
        sa.Column(
            "member_id", sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_webauthn_challenge_expires_at", "webauthn_challenge", ["expires_at"])
    for table in OWNED:
        op.create_index(f"ix_{table}_member_id", table, ["member_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
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
    """Drop the guard, then the seven tables."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER audit_event_no_change ON audit_event")
        op.execute(f"DROP FUNCTION {PG_FUNCTION}()")
    else:
        op.execute("DROP TRIGGER audit_event_no_replace")
        op.execute("DROP TRIGGER audit_event_no_delete")
        op.execute("DROP TRIGGER audit_event_no_update")
    op.drop_table("audit_event")
    op.drop_index("ix_webauthn_challenge_expires_at", table_name="webauthn_challenge")
    for table in reversed(OWNED):
        op.drop_index(f"ix_{table}_member_id", table_name=table)
        op.drop_table(table)
    op.drop_table("member")
