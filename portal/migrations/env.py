"""Alembic environment for the portal: online migrations only."""

from __future__ import annotations

from alembic import context

from portal.db import make_engine
from portal.models import Base

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
