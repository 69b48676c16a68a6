"""A rendered host tree, and the real stack on loopback: nginx in front of gunicorn.

:func:`render_host` runs ``portal deploy-configs --root ROOT`` so that every
host path in the files lies under ``ROOT`` and the tree works in place;
:func:`start_stack` then runs the rendered units' ``ExecStart`` under
``systemd-socket-activate`` (the socket as the .socket unit makes it, the
settings as its ``EnvironmentFile`` gives them) and nginx with the rendered
``nginx.conf``. Only the listen addresses are the test's own: loopback ports.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portal.cli.main import main as portal_main
from tests.conftest import ROOT, DemoPortal
from tests.integration.portal_server import free_port

NGINX = "/usr/sbin/nginx"
DOMAIN = "localhost"


@dataclass
class Host:
    """A rendered host tree under ``root`` and the loopback ports it listens on."""

    root: Path
    ports: dict[str, int]

    def path(self, host_path: str) -> Path:
        """Where a host path (``/etc/…``) lies in this tree."""
        return self.root / host_path.lstrip("/")

    @property
    def data_dir(self) -> Path:
        """The portal's data directory."""
        return self.path("/var/lib/cso-portal")

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate, which is its own CA."""
        return self.path("/etc/cso-portal/tls/fullchain.pem")

    @property
    def https_url(self) -> str:
        """The TLS listener."""
        return f"https://{DOMAIN}:{self.ports['https']}"

    @property
    def onion_url(self) -> str:
        """Where tor would hand over onion connections."""
        return f"http://127.0.0.1:{self.ports['onion']}"

    @property
    def sync_url(self) -> str:
        """Where tor would hand over connections to the sync onion."""
        return f"http://127.0.0.1:{self.ports['sync']}"

    def environment(self) -> dict[str, str]:
        """The settings of the rendered EnvironmentFile."""
        settings = {}
        for line in self.path("/etc/cso-portal/portal.env").read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                settings[name] = value
        return settings

    def exec_start(self, unit: str) -> list[str]:
        """The ExecStart command line of a rendered unit."""
        text = self.path(f"/etc/systemd/system/{unit}").read_text()
        line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
        return shlex.split(line.removeprefix("ExecStart="))


def render_host(root: Path, **options: str) -> Host:
    """Render every configuration file for a host rooted at ``root``, on free ports."""
    ports = {name: free_port() for name in ("https", "http", "onion", "sync")}
    argv = ["deploy-configs", "--out", str(root), "--root", str(root), "--domain", DOMAIN,
            "--https-listen", f"127.0.0.1:{ports['https']}",
            "--http-listen", f"127.0.0.1:{ports['http']}",
            "--onion-listen", f"127.0.0.1:{ports['onion']}",
            "--sync-onion-listen", f"127.0.0.1:{ports['sync']}",
            "--workers", "1", "--threads", "4"]  # fmt: skip
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", value]
    assert portal_main(argv) == 0
    host = Host(root, ports)
    for folder in ("/var/log/nginx", "/var/lib/nginx", "/run/cso-portal", "/var/log/cso-portal"):
        host.path(folder).mkdir(parents=True, exist_ok=True)
    # As on a host, /etc, /run, /var… can be walked by anyone (nginx's workers
    # run as www-data); `portal` made them private to whoever rendered them.
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)
    venv = host.path("/opt/cso-portal/venv")
    venv.mkdir(parents=True, exist_ok=True)
    (venv / "bin").unlink(missing_ok=True)
    (venv / "bin").symlink_to(ROOT / ".venv" / "bin")
    write_certificate(host.ca_file, host.path("/etc/cso-portal/tls/privkey.pem"), DOMAIN)
    return host


def write_certificate(cert: Path, key: Path, name: str, days: int = 60) -> None:
    """A self-signed ECDSA certificate for ``name``."""
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)


@dataclass
class Stack:
    """A running stack: the host tree, its processes, the gunicorn log."""

    host: Host
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def logs(self) -> list[Path]:
        """Every log file the stack has written."""
        return sorted(p for p in self.host.path("/var/log").rglob("*") if p.is_file())


def _wait_for(check: object, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not check():  # type: ignore[operator]
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')}")
        time.sleep(0.05)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def start_gunicorn(host: Host, role: str, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """The rendered unit's ExecStart, on the socket its .socket unit would make."""
    sock = host.path(f"/run/cso-portal/{role}.sock")
    sock.unlink(missing_ok=True)
    environment = {**host.environment(), "TMPDIR": str(host.path("/tmp")), **settings}
    # what systemd's RuntimeDirectory= would make for the intake
    environment.setdefault("PORTAL_RUNTIME_DIR", str(host.path("/run/cso-portal-intake")))
    host.path("/tmp").mkdir(exist_ok=True)
    command = ["systemd-socket-activate", "--listen", str(sock)]
    for name, value in environment.items():
        command += ["-E", f"{name}={value}"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, *host.exec_start(f"cso-portal-{role}.service")],
            stdout=out, stderr=out, cwd="/",
        )  # fmt: skip
    _wait_for(sock.exists, f"the {role} socket", process, log)
    sock.chmod(0o666)  # the .socket unit gives it to www-data; here nginx may run as anyone
    return process


def start_nginx(host: Host, config: Path | None = None) -> subprocess.Popen[bytes]:
    """nginx with the rendered nginx.conf, in the foreground."""
    log = host.path("/var/log/nginx/stderr.log")
    conf = config or host.path("/etc/nginx/nginx.conf")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-g", "daemon off;"], stdout=out, stderr=out
        )
    _wait_for(lambda: _connects(host.ports["onion"]), "nginx", process, log)
    return process


def wake(url: str) -> None:
    """Wait until ``url`` answers with anything but a server error."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30):
                return
        except urllib.error.HTTPError as error:
            error.close()
            if error.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} does not answer")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this module started, and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_stack(root: Path, demo: DemoPortal) -> Iterator[Stack]:
    """Render a host under ``root``, put the demo data in place, run it all."""
    root.mkdir(mode=0o755)  # nginx workers run as www-data when the tests run as root
    host = render_host(root)
    shutil.copytree(demo.data_dir, host.data_dir)
    stack = Stack(host)
    gunicorn_log = host.path("/var/log/cso-portal/gunicorn.log")
    with ExitStack() as cleanup:
        for role in ("intake", "sync"):
            process = start_gunicorn(host, role, gunicorn_log)
            cleanup.callback(stop, process)
            stack.processes.append(process)
        nginx = start_nginx(host)
        cleanup.callback(stop, nginx)
        stack.processes.append(nginx)
        # systemd-socket-activate starts gunicorn on the first connection, as
        # systemd would: make it now, so that tests see a running portal.
        for url in (host.onion_url + "/favicon.ico", host.sync_url + "/reviewer-sync/v1/"):
            wake(url)
        yield stack


def environ_without_proxy() -> dict[str, str]:
    """The environment minus proxy settings, for tools that talk to loopback."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
