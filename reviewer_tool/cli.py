"""``reviewer``: the offline reviewer's command.

Every subcommand takes ``--workspace DIR`` and ``--passphrase-file F``;
without them it uses the default workspace (``CSO_REVIEWER_WORKSPACE``, else
``~/.local/share/cso-reviewer``) and asks for the passphrase. Failures print
one line on stderr and exit non-zero.

The ``sync`` commands are for the online transfer machine and are the only
ones that load networking code; everything else runs air-gapped (a test
checks that no other command imports it). ``desk`` alone opens a socket: a
listener on 127.0.0.1 for the local browser (reviewer_tool/desk/server.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from reviewer_tool import cli_forward, cli_keys, cli_queue, cli_reply, cli_show, cli_team
from reviewer_tool.errors import ReviewerError
from reviewer_tool.terminal import prepare_streams, report_crash, say

Handler = Callable[[argparse.Namespace], int | None]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", help="workspace directory (default: see --help)")
    common.add_argument("--passphrase-file", help="read the passphrase from this file")
    return common


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per reviewer task; each module adds its own."""
    parser = argparse.ArgumentParser(
        prog="reviewer",
        description="Offline review of encrypted CSO portal reports",
        epilog="Default workspace: $CSO_REVIEWER_WORKSPACE, else ~/.local/share/cso-reviewer.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    common = _common()
    for module in (cli_keys, cli_queue, cli_show, cli_reply, cli_forward, cli_team):
        module.register(verbs, common)
    _register_sync(verbs, common)
    _register_desk(verbs, common)
    return parser


def _register_sync(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Parser entries for the transfer machine; the handlers load networking code lazily."""
    sync = verbs.add_parser("sync", help="online transfer machine: fetch and deliver bundles")
    actions = sync.add_subparsers(dest="action", required=True)
    keygen = actions.add_parser("keygen", parents=[common], help="make a sync login key")
    keygen.add_argument("--out", type=Path, required=True)
    pull = actions.add_parser("pull", parents=[common], help="fetch an inbox bundle")
    push = actions.add_parser("push", parents=[common], help="upload a replies bundle")
    for action in (pull, push):
        action.add_argument("--portal", required=True, help="the sync API's base URL")
        action.add_argument("--account", required=True, help="your account label")
        action.add_argument("--sync-key", type=Path, required=True, help="your sync key file")
    pull.add_argument("--out", type=Path, required=True)
    pull.add_argument("--since", type=int, help="cursor (default: after the last acknowledged)")
    pull.add_argument(
        "--team-since",
        type=int,
        help="team update cursor (default: after the last the workstation acknowledged)",
    )
    push.add_argument("file", type=Path)
    for name, action in (("keygen", keygen), ("pull", pull), ("push", push)):
        action.set_defaults(run=_lazy_sync(name))


def _lazy_sync(name: str) -> Handler:
    def run(args: argparse.Namespace) -> int | None:
        from reviewer_tool import sync_client  # networking: transfer machine only

        handler: Handler = getattr(sync_client, f"cmd_{name}")
        return handler(args)

    return run


def _register_desk(verbs: Any, common: argparse.ArgumentParser) -> None:
    """``reviewer desk``; its handler loads the web server (a loopback listener) lazily."""
    desk = verbs.add_parser("desk", parents=[common], help="the desk: review in a local browser")
    desk.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    desk.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 is accepted")
    desk.add_argument("--no-open", action="store_true", help="print the address only")

    def run(args: argparse.Namespace) -> int | None:
        from reviewer_tool.desk.server import cmd_desk  # the desk alone listens on a socket

        cmd_desk(args)
        return None

    desk.set_defaults(run=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one reviewer command."""
    sys.excepthook = report_crash  # a bug's traceback may quote a report
    prepare_streams()  # a terminal that is not UTF-8 gets escapes, not a crash
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ReviewerError as error:
        say(f"reviewer: error: {error.diagnostics()}", err=True)
        return 1
    except CryptoError as error:
        say(f"reviewer: error: {error.diagnostics()}", err=True)
        return 1
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        say(f"reviewer: error: {where}{error.strerror}", err=True)
        return 1
    except KeyboardInterrupt:
        say("reviewer: interrupted", err=True)
        return 130
