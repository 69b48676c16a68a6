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

from crypto.envelope import seal_bytes
from crypto.keys import SigningKeyPair
from portal.blobs import BlobStore
from portal.inbox import export_inbox
from tests.conftest import DemoPortal
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
    form = {"csrf_token": csrf_token(client), "category": "stowaways", "narrative": "three aboard"}
    response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
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
    # at most one pass over the day, plus a few stamps per commit: not one pass per commit
    assert stamped <= 3000 + 50 + 50 * 8, f"{stamped} file-time updates for 50 commits"


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
