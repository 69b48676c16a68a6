"""``portal deploy-configs``, ``doctor``, ``backup``, ``restore``, ``verify-assets``,
``asset-manifest`` and ``onion-auth``: the operator's commands for a host.

Each is a thin layer over :mod:`portal.deploy.configs`, :mod:`portal.deploy.doctor`
or :mod:`portal.deploy.backup`; failures raise one of :data:`ERRORS`, which
``portal``'s ``main`` turns into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from crypto.errors import CryptoError
from crypto.keys import KeyKind, parse_public_key
from portal.deploy import assets, backup, backup_rows, doctor, findings, host_checks, restore
from portal.deploy import configs as deploy_configs
from portal.deploy.configs import DeployConfigError, HostLayout


def _layout(args: argparse.Namespace) -> HostLayout:
    settings: dict[str, Any] = {"domain": args.domain}
    for name in ("data_dir", "root", "tls_cert", "tls_key"):
        value = getattr(args, f"layout_{name}")
        if value is not None:
            settings[name] = PurePosixPath(value)
    for name in ("https_listen", "http_listen", "onion_listen", "sync_onion_listen", "user"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    for name in ("ssh_port", "max_upload_mib", "max_plain_upload_mib", "workers", "threads"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    return HostLayout(**settings)


def cmd_deploy_configs(args: argparse.Namespace) -> None:
    """Render every configuration file for one host under --out."""
    layout = _layout(args)
    written = deploy_configs.write(deploy_configs.render(layout), args.out)
    for path in written:
        print(path)
    where = f"https://{layout.domain}/ and " if layout.domain else ""
    print(f"{len(written)} files for a portal at {where}its onion service", file=sys.stderr)


def cmd_doctor(args: argparse.Namespace) -> None:
    """Inspect a running deployment; print each finding with its fix."""
    settings = host_checks.environment_settings(args.env_file)
    onion = settings.get("PORTAL_ONION_ADDRESS")
    org = settings.get("PORTAL_ORGANISATION_KEY")
    options = doctor.DoctorOptions(
        data_dir=args.data_dir.resolve(),
        url=args.url,
        ca_file=args.ca_file,
        torrc=args.torrc,
        log_paths=tuple(args.log) if args.log else host_checks.DEFAULT_LOGS,
        journal=not args.no_journal,
        onion_address=onion,
        organisation_key=parse_public_key(org, KeyKind.SIGNING) if org else None,
        # the database the portal uses, as installed (else as this shell says): the
        # storage check must not compare the blobs with an unused SQLite file
        database_url=settings.get("DATABASE_URL") or os.environ.get("DATABASE_URL") or None,
    )
    _report(doctor.run(options), "check(s) failed; each FAIL line says the fix")


def _report(results: list[findings.Finding], failure: str) -> None:
    for finding in results:
        print(finding.line())
    bad = findings.failed(results)
    if bad:
        raise findings.CheckFailedError(f"{len(bad)} {failure}")
    warned = sum(1 for f in results if f.status is findings.Status.WARN)
    print(f"no check failed ({len(results)} findings, {warned} to look at)", file=sys.stderr)


def cmd_backup(args: argparse.Namespace) -> None:
    """Write an encrypted backup of the data directory, sealed to --to-key."""
    result = backup.create_backup(
        args.data_dir.resolve(), args.out, backup.read_backup_key(args.to_key)
    )
    print(f"{result.path}: {result.files} file(s), {result.size} bytes, sealed to the backup key")
    if args.keep is not None:
        for removed in backup.prune(args.out, args.keep):
            print(f"removed old backup {removed}")


def cmd_restore(args: argparse.Namespace) -> None:
    """Decrypt a backup with the offline key and restore it into a new data directory.

    The trust anchors come from the key-ceremony record, never from the
    backup, since anyone with the public backup key can forge one: the
    organisation key, the newest key directory, and the sync accounts (or none).
    """
    try:
        organisation = parse_public_key(args.organisation_key, KeyKind.SIGNING)
    except CryptoError as error:
        raise backup.BackupError(f"--organisation-key: {error.diagnostics()}") from None
    accounts = None if args.accounts is None else backup_rows.read_accounts(args.accounts)
    ceremony = restore.Ceremony(organisation, args.key_directory, accounts)
    passphrase = backup.read_passphrase(args.passphrase_file)
    result = restore.restore_backup(
        args.backup, args.key, passphrase, args.data_dir.resolve(), ceremony
    )
    print(
        f"restored {result.files} file(s) and the {result.database} database into "
        f"{result.data_dir}; the backup says it was made {result.created}; it pins the "
        f"organisation key {organisation.fingerprint}"
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_asset_manifest(args: argparse.Namespace) -> None:
    """Print (or write) the SHA-256 of every static file the browser runs."""
    text = assets.asset_manifest_text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"{args.out}: {text.count(chr(10))} asset(s)", file=sys.stderr)


def cmd_verify_assets(args: argparse.Namespace) -> None:
    """Fetch the static files from a live portal and compare them with a manifest."""
    manifest = assets.read_asset_manifest(args.manifest)
    organisation = assets.expected_fingerprint(args.organisation_key, args.organisation_fingerprint)
    _report(
        assets.verify_assets(args.url, manifest, ca_file=args.ca_file, organisation=organisation),
        "difference(s): this portal does not serve the published code",
    )


def cmd_onion_auth(args: argparse.Namespace) -> None:
    """Make a client-authorisation key pair for the sync onion service."""
    made = deploy_configs.make_onion_client_auth(args.label, args.onion, args.out)
    print(f"server side: {made.server_file}")
    print("  copy it into /var/lib/tor/cso-portal-sync/authorized_clients/ and reload tor")
    print(f"client side: {made.client_file}")
    print("  give it to the transfer machine for its tor's ClientOnionAuthDir, then delete it")


def _add_layout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--domain", help="clearnet DNS name; without it, the onion service only")
    parser.add_argument(
        "--data-dir",
        dest="layout_data_dir",
        help="the data directory on the host (default /var/lib/cso-portal)",
    )
    parser.add_argument(
        "--root",
        dest="layout_root",
        help="prefix every host path with this (staging, images, tests); default /",
    )
    parser.add_argument("--tls-cert", dest="layout_tls_cert")
    parser.add_argument("--tls-key", dest="layout_tls_key")
    parser.add_argument("--https-listen", help="PORT or ADDRESS:PORT (default 443)")
    parser.add_argument("--http-listen", help="PORT or ADDRESS:PORT (default 80)")
    parser.add_argument("--onion-listen", help="loopback ADDRESS:PORT for the intake onion")
    parser.add_argument("--sync-onion-listen", help="loopback ADDRESS:PORT for the sync onion")
    parser.add_argument("--user", help="the system user the portal runs as (cso-portal)")
    parser.add_argument("--ssh-port", type=int, help="SSH port the firewall opens; 0 for none")
    parser.add_argument("--max-upload-mib", type=int)
    parser.add_argument("--max-plain-upload-mib", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)


def register(verbs: Any) -> None:
    """Add the deployment subcommands to the ``portal`` parser."""
    render = verbs.add_parser("deploy-configs", help="render every config file for a host")
    _add_layout_options(render)
    render.set_defaults(run=cmd_deploy_configs)

    check = verbs.add_parser("doctor", help="inspect a running deployment")
    check.add_argument("--url", help="the portal's public URL to check from outside")
    check.add_argument("--ca-file", type=Path, help="trust this CA for --url (self-signed)")
    check.add_argument("--torrc", type=Path, default=Path("/etc/tor/torrc"))
    check.add_argument(
        "--log", action="append", type=Path, help="log file or directory to search (repeatable)"
    )
    check.add_argument("--no-journal", action="store_true", help="do not search the journal")
    check.add_argument(
        "--env-file",
        type=Path,
        default=Path("/etc/cso-portal/portal.env"),
        help="the portal's settings as installed (onion address, DATABASE_URL)",
    )
    check.set_defaults(run=cmd_doctor)

    save = verbs.add_parser("backup", help="write an encrypted backup of the data directory")
    save.add_argument("--out", type=Path, required=True, help="directory for backup files")
    save.add_argument("--to-key", type=Path, required=True, help="file with the csoenc1… key")
    save.add_argument("--keep", type=int, help="then keep only the newest N backups there")
    save.set_defaults(run=cmd_backup)

    load = verbs.add_parser("restore", help="restore a backup into a new data directory")
    load.add_argument("backup", type=Path)
    load.add_argument("--key", type=Path, required=True, help="the offline backup key file")
    load.add_argument("--passphrase-file", type=Path)
    load.add_argument(
        "--organisation-key",
        required=True,
        metavar="CSOSIG1…",
        help="the organisation key from the key-ceremony record (never taken from the backup)",
    )
    load.add_argument(
        "--key-directory",
        type=Path,
        required=True,
        metavar="FILE",
        help="the newest key-directory.json the ceremony signed (installed, not the backup's)",
    )
    load.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="the enrolment record, LABEL SYNC_KEY SIGNING_KEY a line: keep exactly these "
        "sync accounts (without it, none is kept)",
    )
    load.set_defaults(run=cmd_restore)

    manifest = verbs.add_parser("asset-manifest", help="SHA-256 of the browser's static files")
    manifest.add_argument("--out", type=Path)
    manifest.set_defaults(run=cmd_asset_manifest)

    verify = verbs.add_parser("verify-assets", help="compare a live portal's JS/CSS with hashes")
    verify.add_argument("--url", required=True)
    verify.add_argument("--manifest", type=Path, help="published manifest (default: this copy)")
    verify.add_argument("--ca-file", type=Path)
    pin = verify.add_mutually_exclusive_group()
    pin.add_argument("--organisation-key", metavar="CSOSIG1…", help="the key pages must pin")
    pin.add_argument(
        "--organisation-fingerprint", metavar="DIGITS", help="its published 30-digit fingerprint"
    )
    verify.set_defaults(run=cmd_verify_assets)

    auth = verbs.add_parser("onion-auth", help="client-authorisation keys for the sync onion")
    auth.add_argument("label", help="who the key is for, e.g. the reviewer's account label")
    auth.add_argument("--onion", required=True, help="the sync onion's address")
    auth.add_argument("--out", type=Path, required=True, help="directory for the two files")
    auth.set_defaults(run=cmd_onion_auth)


ERRORS = (DeployConfigError, findings.CheckFailedError, assets.AssetError, backup.BackupError)
