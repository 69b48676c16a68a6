"""``portal``: the operator's command (init, serve, reviewers).

Every subcommand takes ``--data-dir`` (default ``PORTAL_DATA_DIR``, else
``./var``), before or after its name but not both ways with different values.
``deploy-configs --data-dir`` is another option: the data directory on the
host the files are for. Failures print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from shlex import quote
from typing import Any

from crypto.directory import MAX_VALIDITY, read_directory, sign_directory
from crypto.errors import CryptoError
from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from crypto.keys import KeyKind, PublicKeyToken, parse_public_key
from portal.cli.deploy import ERRORS as DEPLOY_ERRORS
from portal.cli.deploy import register as register_deploy_commands
from portal.cli.hints import command, demo_hints
from portal.cli.retention import register as register_retention_commands
from portal.cli.sync import ERRORS as SYNC_ERRORS
from portal.cli.sync import register as register_sync_commands
from portal.config import (
    SECRET_FILE,
    ConfigError,
    check_data_dir,
    data_dir_setting,
    environ_snapshot,
    load_config,
)
from portal.deploy.configs import GUNICORN_CONFIG
from portal.storage.db import upgrade
from portal.storage.inbox import create_signing_key
from portal.web.reviewers import ORGANISATION_KEY_FILE

DEMO_REVIEWERS = ("reviewer-1", "reviewer-2")


class OperatorError(Exception):
    """A problem the operator must fix; the message says how."""


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def cmd_init(args: argparse.Namespace) -> None:
    """Create the data directory, the secret, the database; with --demo, demo keys."""
    data_dir = check_data_dir(args.data_dir.resolve())  # before anything is written
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = data_dir / SECRET_FILE
    if not secret.exists():
        _write_private(secret, secrets.token_hex(32).encode() + b"\n")
        print(f"secret key: {quote(str(secret))} (mode 0600)")
    config = load_config(environ_snapshot(), data_dir=data_dir)
    config.blob_dir.mkdir(mode=0o700, exist_ok=True)
    upgrade(config.database_url)
    print(f"database: {quote(config.database_url.split('@')[-1])} (migrated to the latest schema)")
    signer = create_signing_key(data_dir)
    print(f"bundle-signing key: {signer.token} (reviewers pin this: reviewer init --portal-key)")
    if args.demo:
        _init_demo(data_dir)
    print(f"next: {command('portal')} --data-dir {quote(str(data_dir))} serve")


def _init_demo(data_dir: Path) -> None:
    demo = data_dir / "demo"
    demo.mkdir(mode=0o700, exist_ok=True)
    passphrase_file = demo / "passphrase"
    if not passphrase_file.exists():
        _write_private(passphrase_file, secrets.token_urlsafe(18).encode() + b"\n")
    passphrase = passphrase_file.read_bytes().strip()
    org_file = demo / "organisation.key"
    if not org_file.exists():
        _write_private(org_file, encrypt_key_file(KeyBundle.new_organisation(), passphrase))
    organisation = decrypt_key_file(org_file.read_bytes(), passphrase)
    (data_dir / ORGANISATION_KEY_FILE).write_text(str(organisation.signing.token) + "\n")
    reviewers = []
    for label in DEMO_REVIEWERS:
        path = demo / f"{label}.key"
        if not path.exists():
            _write_private(path, encrypt_key_file(KeyBundle.new_reviewer(), passphrase))
        bundle = decrypt_key_file(path.read_bytes(), passphrase)
        if bundle.encryption is None:
            raise OperatorError(f"{path} is not a reviewer key file")
        # the signing key lets the workstations check each other's team updates
        reviewers.append((label, bundle.encryption.token, bundle.signing.token))
    directory = data_dir / "key-directory.json"
    serial = _current_serial(directory, organisation.signing.token) + 1
    signed = sign_directory(
        organisation.signing,
        reviewers,
        serial=serial,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(days=90),
    )
    _write_private(directory, signed)
    directory.chmod(0o644)
    print(f"demo keys: {quote(f'{demo}/')} (organisation.key, reviewer-1.key, reviewer-2.key)")
    print(
        f"demo passphrase: {quote(str(passphrase_file))}"
        " (demo only: never keep a passphrase by its key)"
    )
    print(f"key directory: {quote(str(directory))} (serial {serial}, 2 reviewers, valid 90 days)")
    for label, _, signing in reviewers:
        print(f"{label} signing key: {signing} (in the directory: it signs team updates)")
    for label in DEMO_REVIEWERS:
        sync_key = demo / f"{label}-sync.key"
        if not sync_key.exists():
            _write_private(sync_key, encrypt_key_file(KeyBundle.new_sync(), passphrase))
    print(
        f"demo sync keys: {quote(f'{demo}/')} (reviewer-1-sync.key, reviewer-2-sync.key: what a "
        "transfer machine logs in with; `portal serve` shows how to enrol one)"
    )


def _current_serial(path: Path, organisation: PublicKeyToken) -> int:
    if not path.exists():
        return 0
    try:
        return read_directory(path.read_bytes(), organisation).serial
    except CryptoError:
        return 0


def _organisation(args: argparse.Namespace) -> KeyBundle:
    passphrase = _passphrase(args.passphrase_file)
    bundle = decrypt_key_file(Path(args.org_key).read_bytes(), passphrase)
    if bundle.kind != "organisation":
        raise OperatorError("--org-key must be an organisation key file")
    return bundle


def _passphrase(path: str | None) -> bytes:
    if path is None:
        import getpass

        if not sys.stdin.isatty():
            raise OperatorError("no terminal to ask for a passphrase; use --passphrase-file")
        return getpass.getpass("Organisation key passphrase: ").encode()
    return Path(path).read_bytes().split(b"\n", 1)[0].rstrip(b"\r")


Entry = tuple[str, PublicKeyToken, PublicKeyToken | None]


def _resign(args: argparse.Namespace, change: str, new: Entry | None) -> None:
    data_dir: Path = args.data_dir.resolve()
    organisation = _organisation(args)
    path = data_dir / "key-directory.json"
    entries: list[Entry] = []
    serial = 0
    if path.exists():
        current = read_directory(path.read_bytes(), organisation.signing.token)
        # every entry keeps its signing key: dropping one would make the
        # workstations refuse that reviewer's team updates
        entries = [(r.label, r.encryption_key, r.signing_key) for r in current.reviewers]
        serial = current.serial
    if change == "add" and new is not None:
        if any(t == new[1] or label == new[0] for label, t, _ in entries):
            raise OperatorError("that reviewer or label is already in the directory")
        if new[2] is not None and any(s == new[2] for _, _, s in entries):
            raise OperatorError("that signing key is already in the directory")
        entries.append(new)
    else:
        kept = [e for e in entries if args.reviewer not in (e[0], str(e[1]))]
        if len(kept) == len(entries):
            raise OperatorError(f"no reviewer {args.reviewer!r} in the directory")
        if not kept:
            raise OperatorError("the last reviewer cannot be removed: nobody could read reports")
        entries = kept
    days = timedelta(days=args.valid_days)
    if days > MAX_VALIDITY:
        raise OperatorError("--valid-days is at most 92")
    signed = sign_directory(
        organisation.signing,
        entries,
        serial=serial + 1,
        issued_at=datetime.now(UTC),
        valid_for=days,
    )
    _write_private(path, signed)
    path.chmod(0o644)
    (data_dir / ORGANISATION_KEY_FILE).write_text(str(organisation.signing.token) + "\n")
    print(
        f"key directory re-signed: serial {serial + 1}, {len(entries)} reviewer(s),"
        f" valid {args.valid_days} days"
    )


def cmd_reviewers_add(args: argparse.Namespace) -> None:
    """Add a reviewer's encryption key (and signing key) and re-sign the directory."""
    if (args.key is None) == (args.key_option is None):
        raise OperatorError("give the reviewer's csoenc1… key once: as --key or after the options")
    key = parse_public_key(args.key or args.key_option, KeyKind.ENCRYPTION)
    signing = args.signing_key and parse_public_key(args.signing_key, KeyKind.SIGNING)
    _resign(args, "add", (args.label, key, signing or None))


