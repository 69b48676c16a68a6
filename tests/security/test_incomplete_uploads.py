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
from pathlib import Path

import pytest
from flask import Flask

from portal.cli.main import main as portal_main
from portal.storage.blobs import BlobStore
from tests.conftest import DemoPortal

HOUR = 3600


def _interrupted_upload(demo: DemoPortal, hours_ago: float) -> Path:
    """What a dropped upload leaves: a pending blob, written to and never committed."""
    blobs = demo.data_dir / "blobs"
    before = set(blobs.iterdir())
    pending = BlobStore(blobs).begin()
    pending.write(b"ciphertext that never finished arriving")
    pending.stream.close()  # the worker dies here: neither commit nor abort
    (left,) = set(blobs.iterdir()) - before
    then = time.time() - hours_ago * HOUR
    os.utime(left, (then, then))  # the last byte arrived that long ago
    return left


def test_an_upload_abandoned_a_day_ago_is_removed_by_the_daily_purge(
    demo: DemoPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = _interrupted_upload(demo, hours_ago=25)
    fresh = _interrupted_upload(demo, hours_ago=0.5)  # a slow satellite upload, still going
    monkeypatch.setenv("DATABASE_URL", demo.database_url)
    assert portal_main(["--data-dir", str(demo.data_dir), "purge"]) == 0
    assert not stale.exists()
    assert fresh.exists()


def test_an_upload_abandoned_a_day_ago_is_removed_when_the_portal_starts(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    stale = _interrupted_upload(demo, hours_ago=25)
    fresh = _interrupted_upload(demo, hours_ago=0.5)
    make_app()
    assert not stale.exists()
    assert fresh.exists()
