"""What reaches the server's log when someone sends it garbage, or when the error page breaks.

A log that holds client addresses is a list of who contacted the portal, and
one that holds exception text can hold whatever a request carried. The
portal runs here as the README's quick start runs it (``portal serve`` on a
loopback TCP port); the client connects from a different loopback address
(127.0.0.2), so that its address cannot be confused with the listener's in
the start-up banner. Everything the server writes, stdout and stderr, is read.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, DemoPortal
from tests.integration.portal_server import free_port, wait_until_listening

CLIENT_ADDRESS = "127.0.0.2"
CANARY = "CANARY-7f3e-LOG"
_CANDIDATE = re.compile(r"[0-9A-Fa-f:.\[\]]{3,}")


@contextmanager
def serve(demo: DemoPortal, workdir: Path, cwd: Path = ROOT) -> Iterator[dict[str, object]]:
    """``portal serve`` from ``cwd`` on a free port; stdout and stderr into two files."""
    port = free_port()
    out, err = workdir / "stdout.log", workdir / "stderr.log"
    env = dict(os.environ, PORTAL_WORKERS="1", PORTAL_THREADS="4", TMPDIR=str(workdir))
    env.update(demo.environ(PORTAL_POW_BITS="6"))
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(demo.data_dir), "serve",
             "--port", str(port)],
            cwd=cwd, env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        wait_until_listening(port, process, err)
        yield {"port": port, "logs": (out, err)}
    finally:
        process.terminate()
        process.wait(timeout=30)


def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data`` from the client address; return whatever comes back."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=10, source_address=(CLIENT_ADDRESS, 0)
    ) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def addresses_in(text: str) -> list[str]:
    """Every IPv4 or IPv6 address written anywhere in ``text`` (with or without a port)."""
    found = []
    for token in _CANDIDATE.findall(text):
        for candidate in (token.strip("[]:."), token.rpartition(":")[0].strip("[]")):
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            found.append(token)
            break
    return found


def read_logs(logs: tuple[Path, Path]) -> tuple[str, str]:
    """(stdout, stderr) once the server has had a moment to write."""
    time.sleep(0.5)
    out, err = logs
    return out.read_text(errors="replace"), err.read_text(errors="replace")


MALFORMED = {
    "bad request line": b"GET /" + CANARY.encode() + b" HTTP/1.1 trailing\r\nHost: x\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: " % i + CANARY.encode() + b"\r\n" for i in range(120))
    + b"\r\n",
    "bad byte in a header name": b"GET / HTTP/1.1\r\nHost: x\r\nX-"
    + CANARY.encode()
    + b"\x01: v\r\n\r\n",
    "bad byte in a header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: a\x00"
    + CANARY.encode()
    + b"\r\n\r\n",
    "overlong request line": b"GET /" + CANARY.encode() * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "overlong header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: "
    + CANARY.encode() * 900
    + b"\r\n\r\n",
    "unknown HTTP version": b"GET /" + CANARY.encode() + b" HTTP/7.1\r\nHost: x\r\n\r\n",
}


@pytest.fixture(scope="module")
def quick_start(
    demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """The quick-start portal, shared by the malformed-request tests."""
    with serve(demo_template, tmp_path_factory.mktemp("log-leaks")) as running:
        yield running


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_request_leaves_no_address_or_request_text_in_the_log(
    kind: str, quick_start: dict[str, object]
) -> None:
    port = quick_start["port"]
    assert isinstance(port, int)
    answer = send_raw(port, MALFORMED[kind])
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]  # refused, not served
    logs = quick_start["logs"]
    assert isinstance(logs, tuple)
    stdout, stderr = read_logs(logs)
    for text in (stdout, stderr):
        assert CLIENT_ADDRESS not in text
        assert CANARY not in text
    assert addresses_in(stderr) == [], stderr


@pytest.fixture
def broken_tree(tmp_path: Path) -> Path:
    """This release's code with the error page's template missing (a bad install)."""
    tree = tmp_path / "release"
    for package in ("portal", "crypto", "incident_db", "reviewer_tool", "deploy"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tree / "portal" / "web" / "templates" / "error.html").unlink()
    return tree


def test_an_error_page_that_cannot_render_logs_only_the_exception_class(
    demo_template: DemoPortal, broken_tree: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "run"
    workdir.mkdir()
    with serve(demo_template, workdir, cwd=broken_tree) as running:
        port = running["port"]
        assert isinstance(port, int)
        request = (
            f"GET /{CANARY}?receipt={CANARY} HTTP/1.1\r\nHost: x\r\n"
            f"X-Canary: {CANARY}\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = send_raw(port, request)
        logs = running["logs"]
        assert isinstance(logs, tuple)
        stdout, stderr = read_logs(logs)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 "), answer[:200]
    assert b"content-type: text/plain" in head.lower()
    assert CANARY.encode() not in body
    assert b"content-security-policy:" in head.lower()  # still under the portal's headers
    for text in (stdout, stderr):
        assert CANARY not in text
        assert CLIENT_ADDRESS not in text
        assert "Traceback" not in text
        assert "error.html" not in text  # the exception's message
    assert "TemplateNotFound" in stderr  # its class, which is all the operator needs
