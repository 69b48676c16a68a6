"""All portal settings, read from the environment in one place.

Nothing else in the portal reads environment variables. A missing or weak
security setting stops the program at start with a clear message; there is
no silent fallback to a weaker mode.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import KeyFormatError
from crypto.keys import KeyKind, PublicKeyToken, parse_public_key

SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES = 32
MIB = 1024 * 1024
DEFAULT_DATA_DIR = "./var"
#: C0 controls, DEL and C1 controls: a terminal acts on them when a path is printed
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe; the message says which and why."""


@dataclass(frozen=True)
class Config:
    """The portal's settings. Build with :func:`load_config`."""

    data_dir: Path
    secret_key: bytes
    database_url: str
    organisation_key: PublicKeyToken | None
    onion_address: str | None
    https: bool
    max_upload_bytes: int
    max_attachments: int
    max_plain_upload_bytes: int
    csrf_time_limit: int
    #: "separate": the reviewer sync API only in the sync application (its own
    #: listener); "same": also in the public one (development only)
    sync_mode: str = "separate"
    testing: bool = False
    #: proof-of-work: leading zero bits asked of every browser submission and
    #: follow-up message when the portal is quiet, and how many solved puzzles
    #: an hour count as quiet (beyond that, one more bit per doubling)
    pow_bits: int = 16
    pow_burst: int = 30
    #: global budgets (never per address), per hour: reports sent without
    #: JavaScript, follow-up messages sent without JavaScript, and receipt
    #: lookups (sending a follow-up message either way is one too)
    plain_per_hour: int = 60
    lookups_per_hour: int = 600
    followups_per_hour: int = 60
    #: a conversation is purged this many days after its latest activity
    retention_days: int = 180
    #: volatile anti-abuse state (``runtime.py``): on tmpfs, never in the data directory
    runtime_dir: Path = Path("/run/cso-portal-intake")
    #: resumable uploads (``pending.py``): bytes the partial files of all
    #: unfinished uploads may hold together (bytes stored, never bytes declared),
    #: and how many unfinished drafts there may be at once
    pending_bytes: int = 2000 * MIB
    pending_drafts: int = 200
    #: drafts opened per hour, for everyone together (a global budget, ``budget.py``)
    begins_per_hour: int = 120
    #: when a resumable upload's PATCH ends (what arrived is kept, and the browser
    #: resumes): no 8 KiB piece for ``upload_idle_seconds``; less than
    #: ``upload_min_rate`` bytes a second over any ``2 * upload_idle_seconds``;
    #: or ``upload_patch_seconds`` after it began. The idle limit matches nginx's
    #: client_body_timeout: a satellite link that drops for a minute or two keeps
    #: its PATCH, which carries on where it stopped, instead of Chromium repeating
    #: it from its first byte on a new connection (tests/integration/test_satellite.py)
    upload_idle_seconds: int = 120
    upload_min_rate: int = 512
    upload_patch_seconds: int = 600

    @property
    def blob_dir(self) -> Path:
        """Where ciphertext blobs live."""
        return self.data_dir / "blobs"

    @property
    def directory_file(self) -> Path:
        """The signed key directory the portal serves."""
        return self.data_dir / "key-directory.json"


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return value


def read_secret(data_dir: Path) -> bytes:
    """The secret key from ``DATA_DIR/secret_key``; refuse a weak or exposed one."""
    path = data_dir / SECRET_FILE
    try:
        info = path.stat()
        raw = path.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no secret key in {path}; run `portal init` (or set PORTAL_SECRET_KEY)"
        ) from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(f"{path} is readable by others; chmod 600 it")
    return _check_secret(raw, str(path))


def _check_secret(raw: bytes, where: str) -> bytes:
    try:
        secret = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(f"the secret key in {where} must be hex") from None
    if len(secret) < MIN_SECRET_BYTES or len(set(secret)) < 8:
        raise ConfigError(f"the secret key in {where} is too weak: use `portal init`")
    return secret


def data_dir_setting(environ: Mapping[str, str]) -> Path:
    """``PORTAL_DATA_DIR``, else ``./var``; an empty value counts as unset, never as ``.``."""
    return Path(environ.get("PORTAL_DATA_DIR") or DEFAULT_DATA_DIR)


def check_data_dir(path: Path) -> Path:
    """``path``, unless its name holds control characters (which would reach terminals raw)."""
    if CONTROL_CHARACTERS.search(str(path)):
        raise ConfigError(
            f"the data directory {str(path)!r} has control characters in its name: choose another"
        )
    return path


