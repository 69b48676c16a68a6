"""Alembic environment for the incident database: online migrations only."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, event

from incident_db.db import VERSION_TABLE, make_engine
from incident_db.members import models as _members  # noqa: F401  (registers the members' tables)
from incident_db.models import Base


def _transactional_sqlite(engine: Engine) -> None:
    """Make SQLite run the whole migration, schema included, in one transaction.

    Python's sqlite3 driver commits before each ``CREATE TABLE`` on its own,
    so a process killed halfway through a first migration left some tables
    and no version row, and every later run refused the database. With the
    driver's own transaction handling off and an explicit ``BEGIN``, a kill
    leaves nothing behind: the next run starts afresh.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
_transactional_sqlite(engine)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
