"""The reporter on a satellite link, in real Chromium, through a shaped link on loopback.

The link (tests/integration/shaper.py) keeps the 800 ms round trips of a
geostationary hop; the rate is higher than a ship's 64 kbit/s so that the
whole file stays within a couple of minutes (bench/satellite.py measures at
64 kbit/s). The portal runs as deployed: the rendered nginx site in front of
the rendered gunicorn units. First the shaper itself is held to its
figures, then:

* a link cut for 30 s in the middle of an upload: exactly one submission
  arrives, the report decrypts, and less than 10 % of the bytes are sent
  twice; while the link is down, the page says so. Also through `portal
  serve` alone (gunicorn on TCP, whose read rules end a silent request after
  15 s, but leave a tus PATCH to the portal's own upload pace);
* a connection reset in the middle of an upload: the upload resumes from the
  last byte the portal acknowledged, not from zero;
* a send pressed while the scripts are still loading never reaches the
  server-encryption path (/submit-plain), counted on the link itself.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from crypto.envelope import open_bytes
from portal.config import load_config
from tests.conftest import DemoPortal
from tests.deploy.stack import running_stack
from tests.integration.chromium import chromium
from tests.integration.portal_server import fresh_demo, serve_portal
from tests.integration.satellite_visit import (
    CATEGORY,
    MARKS,
    fill_report,
    jpeg_photo,
    stored_parts,
    wait_for_encryption,
)
from tests.integration.shaper import SATELLITE_DELAY, Shaper

#: faster than a ship's 64 kbit/s to keep the tests short; the round trips stay 800 ms
RATE = 512_000
PHOTO = 400 * 1024  # about six seconds of upload at RATE
#: for the reset: what a reset costs is time-bound (the bytes of a round trip or two),
#: so its share of the upload is judged nearer a ship's rate
RESET_RATE = 128_000
RESET_PHOTO = 200 * 1024
PLAIN_POST = b"POST /submit-plain "
#: round trips timed on the bare link
PINGS = 6

# --- the shaper itself ------------------------------------------------------------------


@contextmanager
def loopback_server(answer: bytes = b"") -> Iterator[tuple[tuple[str, int], list[bytes]]]:
    """A TCP server: answers each read with ``answer`` (if any), records what it got.

    A read of ``GET`` is answered with ``answer`` and then the end of the
    stream, ``PING`` with ``PONG``, ``BYE`` with ``ANSWER`` and then a reset.
    A connection the other side reset is recorded as ``b"RST"``.
    """
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def handle(connection: socket.socket) -> None:
        with connection:
            try:
                while data := connection.recv(65536):
                    received.append(data)
                    if data.startswith(b"GET"):
                        connection.sendall(answer)
                        connection.shutdown(socket.SHUT_WR)
                    elif data.startswith(b"PING"):
                        connection.sendall(b"PONG")
                    elif data.startswith(b"BYE"):  # an answer, then a reset
                        connection.sendall(b"ANSWER")
                        linger = struct.pack("ii", 1, 0)
                        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        return
            except ConnectionResetError:
                received.append(b"RST")

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname(), received
    finally:
        listener.close()


def ping(connection: socket.socket) -> float:
    """Seconds for one small request and its answer."""
    started = time.monotonic()
    connection.sendall(b"PING")
    assert connection.recv(16) == b"PONG"
    return time.monotonic() - started


def test_the_link_delays_each_way_and_holds_its_rate() -> None:
    size = 48_000
    with (
        loopback_server(b"x" * size) as (address, _),
        Shaper(address, rate=256_000, delay=0.2) as link,
    ):
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as connection:
            trips = [ping(connection) for _ in range(PINGS)]
            started = time.monotonic()
            connection.sendall(b"GET")
            got = b""
            while data := connection.recv(65536):
                got += data
            elapsed = time.monotonic() - started
        assert trips[0] >= 0.8, trips  # the first also waits for the TCP handshake
        # never faster than the delay; a busy machine may hold up one trip now and then,
        # a link that added delay of its own would slow them all
        assert all(trip >= 0.4 for trip in trips[1:]), trips
        assert statistics.median(trips[1:]) < 0.46, trips
        floor = size * 8 / 256_000 + 0.4  # the transfer at the rate, plus a round trip
        assert floor <= elapsed < floor * 1.1, elapsed
        assert len(got) == size
        assert link.bytes_down == size + PINGS * 4
        assert link.bytes_up == len(b"GET") + PINGS * 4


def test_the_link_holds_few_bytes_of_its_own() -> None:
    """Backpressure: beyond the sender's own kernel buffer, little waits in the link.

    What a sender has written but the server has not received sits in the
    sender's kernel (Linux grows that buffer with the congestion window, out
    of the shaper's reach, as it would on a real satellite path) and in the
    link: the proxy's small socket buffers and one delay's worth of bytes in
    flight. Without backpressure the link itself would take everything.
    """
    rate, delay = 128_000, 0.4
    with loopback_server() as (address, received), Shaper(address, rate=rate, delay=delay) as link:
        connection = socket.create_connection(("127.0.0.1", link.port), timeout=30)
        connection.setblocking(False)
        written = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                written += connection.send(b"u" * 4096)
            except BlockingIOError:
                time.sleep(0.05)
        sender_buffer = connection.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        delivered = sum(len(r) for r in received)
        connection.close()
    # 3 s at 16 KB/s, less the handshake and the delay (1.2 s), reached the server
    assert 0.8 * (3 - 3 * delay) * rate / 8 <= delivered <= 1.1 * 3 * rate / 8
    in_the_link = written - delivered - sender_buffer
    allowance = 2 * 2 * 8192 + rate / 8 * delay + 2 * link.chunk  # two kernels' buffers, one delay
    assert in_the_link < allowance, (written, delivered, sender_buffer)


def test_a_cut_holds_connections_open_and_relays_nothing() -> None:
    with loopback_server() as (address, _), Shaper(address, rate=256_000, delay=0.2) as link:
        connection = socket.create_connection(("127.0.0.1", link.port), timeout=10)
        ping(connection)
        before = link.bytes_up
        link.cut(1.5)
        assert link.is_down
        started = time.monotonic()
        connection.sendall(b"PING")
        time.sleep(1.0)
        assert link.bytes_up == before  # nothing crossed while the link was down
        assert connection.recv(16) == b"PONG"  # the same connection, afterwards
        assert 1.5 + 0.4 <= time.monotonic() - started < 1.5 + 0.6
        late = socket.create_connection(("127.0.0.1", link.port), timeout=10)
        assert ping(late) < 0.9  # the link is back for new connections too (handshake, ping)
        connection.close()
        late.close()


def test_a_reset_aborts_both_sides_with_rst() -> None:
    with loopback_server() as (address, received), Shaper(address, delay=0.05) as link:
        connection = socket.create_connection(("127.0.0.1", link.port), timeout=10)
        ping(connection)
        assert link.reset() == 1
        with pytest.raises(ConnectionResetError):
            connection.recv(16)  # an RST, not the end of a stream (that would be b"")
        deadline = time.monotonic() + 5
        while b"RST" not in received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"RST" in received
        connection.close()


def test_a_server_reset_arrives_after_what_the_server_sent_before_it() -> None:
    """As on a real network: an answer, then a reset, arrive in that order, after the delay."""
    with loopback_server() as (address, _), Shaper(address, delay=0.2) as link:
        connection = socket.create_connection(("127.0.0.1", link.port), timeout=10)
        ping(connection)
        started = time.monotonic()
        connection.sendall(b"BYE")
        assert connection.recv(16) == b"ANSWER"
        assert time.monotonic() - started >= 0.4
        with pytest.raises(ConnectionResetError):
            connection.recv(16)
        connection.close()


def test_watched_bytes_and_requests_are_seen_across_reads() -> None:
    pattern = b"POST /submit-plain "
    with (
        loopback_server() as (address, received),
        Shaper(address, rate=10**9, delay=0, watch=[pattern], trace=True) as link,
    ):
        connection = socket.create_connection(("127.0.0.1", link.port), timeout=10)
        pieces = (b"xx" + pattern[:7], pattern[7:] + b"HTTP/1.1\r\nUpload-Off",
                  b"set: 42\r\n\r\n", pattern + pattern)  # fmt: skip
        for piece in pieces:
            connection.sendall(piece)
            time.sleep(0.1)  # separate reads on the proxy's side
        connection.close()
        time.sleep(0.1)
        assert link.seen(pattern) == 3
        assert b"".join(received).count(pattern) == 3
        assert [line for _, line in link.trace or []] == [
            "POST /submit-plain HTTP/1.1",
            "Upload-Offset: 42",
        ]


# --- the reporter, in Chromium --------------------------------------------------------


@pytest.fixture(scope="module")
def portal(demo_template: DemoPortal) -> Iterator[dict[str, Any]]:
    """The portal as deployed: the rendered nginx site in front of the rendered gunicorn units.

    nginx matters here: it streams tus PATCHes through unbuffered, and when the
    portal refuses one early it closes the connection at once, which stops the
    browser's upload (gunicorn alone would first read on for 64 KB).
    """
    root = Path(tempfile.mkdtemp(prefix="cso-satellite-"))
    root.chmod(0o755)  # nginx's workers run as www-data
    try:
        with running_stack(root / "host", demo_template) as stack:
            host = stack.host
            demo = DemoPortal(host.data_dir, demo_template.reviewers, demo_template.passphrase)
            settings = host.environment()
            database_url = load_config(settings, data_dir=host.data_dir).database_url
            yield {"url": host.onion_url, "demo": demo, "database_url": database_url}
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def served(
    demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`portal serve` alone, as `make run` starts it: gunicorn on TCP, no nginx in front."""
    root = tmp_path_factory.mktemp("served")
    demo = fresh_demo(demo_template, root)
    with serve_portal(demo, root) as server:
        yield {"url": server["url"], "demo": demo, "database_url": demo.database_url}


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo that does not compress, so every byte of it must cross the link."""
    return jpeg_photo(tmp_path_factory.mktemp("photo") / "IMG_0042.jpg", PHOTO)


@pytest.fixture(scope="module")
def smaller_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller photo, for the slower link."""
    return jpeg_photo(tmp_path_factory.mktemp("photo") / "IMG_0043.jpg", RESET_PHOTO)


