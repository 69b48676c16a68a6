"""``incident-db brief``: a trend brief for a place or an area, as HTML, text or JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import math
import sys
from typing import Any

from sqlalchemy import Connection, func, select

from incident_db.brief import CLOCK_SHARE, Selection, make_brief, resolve_period
from incident_db.brief.selection import DEFAULT_MONTHS, parse_day, parse_near
from incident_db.cli.output import text_output
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.errors import SelectionError
from incident_db.models import Incident, core_table
from incident_db.places import place_key


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``brief`` subcommand."""
    parser = commands.add_parser(
        "brief",
        parents=[common],
        help="a one-page trend brief for a port, anchorage or area",
        description="Count the incidents at a place (all its names) or within a radius: "
        "trend against the period before, the local-time window, days, perpetrators, "
        f"weapons, targets, losses, what the crew did, sources. Without dates: the last "
        f"{DEFAULT_MONTHS} months ending today (UTC).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--place", metavar="NAME", help="a port or anchorage, e.g. Chittagong")
    where.add_argument("--near", metavar="LAT,LON", help="centre of a circle, decimal degrees")
    parser.add_argument("--radius-nm", type=float, metavar="R", help="the circle's radius")
    parser.add_argument("--since", metavar="YYYY-MM-DD",
                        help=f"first local date counted (default: {DEFAULT_MONTHS} months "
                        "before --until)")  # fmt: skip
    parser.add_argument("--until", metavar="YYYY-MM-DD",
                        help="last local date counted (default: today, UTC)")  # fmt: skip
    parser.add_argument("--whole-archive", action="store_true",
                        help="no default dates: every incident on record (no trend)")  # fmt: skip
    parser.add_argument("--clock-share", metavar="SHARE", default=str(CLOCK_SHARE),
                        help="share of known local times the time window holds "
                        f"(default {CLOCK_SHARE:g})")  # fmt: skip
    parser.add_argument(
        "--confirmed-only", action="store_true", help="leave out unverified external incidents"
    )
    parser.add_argument("--format", choices=("html", "text", "json"), default="html")
    parser.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    """Select, count, render."""
    today = dt.datetime.now(dt.UTC).date()
    since, until = resolve_period(
        None if args.since is None else parse_day(args.since, "--since"),
        None if args.until is None else parse_day(args.until, "--until"),
        today,
        whole_archive=args.whole_archive,
    )
    selection = Selection(
        place=args.place,
        near=None if args.near is None else parse_near(args.near),
        radius_nm=args.radius_nm,
        since=since,
        until=until,
        confirmed_only=args.confirmed_only,
    )
    share = _clock_share(args.clock_share)
    engine = open_database(config.database_url)
    try:
        with engine.connect() as connection:
            figures = make_brief(connection, selection, clock_share=share, today=today)
            if args.place is not None and figures["incidents"] == 0:
                _explain_empty(connection, args.place)
    finally:
        engine.dispose()
    if args.format == "json":
        text = json.dumps(figures, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "text":
        from incident_db.brief.text import render_text

        text = render_text(figures)
    else:
        from incident_db.brief.html import render_html  # loads matplotlib

        text = render_html(figures)
    with text_output(args.out) as out:
        out.write(text)
    return 0


def _clock_share(text: str) -> float:
    """``--clock-share``: a number above 0 and at most 1 ("0.8"), or a percentage ("80%")."""
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = math.nan
    if not (math.isfinite(share) and 0 < share <= 1):
        raise SelectionError(f"--clock-share must be above 0 and at most 1 (or 80%), not {text!r}")
    return share


def _explain_empty(connection: Connection, name: str) -> None:
    """Say on stderr why no incident matched ``name``: the place, or only the period.

    An empty brief may be good news, a period the sources do not reach, or
    a typing slip; a captain should not have to guess which. The brief is
    still written.
    """
    table = core_table(Incident)
    key = place_key(name) or ""
    on_record = connection.execute(
        select(func.count()).where(table.c.place_key == key, table.c.merged_into.is_(None))
    ).scalar_one()
    if on_record:
        print(f"incident-db: no incident at {name!r} in this period; {on_record} on record "
              "(--whole-archive counts them all)", file=sys.stderr)  # fmt: skip
        return
    keys = connection.execute(select(table.c.place_key).distinct()).scalars()
    close = difflib.get_close_matches(key, [k for k in keys if k], n=5)
    hint = f"; places with similar names: {', '.join(close)}" if close else ""
    print(f"incident-db: no incident matches the place {name!r}{hint}", file=sys.stderr)
