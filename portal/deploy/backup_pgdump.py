"""A PostgreSQL backup's rows, loaded into a schema this code builds: no SQL from the dump runs.

A PostgreSQL backup holds ``pg_dump --format=custom``: a list of entries, each
carrying SQL text that pg_restore runs as it stands (table definitions,
defaults, constraints, policies, functions, and for each table's data even the
COPY statement that loads it, so ``--data-only`` runs attacker text too).
Anyone with the public backup key writes all of it (:mod:`portal.deploy.restore`), so
a restore never hands the dump to pg_restore with a database to run it in:

* ``pg_restore --data-only --file=-`` only turns the dump into text; it gets
  no database, and an environment with no connection settings;
* that text is parsed here. It may hold, per table, ``COPY public.TABLE
  (COLUMNS) FROM stdin;``, its rows and the ``\\.`` that ends them; the
  ``SET`` lines pg_dump writes at the top; one ``setval`` per sequence;
  comments and blank lines. Any other line refuses the backup;
* in the new, empty database, this code's migrations build the schema at the
  revision the dump records. The dump must hold every table of it, each once,
  with exactly its columns, and nothing else; each table's rows go in through
  a COPY statement built here from those names (COPY's text format is data:
  it runs nothing, and the schema has no trigger);
* the inbox and team-update counters come from the dump (a reviewer's
  cursors never see a number twice; :mod:`portal.deploy.backup_rows` checks
  them); every other counter is set from the largest id loaded;
* the migrations bring the schema to this version, every row is checked, and
  only then is anything committed. It is all one transaction: a refused
  backup leaves the database as it was, empty.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import psycopg
from alembic import command
from psycopg import sql as pgsql
from sqlalchemy import Connection, text
from sqlalchemy import inspect as sql_inspect
from sqlalchemy.exc import SQLAlchemyError

from portal.deploy.backup import BackupError
from portal.deploy.backup_rows import KeptRows
from portal.deploy.backup_schema import known_revision
from portal.storage.db import alembic_config, make_engine

_CHUNK = 1024 * 1024
_MAX_LINE = 4096  # outside the rows: comments, settings, headers
#: all rows together, as text; a portal's rows are metadata (reports are blob files)
MAX_ROWS = 64 * 1024**3
_NAME = "[a-z_][a-z0-9_]{0,62}"
_COPY = re.compile(rf"COPY public\.({_NAME}) \(([^()\n]*)\) FROM stdin;\n")
_COLUMN = re.compile(rf'({_NAME})|"({_NAME})"')
_SETVAL = re.compile(
    rf"SELECT pg_catalog\.setval\('public\.({_NAME})', ([1-9][0-9]{{0,18}}), (true|false)\);\n"
)
_RESTRICT = re.compile(r"\\(?:un)?restrict [A-Za-z0-9]{1,64}\n")  # pg_dump 15.14 and later
#: the settings pg_restore writes above the rows (none of them is run here)
_SETTINGS = frozenset(
    line + "\n"
    for line in (
        "SET statement_timeout = 0;",
        "SET lock_timeout = 0;",
        "SET idle_in_transaction_session_timeout = 0;",
        "SET transaction_timeout = 0;",
        "SET client_encoding = 'UTF8';",
        "SET standard_conforming_strings = on;",
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "SET check_function_bodies = false;",
        "SET xmloption = content;",
        "SET client_min_messages = warning;",
        "SET row_security = off;",
    )
)
#: (table, column) whose counter is the dump's: the sequences reviewers' cursors follow
_KEPT_COUNTERS = frozenset({("inbox_entry", "seq"), ("team_update", "seq")})
#: objects in any schema but PostgreSQL's own; a database to restore into has none
_OBJECTS = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema')
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema')
     + (SELECT count(*) FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public'))
"""
_SERIALS = """
SELECT table_name::text, column_name::text,
       pg_get_serial_sequence(quote_ident(table_name::text), column_name::text)
FROM information_schema.columns WHERE table_schema = current_schema()
"""


@dataclass
class DataDump:
    """What a restore takes from a dump: its revision, each table's rows, the counters.

    ``tables`` maps a table to its columns (in the dump's order) and a spool
    of its rows in COPY's text format.
    """

    revision: str
    tables: dict[str, tuple[list[str], IO[bytes]]] = field(default_factory=dict)
    counters: dict[str, tuple[int, bool]] = field(default_factory=dict)


