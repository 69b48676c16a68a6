"""tus 1.0.0, as the portal speaks it, checked by someone else's client.

The client is tuspy (``tusclient``, the tus project's Python client from
PyPI), never our own code; the server is the real portal under gunicorn
(``portal serve``, gthread) on loopback. Beside tuspy, raw sockets do what a
satellite link does to a PATCH: cut it with a reset half way, or keep it
open while the reporter's browser asks how far it got.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from crypto.envelope import open_bytes, seal_bytes
from portal.storage import pending
from portal.storage.models import Part, Submission
from portal.storage.runtime import FILE_NAME
from portal.web.pow import solve
from portal.web.tus_patch import PIECE
from portal.web.upload_pace import Pace
from tests.conftest import DemoPortal
from tests.integration.portal_server import fresh_demo, serve_portal

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
IDLE_SECONDS = 3
#: bytes a second a PATCH must average over twice the idle limit (the default is 512:
#: higher here, so that a trickle that keeps inside the idle limit is seen quickly)
MIN_RATE = 5000
#: the longest a PATCH may take here (600 s by default)
PATCH_SECONDS = 12


@pytest.fixture(scope="module")
def portal(
    demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoPortal, str]]:
    """One portal under gunicorn for the module, on SQLite, with short limits on a PATCH."""
    root = tmp_path_factory.mktemp("tus")
    demo = fresh_demo(demo_template, root)
    settings = {
        "PORTAL_UPLOAD_IDLE_SECONDS": str(IDLE_SECONDS),
        "PORTAL_UPLOAD_MIN_RATE": str(MIN_RATE),
        "PORTAL_UPLOAD_PATCH_SECONDS": str(PATCH_SECONDS),
    }
    with serve_portal(demo, root, **settings) as served:
        yield demo, served["url"]
        log = served["log"].read_text()
    # resets, silences and refusals are all expected here: none may be a crash
    assert "internal error" not in log
    assert "failed (details withheld" not in log


class Reporter:
    """A browser's side of the form calls, over real HTTP with its cookie."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.receipt_token = os.urandom(32).hex()  # each report has its own receipt

    def token(self) -> str:
        token: str = self.http.get(self.url + "/form-token").json()["csrf_token"]
        return token

    def begin(self, parts: int = 2, total: int = 10**6) -> str:
        puzzle = self.http.get(self.url + "/pow?for=submit").json()
        form = {"csrf_token": self.token(), "proof": solve(puzzle["puzzle"], puzzle["bits"])}
        answer = self.http.post(
            self.url + "/submit/begin", data={**form, "parts": parts, "total": total}
        )
        assert answer.status_code == 201, answer.text
        draft: str = answer.json()["draft"]
        return draft

    def finish(self, draft: str, report: str, *attachments: str) -> requests.Response:
        form = {"csrf_token": self.token(), "draft": draft, "report": _id(report)}
        form |= {"receipt_locator": "0042", "receipt_token": self.receipt_token}
        return self.http.post(
            self.url + "/submit/finish", data={**form, "attachment": [_id(a) for a in attachments]}
        )


def _id(upload_url: str) -> str:
    return upload_url.rsplit("/", 1)[1]


def _uploader(portal_url: str, draft: str, envelope: bytes, **options: Any) -> Any:
    """A tuspy uploader of ``envelope`` into ``draft`` (``url=``: resume an upload)."""
    client = tus_client.TusClient(portal_url + "/uploads")
    return client.uploader(file_stream=io.BytesIO(envelope), metadata={"draft": draft}, **options)


def _envelope(demo: DemoPortal, plaintext: bytes) -> bytes:
    return seal_bytes(plaintext, [demo.identity(0).public, demo.identity(1).public])


def _offset(url: str) -> int | None:
    answer = requests.head(url, headers=TUS, timeout=10)
    return int(answer.headers["Upload-Offset"]) if answer.status_code == 200 else None


