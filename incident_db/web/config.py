"""The members' service settings, read from the environment in one place.

``incident_db/config.py`` holds the database URL; this module adds what only
the web service needs: where the browser meets it (``INCIDENT_DB_ORIGIN``),
the WebAuthn relying party (``INCIDENT_DB_RP_ID``) and the Flask secret key
(``INCIDENT_DB_SECRET_KEY``, else a 0600 file in the data directory, made on
first start). There is no default key: a service that could start with a
known one would sign anybody's session cookie.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from incident_db.config import load_config
from incident_db.errors import ConfigError

#: where ``incident-db serve`` listens unless told otherwise
DEFAULT_PORT = 8100
SECRET_FILE = "members-secret-key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class WebConfig:
    """The settings of one members' service. Build with :func:`load_web_config`."""

    database_url: str
    secret_key: bytes
    origin: str  # "https://members.example.org" or "http://localhost:8100"
    rp_id: str  # the WebAuthn relying party: the origin's host name or a parent domain
    rp_name: str = "CSO incident database"
    testing: bool = False

    @property
    def https(self) -> bool:
        """Whether browsers reach the service over TLS (cookies are then Secure)."""
        return self.origin.startswith("https://")


def check_origin(origin: str) -> str:
    """``origin`` as ``scheme://host[:port]``; plain http only on a loopback host."""
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"INCIDENT_DB_ORIGIN has a bad port: {origin!r}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        raise ConfigError(
            f"INCIDENT_DB_ORIGIN must look like https://members.example.org, not {origin!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"INCIDENT_DB_ORIGIN must be scheme, host and port only: {origin!r}")
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigError("INCIDENT_DB_ORIGIN must be https unless the host is localhost")
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_rp_id(rp_id: str, origin: str) -> str:
    """``rp_id``, if it is the origin's host or a domain above it (WebAuthn's rule)."""
    host = urlsplit(origin).hostname or ""
    rp_id = rp_id.lower()
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        pass
    else:
        raise ConfigError(
            "a passkey cannot be bound to an IP address: open the service as "
            "http://localhost:PORT, or set INCIDENT_DB_ORIGIN to a name"
        )
    if host != rp_id and not host.endswith("." + rp_id):
        raise ConfigError(f"INCIDENT_DB_RP_ID {rp_id!r} does not cover the origin's host {host!r}")
    return rp_id


def read_or_make_secret(data_dir: Path) -> bytes:
    """The key in ``data_dir/members-secret-key``, made (0600) if there is none yet."""
    path = data_dir / SECRET_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made before, perhaps by another worker a moment ago
    else:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(f"{path} is readable by others; chmod 600 it")
    return _check_secret(path.read_text(encoding="ascii").strip(), str(path))


def _check_secret(raw: str, where: str) -> bytes:
    try:
        secret = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError(f"the secret key in {where} must be hex") from None
    if len(secret) < MIN_SECRET_BYTES or len(set(secret)) < 8:
        raise ConfigError(f"the secret key in {where} is too weak: at least 32 random bytes")
    return secret


def data_dir_for(environ: Mapping[str, str], database_url: str, cwd: Path) -> Path:
    """``INCIDENT_DB_DATA_DIR``, else the SQLite file's folder, else ``cwd``."""
    if environ.get("INCIDENT_DB_DATA_DIR"):
        return Path(environ["INCIDENT_DB_DATA_DIR"])
    if database_url.startswith("sqlite:///") and len(database_url) > len("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).parent
    return cwd


def service_origin(environ: Mapping[str, str], port: int | None = None) -> str:
    """Where members' browsers reach the service: ``INCIDENT_DB_ORIGIN``, else loopback.

    ``localhost``, not ``127.0.0.1``: a passkey cannot be bound to an address.
    """
    return check_origin(
        environ.get("INCIDENT_DB_ORIGIN") or f"http://localhost:{port or DEFAULT_PORT}"
    )


def load_web_config(
    environ: Mapping[str, str],
    *,
    cwd: Path,
    database_url: str | None = None,
    port: int | None = None,
) -> WebConfig:
    """Every setting of the members' service; :class:`ConfigError` if one is unsafe.

    Without ``INCIDENT_DB_ORIGIN`` the service is ``http://localhost:PORT``.
    """
    url = load_config(environ, cwd=cwd, database_url=database_url).database_url
    origin = service_origin(environ, port)
    rp_id = check_rp_id(environ.get("INCIDENT_DB_RP_ID") or urlsplit(origin).hostname or "", origin)
    if environ.get("INCIDENT_DB_SECRET_KEY"):
        secret = _check_secret(environ["INCIDENT_DB_SECRET_KEY"], "INCIDENT_DB_SECRET_KEY")
    else:
        secret = read_or_make_secret(data_dir_for(environ, url, cwd))
    return WebConfig(database_url=url, secret_key=secret, origin=origin, rp_id=rp_id)