def cmd_reviewers_remove(args: argparse.Namespace) -> None:
    """Remove a reviewer (by label or key) and re-sign the directory."""
    _resign(args, "remove", None)


def cmd_reviewers_list(args: argparse.Namespace) -> None:
    """Show the reviewers in the directory, with fingerprints."""
    data_dir: Path = args.data_dir.resolve()
    path = data_dir / "key-directory.json"
    try:
        organisation = parse_public_key(
            (data_dir / ORGANISATION_KEY_FILE).read_text(), KeyKind.SIGNING
        )
        directory = read_directory(path.read_bytes(), organisation)
    except FileNotFoundError as missing:
        raise OperatorError(
            f"{missing.filename} is missing: run `portal init` or `portal reviewers add`"
        ) from None
    state = "EXPIRED" if directory.expires_at <= datetime.now(UTC) else "valid"
    print(f"serial {directory.serial}, {state} until {directory.expires_at:%Y-%m-%d %H:%M} UTC")
    for reviewer in directory.reviewers:
        print(f"{reviewer.label}\t{reviewer.encryption_key}\t{reviewer.encryption_key.fingerprint}")
        if reviewer.signing_key is not None:
            print(f"\tsigns team updates with {reviewer.signing_key}")


_WSGI = {"intake": "portal.web.wsgi:app", "sync": "portal.web.wsgi:sync_app"}


