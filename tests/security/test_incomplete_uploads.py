"""Ciphertext left behind by interrupted uploads (finding 10d).

A reporter whose link drops mid-upload, or a worker killed mid-request,
leaves a ``.incoming-*`` file in the blob directory. Nothing in the database
names it, so no purge would ever remove it: it would stay, with its size and
time, for as long as the host lives. It must go at the next start or the
next daily purge, but an upload still in progress must never be deleted
under it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from portal.cli.main import main as portal_main
from portal.storage.blob_writer import PendingBlob
from portal.storage.blobs import BlobStore
from tests.conftest import DemoPortal

HOUR = 3600


@dataclass
class Upload:
    """A pending blob and, while its writer lives, the writer (which holds its lock)."""

    path: Path
    writer: PendingBlob | None = None


def _interrupted_upload(demo: DemoPortal, hours_ago: float, *, alive: bool = False) -> Upload:
    """What an upload leaves: a pending blob, written to and not committed.

    With ``alive`` its writer goes on holding it, as a live worker's upload
    does (the caller keeps the returned object until its checks are done);
    without, the writer dies: its file is closed, and its lock with it.
    """
    blobs = demo.data_dir / "blobs"
    before = set(blobs.iterdir())
    pending = BlobStore(blobs).begin()
    pending.write(b"ciphertext that never finished arriving")
    if not alive:
        pending.stream.close()  # the worker dies here: neither commit nor abort
    (left,) = set(blobs.iterdir()) - before
    then = time.time() - hours_ago * HOUR
    os.utime(left, (then, then))  # the last byte arrived that long ago
    return Upload(left, pending if alive else None)


def test_an_upload_abandoned_a_day_ago_is_removed_by_the_daily_purge(
    demo: DemoPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = _interrupted_upload(demo, hours_ago=25)
    # a slow satellite upload, still going
    fresh = _interrupted_upload(demo, hours_ago=0.5, alive=True)
    monkeypatch.setenv("DATABASE_URL", demo.database_url)
    assert portal_main(["--data-dir", str(demo.data_dir), "purge"]) == 0
    assert not stale.path.exists()
    assert fresh.path.exists()
    assert fresh.writer is not None
    fresh.writer.abort()


def test_an_upload_abandoned_a_day_ago_is_removed_when_the_portal_starts(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    stale = _interrupted_upload(demo, hours_ago=25)
    fresh = _interrupted_upload(demo, hours_ago=0.5, alive=True)
    make_app()
    assert not stale.path.exists()
    assert fresh.path.exists()
    assert fresh.writer is not None
    fresh.writer.abort()
