"""Each incident-db migration goes up and down cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from incident_db.db import VERSION_TABLE, downgrade, upgrade

TABLES = {"incident", "incident_tag", "provenance", "reviewer_batch", "feed_import",
          "incident_link"}  # fmt: skip
MEMBER_TABLES = {"member", "invitation", "passkey", "recovery_code", "member_session",
                 "audit_event"}  # fmt: skip


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0001_up_down_up(database_url: str) -> None:
    upgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}
    downgrade(database_url, "base")
    assert _tables(database_url) == {VERSION_TABLE}
    upgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}


def test_0002_up_down_up(database_url: str) -> None:
    """The members' tables come and go without touching the incidents'."""
    upgrade(database_url)
    assert _tables(database_url) == TABLES | MEMBER_TABLES | {VERSION_TABLE}
    downgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}
    upgrade(database_url)
    assert _tables(database_url) == TABLES | MEMBER_TABLES | {VERSION_TABLE}


def test_models_match_the_migrations(database_url: str) -> None:
    """No model change is missing its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import incident_db.members  # noqa: F401  (its tables are on Base too)
    from incident_db.models import Base

    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_it_can_share_a_database_with_the_portal(database_url: str) -> None:
    """Its own version table: the portal's migrations and these do not collide."""
    from portal.storage.db import upgrade as upgrade_portal

    upgrade_portal(database_url)
    upgrade(database_url)
    tables = _tables(database_url)
    assert {"alembic_version", VERSION_TABLE, "submission", "incident"} <= tables
