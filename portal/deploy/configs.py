"""Every configuration file a portal host needs, rendered from ``portal/deploy/templates``.

``portal deploy-configs`` writes them under ``--out`` at the paths they take
on the host (``etc/nginx/nginx.conf``, ``etc/tor/torrc``, the systemd units,
…), so an operator can read exactly what the installer puts in place, and the
tests can run each through its own checker (``nginx -t``, ``tor
--verify-config``, ``systemd-analyze``, ``nft -c``).

A :class:`HostLayout` holds the few facts that differ between hosts. Its
``root`` prefixes every host path written into the files: ``/`` for a real
host; a staging directory for an image build or a test, where the rendered
tree must work in place. Rendering under another root changes those paths
and nothing else (a test holds it to that).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from portal.web.attachment_limits import MIB, plain_attachment_limits

DEPLOY_DIR = Path(__file__).resolve().parent  # the templates ship inside the package
TEMPLATES = DEPLOY_DIR / "templates"
GUNICORN_CONFIG = DEPLOY_DIR / "gunicorn_conf.py"

#: systemd units, in the order an operator reads them
UNITS = (
    "cso-portal-intake.socket",
    "cso-portal-intake.service",
    "cso-portal-sync.socket",
    "cso-portal-sync.service",
    "cso-portal-purge.service",
    "cso-portal-purge.timer",
    "cso-portal-backup.service",
    "cso-portal-backup.timer",
)
#: a DNS name with a dot, or ``localhost`` (for tests on one machine)
_DOMAIN = re.compile(r"(?=.{1,253}$)(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}|localhost)")
_LISTEN = re.compile(r"((\d{1,3}\.){3}\d{1,3}:|\[[0-9a-f:]+\]:)?\d{1,5}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


_ROOT = PurePosixPath("/")
_DATA_DIR = PurePosixPath("/var/lib/cso-portal")
_APP_DIR = PurePosixPath("/opt/cso-portal")
_ETC_DIR = PurePosixPath("/etc/cso-portal")
_BACKUP_DIR = PurePosixPath("/var/backups/cso-portal")


class DeployConfigError(Exception):
    """A host setting is malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class HostLayout:
    """What differs between portal hosts. Defaults are those of a Debian 12 host."""

    #: the clearnet name; None serves the onion service only (no TLS listener)
    domain: str | None = None
    data_dir: PurePosixPath = _DATA_DIR
    root: PurePosixPath = _ROOT
    user: str = "cso-portal"
    app_dir: PurePosixPath = _APP_DIR
    etc_dir: PurePosixPath = _ETC_DIR
    backup_dir: PurePosixPath = _BACKUP_DIR
    tls_cert: PurePosixPath | None = None
    tls_key: PurePosixPath | None = None
    https_listen: str = "443"
    http_listen: str = "80"
    #: where tor hands over onion connections (loopback only)
    onion_listen: str = "127.0.0.1:8081"
    sync_onion_listen: str = "127.0.0.1:8082"
    ssh_port: int = 22
    max_upload_mib: int = 200
    max_plain_upload_mib: int = 25
    workers: int = 2
    threads: int = 16
    #: systemd's per-service ceiling on memory; each worker recycles above its own limit
    service_memory_mib: int = 3072
    worker_memory_mib: int = 1024
    backups_kept: int = 14

    def __post_init__(self) -> None:
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise DeployConfigError(f"--domain {self.domain!r} is not a DNS name (lower case)")
        for name in ("https_listen", "http_listen", "onion_listen", "sync_onion_listen"):
            if not _LISTEN.fullmatch(getattr(self, name)):
                raise DeployConfigError(f"{name} must be PORT or ADDRESS:PORT")
        for name in ("onion_listen", "sync_onion_listen"):
            if not getattr(self, name).startswith(("127.", "[::1]")):
                raise DeployConfigError(f"{name} must be a loopback address: tor connects there")
        if not _USER.fullmatch(self.user):
            raise DeployConfigError(f"user {self.user!r} is not a valid system user name")
        for name in ("data_dir", "app_dir", "etc_dir", "backup_dir", "root"):
            if not getattr(self, name).is_absolute():
                raise DeployConfigError(f"{name} must be an absolute path")
        if not 0 <= self.ssh_port <= 65535:
            raise DeployConfigError("ssh_port must be 0 (no SSH) to 65535")

    def host(self, path: PurePosixPath | str) -> str:
        """A host path as written into the files: under ``root``."""
        relative = PurePosixPath(path).relative_to("/")
        return str(self.root / relative)


