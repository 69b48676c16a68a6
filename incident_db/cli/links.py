"""``incident-db merge A B`` and ``incident-db link``: duplicates and corroboration."""

from __future__ import annotations

import argparse
import re
from typing import Any

from incident_db import tlp
from incident_db.config import Config
from incident_db.corroboration import Window, merge, relink_all
from incident_db.db import open_database
from incident_db.errors import ConfigError, MergeError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``merge`` and ``link`` subcommands."""
    parser = commands.add_parser(
        "merge",
        parents=[common],
        help="fold incident B into incident A, keeping the provenance of both",
    )
    parser.add_argument("keep", metavar="A", help="the incident that stays")
    parser.add_argument("absorb", metavar="B", help="the duplicate folded into A")
    parser.set_defaults(run=run_merge)
    parser = commands.add_parser(
        "link",
        parents=[common],
        help="find possible duplicates again over the whole database",
        description="Drop the links found automatically and link every pair of incidents "
        "within the window again (defaults: $INCIDENT_DB_LINK_HOURS or 24 h, "
        "$INCIDENT_DB_LINK_NM or 5 nautical miles). Reviewers' own links are kept.",
    )
    parser.add_argument("--hours", type=float, help="at most this many hours apart")
    parser.add_argument("--nm", type=float, help="at most this many nautical miles apart")
    parser.set_defaults(run=run_link)


def run_merge(args: argparse.Namespace, config: Config) -> int:
    """Merge B into A in one transaction."""
    for ident in (args.keep, args.absorb):
        if not re.fullmatch(r"[0-9a-f]{32}", ident):
            raise MergeError(f"{ident!r} is not an incident id (32 lower-case hex digits)")
    engine = open_database(config.database_url)
    try:
        with engine.begin() as connection:
            merged = merge(connection, args.keep, args.absorb)
    finally:
        engine.dispose()
    print(f"merged {args.absorb} into {args.keep}: {merged.moved} provenance rows now vouch for it")
    if merged.tlp_raised:
        after, before = tlp.LABELS[merged.tlp_after], tlp.LABELS[merged.tlp_before]
        print(f"{args.keep} is now {after} (was {before}): the stricter level, {args.absorb}'s")
    return 0


def run_link(args: argparse.Namespace, config: Config) -> int:
    """Re-find every possible duplicate."""
    window = Window(args.hours or config.link_hours, args.nm or config.link_nm)
    if window.hours <= 0 or window.nm <= 0:
        raise ConfigError("--hours and --nm must be above 0")
    engine = open_database(config.database_url)
    try:
        with engine.begin() as connection:
            dropped, found = relink_all(connection, window)
    finally:
        engine.dispose()
    print(f"dropped {dropped} found links; {found} pairs within {window.hours:g} h and "
          f"{window.nm:g} nm")  # fmt: skip
    return 0
