"""What every reviewer command starts with: the workspace, and the passphrase that opens it.

``cli.py`` builds the parser from the subcommand modules and they all use
these, so they live here, below both: no subcommand imports ``cli.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crypto import cli as crypto_cli
from reviewer_tool.config import load_config
from reviewer_tool.errors import ReviewerError
from reviewer_tool.workspace import Workspace


def read_passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes:
    """The passphrase from ``--passphrase-file`` (first line) or typed at the terminal."""
    try:
        return crypto_cli.read_passphrase(args.passphrase_file, confirm=confirm)
    except crypto_cli.UsageError as error:
        raise ReviewerError(str(error)) from None


def workspace_dir(args: argparse.Namespace) -> Path:
    """The workspace the command works on."""
    return Path(args.workspace) if args.workspace else load_config().workspace


def open_workspace(args: argparse.Namespace) -> Workspace:
    """Unlock the workspace with the passphrase."""
    return Workspace.open(workspace_dir(args), read_passphrase(args))
