"""The inside half of ``portal doctor``: what can only be seen on the host.

tor's configuration, log files and the journal (no client address anywhere),
permissions of the data directory and its keys, the signed key directory,
the clock, free disk and swap, and whether the blobs and the database agree
(what crashes leave behind). Nothing printed repeats a secret or an
address: a log line with an address is reported by file and line number.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from crypto.directory import verify_directory
from crypto.errors import CryptoError
from crypto.keys import PublicKeyToken
from portal.deploy.findings import Finding, fail, ok, warn
from portal.storage.blobs import BlobStore
from portal.storage.db import make_engine, make_sessions
from portal.storage.reconcile import reconcile
from portal.web.reviewers import NoDirectoryError, pinned_organisation_key

DEFAULT_LOGS = (Path("/var/log/nginx"), Path("/var/log/tor"), Path("/var/log/cso-portal"))
#: files a browser or a reviewer must be able to read
PUBLIC_FILES = frozenset({"key-directory.json", "organisation.pub", "portal-signing.pub"})
_SKEW = timedelta(minutes=5)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Za-z:])")
#: a server announcing where it listens is not a client address
_BIND_LINE = re.compile(
    r"(?i)listening at|listener on|listening on|listener connection \(ready\) on"
)
#: tor naming a relay by its fingerprint ("host <40 hex> at ADDRESS:PORT"): a relay's
#: public address, never a visitor's
_TOR_RELAY = re.compile(r"\bhost [0-9A-F]{40} at ")


def parse_torrc(text: str) -> list[tuple[str, str]]:
    """(option, value) pairs in order; option names in lower case, comments dropped."""
    pairs = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, value = line.partition(" ")
            pairs.append((name.lower(), value.strip()))
    return pairs


def _services(pairs: list[tuple[str, str]]) -> list[dict[str, list[str]]]:
    services: list[dict[str, list[str]]] = []
    for name, value in pairs:
        if name == "hiddenservicedir":
            services.append({"dir": [value]})
        elif name.startswith("hiddenservice") and services:
            services[-1].setdefault(name, []).append(value)
    return services


_TORRC_FIX = "install the torrc from `portal deploy-configs` and reload tor"


def check_onion(torrc: Path, onion_address: str | None) -> list[Finding]:
    """The torrc: no SOCKS, safe logging, two v3 onions with PoW, client auth for sync."""
    try:
        pairs = parse_torrc(torrc.read_text())
    except OSError:
        return [fail("onion", f"cannot read {torrc}", _TORRC_FIX)]
    options = dict(pairs)
    findings = []
    if options.get("socksport") != "0":
        findings.append(fail("onion", "tor also runs a SOCKS proxy", "SocksPort 0"))
    if options.get("safelogging", "1") != "1":
        findings.append(fail("onion", "tor may log addresses", "SafeLogging 1"))
    services = _services(pairs)
    if len(services) < 2:
        findings.append(fail("onion", "expected an intake and a sync onion service", _TORRC_FIX))
    for index, service in enumerate(services):
        findings += _service_findings(service, sync=index > 0, onion_address=onion_address)
    return findings or [ok("onion", "tor configuration as expected")]


def _service_findings(
    service: dict[str, list[str]], *, sync: bool, onion_address: str | None
) -> list[Finding]:
    directory = Path(service["dir"][0])
    check = f"onion {directory.name}"
    findings = []
    if service.get("hiddenserviceversion", ["3"])[-1] != "3":
        findings.append(fail(check, "not a v3 onion service", "HiddenServiceVersion 3"))
    if service.get("hiddenservicepowdefensesenabled", ["0"])[-1] != "1":
        findings.append(
            fail(check, "no proof-of-work defence", "HiddenServicePoWDefensesEnabled 1")
        )
    if not directory.is_dir():
        waiting = warn(check, "tor has not created it yet", "systemctl restart tor@default")
        return [*findings, waiting]
    if stat.S_IMODE(directory.stat().st_mode) & 0o077:
        findings.append(
            fail(check, "the key directory is open to others", f"chmod 700 {directory}")
        )
    hostname = directory / "hostname"
    address = hostname.read_text().strip() if hostname.exists() else None
    if not sync and onion_address and address and address != onion_address:
        findings.append(
            fail(check, "PORTAL_ONION_ADDRESS is not this service's address", "rerun the installer")
        )
    if sync:
        clients = list((directory / "authorized_clients").glob("*.auth"))
        if not clients:
            findings.append(
                warn(
                    check,
                    "no authorised client: the address alone reaches the sync login",
                    "add one with `portal onion-auth` (deploy/README.md)",
                )
            )
    return findings or [ok(check, f"{address or 'onion service'} configured as expected")]


# --- inside: logs -----------------------------------------------------------------


def find_addresses(text: str) -> Iterator[int]:
    """Line numbers (from 1) of lines that hold an IP address."""
    for number, line in enumerate(text.splitlines(), start=1):
        if _BIND_LINE.search(line) or _TOR_RELAY.search(line):
            continue
        if any(_is_address(token, 4) for token in _IPV4.findall(line)) or any(
            _is_address(token, 6) for token in _IPV6.findall(line)
        ):
            yield number


def _is_address(token: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(token)
    except ValueError:
        return False
    if version == 6 and token.count(":") < 7 and "::" not in token:
        return False
    # 0.x.x.x is "this network", never a client: it is how version numbers
    # such as tor's 0.4.9.11 look.
    return not (address.version == 4 and address.packed[0] == 0) and not address.is_unspecified


def _log_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())


def _read_log(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def check_logs(paths: Iterable[Path], journal: bool) -> list[Finding]:
    """No log file, and no journal entry of the portal's services, holds an IP address."""
    findings = []
    searched = 0
    for path in _log_files(paths):
        searched += 1
        try:
            lines = list(find_addresses(_read_log(path)))
        except (OSError, EOFError, gzip.BadGzipFile):
            findings.append(warn("logs", f"cannot read {path}", "run portal doctor as root"))
            continue
        if lines:
            findings.append(_address_finding(str(path), lines))
    if journal and Path("/run/systemd/system").is_dir():
        lines = list(find_addresses(_journal()))
        searched += 1
        if lines:
            findings.append(_address_finding("the journal (portal, nginx, tor units)", lines))
    return findings or [ok("logs", f"no address in {searched} log source(s)")]


