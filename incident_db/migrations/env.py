"""Alembic environment for the incident database: online migrations only."""

from __future__ import annotations

from alembic import context

from incident_db.db import VERSION_TABLE, make_engine
from incident_db.models import Base

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