def _stored(demo: DemoPortal) -> list[list[tuple[str, bytes]]]:
    """Every stored submission's parts, in order: kind and ciphertext."""
    engine = create_engine(demo.database_url)
    try:
        with Session(engine) as session:
            submissions = session.scalars(select(Submission)).all()
            return [
                [
                    (part.kind.value, (demo.data_dir / "blobs" / part.blob).read_bytes())
                    for part in session.scalars(
                        select(Part).where(Part.submission_id == s.id).order_by(Part.position)
                    )
                ]
                for s in submissions
            ]
    finally:
        engine.dispose()


@pytest.fixture
def stored_before(portal: tuple[DemoPortal, str]) -> int:
    """How many submissions earlier tests of the module stored."""
    return len(_stored(portal[0]))


def _raw_patch(url: str, offset: int, declared: int) -> socket.socket:
    """Open a PATCH to ``url`` declaring ``declared`` body bytes; the caller sends them."""
    base = url.split("//", 1)[1]
    host, _, rest = base.partition("/")
    name, _, port = host.partition(":")
    sock = socket.create_connection((name, int(port)), timeout=10)
    head = (
        f"PATCH /{rest} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a NAT box or a dying link does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _settled_offset(url: str, at_least: int = 1, seconds: float = 10) -> int:
    """HEAD until the offset is at least ``at_least`` and stops moving."""
    deadline = time.monotonic() + seconds
    last = -1
    while time.monotonic() < deadline:
        offset = _offset(url)
        assert offset is not None
        if offset >= at_least and offset == last:
            return offset
        last = offset
        time.sleep(0.3)
    raise AssertionError(f"the offset did not settle (last {last})")


# --- conformance ----------------------------------------------------------------------


def test_tuspy_uploads_whole_and_in_checksummed_chunks_and_finish_stores_one_report(
    portal: tuple[DemoPortal, str], stored_before: int
) -> None:
    demo, url = portal
    reporter = Reporter(url)
    texts = [b'{"schema": "cso-report/v1", "report": {}}', os.urandom(150_000)]
    envelopes = [_envelope(demo, text) for text in texts]
    draft = reporter.begin(parts=2, total=sum(map(len, envelopes)))
    whole = _uploader(url, draft, envelopes[0])
    whole.upload()  # one PATCH
    chunked = _uploader(url, draft, envelopes[1], chunk_size=40_000, upload_checksum=True)
    chunked.upload()  # four PATCHes, each with Upload-Checksum (sha1)
    assert (_offset(whole.url), _offset(chunked.url)) == tuple(map(len, envelopes))
    answer = reporter.finish(draft, whole.url, chunked.url)
    assert (answer.status_code, answer.json()) == (200, {"stored": True, "parts": 2})
    again = reporter.finish(draft, whole.url, chunked.url)  # the answer was lost: ask again
    assert (again.status_code, again.json()) == (200, {"stored": True, "parts": 2})
    stored = _stored(demo)
    assert len(stored) == stored_before + 1
    (parts,) = [parts for parts in stored if parts[0][1] == envelopes[0]]
    assert [kind for kind, _ in parts] == ["report", "attachment"]
    for (_, data), text in zip(parts, texts, strict=True):
        assert open_bytes(data, demo.identity(0)) == text
        assert open_bytes(data, demo.identity(1)) == text
    assert _offset(whole.url) is None  # the uploads are gone with their draft


def test_options_announce_the_extensions_and_creation_gives_a_day_as_expiry(
    portal: tuple[DemoPortal, str],
) -> None:
    demo, url = portal
    options = requests.options(url + "/uploads", timeout=10)
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {
        "creation", "expiration", "termination", "checksum"}  # fmt: skip
    assert set(options.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}
    assert int(options.headers["Tus-Max-Size"]) == 200 * 1024 * 1024
    draft = Reporter(url).begin()
    envelope = _envelope(demo, b"x" * 3000)
    created = requests.post(
        url + "/uploads",
        headers={**TUS, "Upload-Length": str(len(envelope)),
                 "Upload-Metadata": "draft " + base64.b64encode(draft.encode()).decode()},
        timeout=10,
    )  # fmt: skip
    assert created.status_code == 201
    expires = parsedate_to_datetime(created.headers["Upload-Expires"])
    assert (expires.hour, expires.minute, expires.second) == (0, 0, 0)
    assert timedelta(hours=24) <= expires - datetime.now(UTC) <= timedelta(hours=48)


def test_head_after_a_partial_patch_and_resuming_from_it(
    portal: tuple[DemoPortal, str], stored_before: int
) -> None:
    demo, url = portal
    reporter = Reporter(url)
    text = os.urandom(100_000)
    envelope = _envelope(demo, text)
    draft = reporter.begin(parts=1)
    first = _uploader(url, draft, envelope, chunk_size=30_000)
    first.upload(stop_at=60_000)
    later = _uploader(url, draft, envelope, url=first.url, chunk_size=30_000)  # HEAD on start
    assert later.offset == 60_000
    later.upload()
    assert reporter.finish(draft, later.url).status_code == 200
    assert len(_stored(demo)) == stored_before + 1


def test_an_offset_mismatch_is_409_and_a_checksum_mismatch_460_keeping_nothing(
    portal: tuple[DemoPortal, str],
) -> None:
    demo, url = portal
    envelope = _envelope(demo, os.urandom(20_000))
    uploader = _uploader(url, Reporter(url).begin(), envelope, chunk_size=5_000)
    uploader.upload(stop_at=5_000)
    uploader.offset = 2_000  # a client that lost track
    with pytest.raises(TusUploadFailed) as mismatch:
        uploader.upload_chunk()
    assert mismatch.value.status_code == 409
    wrong = base64.b64encode(hashlib.sha1(b"not these bytes").digest()).decode()  # noqa: S324
    answer = requests.patch(
        uploader.url,
        data=envelope[5_000:10_000],
        headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": "5000",
                 "Upload-Checksum": f"sha1 {wrong}"},
        timeout=10,
    )  # fmt: skip
    assert answer.status_code == 460
    assert _offset(uploader.url) == 5_000