def _address_finding(where: str, lines: list[int]) -> Finding:
    shown = ", ".join(str(n) for n in lines[:5]) + (" …" if len(lines) > 5 else "")
    return fail(
        "logs",
        f"{where} holds an IP address on line(s) {shown}",
        "find what wrote it (access_log, error_log level, SafeLogging), fix it, then shred "
        "the file",
    )


def _journal() -> str:
    units = ("cso-portal-intake", "cso-portal-sync", "nginx", "tor@default")
    command = ["journalctl", "--no-pager", "--output=cat", "--since=-30d"]
    for unit in units:
        command += ["--unit", unit]
    try:
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.decode("utf-8", errors="replace")


# --- inside: files, keys, clock, disk, swap ------------------------------------------


def check_permissions(data_dir: Path) -> list[Finding]:
    """The data directory and its secrets are the portal user's alone."""
    if not data_dir.is_dir():
        return [fail("permissions", f"no data directory at {data_dir}", "run the installer")]
    findings = []
    if stat.S_IMODE(data_dir.stat().st_mode) & 0o077:
        findings.append(
            fail("permissions", f"{data_dir} is open to others", f"chmod 700 {data_dir}")
        )
    for path in sorted(data_dir.rglob("*")):
        if path.is_symlink():
            findings.append(fail("permissions", f"{path} is a symbolic link", f"remove {path}"))
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        public = path.parent == data_dir and path.name in PUBLIC_FILES
        allowed = 0o022 if public else 0o077
        if mode & allowed:
            what = "writable by others" if public else "readable or writable by others"
            findings.append(
                fail(
                    "permissions", f"{path} is {what}", f"chmod {'644' if public else '600'} {path}"
                )
            )
    if (data_dir / "demo").exists():
        findings.append(
            warn("permissions", "demo keys are in the data directory", f"rm -r {data_dir}/demo")
        )
    return findings or [ok("permissions", f"{data_dir} and its keys are private")]


def check_directory(data_dir: Path, configured: PublicKeyToken | None = None) -> list[Finding]:
    """The signed key directory verifies and is not about to expire."""
    resign = (
        "re-sign it on the offline machine: portal reviewers add/remove (deploy/README.md, "
        "key ceremony)"
    )
    try:
        organisation = pinned_organisation_key(configured, data_dir)
        raw = (data_dir / "key-directory.json").read_bytes()
    except (NoDirectoryError, OSError, CryptoError) as error:
        return [fail("key directory", f"not available: {error}", resign)]
    now = datetime.now(UTC)
    try:
        directory = verify_directory(raw, organisation, now)
    except CryptoError as error:
        return [fail("key directory", error.diagnostics(), resign)]
    left = directory.expires_at - now
    summary = f"serial {directory.serial}, {len(directory.reviewers)} reviewer(s)"
    if left < timedelta(days=14):
        return [warn("key directory", f"{summary}, expires in {left.days} day(s)", resign)]
    return [ok("key directory", f"{summary}, signature valid, {left.days} days left")]


