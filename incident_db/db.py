"""Engine and migrations for the incident database.

Any SQLAlchemy URL works; SQLite (the default) and PostgreSQL are tested.
The schema is made and upgraded only by the Alembic migrations in
``incident_db/migrations``, run from code; their version table has its own
name, so the incident database may share a PostgreSQL database with the
portal without the two migration histories colliding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from incident_db.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "incident_db_version"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections enforce foreign keys."""
    options: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # PostgreSQL's JIT compiles a plan for ~100 ms before running it; the
        # corroboration join runs thousands of short queries, each one slowed
        options["connect_args"] = {"options": "-c jit=off"}
    try:
        engine = create_engine(url, pool_pre_ping=True, **options)
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise StorageError(f"database URL is not usable: {error}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            # what a correction or a removal takes out is overwritten, not left in free pages
            cursor.execute("PRAGMA secure_delete = ON")
            # a million-row ingest touches index pages all over: keep 64 MiB of them at hand
            cursor.execute("PRAGMA cache_size = -65536")
            cursor.close()

    return engine


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration, built in code: there is no alembic.ini."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``; StorageError if it cannot."""
    try:
        command.upgrade(alembic_config(url), revision)
    except DBAPIError as error:
        raise StorageError(f"cannot open the database: {error.orig}") from None


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def open_database(url: str) -> Engine:
    """Migrate the database at ``url`` to the latest schema and return an engine for it."""
    upgrade(url)
    return make_engine(url)
