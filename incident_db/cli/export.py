"""``incident-db export --format csv|geojson|stix|misp-feed --clearance LEVEL``.

Every export is cut to a TLP clearance, which the command requires: the
highest level the receiver may see (``incident_db/tlp.py``). TLP:RED is
refused outright, as RED never leaves the service.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from incident_db import tlp
from incident_db.cli.output import text_output
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.errors import IncidentDbError
from incident_db.exports import iter_incidents

FORMATS = ("csv", "geojson", "stix", "misp-feed")


class ExportOptionError(IncidentDbError):
    """An export's clearance or destination is missing or not allowed."""

    failure_class = "export failure"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``export`` subcommand."""
    parser = commands.add_parser(
        "export",
        parents=[common],
        help="export the incidents a TLP clearance allows as CSV, GeoJSON (RFC 7946), "
        "a STIX 2.1 bundle or a MISP feed directory",
    )
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument(
        "--clearance",
        metavar="LEVEL",
        required=True,
        help="the highest TLP level the receiver may see: CLEAR, GREEN, AMBER or AMBER+STRICT "
        "(RED never leaves the service)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="write here (default: standard output); for misp-feed a directory, required",
    )
    parser.set_defaults(run=run)


def clearance_of(text: str) -> str:
    """The clearance slug ``text`` names; RED and unknown levels are refused in one line."""
    try:
        level = tlp.parse(text)
    except tlp.UnknownLevelError as error:
        raise ExportOptionError(f"--clearance: {error}") from None
    if level == "red":
        raise ExportOptionError("--clearance: TLP:RED is refused: RED never leaves the service")
    return level


def run(args: argparse.Namespace, config: Config) -> int:
    """Stream the export of what the clearance allows to its destination."""
    clearance = clearance_of(args.clearance)
    if args.format == "misp-feed" and args.out in (None, "-"):
        raise ExportOptionError("--format misp-feed needs --out DIR (a feed is a directory)")
    engine = open_database(config.database_url)
    try:
        with engine.connect() as connection:
            incidents = iter_incidents(connection, clearance=clearance)
            if args.format == "misp-feed":
                from incident_db.exports.misp import write_misp_feed  # loads pymisp

                count = write_misp_feed(incidents, Path(args.out), clearance=clearance)
                label = tlp.LABELS[clearance]
                print(f"{count} events written to {args.out} (clearance {label})")
                return 0
            with text_output(args.out) as out:
                if args.format == "csv":
                    from incident_db.exports.table import write_csv

                    write_csv(incidents, out)
                elif args.format == "geojson":
                    from incident_db.exports.geojson import write_geojson

                    write_geojson(incidents, out)
                else:
                    from incident_db.exports.stix import write_stix

                    write_stix(incidents, out, clearance)
    finally:
        engine.dispose()
    return 0
