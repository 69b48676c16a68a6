"""Helpers for the fault tests: a portal under gunicorn we can kill, its clients, its debris.

The portal runs as ``portal serve`` (gunicorn, two workers) in its own
process group, so that a test can kill a worker, the master, or all of
them with SIGKILL. Clients speak plain HTTP with ``requests``, with
bounded timeouts: a fault must never turn into a hang.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select

from crypto.envelope import open_bytes, seal_bytes
from portal.deploy.gunicorn_conf import _BUSY_TEXT
from portal.storage.models import Part
from portal.web.pow import solve
from tests.conftest import ROOT, DemoPortal

TIMEOUT = 20  # seconds: no request of these tests may take longer


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running ``portal serve``: its master's pid, URL and log."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def workers(self) -> list[int]:
        """The pids of the master's worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker; return their pids."""
        pids = self.workers()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def kill_all(self) -> None:
        """SIGKILL the master and every worker at once (a power cut, an OOM kill of the unit)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait_ready(self, old_workers: tuple[int, ...] = ()) -> None:
        """Return once the portal answers with fresh workers; fail if it dies or hangs."""
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the portal died: {self.log.read_text()[-3000:]}")
            workers = [w for w in self.workers() if w not in old_workers]
            if len(workers) >= 2:
                try:
                    if requests.get(self.url + "/favicon.ico", timeout=2).status_code == 204:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"the portal did not come up: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """End the master and its workers, whatever state they are in."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:  # workers orphaned by a killed master
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def serve(demo: DemoPortal, workdir: Path, name: str, **settings: str) -> Server:
    """Start ``portal serve`` with two workers over ``demo``'s data directory."""
    port = free_port()
    log = workdir / f"{name}.log"
    # 20 threads: a third of them (6) may read bodies at once on TCP, more than the
    # uploads one worker may be handed here, so no send is turned away with a 503
    env = dict(os.environ, PORTAL_WORKERS="2", PORTAL_THREADS="20")
    env.update(demo.environ(**{"PORTAL_POW_BITS": "4", "PORTAL_POW_BURST": "100000",
                               "PORTAL_PLAIN_PER_HOUR": "100000", **settings}))  # fmt: skip
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(demo.data_dir), "serve",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
            start_new_session=True,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", port, log)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


#: how often a report goes again after a busy worker's 503 (as the browser does)
BUSY_SENDS = 10


@dataclass
class Report:
    """One browser's report: what it sealed and the request it sends (same proof on retry)."""

    plaintext: bytes
    fields: dict[str, str]
    files: dict[str, bytes]
    session: requests.Session

    def send(self, url: str) -> requests.Response:
        """POST it to ``/submit`` as the browser does, again after a busy worker's 503.

        A worker at its limit of bodies read at once answers 503 before it reads
        this one (portal/deploy/gunicorn_conf.py): nothing was held or stored, and
        the browser sends the same request again. Any other answer is returned.
        """
        for _ in range(BUSY_SENDS):
            files = {name: (name, io.BytesIO(data), "application/octet-stream")
                     for name, data in self.files.items()}  # fmt: skip
            answer = self.session.post(
                url + "/submit", data=self.fields, files=files, timeout=TIMEOUT
            )
            if answer.status_code != 503 or _BUSY_TEXT.decode() not in answer.text:
                return answer
            time.sleep(1)
        return answer

    def body(self, url: str) -> tuple[dict[str, str], bytes]:
        """The request's headers and body, as bytes, for a client that sends it by hand."""
        files = {name: (name, data, "application/octet-stream")
                 for name, data in self.files.items()}  # fmt: skip
        prepared = self.session.prepare_request(
            requests.Request("POST", url + "/submit", data=self.fields, files=files)
        )
        assert isinstance(prepared.body, bytes)
        return dict(prepared.headers), prepared.body


