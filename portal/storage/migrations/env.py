"""Alembic environment for the portal: online migrations only.

A caller may hand in its own connection (``config.attributes["connection"]``):
the migrations then run inside that caller's transaction and commit with it,
as a PostgreSQL restore needs (:mod:`portal.deploy.backup_pgdump`).
"""

from __future__ import annotations

from alembic import context

from portal.storage.db import make_engine
from portal.storage.models import Base

config = context.config
given = config.attributes.get("connection")
if given is not None:
    context.configure(connection=given, target_metadata=Base.metadata)
    with context.begin_transaction():  # inside the caller's: commits nothing itself
        context.run_migrations()
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