def reports(portal: dict[str, Any]) -> list[list[Path]]:
    """The reports stored so far, each as its blob files."""
    return stored_parts(portal["demo"].data_dir, portal["database_url"])


@contextmanager
def reporter(portal: dict[str, Any], tmp_path: Path, **link: Any) -> Iterator[tuple[Any, Shaper]]:
    """A fresh Chromium whose every request crosses a shaped link to the portal."""
    problems: list[str] = []
    link.setdefault("rate", RATE)
    with (
        Shaper(_address(portal["url"]), delay=SATELLITE_DELAY, watch=[PLAIN_POST], trace=True,
               **link) as shaper,
        chromium(tmp_path / "profile") as context,
    ):  # fmt: skip
        context.add_init_script(MARKS)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        yield page, shaper
    assert problems == []


def story(shaper: Shaper) -> str:
    """What crossed the link (but the page's static files), for a failure's message."""
    lines = [f"{second:7.2f} s  {line}" for second, line in shaper.trace or []
             if not line.startswith("GET /static/")]  # fmt: skip
    return "\n" + "\n".join(lines)


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def wait_for_bytes(shaper: Shaper, since: int, size: int, timeout: float = 60) -> None:
    """Wait until ``size`` bytes have crossed the link towards the portal since ``since``."""
    deadline = time.monotonic() + timeout
    while shaper.bytes_up - since < size:
        assert time.monotonic() < deadline, "the upload did not get going"
        time.sleep(0.05)