@dataclass(frozen=True)
class RenderedFile:
    """One configuration file: where it goes on the host, what it says, its mode."""

    path: PurePosixPath
    text: str
    mode: int = 0o644


def _port(listen: str) -> str:
    return listen.rsplit(":", 1)[-1]


def _context(layout: HostLayout) -> dict[str, Any]:
    """Everything the templates refer to, with host paths already under ``root``."""
    h = layout.host
    tls_dir = layout.etc_dir / "tls"
    return {
        "layout": layout,
        "domain": layout.domain,
        "user": layout.user,
        "data_dir": h(layout.data_dir),
        "etc_dir": h(layout.etc_dir),
        "backup_dir": h(layout.backup_dir),
        "backup_key": h(layout.etc_dir / "backup.pub"),
        "venv_bin": h(layout.app_dir / "venv" / "bin"),
        "gunicorn_config": h(layout.etc_dir / "gunicorn.conf.py"),
        "environment_file": h(layout.etc_dir / "portal.env"),
        "onion_environment_file": h(layout.etc_dir / "onion.env"),
        "run_dir": h("/run/cso-portal"),
        "plain_body_dir": h("/run/cso-portal-nginx-body"),
        "intake_socket": h("/run/cso-portal/intake.sock"),
        "sync_socket": h("/run/cso-portal/sync.sock"),
        "nginx_site": h("/etc/nginx/sites-enabled/cso-portal.conf"),
        "nginx_pid": h("/run/nginx.pid"),
        "nginx_log_dir": h("/var/log/nginx"),
        "nginx_lib_dir": h("/var/lib/nginx"),
        "acme_root": h("/var/www/acme"),
        "tls_cert": h(layout.tls_cert or tls_dir / "fullchain.pem"),
        "tls_key": h(layout.tls_key or tls_dir / "privkey.pem"),
        "tor_intake_dir": h("/var/lib/tor/cso-portal-intake"),
        "tor_sync_dir": h("/var/lib/tor/cso-portal-sync"),
        "onion_port": _port(layout.onion_listen),
        "sync_onion_port": _port(layout.sync_onion_listen),
        "upload_body_mib": layout.max_upload_mib + 1,
        "plain_form_mib": plain_attachment_limits(
            layout.max_upload_mib * MIB, layout.max_plain_upload_mib * MIB
        )[2]
        // MIB,
        # each streaming pool (nginx-site.conf.j2) holds at most a third of the threads
        "plain_connections": max(1, layout.workers * layout.threads // 3),
        "upload_connections": max(1, layout.workers * layout.threads // 3),
    }


def _environment() -> jinja2.Environment:
    if not TEMPLATES.is_dir():
        raise DeployConfigError(
            f"no templates in {TEMPLATES}: the installed package is incomplete (reinstall it)"
        )
    return jinja2.Environment(  # noqa: S701 - configuration files, not HTML
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


#: host path → (template, mode); units are added from UNITS
_FILES: dict[str, tuple[str, int]] = {
    "/etc/nginx/nginx.conf": ("nginx.conf.j2", 0o644),
    "/etc/nginx/sites-enabled/cso-portal.conf": ("nginx-site.conf.j2", 0o644),
    "/etc/tor/torrc": ("torrc.j2", 0o644),
    "/etc/nftables.conf": ("nftables.conf.j2", 0o755),
    "/etc/sysctl.d/90-cso-portal.conf": ("sysctl.conf.j2", 0o644),
    "/etc/apt/apt.conf.d/20auto-upgrades": ("20auto-upgrades.j2", 0o644),
    "/etc/apt/apt.conf.d/52cso-portal-unattended-upgrades": ("52unattended.j2", 0o644),
}


def render(layout: HostLayout) -> list[RenderedFile]:
    """Render every configuration file for ``layout``."""
    environment = _environment()
    context = _context(layout)
    files = [
        RenderedFile(PurePosixPath(path), environment.get_template(name).render(context), mode)
        for path, (name, mode) in _FILES.items()
    ]
    files += [
        RenderedFile(
            PurePosixPath("/etc/systemd/system") / unit,
            environment.get_template(f"systemd/{unit}.j2").render(context),
        )
        for unit in UNITS
    ]
    env_path = layout.etc_dir / "portal.env"
    files.append(RenderedFile(env_path, environment_file(layout), 0o640))
    files.append(
        RenderedFile(layout.etc_dir / "gunicorn.conf.py", GUNICORN_CONFIG.read_text(), 0o644)
    )
    return files


def environment_file(layout: HostLayout) -> str:
    """The portal's settings (``portal/config.py``) for systemd's ``EnvironmentFile``.

    The onion address is not known until tor has run once; the installer
    writes it into ``onion.env``, the units' second environment file.
    """
    settings = {
        "PORTAL_DATA_DIR": layout.host(layout.data_dir),
        # The app itself speaks plain HTTP to nginx for both the onion and
        # the TLS listener; nginx adds HSTS and the cookie's Secure flag on
        # TLS only, so that the onion service works in every Tor Browser.
        "PORTAL_HTTPS": "0",
        "PORTAL_MAX_UPLOAD_MIB": str(layout.max_upload_mib),
        "PORTAL_MAX_PLAIN_UPLOAD_MIB": str(layout.max_plain_upload_mib),
        "PORTAL_WORKERS": str(layout.workers),
        "PORTAL_THREADS": str(layout.threads),
        "PORTAL_WORKER_MAX_MEMORY_MIB": str(layout.worker_memory_mib),
        # glibc makes an arena per thread; two keep a worker's memory compact
        "MALLOC_ARENA_MAX": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    lines = ["# cso-portal settings: see portal/config.py. Rendered by `portal deploy-configs`."]
    lines += [f"{name}={value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def write(files: Iterable[RenderedFile], out: Path) -> list[Path]:
    """Write ``files`` under ``out`` at their host paths; return what was written."""
    written = []
    for rendered in files:
        target = out / rendered.path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(rendered.text)
        temp.chmod(rendered.mode)
        os.replace(temp, target)
        written.append(target)
    return written


# --- client authorisation for the sync onion -----------------------------------

_ONION = re.compile(r"[a-z2-7]{56}")
_AUTH_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class OnionClientAuth:
    """The two files of one client authorisation: tor's server and client halves."""

    server_file: Path
    client_file: Path


def _tor_base32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def make_onion_client_auth(label: str, onion: str, out: Path) -> OnionClientAuth:
    """A fresh x25519 key pair in tor's formats, for one transfer machine.

    ``LABEL.auth`` (the public half) goes in the sync onion's
    ``authorized_clients/``; ``LABEL.auth_private`` (the private half, bound to
    the onion address) goes to the transfer machine's ``ClientOnionAuthDir``.
    """
    if not _AUTH_LABEL.fullmatch(label):
        raise DeployConfigError("a label is 1-64 letters, digits, dashes or underscores")
    address = onion.strip().lower().removesuffix(".onion")
    if not _ONION.fullmatch(address):
        raise DeployConfigError("--onion must be a v3 onion address (56 characters)")
    private = X25519PrivateKey.generate()
    secret = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = OnionClientAuth(out / f"{label}.auth", out / f"{label}.auth_private")
    for path, text in (
        (made.server_file, f"descriptor:x25519:{_tor_base32(public)}\n"),
        (made.client_file, f"{address}:descriptor:x25519:{_tor_base32(secret)}\n"),
    ):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise DeployConfigError(f"{path} exists already; choose another label") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    return made
