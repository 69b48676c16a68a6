"""``reviewer keygen|init|pubkey|trust-portal``: the workspace and its keys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from crypto.keyfile import KeyBundle, decrypt_key_file
from crypto.keys import KeyKind, parse_public_key
from reviewer_tool.errors import ReviewerError
from reviewer_tool.session import read_passphrase, workspace_dir
from reviewer_tool.terminal import say
from reviewer_tool.workspace import Workspace


def _pin(ws: Workspace, token: str | None) -> None:
    if token:
        key = parse_public_key(token, KeyKind.SIGNING)
        ws.set_meta("portal_key", str(key))
        say(f"portal bundle key pinned: {key.fingerprint}")


def cmd_keygen(args: argparse.Namespace) -> None:
    """Create a workspace with a new reviewer key."""
    root = workspace_dir(args)
    ws = Workspace.create(root, KeyBundle.new_reviewer(), read_passphrase(args, confirm=True))
    _pin(ws, args.portal_key)
    say(f"workspace created: {root}")
    _print_keys(ws)


def cmd_init(args: argparse.Namespace) -> None:
    """Create a workspace around an existing reviewer key file (such as a demo key)."""
    passphrase = read_passphrase(args)
    try:
        keys = decrypt_key_file(Path(args.key).read_bytes(), passphrase)
    except CryptoError as error:
        raise ReviewerError(f"{args.key}: {error.diagnostics()}") from None
    if keys.kind != "reviewer":
        raise ReviewerError(f"{args.key} is not a reviewer key file")
    root = workspace_dir(args)
    ws = Workspace.create(root, keys, passphrase)
    _pin(ws, args.portal_key)
    say(f"workspace created: {root}")
    _print_keys(ws)


def _print_keys(ws: Workspace) -> None:
    encryption = ws.identity.token
    say(f"encryption key (for the portal's key directory): {encryption}")
    say(f"  fingerprint {encryption.fingerprint}")
    signing = ws.keys.signing.token
    say(f"signing key (for the shared database's trusted reviewers): {signing}")
    say(f"  fingerprint {signing.fingerprint}")


def cmd_pubkey(args: argparse.Namespace) -> None:
    """Print the workspace's public keys, one token per line: encryption, then signing."""
    ws = Workspace.open(workspace_dir(args), read_passphrase(args))
    say(ws.identity.token)
    say(ws.keys.signing.token)


def cmd_trust_portal(args: argparse.Namespace) -> None:
    """Pin the portal's bundle-signing key (compare its fingerprint with the operator)."""
    ws = Workspace.open(workspace_dir(args), read_passphrase(args))
    _pin(ws, args.key)


def register(verbs: Any, common: argparse.ArgumentParser) -> None:
    """Add the key subcommands."""
    keygen = verbs.add_parser("keygen", parents=[common], help="new workspace, new key")
    init = verbs.add_parser("init", parents=[common], help="new workspace around a key file")
    init.add_argument("--key", required=True, help="a reviewer key file")
    for parser in (keygen, init):
        parser.add_argument("--portal-key", help="the portal's csosig1… bundle key to pin")
    keygen.set_defaults(run=cmd_keygen)
    init.set_defaults(run=cmd_init)
    pubkey = verbs.add_parser("pubkey", parents=[common], help="print the public keys")
    pubkey.set_defaults(run=cmd_pubkey)
    trust = verbs.add_parser("trust-portal", parents=[common], help="pin the portal's key")
    trust.add_argument("key", help="csosig1… as printed by `portal init`")
    trust.set_defaults(run=cmd_trust_portal)
