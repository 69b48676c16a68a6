"""Whether the database in a backup is one this code's own migrations made.

Anyone who holds the public backup key can forge a backup (see
:mod:`portal.deploy.restore`), so its database is untrusted input. A SQLite file is
checked before anything opens it as the portal's: read-only, with
``trusted_schema`` off (no function in the schema runs), through ``PRAGMA
integrity_check`` and ``foreign_key_check``; then its schema must be, object
for object and statement for statement, what the migrations make at the
revision it records. That refuses a trigger that would drop every new report,
a view, a table to harvest into, a constraint that refuses inserts, or a
revision this code does not know.

A PostgreSQL dump is never loaded as it is: only its rows go into a schema
this code's migrations build (:mod:`portal.deploy.backup_pgdump`), so there is no
schema of the backup's to check.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

from alembic.script import ScriptDirectory

from portal.deploy.backup import BackupError
from portal.storage.db import alembic_config, upgrade

_MAGIC = b"SQLite format 3\x00"
_SPACE = re.compile(r"\s+")

Shape = frozenset[tuple[str, str, str, str]]


def check_sqlite_file(path: Path, scratch: Path) -> None:
    """Refuse (:class:`BackupError`) a SQLite file that is not a portal database as made here.

    ``scratch`` is a private directory where the expected schema is built.
    """
    with path.open("rb") as handle:
        header = handle.read(100)
    if not header.startswith(_MAGIC):
        raise BackupError("the backup's database is not a SQLite file; nothing was restored")
    if header[18:20] != b"\x01\x01":  # WAL needs side files a backup never has
        raise BackupError("the backup's database is in a journal mode a backup never uses")
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.execute("PRAGMA cell_size_check = ON")
        if connection.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
            raise BackupError("the backup's database is damaged (integrity_check failed)")
        if connection.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise BackupError("the backup's database breaks its own foreign keys")
        revision = known_revision(connection.execute("SELECT * FROM alembic_version").fetchall())
        actual = _shape(connection)
    except sqlite3.Error:
        raise BackupError("the backup's database cannot be read as a portal database") from None
    finally:
        connection.close()
    if actual != _expected_shape(revision, scratch):
        raise BackupError(
            f"the backup's database is not the schema this code makes at revision {revision} "
            "(an extra or changed table, index, trigger or view); nothing was restored"
        )


def known_revision(rows: list[tuple[object, ...]]) -> str:
    """The one Alembic revision recorded, if this code knows it."""
    known = {script.revision for script in _scripts().walk_revisions()}
    if len(rows) != 1 or len(rows[0]) != 1 or rows[0][0] not in known:
        raise BackupError("the backup's database records a schema revision this code does not know")
    return str(rows[0][0])


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def _shape(connection: sqlite3.Connection) -> Shape:
    """Every schema object: kind, name, table, and its SQL with white space folded."""
    rows = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return frozenset(
        (str(kind), str(name), str(table), _SPACE.sub(" ", str(sql or "")).strip())
        for kind, name, table, sql in rows
    )


def _expected_database(revision: str, scratch: Path) -> sqlite3.Connection:
    """A new SQLite database migrated to ``revision`` by this code, opened read-only."""
    path = scratch / f"expected-{revision}.sqlite3"
    if not path.exists():
        upgrade(f"sqlite:///{path}", revision)
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)


def _expected_shape(revision: str, scratch: Path) -> Shape:
    connection = _expected_database(revision, scratch)
    try:
        return _shape(connection)
    finally:
        connection.close()