def _refuse(reason: str) -> BackupError:
    return BackupError(f"the backup's PostgreSQL dump {reason}; nothing was restored")


@contextmanager
def read_dump(dump: Path, scratch: Path) -> Iterator[DataDump]:
    """Parse ``dump`` (rows spooled in ``scratch``); :class:`BackupError` if it holds more.

    pg_restore only converts here: it is given no database and no libpq
    settings, so nothing in the dump reaches a server.
    """
    tables: dict[str, tuple[list[str], IO[bytes]]] = {}
    try:
        counters = _convert(dump, scratch, tables)
        yield DataDump(_revision(tables), tables, counters)
    finally:
        for _columns, spool in tables.values():
            spool.close()


def _convert(
    dump: Path, scratch: Path, tables: dict[str, tuple[list[str], IO[bytes]]]
) -> dict[str, tuple[int, bool]]:
    command_line = ["pg_restore", "--data-only", "--file=-", str(dump)]
    environment = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    with tempfile.TemporaryFile(dir=scratch) as errors:
        process = subprocess.Popen(  # noqa: S603 - a fixed program; the dump path is ours
            command_line, stdout=subprocess.PIPE, stderr=errors, env=environment
        )
        output = cast(IO[bytes], process.stdout)  # a pipe: stdout=PIPE
        try:
            counters = _parse(output, scratch, tables)
        except BaseException:
            process.kill()  # refused: nothing more of it is wanted
            raise
        finally:
            output.close()
            returned = process.wait()
        if returned != 0:
            errors.seek(0)
            lines = errors.read(64 * 1024).decode(errors="replace").strip().splitlines()
            raise _refuse(f"does not convert ({lines[-1][:200] if lines else 'no message'!a})")
    return counters


def _parse(
    stream: IO[bytes], scratch: Path, tables: dict[str, tuple[list[str], IO[bytes]]]
) -> dict[str, tuple[int, bool]]:
    """Read pg_restore's text: rows per table, and each sequence's value."""
    counters: dict[str, tuple[int, bool]] = {}
    while raw := stream.readline(_MAX_LINE + 1):
        line = _line(raw)
        if copy := _COPY.fullmatch(line):
            if copy.group(1) in tables:
                raise _refuse(f"holds the rows of {copy.group(1)} twice")
            spool = tempfile.TemporaryFile(dir=scratch)
            tables[copy.group(1)] = (_columns(copy.group(2)), spool)
            spooled = sum(rows.tell() for _columns, rows in tables.values())
            _copy_rows(stream, spool, MAX_ROWS - spooled)
        elif setval := _SETVAL.fullmatch(line):
            if setval.group(1) in counters:
                raise _refuse(f"sets {setval.group(1)} twice")
            counters[setval.group(1)] = (int(setval.group(2)), setval.group(3) == "true")
        elif not (
            line in _SETTINGS or line == "\n" or line.startswith("--") or _RESTRICT.fullmatch(line)
        ):
            raise _refuse(f"holds SQL other than rows: {line[:60]!a}")
    return counters


def _line(raw: bytes) -> str:
    if not raw.endswith(b"\n"):
        raise _refuse("holds a line longer than pg_dump writes, or ends mid-line")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("holds a line that is not UTF-8") from None


def _columns(listing: str) -> list[str]:
    """The column names of a COPY header, as pg_dump quotes them (keywords in quotes)."""
    names = []
    for item in listing.split(", "):
        match = _COLUMN.fullmatch(item)
        if match is None:
            raise _refuse("names a column as pg_dump never writes one")
        names.append(match.group(1) or match.group(2))
    if len(set(names)) != len(names):
        raise _refuse("names a column twice")
    return names


def _copy_rows(stream: IO[bytes], spool: IO[bytes], room: int) -> None:
    """Spool one table's rows, up to the ``\\.`` line that ends them."""
    at_start = True
    while chunk := stream.readline(_CHUNK):
        if at_start and chunk == b"\\.\n":
            return
        if spool.tell() + len(chunk) > room:
            raise _refuse(f"holds more rows than {MAX_ROWS // 1024**3} GiB")
        spool.write(chunk)
        at_start = chunk.endswith(b"\n")
    raise _refuse("ends inside a table's rows")


