"""Engine, sessions and migrations for the portal database.

SQLite (the default) gets foreign keys and ``secure_delete`` on every
connection, so deleted rows are overwritten rather than left in free pages.
Any SQLAlchemy URL works; PostgreSQL is tested. The schema is made and
upgraded only by Alembic migrations (``portal/storage/migrations``).

Many reporters at once (tests/reliability/test_load.py) must wait for
SQLite, never be refused by it, so a SQLite file is opened:

* in WAL mode: readers (pages, exports) and the one writer no longer block
  each other, and a commit appends to the log instead of rewriting pages;
* with a busy timeout of :data:`BUSY_TIMEOUT_S`: a writer waits that long
  for the write lock. The portal's write transactions are short (rows only:
  blobs are written and fsync'd before, never inside one), so this bound is
  only reached if something is badly wrong;
* with ``synchronous = FULL`` unless the caller says the data is volatile:
  in WAL mode that is one fsync of the log per commit, and a report the
  portal has acknowledged survives a power cut. ``NORMAL`` would save that
  fsync but may lose the last commits, i.e. receipts already shown.

The Python driver starts a transaction only at its first write, so a write
transaction asks for the write lock first and waits for it (with the busy
timeout) rather than failing when another writer committed since it read:
the effect that ``BEGIN IMMEDIATE`` would have. A WAL file keeps its mode;
see :func:`make_engine` for what that means for a backup.

A PostgreSQL connection is tested before each use (``pool_pre_ping``), so
the portal carries on after the database server restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


#: how long a SQLite writer waits for the write lock before giving up (seconds)
BUSY_TIMEOUT_S = 30


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``url``, with the SQLite pragmas of this module's docstring.

    ``durable=False`` is for a store that is lost on reboot anyway (the
    runtime store on tmpfs): commits then skip the fsync. A SQLite file
    opened here is switched to WAL mode for good, and a copy made with
    SQLite's backup API keeps the WAL mark in its header.
    """
    sqlite = make_url(url).get_backend_name() == "sqlite"
    connect_args = {"timeout": BUSY_TIMEOUT_S} if sqlite else {}
    engine = create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
    if sqlite:
        synchronous = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")  # stays "memory" in memory
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.close()

    return engine


def make_sessions(engine: Engine) -> sessionmaker[Any]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration, built in code: no alembic.ini to keep in step."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision``."""
    command.downgrade(alembic_config(url), revision)