def test_an_expired_draft_takes_its_uploads_with_it(portal: tuple[DemoPortal, str]) -> None:
    demo, url = portal
    draft = Reporter(url).begin()
    uploader = _uploader(url, draft, _envelope(demo, os.urandom(10_000)), chunk_size=4_000)
    uploader.upload(stop_at=4_000)
    partial = demo.data_dir / ".blobs-partial"
    files = len(os.listdir(partial))
    # a day or two later, as the runtime store says: its expiry day is today
    runtime = Path(demo.environ()["PORTAL_RUNTIME_DIR"]) / FILE_NAME
    today = datetime.now(UTC).date().isoformat()
    with sqlite3.connect(runtime) as connection:
        key = pending.key_of(draft)
        connection.execute("UPDATE draft SET expires_on = ? WHERE key = ?", (today, key))
        connection.execute("UPDATE pending_upload SET expires_on = ? WHERE draft = ?", (today, key))
    with pytest.raises(TusCommunicationError) as expired:
        uploader.get_offset()
    assert expired.value.status_code == 410
    with pytest.raises(TusUploadFailed) as gone:
        uploader.upload_chunk()
    assert gone.value.status_code == 404
    assert len(os.listdir(partial)) == files - 1


def test_termination_removes_the_upload(portal: tuple[DemoPortal, str]) -> None:
    demo, url = portal
    uploader = _uploader(url, Reporter(url).begin(), _envelope(demo, os.urandom(10_000)))
    uploader.upload(stop_at=1)
    assert requests.delete(uploader.url, headers=TUS, timeout=10).status_code == 204
    assert requests.head(uploader.url, headers=TUS, timeout=10).status_code == 404
    with pytest.raises(TusUploadFailed) as gone:
        uploader.upload_chunk()
    assert gone.value.status_code == 404


# --- what a satellite link does -------------------------------------------------------