def send_with_photo(page: Any, shaper: Shaper, photo: Path) -> int:
    """Open the form, wait for encryption, fill it in, press send; bytes sent before pressing."""
    page.goto(shaper.url + "/")
    assert wait_for_encryption(page, 60) == "ready"
    fill_report(page, "Robbers boarded at anchor; SATELLITE-CANARY.", photo)
    before = shaper.bytes_up
    page.click("#send")
    return before


def check_one_report_arrived(portal: dict[str, Any], before: int) -> int:
    """Exactly one new report, which decrypts; the size of its sealed envelopes."""
    stored = reports(portal)
    assert len(stored) == before + 1
    parts = stored[-1]
    report = json.loads(open_bytes(parts[0].read_bytes(), portal["demo"].identity(0)))
    assert report["encrypted_by"] == "browser"
    assert report["report"]["narrative"].endswith("SATELLITE-CANARY.")
    assert len(parts) == 2  # the report and the photo
    return sum(path.stat().st_size for path in parts)


@pytest.mark.parametrize("stack", ["portal", "served"], ids=["nginx", "portal-serve"])
def test_a_link_cut_for_30_s_mid_upload_costs_little_and_is_told(
    stack: str, request: pytest.FixtureRequest, photo: Path, tmp_path: Path
) -> None:
    portal = request.getfixturevalue(stack)
    before = len(reports(portal))
    with reporter(portal, tmp_path) as (page, shaper):
        sent_before = send_with_photo(page, shaper, photo)
        wait_for_bytes(shaper, sent_before, int(PHOTO * 0.4))
        shaper.cut(30)
        time.sleep(12)  # more than the 10 s without acknowledged progress
        status = page.text_content("#status") or ""
        assert "The link to the portal is down." in status
        assert "Sending will resume by itself" in status
        assert shaper.is_down
        page.wait_for_selector("#receipt", state="visible", timeout=120_000)
        sent = shaper.bytes_up - sent_before
        assert shaper.seen(PLAIN_POST) == 0
    payload = check_one_report_arrived(portal, before)
    assert sent - payload < 0.10 * payload, (sent, payload, story(shaper))