def cmd_serve(args: argparse.Namespace) -> None:
    """Run the portal under gunicorn with portal/deploy/gunicorn_conf.py."""
    data_dir: Path = args.data_dir.resolve()
    load_config(environ_snapshot(), data_dir=data_dir)  # refuse to start if unsafe
    os.environ["PORTAL_DATA_DIR"] = str(data_dir)
    config_file = GUNICORN_CONFIG
    if args.role == "sync":
        print(f"reviewer sync API on http://{args.host}:{args.port}/reviewer-sync/v1/")
    else:
        print(
            f"CSO portal on http://{args.host}:{args.port}/ (data in {quote(str(data_dir))});"
            " Ctrl-C stops"
        )
    if (data_dir / "demo").is_dir() and args.role == "intake":
        print("\n".join(demo_hints(data_dir, f"http://{args.host}:{args.port}")))
    sys.stdout.flush()
    os.execvp(  # noqa: S606 - a fixed argument list, no shell
        sys.executable,
        [sys.executable, "-m", "gunicorn", "--config", str(config_file),
         "--bind", f"{args.host}:{args.port}", _WSGI[args.role]],
    )  # fmt: skip


DATA_DIR_HELP = "the data directory (default: $PORTAL_DATA_DIR, else ./var)"
#: each place ``--data-dir`` may be given stores it under a name of its own with this
#: prefix, so that one given after the subcommand does not hide one given before it
GIVEN_DATA_DIR = "given_data_dir_"
_places = itertools.count()


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        dest=f"{GIVEN_DATA_DIR}{next(_places)}",
        metavar="DATA_DIR",
        default=argparse.SUPPRESS,
        help=DATA_DIR_HELP,
    )


def _global_options() -> argparse.ArgumentParser:
    """``--data-dir`` for a subcommand, recorded only when given there.

    A new parser each time: a subcommand with its own ``--data-dir`` (the host
    path of ``deploy-configs``) replaces the option in its copy only.
    """
    options = argparse.ArgumentParser(add_help=False)
    _add_data_dir(options)
    return options


def settle_data_dir(given: list[str], environ: dict[str, str]) -> Path:
    """The data directory from every ``--data-dir`` given, else the environment's.

    An empty value (an unset shell variable, most likely) is refused rather
    than taken as the current directory; so are two different values.
    """
    if any(not value for value in given):
        raise ConfigError("--data-dir is empty (an unset variable?): name a directory")
    distinct = list(dict.fromkeys(Path(value) for value in given))
    if len(distinct) > 1:
        first, second = (str(path) for path in distinct[:2])
        raise ConfigError(
            f"--data-dir is given as {first!r} and as {second!r}: give it once,"
            " before or after the subcommand"
        )
    return check_data_dir(distinct[0] if distinct else data_dir_setting(environ))


class _PortalParser(argparse.ArgumentParser):
    """The top-level parser: it settles ``data_dir`` from every ``--data-dir`` given."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        given = [key for key in vars(parsed) if key.startswith(GIVEN_DATA_DIR)]
        values = [getattr(parsed, key) for key in given]
        for key in given:
            delattr(parsed, key)
        try:
            parsed.data_dir = settle_data_dir(values, environ_snapshot())
        except ConfigError as error:
            self.exit(2, f"{self.prog}: error: {error}\n")
        return parsed, extras


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser (at any depth): it takes the global options as well."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["parents"] = [*kwargs.get("parents", ()), _global_options()]
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per operator task; ``--data-dir`` goes before or after it."""
    parser = _PortalParser(prog="portal", description="CSO portal operator tool")
    _add_data_dir(parser)
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_SubcommandParser)
    init = verbs.add_parser("init", help="create the data directory, secret and database")
    init.add_argument("--demo", action="store_true", help="also make demo keys and a directory")
    init.set_defaults(run=cmd_init)
    serve = verbs.add_parser("serve", help="run the portal with gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--role", choices=sorted(_WSGI), default="intake", help="the public intake or the sync API"
    )
    serve.set_defaults(run=cmd_serve)
    reviewers = verbs.add_parser("reviewers", help="manage the signed key directory")
    actions = reviewers.add_subparsers(dest="action", required=True)
    for name, run in (("add", cmd_reviewers_add), ("remove", cmd_reviewers_remove)):
        action = actions.add_parser(name)
        action.add_argument("--org-key", required=True, help="the organisation key file")
        action.add_argument("--passphrase-file")
        action.add_argument("--valid-days", type=int, default=90)
        if name == "add":
            action.add_argument("--label", required=True)
            action.add_argument("key", nargs="?", help="the reviewer's csoenc1… public key")
            action.add_argument("--key", dest="key_option", help="the same, as an option")
            action.add_argument(
                "--signing-key", help="the reviewer's csosig1… key (`reviewer pubkey`)"
            )
        else:
            action.add_argument("reviewer", help="label or csoenc1… key")
        action.set_defaults(run=run)
    listing = actions.add_parser("list")
    listing.set_defaults(run=cmd_reviewers_list)
    register_sync_commands(verbs)
    register_retention_commands(verbs)
    register_deploy_commands(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operator command."""
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # everything the portal writes is private unless said otherwise
    try:
        args.run(args)
    except (ConfigError, OperatorError, *SYNC_ERRORS, *DEPLOY_ERRORS) as error:
        print(f"portal: error: {error}", file=sys.stderr)
        return 2
    except CryptoError as error:
        print(f"portal: error: {error.diagnostics()}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"portal: error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    return 0