def test_a_reset_mid_patch_keeps_what_arrived_and_the_upload_completes_from_there(
    portal: tuple[DemoPortal, str], stored_before: int
) -> None:
    demo, url = portal
    reporter = Reporter(url)
    text = os.urandom(300_000)
    envelope = _envelope(demo, text)
    draft = reporter.begin(parts=1)
    uploader = _uploader(url, draft, envelope)
    uploader.set_url(uploader.create_url())
    half = len(envelope) // 2
    sock = _raw_patch(uploader.url, 0, len(envelope))
    sock.sendall(envelope[:half])
    time.sleep(0.5)  # the portal reads and stores it
    _reset(sock)
    offset = _settled_offset(uploader.url)
    assert half - PIECE <= offset <= half  # at most the piece in flight is lost
    resumed = _uploader(url, draft, envelope, url=uploader.url)
    assert resumed.offset == offset  # tuspy asked (HEAD) and resumes there
    resumed.upload()
    assert reporter.finish(draft, resumed.url).status_code == 200
    stored = _stored(demo)
    assert len(stored) == stored_before + 1
    assert any(open_bytes(parts[0][1], demo.identity(1)) == text for parts in stored)


def test_head_answers_while_a_patch_streams_and_a_second_patch_waits_then_423(
    portal: tuple[DemoPortal, str],
) -> None:
    demo, url = portal
    envelope = _envelope(demo, os.urandom(200_000))
    uploader = _uploader(url, Reporter(url).begin(parts=1), envelope)
    uploader.set_url(uploader.create_url())
    sock = _raw_patch(uploader.url, 0, len(envelope))
    sent = 100_000
    done = threading.Event()

    def trickle() -> None:  # the older PATCH is slow (10 kB/s), but alive
        nonlocal sent
        while not done.wait(0.2):
            sock.sendall(envelope[sent : sent + 2048])
            sent += 2048

    try:
        sock.sendall(envelope[:sent])
        offset = _settled_offset(uploader.url, at_least=sent - PIECE)
        assert offset <= sent  # what is stored, while the PATCH is still open
        slow = threading.Thread(target=trickle)
        slow.start()
        started = time.monotonic()
        second = requests.patch(
            uploader.url,
            data=envelope[offset:],
            headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset)},
            timeout=30,
        )
        done.set()
        slow.join()
        assert second.status_code == 423
        assert time.monotonic() - started >= 2  # it waited for the older one first
        sock.sendall(envelope[sent:])
        reply = sock.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 204")
        assert f"Upload-Offset: {len(envelope)}" in reply
    finally:
        sock.close()
    assert _offset(uploader.url) == len(envelope)


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_a_patch_that_goes_silent_or_trickles_is_ended_and_frees_the_upload(
    portal: tuple[DemoPortal, str], trickle: bool
) -> None:
    demo, url = portal
    envelope = _envelope(demo, os.urandom(100_000))
    uploader = _uploader(url, Reporter(url).begin(parts=1), envelope)
    uploader.set_url(uploader.create_url())
    sock = _raw_patch(uploader.url, 0, len(envelope))
    done = threading.Event()

    def drip() -> None:  # a byte now and then, to hold the thread: never a whole piece
        for byte in range(50_000, len(envelope)):
            if done.wait(0.1):
                return
            try:
                sock.sendall(envelope[byte : byte + 1])
            except OSError:
                return  # the portal has ended this PATCH

    dripping = threading.Thread(target=drip)
    try:
        sock.sendall(envelope[:50_000])  # then the link goes quiet, the socket stays open
        if trickle:
            dripping.start()
        time.sleep(IDLE_SECONDS + 1.5)
        offset = _settled_offset(uploader.url, at_least=50_000 - PIECE)
        if not trickle:  # told what was kept, as after any PATCH (tus lets it be less)
            reply = sock.recv(4096).decode()
            assert reply.startswith("HTTP/1.1 204")
            assert f"Upload-Offset: {offset}" in reply
        resumed = requests.patch(
            uploader.url,
            data=envelope[offset:],
            headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset)},
            timeout=10,
        )
        assert resumed.status_code == 204  # not 423: the older PATCH let go
    finally:
        done.set()
        if trickle:
            dripping.join()
        sock.close()
    assert _offset(uploader.url) == len(envelope)


