"""``incident-db import-feed FILE --mapping M``: add an external feed's rows."""

from __future__ import annotations

import argparse
import csv
import errno
import os
from pathlib import Path
from typing import Any

from incident_db.cli.output import text_output
from incident_db.config import Config
from incident_db.corroboration import Window
from incident_db.db import open_database
from incident_db.feeds import import_feed
from incident_db.mapping import load_mapping, shipped_names


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``import-feed`` subcommand."""
    parser = commands.add_parser(
        "import-feed",
        parents=[common],
        help="import an external CSV feed (flagged external and unverified)",
        description="Import a CSV feed through a column mapping. Every row is accounted "
        "for: added, already present, or rejected with its reason.",
    )
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument(
        "--mapping",
        required=True,
        metavar="M",
        help=f"a mapping file, or a shipped mapping's name ({', '.join(shipped_names())})",
    )
    parser.add_argument(
        "--rejects",
        metavar="FILE",
        help="write rejected rows (row, line, reason) as CSV here instead of listing them",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    """Import the feed and account for every row."""
    mapping = load_mapping(args.mapping)
    if not args.file.is_file():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(args.file))
    engine = open_database(config.database_url)
    try:
        report = import_feed(engine, args.file, mapping,
                             window=Window(config.link_hours, config.link_nm))  # fmt: skip
    finally:
        engine.dispose()
    print(
        f"{report.feed}: {report.rows} rows: {report.added} added, {report.already_present} "
        f"already present, {len(report.rejected)} rejected; {report.links_found} possible "
        "duplicates linked"
    )
    if args.rejects:
        with text_output(args.rejects) as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["row", "line", "reason"])
            writer.writerows((r.row, r.line, r.reason) for r in report.rejected)
    else:
        for rejection in report.rejected:
            print(f"rejected row {rejection.row} (line {rejection.line}): {rejection.reason}")
    return 0
