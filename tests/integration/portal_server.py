"""`portal serve` as a real subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, DemoPortal


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``port`` accepts connections; fail the test if the server dies or hangs."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"the portal did not start: {log.read_text()}")
            time.sleep(0.2)


@contextmanager
def serve_portal(
    demo: DemoPortal, workdir: Path, role: str = "intake", **settings: str
) -> Iterator[dict[str, Any]]:
    """Run the portal (or its sync API) under gunicorn; yield its URL, TMPDIR and log path.

    stdout carries only the start-up banner; stderr is the server's log,
    which tests search for client addresses and canaries.
    """
    port = free_port()
    server_tmp = workdir / f"{role}-tmp"
    server_tmp.mkdir()
    log = workdir / f"{role}.log"
    env = dict(os.environ, TMPDIR=str(server_tmp), PORTAL_WORKERS="1", PORTAL_THREADS="4")
    env.update(demo.environ(**{"PORTAL_POW_BITS": "6", **settings}))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(demo.data_dir), "serve",
             "--port", str(port), "--role", role],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            yield {"url": f"http://127.0.0.1:{port}", "tmp": server_tmp, "log": log}
        finally:
            process.terminate()
            process.wait(timeout=30)


def submit_plain(
    url: str, fields: dict[str, str | list[str]], files: list[tuple[str, bytes, str]] = ()
) -> str:
    """Send the no-JavaScript form over real HTTP, as a browser would; return the page."""
    import http.cookiejar
    import re
    import secrets
    import urllib.request

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(url + "/") as response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode())
    assert token is not None
    boundary = secrets.token_hex(12)
    body = bytearray()
    pairs = [("csrf_token", token.group(1))]
    for name, value in fields.items():
        pairs += [(name, v) for v in (value if isinstance(value, list) else [value])]
    for name, value in pairs:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    for filename, data, media_type in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
            f'filename="{filename}"\r\nContent-Type: {media_type}\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url + "/submit-plain",
        data=bytes(body),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with opener.open(request) as response:
        return str(response.read().decode())