def _reply(sock: socket.socket, seconds: float) -> tuple[str, float]:
    """The portal's answer on ``sock`` and how long it took to come, or fail."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        reply = sock.recv(4096).decode()
    except TimeoutError:
        raise AssertionError(f"the PATCH was still open after {seconds} s") from None
    return reply, time.monotonic() - started


def _resumes_and_completes(url: str, envelope: bytes) -> None:
    offset = _settled_offset(url)
    resumed = requests.patch(
        url,
        data=envelope[offset:],
        headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset)},
        timeout=30,
    )
    assert resumed.status_code == 204  # not 423: the PATCH the portal ended let go
    assert _offset(url) == len(envelope)


def test_a_patch_that_drips_whole_pieces_inside_the_idle_limit_is_ended_by_its_rate(
    portal: tuple[DemoPortal, str],
) -> None:
    demo, url = portal
    envelope = _envelope(demo, os.urandom(400_000))
    uploader = _uploader(url, Reporter(url).begin(parts=1), envelope)
    uploader.set_url(uploader.create_url())
    sock = _raw_patch(uploader.url, 0, len(envelope))
    done = threading.Event()
    sent = 50_000

    def drip() -> None:  # one whole piece just inside the idle limit: about 3 kB/s
        nonlocal sent
        while not done.wait(0.9 * IDLE_SECONDS) and sent < len(envelope):
            try:
                sock.sendall(envelope[sent : sent + PIECE])
            except OSError:
                return
            sent += PIECE

    dripping = threading.Thread(target=drip)
    try:
        sock.sendall(envelope[:sent])
        dripping.start()
        reply, _ = _reply(sock, 6 * IDLE_SECONDS)
        assert reply.startswith("HTTP/1.1 204")  # told what was kept, as after any PATCH
    finally:
        done.set()
        dripping.join()
        sock.close()
    _resumes_and_completes(uploader.url, envelope)


def test_a_patch_is_ended_after_the_longest_time_one_may_take_and_resumes(
    portal: tuple[DemoPortal, str],
) -> None:
    demo, url = portal
    envelope = _envelope(demo, os.urandom(400_000))
    uploader = _uploader(url, Reporter(url).begin(parts=1), envelope)
    uploader.set_url(uploader.create_url())
    sock = _raw_patch(uploader.url, 0, len(envelope))
    done = threading.Event()

    def steady() -> None:  # 20 kB/s, well above the rate: only the clock ends it
        for start in range(0, len(envelope), 4096):
            if done.wait(0.2):
                return
            try:
                sock.sendall(envelope[start : start + 4096])
            except OSError:
                return

    sending = threading.Thread(target=steady)
    try:
        sending.start()
        reply, took = _reply(sock, PATCH_SECONDS + 5)
        assert reply.startswith("HTTP/1.1 204")
        stored = int(reply.split("Upload-Offset: ")[1].split("\r\n")[0])
        assert 0 < stored < len(envelope)
        assert took >= PATCH_SECONDS - 1
    finally:
        done.set()
        sending.join()
        sock.close()
    _resumes_and_completes(uploader.url, envelope)


def test_the_watch_ends_a_body_when_its_upload_expires() -> None:
    settings = SimpleNamespace(upload_idle_seconds=30, upload_min_rate=1, upload_patch_seconds=600)
    pace = Pace.of(settings, expires_in=0.5)  # type: ignore[arg-type]
    assert pace.longest == 0.5
    assert Pace.of(settings, expires_in=-5).longest == 0  # type: ignore[arg-type]
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        reader, _ = server.accept()
        with sender, reader, pace.watch(reader) as arrived:
            started = time.monotonic()
            sender.sendall(b"x" * 10)
            arrived(len(reader.recv(10)))
            reader.settimeout(5)
            assert reader.recv(10) == b""  # ended, with the sender still there
            assert 0.4 <= time.monotonic() - started < 2