def _revision(tables: dict[str, tuple[list[str], IO[bytes]]]) -> str:
    """The schema revision the dump records (alembic_version, one known row)."""
    columns, spool = tables.pop("alembic_version", ([], None))
    if spool is None:
        raise _refuse("records no schema revision")
    with spool:
        spool.seek(0)
        rows = spool.read(1024).split(b"\n")
    if columns != ["version_num"] or len(rows) != 2 or rows[1] != b"" or not rows[0].isascii():
        raise _refuse("records no single schema revision")
    return known_revision([(rows[0].decode("ascii"),)])


def load_dump(url: str, dump: DataDump, check: Callable[[Connection], KeptRows]) -> KeptRows:
    """Build this code's schema in the empty database at ``url``, load ``dump``'s rows.

    ``check`` looks at every row once the schema is this version's (and may
    remove some); whatever it or the loading refuses, nothing is committed.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.execute(text(_OBJECTS)).scalar_one():
                raise BackupError(
                    "the database in DATABASE_URL is not empty: restore into a new one"
                )
            _migrate(connection, url, dump.revision)
            order = _tables(connection, dump)
            connection.exec_driver_sql("SET LOCAL client_encoding = 'UTF8'")
            for table in order:
                _copy_in(connection, table, *dump.tables[table])
            _set_counters(connection, dump.counters)
            _migrate(connection, url, "head")
            return check(connection)
    except (SQLAlchemyError, psycopg.Error) as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        raise _refuse(f"does not load into this code's schema ({reason!a})") from None
    finally:
        engine.dispose()


def _migrate(connection: Connection, url: str, revision: str) -> None:
    """This code's migrations, inside the restore's transaction (see storage/migrations/env.py)."""
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _tables(connection: Connection, dump: DataDump) -> list[str]:
    """The schema's tables, each referenced one before those that refer to it.

    Refuses a dump whose tables or columns are not exactly the schema's.
    """
    inspector = sql_inspect(connection)
    order = [
        name
        for name, _keys in inspector.get_sorted_table_and_fkc_names()
        if name is not None and name != "alembic_version"
    ]
    if set(dump.tables) != set(order):
        differ = ", ".join(sorted(set(dump.tables) ^ set(order)))
        raise _refuse(f"does not hold the tables this code makes at {dump.revision} ({differ})")
    for table in order:
        columns = {column["name"] for column in inspector.get_columns(table)}
        if set(dump.tables[table][0]) != columns:
            raise _refuse(f"does not hold the columns of {table} this code makes")
    return order


def _copy_in(connection: Connection, table: str, columns: list[str], rows: IO[bytes]) -> None:
    """COPY one table's rows, through a statement built from the schema's own names."""
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise BackupError("restoring a PostgreSQL backup needs the psycopg driver")
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(table), pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
    )
    rows.seek(0)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        while chunk := rows.read(_CHUNK):
            copy.write(chunk)


def _set_counters(connection: Connection, counters: dict[str, tuple[int, bool]]) -> None:
    """The cursor counters from the dump; every other one just past the largest id loaded."""
    serials = {
        (table, column): sequence
        for table, column, sequence in connection.execute(text(_SERIALS))
        if sequence is not None
    }
    names = {sequence.rsplit(".", 1)[-1]: key for key, sequence in serials.items()}
    if not set(counters) <= set(names):
        raise _refuse("sets a counter this code's schema does not have")
    quote = connection.dialect.identifier_preparer.quote
    recount = (
        "SELECT setval(CAST(:sequence AS regclass), coalesce(max({column}), 1), "
        "max({column}) IS NOT NULL) FROM {table}"
    )
    for (table, column), sequence in serials.items():
        kept = counters.get(sequence.rsplit(".", 1)[-1])
        if (table, column) in _KEPT_COUNTERS:
            if kept is not None:
                connection.execute(
                    text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
                    {"sequence": sequence, "value": kept[0], "called": kept[1]},
                )
            continue
        ours = recount.format(column=quote(column), table=quote(table))  # the schema's names
        connection.execute(text(ours), {"sequence": sequence})