def new_report(url: str, demo: DemoPortal, number: int, attachment: int = 300_000) -> Report:
    """Fetch the form and a puzzle, solve it, and seal a report with one attachment."""
    session = requests.Session()
    page = session.get(url + "/", timeout=TIMEOUT).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page[:500]
    puzzle = session.get(url + "/pow?for=submit", timeout=TIMEOUT).json()
    recipients = [demo.identity(0).public, demo.identity(1).public]
    plaintext = f'{{"schema": "cso-report/v1", "n": {number}}}'.encode()
    fields = {
        "csrf_token": match.group(1),
        "proof": solve(puzzle["puzzle"], puzzle["bits"]),
        "receipt_locator": f"{number % 10000:04d}",
        "receipt_token": os.urandom(32).hex(),
    }
    files = {
        "report": seal_bytes(plaintext, recipients),
        "attachment": seal_bytes(os.urandom(attachment), recipients),
    }
    return Report(plaintext, fields, files, session)


def start_stalled(url: str, report: Report, fraction: float = 0.5) -> socket.socket:
    """Send the headers and the first ``fraction`` of the body, then stall (a dropped link)."""
    headers, body = report.body(url)
    port = int(url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    head = "POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    connection.sendall(head.encode() + b"\r\n" + body[: int(len(body) * fraction)])
    return connection


def blob_files(data_dir: Path) -> set[str]:
    """Names of the stored blobs."""
    return {p.name for p in (data_dir / "blobs").iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name)}


def temp_files(data_dir: Path) -> list[Path]:
    """Unfinished one-shot uploads, in the blob directory and among the spares."""
    found = list((data_dir / "blobs").glob(".incoming-*"))
    spares = data_dir / ".blobs-spares"
    return found + (list(spares.glob(".incoming-*")) if spares.is_dir() else [])


def database_blobs(url: str) -> set[str]:
    """The blob names the database's rows point at."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(Part.blob)))
    finally:
        engine.dispose()


def decryptable_reports(url: str, demo: DemoPortal) -> set[bytes]:
    """The plaintext of every stored report part that the first reviewer can open."""
    engine = create_engine(url)
    found = set()
    try:
        with engine.connect() as connection:
            names = connection.scalars(select(Part.blob).where(Part.position == 0))
            for name in names:
                data = (demo.data_dir / "blobs" / name).read_bytes()
                found.add(open_bytes(data, demo.identity(0)))
    finally:
        engine.dispose()
    return found


def answered(response: Any) -> bool:
    """Whether a send was answered with success."""
    return isinstance(response, requests.Response) and response.status_code == 200


@dataclass
class Postgres:
    """A throw-away PostgreSQL server that a test may stop and start again (tests/postgres.py)."""

    root: Path
    port: int

    @classmethod
    def create(cls) -> Postgres:
        """initdb and start a server on a free port."""
        from tests.postgres import _as_server_user, _bindir

        root = Path(tempfile.mkdtemp(prefix="cso-pg-faults-"))
        (root / "sockets").mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(root / "sockets", "postgres", "postgres")
        subprocess.run(
            _as_server_user([str(_bindir() / "initdb"), "-D", str(root / "data"), "-U", "portal",
                             "-A", "trust", "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        server = cls(root, free_port())
        server.start()
        return server

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its database."""
        return f"postgresql+psycopg://portal@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *arguments: str) -> None:
        from tests.postgres import _as_server_user, _bindir

        subprocess.run(
            _as_server_user([str(_bindir() / "pg_ctl"), "-D", str(self.root / "data"), *arguments]),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        """Start it (again) on the same port."""
        options = (
            f"-p {self.port} -k {self.root / 'sockets'} -c listen_addresses=127.0.0.1"
            # fsync off is safe here: an immediate stop is not a power cut, the OS keeps
            # what was written. Commits stay synchronous: an immediate stop loses the
            # WAL buffer, and with it reports the portal was told were stored.
            " -c fsync=off -c full_page_writes=off"
        )
        self._ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        """Stop it at once, as a crash would."""
        self._ctl("-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        """Stop it if it runs and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
