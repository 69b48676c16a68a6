"""`portal serve` as a real subprocess on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
    """Return once the server on ``port`` answers HTTP; fail the test if it dies or hangs.

    An answer, not only an accepted connection: gunicorn's master listens
    before any worker has built the application (and a connection to one's
    own ephemeral port can even succeed with nothing listening at all).
    """
    deadline = time.monotonic() + 40
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                probe.sendall(b"GET /favicon.ico HTTP/1.1\r\nHost: probe\r\n\r\n")
                if probe.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail(f"the portal did not start: {log.read_text()}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """End a server started in its own session: the master, then anything it left.

    A master that does not finish its graceful stop in time is killed with its
    workers, so no worker outlives its test holding the port and its threads.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers orphaned by their master


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
    # 6 threads: two may read request bodies at once (a third), as tus tests need
    env = dict(os.environ, TMPDIR=str(server_tmp), PORTAL_WORKERS="1", PORTAL_THREADS="6")
    env.update(demo.environ(**{"PORTAL_POW_BITS": "6", **settings}))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(demo.data_dir), "serve",
             "--port", str(port), "--role", role],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            yield {"url": f"http://127.0.0.1:{port}", "tmp": server_tmp, "log": log}
        finally:
            stop_server(process)


def fresh_demo(template: DemoPortal, root: Path) -> DemoPortal:
    """A copy of the demo data directory under ``root`` with a new, empty SQLite database.

    For a module that runs one portal for all its tests (a session's demo keys,
    its own reports).
    """
    from portal.storage.db import upgrade

    data_dir = root / "var"
    shutil.copytree(
        template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3", "blobs")
    )
    (data_dir / "blobs").mkdir(mode=0o700)
    database_url = f"sqlite:///{data_dir / 'portal.sqlite3'}"
    upgrade(database_url)
    return DemoPortal(data_dir, template.reviewers, template.passphrase, database_url)


def form_keys(page: str) -> dict[str, str]:
    """The hidden keys a report form carries (``csrf_token``, ``once``), scraped from its page."""
    import re

    keys = dict(re.findall(r'<input type="hidden" name="(csrf_token|once)" value="([^"]+)"', page))
    assert set(keys) == {"csrf_token", "once"}, "the page has no report form"
    return keys


def plain_form(client: Any, category: str = "other") -> dict[str, str]:
    """Step 2 of the no-JavaScript form for ``category``, through a Flask test client: its keys."""
    page = client.get("/", query_string={"category": category})
    assert page.status_code == 200, page.data
    return form_keys(page.data.decode())


def send_plain(client: Any, fields: dict[str, Any], *, follow: bool = True) -> Any:
    """Fill step 2 and send it without JavaScript, as a browser would, through a test client.

    ``fields`` are the form's fields (values, lists, or files as (stream,
    name, type)); the one-time key and the form token are added unless
    given. Returns the answer to the POST, or with ``follow`` the page it
    leads to (the receipt, or the form drawn again after a refusal).
    """
    form = {**plain_form(client), **fields}
    return client.post(
        "/submit-plain", data=form, content_type="multipart/form-data", follow_redirects=follow
    )


def submit_plain(
    url: str, fields: dict[str, str | list[str]], files: list[tuple[str, bytes, str]] = ()
) -> str:
    """Send the no-JavaScript form over real HTTP, as a browser would; return the page.

    Step 1 is skipped (it only picks the category): step 2 is fetched with
    the category, its form token and one-time key are sent with the fields,
    and the 303 to the receipt page is followed with the session cookie.
    """
    import http.cookiejar
    import secrets
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    category = fields.get("category")
    query = urllib.parse.urlencode({"category": category if isinstance(category, str) else "other"})
    with opener.open(f"{url}/?{query}") as response:
        keys = form_keys(response.read().decode())
    boundary = secrets.token_hex(12)
    body = bytearray()
    pairs = list(keys.items())
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
    with opener.open(request) as response:  # follows the 303 to /received
        return str(response.read().decode())
