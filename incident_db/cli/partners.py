"""``incident-db partners add|list|remove|rotate``: who may pull incidents over TAXII 2.1.

Every change is audited with the actor ``cli``, as for ``members``. A
credential is printed once, when it is made, with the service's TAXII
discovery address; only its SHA-256 is kept. A refusal is one line on
stderr and exit status 2; a name is printed only through ``shown``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from incident_db import partners, tlp
from incident_db.cli.members import ACTOR, shown
from incident_db.cli.output import print_rows
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.errors import ConfigError
from incident_db.partners import PartnerError
from incident_db.web.config import check_origin, service_origin

#: the exit status of a refusal (a bad name or level, an unknown partner)
REFUSED = 2
#: where the TAXII server's discovery resource lives on the members' service
DISCOVERY_PATH = "/taxii2/"

Run = Callable[[argparse.Namespace, Config], int]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``partners`` command and its subcommands."""
    group = commands.add_parser(
        "partners", parents=[common],
        help="add, list, remove partners (TAXII 2.1 pulls) and rotate their credentials",
    )  # fmt: skip
    actions = group.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    levels = ", ".join(tlp.LABELS[level] for level in tlp.PARTNER_LEVELS)

    add = actions.add_parser(
        "add", parents=[common], help="add a partner and print its credential, once",
        description="Add a partner that pulls incidents up to its clearance over TAXII 2.1 "
        "and print its API credential once (only its hash is kept).",
    )  # fmt: skip
    add.add_argument("name", metavar="NAME", help="the partner's name (its HTTP user name)")
    add.add_argument("--clearance", metavar="LEVEL", required=True,
                     help=f"the highest TLP level it may receive: {levels}")  # fmt: skip
    _base_url_option(add)
    add.set_defaults(run=_refusals(run_add))

    listing = actions.add_parser("list", parents=[common], help="list the active partners")
    listing.add_argument("--json", action="store_true", help="as a JSON array")
    listing.set_defaults(run=_refusals(run_list))

    removal = actions.add_parser(
        "remove", parents=[common], help="remove a partner; its credential stops working at once"
    )
    removal.add_argument("name", metavar="NAME")
    removal.set_defaults(run=_refusals(run_remove))

    rotation = actions.add_parser(
        "rotate", parents=[common],
        help="give a partner a new credential; the old one stops working at once",
    )  # fmt: skip
    rotation.add_argument("name", metavar="NAME")
    _base_url_option(rotation)
    rotation.set_defaults(run=_refusals(run_rotate))


def _base_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url", metavar="URL",
        help="the service's address (default: $INCIDENT_DB_ORIGIN, else http://localhost:8100)",
    )  # fmt: skip


def _refusals(run: Run) -> Run:
    """``run``, with a refusal printed as one line and exit status 2."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace, config: Config) -> int:
        try:
            return run(args, config)
        except PartnerError as error:
            print(f"incident-db: {shown(error.diagnostics())}", file=sys.stderr)
            return REFUSED

    return guarded


@contextmanager
def _transaction(config: Config) -> Iterator[Session]:
    """A session on the migrated database, committed if the block ends without error."""
    engine = open_database(config.database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _discovery(args: argparse.Namespace) -> str:
    """The TAXII discovery URL: ``--base-url``, else the origin the service itself uses."""
    try:
        origin = (service_origin(os.environ) if args.base_url is None
                  else check_origin(args.base_url))  # fmt: skip
    except ConfigError as error:
        raise PartnerError(str(error).replace("INCIDENT_DB_ORIGIN", "the base URL")) from None
    return origin + DISCOVERY_PATH


def _hand_over(name: str, token: str, discovery: str) -> None:
    """Print the credential, once, and how to use it."""
    print(token)
    print("it is shown only now: only its hash is kept (`incident-db partners rotate` makes "
          "a new one)")  # fmt: skip
    print(f"TAXII 2.1 discovery: {discovery}")
    print(f"sign in with HTTP basic (user {shown(name)}, the credential as password) "
          "or the header `Authorization: Bearer CREDENTIAL`, e.g.")  # fmt: skip
    print(f"  curl -H 'Accept: application/taxii+json;version=2.1' "
          f"-H 'Authorization: Bearer {token}' {discovery}")  # fmt: skip


def run_add(args: argparse.Namespace, config: Config) -> int:
    """Add a partner and print its credential, once."""
    discovery = _discovery(args)
    with _transaction(config) as session:
        token = partners.add(session, args.name, args.clearance, actor=ACTOR)
        partner = partners.partner_by_name(session, args.name)
        name, clearance = (partner.name, partner.clearance) if partner else ("", "")
    print(f"added partner {shown(name)} with clearance {tlp.LABELS.get(clearance, '')}; "
          "give them this credential:")  # fmt: skip
    _hand_over(name, token, discovery)
    return 0


def run_list(args: argparse.Namespace, config: Config) -> int:
    """Print the active partners as a table or as JSON."""
    with _transaction(config) as session:
        rows: list[dict[str, Any]] = [
            {"name": p.name, "clearance": tlp.LABELS[p.clearance],
             "created_day": p.created_day.isoformat(),
             "rotated_day": p.rotated_day.isoformat() if p.rotated_day else None}
            for p in partners.partners(session)
        ]  # fmt: skip
    print_rows(rows, (("name", "name", ""), ("clearance", "clearance", "<16"),
                      ("created_day", "created", "<10"), ("rotated_day", "rotated", "")),
               as_json=args.json, show=shown,
               empty="no partners yet: add one with "
                     "`incident-db partners add NAME --clearance LEVEL`")  # fmt: skip
    return 0


def run_remove(args: argparse.Namespace, config: Config) -> int:
    """Remove a partner; its credential stops working at once."""
    with _transaction(config) as session:
        partner = partners.partner_by_name(session, args.name)
        partners.remove(session, args.name, actor=ACTOR)
        name = partner.name if partner else ""
    print(f"removed partner {shown(name)}: its credential no longer works")
    return 0


def run_rotate(args: argparse.Namespace, config: Config) -> int:
    """Give a partner a new credential and print it, once."""
    discovery = _discovery(args)
    with _transaction(config) as session:
        token = partners.rotate(session, args.name, actor=ACTOR)
        partner = partners.partner_by_name(session, args.name)
        name = partner.name if partner else ""
    print(f"new credential for partner {shown(name)}; the old one no longer works:")
    _hand_over(name, token, discovery)
    return 0
