"""``incident-db serve``: the members' web service under gunicorn.

The database is migrated to the latest schema first; the settings
(incident_db/web/config.py) are checked before gunicorn starts, so a bad
origin or an exposed secret key stops the command with one line. With
``--demo`` a demo database is built (once) and a one-time link for the
admin "demo-admin" is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from incident_db.config import Config
from incident_db.db import open_database
from incident_db.errors import ConfigError
from incident_db.web.config import DEFAULT_PORT, WebConfig, data_dir_for, load_web_config

GUNICORN_CONFIG = Path(__file__).resolve().parents[1] / "web" / "gunicorn_conf.py"
DEMO_DIR = Path("incident-demo")
DEMO_ADMIN = "demo-admin"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` subcommand."""
    parser = commands.add_parser(
        "serve",
        parents=[common],
        help="run the members' web service (passkey sign-in) with gunicorn",
        description="Serve the members' web service. Browsers must reach it at "
        "$INCIDENT_DB_ORIGIN (default http://localhost:PORT): passkeys are bound to that "
        "host name ($INCIDENT_DB_RP_ID, default the origin's host).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve a demo database (built once) and print a one-time admin link",
    )
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=DEMO_DIR,
        help=f"where the demo database lives (default ./{DEMO_DIR})",
    )
    parser.set_defaults(run=run_serve)


def _demo_link(config: WebConfig) -> tuple[str, dt.datetime]:
    """Invite demo-admin (again): its one-time link and when that expires."""
    from sqlalchemy.orm import Session

    from incident_db.members import store

    engine = open_database(config.database_url)
    try:
        with Session(engine) as session:
            # a new link each run: whoever signed up as demo-admin before starts again
            token = store.invite(session, DEMO_ADMIN, "admin", actor="cli", reset_access=True)
            session.commit()
    finally:
        engine.dispose()
    expires = dt.datetime.now(dt.UTC) + store.INVITATION_LIFETIME
    return f"{config.origin}/join/{token}", expires


def _create_private_sqlite(database_url: str) -> None:
    """Create a SQLite database file that does not exist yet with mode 0600.

    It will hold the members' sessions and passkeys; SQLite itself would make
    it with the umask's mode. An existing file is left as its owner set it.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if url.database.startswith("file:"):
        return  # a URI filename: SQLite's own syntax, left to SQLite
    try:
        descriptor = os.open(url.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as error:
        raise ConfigError(f"cannot create the database {url.database}: {error.strerror}") from None
    os.close(descriptor)


def run_serve(args: argparse.Namespace, config: Config) -> int:
    """Migrate, check the settings, then become gunicorn."""
    if not 0 < args.port < 65536 or not 0 < args.workers <= 64:
        raise ConfigError("--port must be 1-65535 and --workers 1-64")
    environ = dict(os.environ)
    database_url = config.database_url
    if args.demo:
        if args.db or environ.get("INCIDENT_DB_URL"):
            raise ConfigError("--demo serves its own database: leave out --db and INCIDENT_DB_URL")
        from incident_db.demo import build_demo

        # absolute, not resolved: build_demo refuses a symlink, so it must see one
        database_url = build_demo(args.demo_dir.absolute())
    else:
        _create_private_sqlite(database_url)
        open_database(database_url).dispose()  # migrate to the latest schema first
    environ["INCIDENT_DB_URL"] = database_url
    environ.setdefault(
        "INCIDENT_DB_DATA_DIR", str(data_dir_for(environ, database_url, Path.cwd()).resolve())
    )
    web = load_web_config(environ, cwd=Path.cwd(), port=args.port)
    environ["INCIDENT_DB_ORIGIN"] = web.origin
    environ["INCIDENT_DB_RP_ID"] = web.rp_id
    print(f"members' service on {web.origin}/ (listening on {args.host}:{args.port}); Ctrl-C stops")
    if args.demo:
        link, expires = _demo_link(web)
        print(f"demo database: {database_url}")
        print(f"one-time sign-up link for {DEMO_ADMIN} (admin): {link}")
        print(
            f"it works once and expires {expires:%Y-%m-%d %H:%M} UTC; "
            f"run `incident-db serve --demo` again for a new one"
        )
    sys.stdout.flush()
    os.execvpe(  # noqa: S606 - a fixed argument list, no shell
        sys.executable,
        [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
         "--bind", f"{args.host}:{args.port}", "--workers", str(args.workers),
         "incident_db.web.wsgi:app"],
        environ,
    )  # fmt: skip
    return 0  # not reached: gunicorn has taken over
