"""A worker that starts while the runtime store is held still starts.

Under gunicorn an exception while a worker builds the application is a boot
error, and a boot error stops the master and every other worker with it: a
runtime store held past the busy timeout by busy workers (a worker replaced
under load) must postpone the start-up tidy, never end the service.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

import pytest
from flask import Flask

from portal.storage import db
from portal.storage.runtime import FILE_NAME
from tests.conftest import DemoPortal


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the store is its own file
def test_a_store_locked_through_start_up_postpones_the_tidy(
    demo: DemoPortal,
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_app()  # makes the runtime store, as the first worker does
    runtime = demo.data_dir.parent / f"{demo.data_dir.name}-runtime" / FILE_NAME
    assert runtime.is_file()
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 1)  # the wait itself is not under test
    holder = sqlite3.connect(runtime, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            app = make_app()
        assert "start-up upload tidy skipped: OperationalError" in caplog.text
        assert app.test_client().get("/pow?for=submit").status_code == 503  # store still held
    finally:
        holder.rollback()
        holder.close()
    # once the store is free again the same worker serves, opening it on first use
    assert app.test_client().get("/pow?for=submit").status_code == 200
