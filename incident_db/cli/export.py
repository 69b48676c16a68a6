"""``incident-db export --format csv|geojson|stix``: every live incident in a standard format."""

from __future__ import annotations

import argparse
from typing import Any

from incident_db.cli.output import text_output
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.exports import iter_incidents


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``export`` subcommand."""
    parser = commands.add_parser(
        "export",
        parents=[common],
        help="export the incidents as CSV, GeoJSON (RFC 7946) or a STIX 2.1 bundle",
    )
    parser.add_argument("--format", choices=("csv", "geojson", "stix"), required=True)
    parser.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    """Stream the export to its destination."""
    if args.format == "csv":
        from incident_db.exports.table import write_csv as write
    elif args.format == "geojson":
        from incident_db.exports.geojson import write_geojson as write
    else:
        from incident_db.exports.stix import write_stix as write  # loads stix2
    engine = open_database(config.database_url)
    try:
        with engine.connect() as connection, text_output(args.out) as out:
            write(iter_incidents(connection), out)
    finally:
        engine.dispose()
    return 0