def test_a_reset_mid_upload_resumes_from_the_acknowledged_byte(
    portal: dict[str, Any], smaller_photo: Path, tmp_path: Path
) -> None:
    before = len(reports(portal))
    with reporter(portal, tmp_path, rate=RESET_RATE) as (page, shaper):
        sent_before = send_with_photo(page, shaper, smaller_photo)
        wait_for_bytes(shaper, sent_before, int(RESET_PHOTO * 0.5))
        shaper.note("reset")
        assert shaper.reset() >= 1
        time.sleep(0.5)  # the portal notices the reset: what it holds now is what counts
        patches = [t for _, t in shaper.trace or [] if t.startswith("PATCH")]
        upload = patches[-1].split()[1]
        held = stored_offset(portal["url"], upload)
        page.wait_for_selector("#receipt", state="visible", timeout=120_000)
        sent = shaper.bytes_up - sent_before
    payload = check_one_report_arrived(portal, before)
    trace = shaper.trace or []
    after = trace[trace.index(next(t for t in trace if t[1] == "-- reset")) :]
    offsets = [int(t.split()[-1]) for _, t in after if t.lower().startswith("upload-offset")]
    # the page went on from exactly the byte the portal held, half-way in...
    assert held >= 0.3 * RESET_PHOTO
    assert held in offsets, (held, story(shaper))
    # ...and sent far less again than a restart from zero would (half the photo): only
    # what was in flight at the reset, and what the browser itself re-sent on its own
    # (Chromium repeats a request cut off on a reused connection) before the refusal
    assert sent - payload < 0.25 * payload, (sent, payload, story(shaper))


def stored_offset(url: str, upload: str) -> int:
    """The bytes the portal holds of ``upload``, asked directly (not through the link)."""
    host, port = _address(url)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("HEAD", upload, headers={"Tus-Resumable": "1.0.0"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return int(response.getheader("Upload-Offset", "-1"))
    finally:
        connection.close()


def test_a_send_pressed_while_scripts_load_never_reaches_the_server_encryption_path(
    portal: dict[str, Any], tmp_path: Path
) -> None:
    before = len(reports(portal))
    with reporter(portal, tmp_path, rate=256_000) as (page, shaper):
        step_two = f"{shaper.url}/?category={CATEGORY}"
        page.goto(step_two, wait_until="commit")
        page.wait_for_selector("#send", state="visible")
        state = "document.documentElement.dataset.encryption"
        assert page.evaluate(state) is None  # no module has run yet
        page.fill("textarea[name=narrative]", "Pressed early; SATELLITE-CANARY.")
        page.click("#send")  # a plain button: without the module it does nothing
        page.press("input[name=place_name]", "Enter")  # nor may an implicit submission
        page.wait_for_function(f"() => {state} !== undefined")
        assert page.evaluate(state) == "preparing"  # the keys are still on their way
        page.click("#send")  # now the module waits for encryption, and says so
        assert "preparing" in (page.text_content("#status") or "").lower()
        assert wait_for_encryption(page, 60) == "ready"
        # the send pressed while preparing goes on by itself, encrypted in the browser
        page.wait_for_selector("#receipt", state="visible", timeout=60_000)
        assert shaper.seen(PLAIN_POST) == 0
    stored = reports(portal)
    assert len(stored) == before + 1
    report = json.loads(open_bytes(stored[-1][0].read_bytes(), portal["demo"].identity(0)))
    assert report["encrypted_by"] == "browser"
    assert report["report"]["narrative"] == "Pressed early; SATELLITE-CANARY."
