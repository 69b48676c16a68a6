"""`portal serve` (gunicorn, as an operator runs it) on a free loopback port, for benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._demo import ROOT
from bench.intake_throughput import free_port


@contextmanager
def portal_serve(data_dir: Path, log: Path, **settings: str) -> Iterator[str]:
    """Run the intake over ``data_dir``; yield its URL; stop it afterwards.

    The runtime store goes beside the data directory (not /dev/shm), the
    server's log to ``log``. A server that dies or never listens stops the
    benchmark with its log.
    """
    port = free_port()
    env = dict(os.environ, PORTAL_WORKERS="1", PORTAL_THREADS="8",
               PORTAL_RUNTIME_DIR=str(data_dir.parent / "run"), **settings)  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(data_dir), "serve",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        _wait_until_listening(port, server, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"portal serve did not start:\n{log.read_text()}") from None
            time.sleep(0.2)