def load_config(environ: Mapping[str, str], *, data_dir: Path | None = None) -> Config:
    """Read every setting from ``environ``; raise :class:`ConfigError` if unsafe."""
    # checked as given too: a NUL byte would stop resolve() with a traceback
    root = check_data_dir(check_data_dir(Path(data_dir or data_dir_setting(environ))).resolve())
    if "PORTAL_SECRET_KEY" in environ:
        secret = _check_secret(environ["PORTAL_SECRET_KEY"].encode(), "PORTAL_SECRET_KEY")
    else:
        secret = read_secret(root)
    database_url = environ.get("DATABASE_URL") or f"sqlite:///{root / 'portal.sqlite3'}"
    org_key = None
    if environ.get("PORTAL_ORGANISATION_KEY"):
        try:
            org_key = parse_public_key(environ["PORTAL_ORGANISATION_KEY"], KeyKind.SIGNING)
        except KeyFormatError as error:
            raise ConfigError(f"PORTAL_ORGANISATION_KEY: {error.diagnostics()}") from None
    onion = environ.get("PORTAL_ONION_ADDRESS") or None
    if onion is not None and not (onion.endswith(".onion") and len(onion) == 62):
        raise ConfigError("PORTAL_ONION_ADDRESS must be a v3 onion name (56 characters + .onion)")
    https = environ.get("PORTAL_HTTPS", "0") not in {"0", "", "false", "no"}
    max_upload_mib = _int(environ, "PORTAL_MAX_UPLOAD_MIB", 200, 1, 4096)
    # ten full-size reports by default; never less than one
    pending_mib = _int(environ, "PORTAL_PENDING_MIB", 10 * max_upload_mib, 1, 1024 * 1024)
    if pending_mib < max_upload_mib:
        raise ConfigError(
            "PORTAL_PENDING_MIB must be at least PORTAL_MAX_UPLOAD_MIB:"
            " otherwise a full-size report could never be sent"
        )
    return Config(
        data_dir=root,
        secret_key=secret,
        database_url=database_url,
        organisation_key=org_key,
        onion_address=onion,
        https=https,
        max_upload_bytes=max_upload_mib * MIB,
        max_attachments=_int(environ, "PORTAL_MAX_ATTACHMENTS", 10, 0, 64),
        max_plain_upload_bytes=_int(environ, "PORTAL_MAX_PLAIN_UPLOAD_MIB", 25, 1, 200) * MIB,
        # A slow satellite upload of a large file can take hours: 12 h by default.
        csrf_time_limit=_int(environ, "PORTAL_CSRF_HOURS", 12, 1, 72) * 3600,
        sync_mode=_choice(environ, "PORTAL_SYNC", ("separate", "same")),
        testing=environ.get("PORTAL_TESTING") == "1",
        pow_bits=_int(environ, "PORTAL_POW_BITS", 16, 1, 28),
        pow_burst=_int(environ, "PORTAL_POW_BURST", 30, 1, 100_000),
        plain_per_hour=_int(environ, "PORTAL_PLAIN_PER_HOUR", 60, 1, 100_000),
        lookups_per_hour=_int(environ, "PORTAL_LOOKUPS_PER_HOUR", 600, 1, 100_000),
        followups_per_hour=_int(environ, "PORTAL_FOLLOWUPS_PER_HOUR", 60, 1, 100_000),
        retention_days=_int(environ, "PORTAL_RETENTION_DAYS", 180, 1, 3650),
        runtime_dir=_runtime_dir(environ, root),
        pending_bytes=pending_mib * MIB,
        pending_drafts=_int(environ, "PORTAL_PENDING_DRAFTS", 200, 1, 100_000),
        begins_per_hour=_int(environ, "PORTAL_BEGINS_PER_HOUR", 120, 1, 100_000),
        upload_idle_seconds=_int(environ, "PORTAL_UPLOAD_IDLE_SECONDS", 120, 2, 600),
        # 512 B/s (30 KiB a minute, 4 kbit/s) is a sixteenth of a 64 kbit/s link, and
        # above one 8 KiB piece per idle limit, so a piece dripped just inside that
        # limit does not keep a PATCH open
        upload_min_rate=_int(environ, "PORTAL_UPLOAD_MIN_RATE", 512, 1, 10 * MIB),
        upload_patch_seconds=_int(environ, "PORTAL_UPLOAD_PATCH_SECONDS", 600, 5, 3600),
    )


def _runtime_dir(environ: Mapping[str, str], data_dir: Path) -> Path:
    """Where the anti-abuse state goes: a tmpfs folder of its own, outside the data directory.

    ``PORTAL_RUNTIME_DIR`` if set, else the ``RuntimeDirectory=`` systemd
    made for the service, else one folder per data directory under
    ``$XDG_RUNTIME_DIR`` or ``/dev/shm`` (both tmpfs). The path is never
    resolved: in ``/dev/shm`` its name is predictable, and a symbolic link
    planted there must be refused (``runtime.py``), not followed.
    """
    chosen = environ.get("PORTAL_RUNTIME_DIR") or environ.get("RUNTIME_DIRECTORY")
    if chosen:
        path = Path(os.path.abspath(chosen))
    else:
        tag = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
        base = os.path.abspath(environ.get("XDG_RUNTIME_DIR") or "/dev/shm")  # noqa: S108 - tmpfs
        path = Path(base, f"cso-portal-{os.getuid()}-{tag}")
    real = Path(os.path.realpath(path))  # compared here, never used
    if any(p.is_relative_to(data_dir) or data_dir.is_relative_to(p) for p in (path, real)):
        raise ConfigError(
            "PORTAL_RUNTIME_DIR must be outside the data directory: what it holds dates requests"
        )
    return path


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = environ.get(name, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def environ_snapshot() -> dict[str, str]:
    """The process environment, for the one place that may read it."""
    return dict(os.environ)
