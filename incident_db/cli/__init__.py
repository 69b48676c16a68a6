"""``incident-db``: the shared incident database's command.

A thin layer: each command group lives in its own module and calls the
library. Every subcommand takes ``--db URL`` (default ``INCIDENT_DB_URL``,
else ``incidents.sqlite3`` in the current directory). Every failure is one
line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from incident_db.cli import brief, export, feeds, ingest, links, members, partners, serve
from incident_db.config import Config, load_config
from incident_db.errors import IncidentDbError

PROGRAM = "incident-db"
GROUPS = (ingest, feeds, brief, export, links, members, partners, serve)


DB_HELP = "SQLAlchemy database URL (default: $INCIDENT_DB_URL, else ./incidents.sqlite3)"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand without --db must not undo a --db given before it
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help=DB_HELP)
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="The shared, verified maritime incident database."
    )
    parser.add_argument("--db", metavar="URL", help=DB_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, common)
    return parser


def config_for(args: argparse.Namespace) -> Config:
    """The run's settings: the environment, with ``--db`` winning."""
    return load_config(os.environ, cwd=Path.cwd(), database_url=args.db)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args, config_for(args)) or 0)
    except IncidentDbError as error:
        print(f"{PROGRAM}: {error.diagnostics()}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader (``| head``) has gone: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"{PROGRAM}: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        detail = str(getattr(error, "orig", None) or error).splitlines()[0]
        print(f"{PROGRAM}: database error: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted; nothing was committed", file=sys.stderr)
        return 130
