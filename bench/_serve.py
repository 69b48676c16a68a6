"""Servers on free loopback ports for the benchmarks: `portal serve` and plain gunicorn apps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._demo import ROOT


@dataclass(frozen=True)
class Server:
    """A running server process: where it listens and where it logs."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> None:
        """Stop the benchmark with the server's log if the server has died."""
        if self.process.poll() is not None:
            raise SystemExit(f"the server on port {self.port} died:\n{self.log_tail()}")

    def wait_until_listening(self) -> None:
        """Return once the port accepts connections; exit with the log if the server dies."""
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start:\n{self.log_tail()}") from None
                time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, to show beside a failure."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(
    command: list[str], port: int, log: Path, env: Mapping[str, str], wait: bool = True
) -> Iterator[Server]:
    """Run ``command`` (which listens on ``port``); yield it once it listens; stop it after.

    Its output goes to ``log``. A server that dies or never listens stops the
    benchmark with its log. With ``wait`` false it is yielded at once, so
    that several can start together; call :meth:`Server.wait_until_listening`.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=out, stderr=out)
    server = Server(port, process, log)
    try:
        if wait:
            server.wait_until_listening()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def portal_server(
    data_dir: Path, log: Path, settings: Mapping[str, str] | None = None, wait: bool = True
) -> Iterator[Server]:
    """`portal serve` over ``data_dir`` (one worker, 8 threads unless ``settings`` say else).

    ``settings`` are PORTAL_* environment variables. The runtime store goes
    beside the data directory (not /dev/shm).
    """
    port = free_port()
    env = {**os.environ, "PORTAL_WORKERS": "1", "PORTAL_THREADS": "8",
           "PORTAL_RUNTIME_DIR": str(data_dir.parent / "run"), **(settings or {})}  # fmt: skip
    command = [sys.executable, "-m", "portal", "--data-dir", str(data_dir), "serve",
               "--port", str(port)]  # fmt: skip
    with serve(command, port, log, env, wait) as server:
        yield server


@contextmanager
def portal_serve(
    data_dir: Path, log: Path, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Like :func:`portal_server`, yielding only the URL."""
    with portal_server(data_dir, log, settings) as server:
        yield server.url