def check_clock(data_dir: Path) -> list[Finding]:
    """The clock is plausible: not before files it wrote, synchronised if systemd says so."""
    now = datetime.now(UTC)
    fix = "enable time synchronisation (systemd-timesyncd) and check the host's clock"
    if now.year < 2025:
        return [fail("clock", f"the clock says {now:%Y-%m-%d}", fix)]
    newest = max((p.stat().st_mtime for p in data_dir.rglob("*") if p.is_file()), default=0.0)
    if newest and datetime.fromtimestamp(newest, UTC) > now + _SKEW:
        return [fail("clock", "files in the data directory are dated in the future", fix)]
    if shutil.which("timedatectl") and Path("/run/systemd/system").is_dir():
        result = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],  # noqa: S607
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
        if result.stdout.strip() != "yes":
            return [warn("clock", "the clock is not synchronised", fix)]
    return [ok("clock", f"{now:%Y-%m-%d %H:%M} UTC, plausible")]


def check_disk(data_dir: Path) -> list[Finding]:
    """Enough free space for reports to arrive."""
    usage = shutil.disk_usage(data_dir)
    share = usage.free / usage.total
    free = f"{usage.free / 2**30:.1f} GiB free ({share:.0%})"
    fix = "free space or grow the disk: a full disk refuses reports"
    if usage.free < 2**30 or share < 0.05:
        return [fail("disk", free, fix)]
    if share < 0.10:
        return [warn("disk", free, fix)]
    return [ok("disk", free)]


def check_storage(data_dir: Path, database_url: str | None = None) -> list[Finding]:
    """The blob directory and the database agree: no orphan blob, no lost one, no leftover.

    Counts only (``reconcile`` in dry-run mode): ``portal purge`` and every
    start of the portal remove orphans and leftovers; nothing brings a lost
    blob back but a backup.
    """
    database = data_dir / "portal.sqlite3"
    if database_url is None and not database.exists():
        return [ok("storage", "no database yet: nothing to compare")]
    blob_dir = data_dir / "blobs"
    if not blob_dir.is_dir():
        return [ok("storage", "no blob directory yet: nothing to compare")]
    engine = make_engine(database_url or f"sqlite:///{database}")
    try:
        found = reconcile(make_sessions(engine), BlobStore(blob_dir), wait=2.0, dry_run=True)
    except SQLAlchemyError as error:
        fix = "check DATABASE_URL in the environment file and that the database runs"
        return [fail("storage", f"cannot read the database: {type(error).__name__}", fix)]
    finally:
        engine.dispose()
    findings = []
    if found.missing_blobs:
        findings.append(
            fail(
                "storage",
                f"{found.missing_blobs} stored part(s) have no blob file: those reports are lost",
                "restore the blob directory from the latest backup (portal restore)",
            )
        )
    if found.orphan_blobs or found.stale_temps:
        findings.append(
            warn(
                "storage",
                f"left by crashed workers: {found.line()}",
                "run `portal purge` (or restart the intake): both remove them",
            )
        )
    elif not found.checked_orphans:
        findings.append(
            warn("storage", "stores in progress held the blob directory", "run doctor again")
        )
    return findings or [ok("storage", "every blob has its row and every row its blob")]


def check_swap(swaps: Path = Path("/proc/swaps")) -> list[Finding]:
    """No unencrypted swap: memory holds plaintext of reports sent without JavaScript."""
    try:
        lines = swaps.read_text().splitlines()[1:]
    except OSError:
        return [ok("swap", "no swap information (no /proc/swaps)")]
    findings = []
    for line in lines:
        device = line.split()[0]
        if not _encrypted_swap(device):
            findings.append(
                fail("swap", f"{device} is unencrypted swap", "swapoff -a and remove it from fstab")
            )
    return findings or [ok("swap", "no unencrypted swap")]


def _encrypted_swap(device: str) -> bool:
    if device.startswith("/dev/zram"):
        return True  # compressed RAM, never on disk
    real = Path(device).resolve()
    uuid = Path("/sys/block") / real.name / "dm" / "uuid"
    return uuid.exists() and uuid.read_text().startswith("CRYPT-")


def environment_settings(path: Path) -> dict[str, str]:
    """KEY=value lines of a systemd EnvironmentFile (the installer's portal.env)."""
    settings = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                settings[name.strip()] = value.strip()
    return settings
