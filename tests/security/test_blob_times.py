"""Dating reports from a seized data directory's file times (finding 5, the blob files).

Someone who seizes the host and also watched a ship's link must not be able to
tie a blob file to the moment it arrived. SECURITY.md "Metadata handling"
says what the file times promise: modification and access times name the
day only; change times all move to the latest write, so they date no blob
but the newest; birth times are those of spare files made before the
submission arrived.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from crypto.envelope import seal_bytes
from crypto.keys import SigningKeyPair
from portal.storage.blobs import SPARE_FILES, BlobStore
from portal.storage.inbox import export_inbox
from tests.conftest import DemoPortal
from tests.integration.portal_server import plain_form, send_plain
from tests.integration.test_intake import RECEIPT_FIELDS, csrf_token, proof

DAY_NS = 86_400 * 10**9


def _submit_encrypted(client: FlaskClient, demo: DemoPortal, attachments: int) -> None:
    recipients = [demo.identity(0).public, demo.identity(1).public]
    response = client.post(
        "/submit",
        data={
            "csrf_token": csrf_token(client),
            "proof": proof(client),
            **RECEIPT_FIELDS,
            "report": (io.BytesIO(seal_bytes(b'{"schema": "cso-report/v1"}', recipients)), "r"),
            "attachment": [
                (io.BytesIO(seal_bytes(b"x" * 5000, recipients)), f"a{i}")
                for i in range(attachments)
            ],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.data


def _submit_plain(client: FlaskClient) -> None:
    response = send_plain(client, {"category": "stowaways", "narrative": "three aboard"})
    assert response.status_code == 200, response.data


def _blob_paths(demo: DemoPortal) -> list[Path]:
    return sorted(p for p in (demo.data_dir / "blobs").iterdir() if not p.name.startswith("."))


def _submit_several(app: Flask, demo: DemoPortal) -> float:
    """Five submissions, a little apart; returns when the last one began (epoch seconds)."""
    client = app.test_client()
    last = 0.0
    for i in range(5):
        time.sleep(0.05)
        last = time.time()
        if i % 2:
            _submit_plain(client)
        else:
            _submit_encrypted(client, demo, attachments=i)
    return last


def _birth_ns(path: Path) -> int:
    """The file's birth time (statx), or 0 where the file system records none."""
    stat = shutil.which("stat")
    assert stat is not None
    out = subprocess.run(
        [stat, "--format=%.9W", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    seconds, _, fraction = out.partition(".")
    return max(int(seconds) * 10**9 + int(fraction or 0), 0)


def test_blob_file_and_directory_times_name_only_the_day(app: Flask, demo: DemoPortal) -> None:
    _submit_several(app, demo)
    portal = app.extensions["portal"]
    with open(os.devnull, "wb") as sink:  # a reviewer's sync reads every blob
        export_inbox(portal["sessions"], portal["blobs"], SigningKeyPair.generate(), sink, 0)
    directory = demo.data_dir / "blobs"
    stamps = {"the blob directory": directory.stat()}  # before listing it reads it
    stamps |= {path.name: path.stat() for path in _blob_paths(demo)}
    assert len(stamps) == 12  # eleven blobs: five reports, six attachments
    for name, info in stamps.items():
        assert info.st_mtime_ns % DAY_NS == 0, f"{name}: mtime is not a day"
        assert info.st_atime_ns % DAY_NS == 0, f"{name}: atime is not a day"


def test_blob_change_times_date_no_blob_but_the_newest(app: Flask, demo: DemoPortal) -> None:
    last = _submit_several(app, demo)
    app.extensions["portal"]["blobs"].flush()  # what the coalesced restamp does within seconds
    for path in _blob_paths(demo):
        changed = path.stat().st_ctime_ns
        assert changed >= int(last * 10**9) - 10**7, f"{path.name}: ctime dates its arrival"


def test_blob_birth_times_predate_every_submission(app: Flask, demo: DemoPortal) -> None:
    before = time.time_ns()
    time.sleep(0.05)
    _submit_several(app, demo)
    for path in _blob_paths(demo):
        assert _birth_ns(path) <= before, f"{path.name}: birth time dates its arrival"


def _flood(store: BlobStore, count: int) -> None:
    """``count`` blobs of today already stored, as after a flood of attachments."""
    for _ in range(count):
        (store.root / secrets.token_hex(16)).write_bytes(b"ciphertext")


def test_flooding_attachments_does_not_make_every_commit_restamp_the_whole_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.refill_spares(60)
    _flood(store, 3000)
    stamped = 0
    utime = os.utime

    def counted(*args: Any, **kwargs: Any) -> None:  # observes, then does the real work
        nonlocal stamped
        stamped += 1
        utime(*args, **kwargs)

    monkeypatch.setattr(os, "utime", counted)
    for _ in range(50):  # each attachment is a commit of its own
        with store.writer() as pending:
            pending.write(b"ciphertext")
    store.flush()
    # at most one pass over the day, a few stamps per commit and one refill of the spares
    # (they ran low): not one pass per commit
    bound = 3000 + 50 + 50 * 8 + SPARE_FILES
    assert stamped <= bound, f"{stamped} file-time updates for 50 commits"


def test_blob_change_times_converge_without_any_further_submission(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", restamp_after=0.2)
    store.refill_spares(10)
    names = []
    for _ in range(3):
        with store.writer() as pending:
            pending.write(b"ciphertext")
        names.append(pending.name)
        time.sleep(0.05)
    last = time.time_ns()
    time.sleep(1.0)  # the coalesced restamp runs on its own, well within this
    for name in names:
        assert store.path(name).stat().st_ctime_ns >= last, f"{name}: ctime dates its arrival"


def _spares(demo: DemoPortal) -> list[str]:
    return os.listdir(demo.data_dir / ".blobs-spares")


def _junk(count: int, data: bytes = b"junk") -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(data), f"x{i}") for i in range(count)]


def _post(client: FlaskClient, path: str, form: dict[str, Any], *, cut: bool = False) -> int:
    """Send ``form`` as multipart; with ``cut``, drop the connection halfway through the body."""
    builder = EnvironBuilder(method="POST", data=form)
    environ = builder.get_environ()
    with environ["wsgi.input"] as encoded:
        body = encoded.read()
    builder.close()
    response = client.post(
        path,
        input_stream=io.BytesIO(body[: len(body) // 2] if cut else body),
        content_length=len(body),
        content_type=environ["CONTENT_TYPE"],
    )
    return response.status_code


def _junk_requests(client: FlaskClient, demo: DemoPortal) -> int:
    """Unauthenticated requests that store nothing; returns how many file parts they sent."""
    recipients = [demo.identity(0).public, demo.identity(1).public]
    addressed = seal_bytes(b"r" * 3000, recipients)[:-1]  # a good header, a cut payload
    sent = 0

    def post(path: str, form: dict[str, Any]) -> None:
        nonlocal sent
        sent += sum(len(v) for v in form.values() if isinstance(v, list))
        status = _post(client, path, form)
        assert status in (400, 404, 413), (path, status)

    token = csrf_token(client)
    for csrf in ({}, {"csrf_token": "forged"}):
        post("/submit", csrf | {"attachment": _junk(200)})
        post("/submit", csrf | {**RECEIPT_FIELDS, "report": _junk(1, addressed)})
        post("/submit", csrf | {"report": _junk(1, addressed), "attachment": _junk(10, addressed)})
    post("/submit", {"csrf_token": token, "attachment": _junk(300, addressed)})  # too many files
    fields = {f"f{i}": "x" for i in range(250)}  # more parts than the form parser takes
    post("/submit", {"report": _junk(1, addressed), "attachment": _junk(10, addressed)} | fields)
    for _ in range(10):  # envelopes for the right reviewers, but no proof of work
        form = {"csrf_token": token, **RECEIPT_FIELDS, "report": _junk(1, addressed)}
        post("/submit", form | {"attachment": _junk(10, addressed)})
    form = {"csrf_token": token, "proof": proof(client), **RECEIPT_FIELDS}
    post("/submit", form | {"report": _junk(1), "attachment": _junk(10, addressed)})
    post("/followup/send", {"csrf_token": token, "attachment": _junk(200, addressed)})
    form = {"csrf_token": token, **RECEIPT_FIELDS, "message": _junk(1, addressed)}
    post("/followup/send", form | {"attachment": _junk(10, addressed)})
    form = {**plain_form(client), "category": "stowaways", "narrative": "three aboard"}
    post("/submit-plain", form | {"attachments": _junk(150)})
    post("/followup/send-plain", {"csrf_token": token, "attachments": _junk(150, addressed)})
    for path, first in (("/submit", "report"), ("/followup/send", "message")):
        form = {"csrf_token": token, **RECEIPT_FIELDS, first: _junk(1, addressed * 20)}
        form |= {"attachment": _junk(10, addressed * 20)}
        assert _post(client, path, form, cut=True) >= 400
        sent += 11
    return sent


def test_junk_file_parts_never_use_up_the_spare_files(app: Flask, demo: DemoPortal) -> None:
    client = app.test_client()
    spares = len(_spares(demo))
    assert spares > 0
    before = time.time_ns()
    time.sleep(0.05)
    assert _junk_requests(client, demo) >= 1000
    assert len(_spares(demo)) == spares, "junk that stored nothing used up spare files"
    assert os.listdir(demo.data_dir / "blobs") == [], "junk left files in the blob directory"
    _submit_encrypted(client, demo, attachments=3)
    for path in _blob_paths(demo):
        assert _birth_ns(path) <= before, f"{path.name}: birth time dates its arrival"


def test_a_flood_of_stored_blobs_leaves_spares_for_the_blobs_after_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", restamp_after=0.1)
    store.refill_spares()
    for _ in range(SPARE_FILES - 20):  # a busy spell, all of it kept
        with store.writer() as pending:
            pending.write(b"ciphertext")
    time.sleep(1.0)  # the restamp that follows it
    before = time.time_ns()
    time.sleep(0.05)
    names = []
    for _ in range(40):  # and the reports after it
        with store.writer() as pending:
            pending.write(b"ciphertext")
        names.append(pending.name)
    for name in names:
        assert _birth_ns(store.path(name)) <= before, f"{name}: birth time dates its arrival"
