"""``incident-db brief``: a trend brief for a place or an area, as HTML or JSON."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from sqlalchemy import Connection, select

from incident_db.brief import Selection, make_brief
from incident_db.brief.selection import parse_day, parse_near
from incident_db.cli.output import text_output
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.models import Incident, core_table
from incident_db.places import place_key


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``brief`` subcommand."""
    parser = commands.add_parser(
        "brief",
        parents=[common],
        help="a one-page trend brief for a port, anchorage or area",
        description="Count the incidents at a place (all its names) or within a radius: "
        "days, hours, perpetrators, weapons, targets, losses, crew, outcomes, trend.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--place", metavar="NAME", help="a port or anchorage, e.g. Chittagong")
    where.add_argument("--near", metavar="LAT,LON", help="centre of a circle, decimal degrees")
    parser.add_argument("--radius-nm", type=float, metavar="R", help="the circle's radius")
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="first local date counted")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="last local date counted")
    parser.add_argument(
        "--confirmed-only", action="store_true", help="leave out unverified external incidents"
    )
    parser.add_argument("--format", choices=("html", "json"), default="html")
    parser.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    """Select, count, render."""
    selection = Selection(
        place=args.place,
        near=None if args.near is None else parse_near(args.near),
        radius_nm=args.radius_nm,
        since=None if args.since is None else parse_day(args.since, "--since"),
        until=None if args.until is None else parse_day(args.until, "--until"),
        confirmed_only=args.confirmed_only,
    )
    engine = open_database(config.database_url)
    try:
        with engine.connect() as connection:
            figures = make_brief(connection, selection)
            if args.place is not None and figures["incidents"] == 0:
                _suggest_places(connection, args.place)
    finally:
        engine.dispose()
    if args.format == "json":
        text = json.dumps(figures, indent=2, ensure_ascii=False) + "\n"
    else:
        from incident_db.brief.html import render_html  # loads matplotlib

        text = render_html(figures)
    with text_output(args.out) as out:
        out.write(text)
    return 0


def _suggest_places(connection: Connection, name: str) -> None:
    """Say on stderr that no incident matched ``name``, and which known places look like it.

    An empty brief may be good news or a typing slip; a captain should not
    have to guess which. The brief is still written.
    """
    table = core_table(Incident)
    keys = connection.execute(select(table.c.place_key).distinct()).scalars()
    close = difflib.get_close_matches(place_key(name) or "", [k for k in keys if k], n=5)
    hint = f"; places with similar names: {', '.join(close)}" if close else ""
    print(f"incident-db: no incident matches the place {name!r}{hint}", file=sys.stderr)
