"""``incident-db members invite|list|remove|role``: who may use the members' service.

Every change is audited with the actor ``cli``: whoever can run this command
on the database's host is trusted as an admin. A handle is printed only
through :func:`shown`, which replaces every character a terminal might obey
(``crypto/characters.py``), though the store already refuses such handles.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from crypto.characters import unsafe
from incident_db.cli.output import print_rows
from incident_db.config import Config
from incident_db.db import open_database
from incident_db.errors import ConfigError
from incident_db.members import store
from incident_db.members.store import ROLES, MemberError
from incident_db.web.config import check_origin, service_origin

ACTOR = "cli"
MAX_DAYS = 30


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``members`` command and its subcommands."""
    group = commands.add_parser(
        "members", parents=[common], help="invite, list, remove members and change their roles"
    )
    actions = group.add_subparsers(dest="members_command", required=True, metavar="ACTION")

    invite = actions.add_parser(
        "invite",
        parents=[common],
        help="make a one-time invitation link for a member",
        description="Print a one-time link with which the member registers a passkey. "
        "Inviting a removed member makes them a member again; inviting a member "
        "again replaces their earlier link, and if they had signed up, ends their "
        "sessions, passkeys and recovery codes.",
    )
    invite.add_argument("handle", metavar="HANDLE", help="the member's e-mail address or name")
    invite.add_argument("--role", choices=ROLES, required=True)
    invite.add_argument(
        "--days", type=int, default=store.INVITATION_LIFETIME.days,
        help=f"the link works for this many days (1 to {MAX_DAYS}; default %(default)s)",
    )  # fmt: skip
    invite.add_argument(
        "--base-url", metavar="URL",
        help="the service's address (default: $INCIDENT_DB_ORIGIN, else http://localhost:8100)",
    )  # fmt: skip
    invite.set_defaults(run=run_invite)

    listing = actions.add_parser("list", parents=[common], help="list the active members")
    listing.add_argument("--json", action="store_true", help="as a JSON array")
    listing.set_defaults(run=run_list)

    removal = actions.add_parser(
        "remove", parents=[common], help="remove a member; their sessions end at once"
    )
    removal.add_argument("handle", metavar="HANDLE")
    removal.set_defaults(run=run_remove)

    role = actions.add_parser("role", parents=[common], help="change a member's role")
    role.add_argument("handle", metavar="HANDLE")
    role.add_argument("role", metavar="ROLE", choices=ROLES, help=" | ".join(ROLES))
    role.set_defaults(run=run_role)


def shown(text: str) -> str:
    """``text`` safe for one line of a terminal: each unsafe character becomes U+FFFD."""
    return "".join("\ufffd" if unsafe(char) else char for char in text)


@contextmanager
def _transaction(config: Config) -> Iterator[Session]:
    """A session on the migrated database, committed if the block ends without error."""
    engine = open_database(config.database_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _base_url(args: argparse.Namespace) -> str:
    """The link's origin: ``--base-url``, else the one the service itself uses."""
    try:
        return service_origin(os.environ) if args.base_url is None else check_origin(args.base_url)
    except ConfigError as error:
        raise MemberError(str(error).replace("INCIDENT_DB_ORIGIN", "the base URL")) from None


def run_invite(args: argparse.Namespace, config: Config) -> int:
    """Invite a member and print the link, once."""
    if not 1 <= args.days <= MAX_DAYS:
        raise MemberError(f"--days must be 1 to {MAX_DAYS}")
    base = _base_url(args)
    lifetime = timedelta(days=args.days)
    now = datetime.now(UTC)
    with _transaction(config) as session:
        before = store.member_by_handle(session, args.handle)
        signed_up = before is not None and (store.passkey_counts(session).get(before.id, 0) > 0)
        # the operator holds the database anyway: a member who signed up may be
        # invited again, but then nothing of their old access stays
        token = store.invite(session, args.handle, args.role, actor=ACTOR, lifetime=lifetime,
                             reset_access=True, now=now)  # fmt: skip
        member = store.member_by_handle(session, args.handle)
        handle = member.handle if member else ""
    if signed_up:
        print(f"{shown(handle)} was signed up: their sessions, passkeys and recovery codes "
              "have ended")  # fmt: skip
    print(f"invited {shown(handle)} as {args.role}; give them this link (it works once):")
    print(f"{base}/join/{token}")
    print(f"it expires on {(now + lifetime).date().isoformat()} (UTC)")
    return 0


def run_list(args: argparse.Namespace, config: Config) -> int:
    """Print the active members as a table or as JSON."""
    with _transaction(config) as session:
        counts = store.passkey_counts(session)
        rows: list[dict[str, Any]] = [
            {"handle": m.handle, "role": m.role, "passkeys": counts.get(m.id, 0),
             "created_day": m.created_day.isoformat()}
            for m in store.members(session)
        ]  # fmt: skip
    print_rows(rows, (("handle", "handle", ""), ("role", "role", "<6"),
                      ("passkeys", "passkeys", ">8"), ("created_day", "created", "")),
               as_json=args.json, show=shown,
               empty="no members yet: invite one with "
                     "`incident-db members invite HANDLE --role admin`")  # fmt: skip
    return 0


def run_remove(args: argparse.Namespace, config: Config) -> int:
    """Remove a member."""
    with _transaction(config) as session:
        member = store.member_by_handle(session, args.handle)
        store.remove(session, args.handle, actor=ACTOR)
        handle = member.handle if member else ""
    print(f"removed {shown(handle)}: their sessions, passkeys and recovery codes are gone")
    return 0


def run_role(args: argparse.Namespace, config: Config) -> int:
    """Change a member's role."""
    with _transaction(config) as session:
        store.set_role(session, args.handle, args.role, actor=ACTOR)
        member = store.member_by_handle(session, args.handle)
        handle = member.handle if member else ""
    print(f"{shown(handle)} is now {args.role}")
    return 0
