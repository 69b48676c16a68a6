"""Faults of the host under a real `portal serve` (issue 14): crashes, a full disk, a lost database.

* Workers and the master killed with SIGKILL while reports arrive: after the
  restart no orphan blob and no unfinished upload is left, every row has its
  blob, every reporter answered 200 has a report the reviewers can open, and
  a reporter whose send died can send the same request again (its proof of
  work was not spent), while a proof already spent is still refused.
* A full disk (the data directory on a small tmpfs): 507 saying nothing was
  stored, nothing half-stored, and reports go through again once room is made.
* PostgreSQL stopped while the portal runs: 503 with ``Retry-After`` on every
  route that needs it, /pow included, never a hang; then back without a restart.

Debris is made on purpose, not hoped for: a test holds the database's lock so
that stores wait between their blobs and their row, and kills the workers
then; it checks the debris is there before it checks that it goes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from portal.storage.db import upgrade
from tests.conftest import DemoPortal
from tests.reliability import _faults
from tests.reliability._faults import (
    TIMEOUT,
    blob_files,
    database_blobs,
    decryptable_reports,
    new_report,
    serve,
    start_stalled,
    temp_files,
)


def _demo_copy(template: DemoPortal, data_dir: Path, database_url: str) -> DemoPortal:
    shutil.copytree(
        template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3", "blobs")
    )
    (data_dir / "blobs").mkdir(mode=0o700)
    upgrade(database_url)
    return DemoPortal(data_dir, template.reviewers, template.passphrase, database_url)


@pytest.fixture
def sqlite_demo(demo_template: DemoPortal, tmp_path: Path) -> DemoPortal:
    """A fresh demo data directory with its SQLite database."""
    data_dir = tmp_path / "var"
    return _demo_copy(demo_template, data_dir, f"sqlite:///{data_dir / 'portal.sqlite3'}")


def _send_all(url: str, reports: list[_faults.Report]) -> list[Any]:
    """Send every report at once, each from its own thread; the response or the exception."""
    results: list[Any] = [None] * len(reports)

    def one(index: int) -> None:
        try:
            results[index] = reports[index].send(url)
        except requests.RequestException as error:
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reports))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT + 10)
    return results


def _wait_for(condition: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _crash_mid_store(
    server: _faults.Server, demo: DemoPortal, kill: str, number: int
) -> tuple[list[_faults.Report], int, int]:
    """Kill the portal while stores wait for the database and uploads are half sent.

    Returns the reports whose sends died, and the orphan blobs and unfinished
    uploads counted right after the kill (before any restart cleans up).
    """
    before = blob_files(demo.data_dir)
    stuck = [new_report(server.url, demo, number + i) for i in range(3)]
    stalled = [new_report(server.url, demo, number + 10 + i) for i in range(3)]
    database = demo.data_dir / "portal.sqlite3"
    holder = sqlite3.connect(database, timeout=5, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # every store now waits between its blobs and its row
    sockets = []
    try:
        sends = threading.Thread(target=_send_all, args=(server.url, stuck))
        sends.start()
        sockets = [start_stalled(server.url, r) for r in stalled]
        # the blocked stores have committed their blobs; the stalled uploads hold temp files
        _wait_for(lambda: len(blob_files(demo.data_dir) - before) >= 2 * len(stuck), "blobs")
        _wait_for(lambda: len(temp_files(demo.data_dir)) >= len(stalled), "temporary files")
        if kill == "workers":
            old = tuple(server.kill_workers())
        else:
            server.kill_all()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    orphans = len(blob_files(demo.data_dir) - database_blobs(demo.database_url))
    temps = len(temp_files(demo.data_dir))
    for connection in sockets:
        connection.close()
    sends.join(timeout=TIMEOUT + 10)
    if kill == "workers":
        server.wait_ready(old)
    return stuck, orphans, temps


def _consistent(demo: DemoPortal) -> None:
    """No orphan blob, no unfinished upload, and every row's blob is on disk."""
    on_disk = blob_files(demo.data_dir)
    named = database_blobs(demo.database_url)
    assert on_disk - named == set(), "orphan blobs left"
    assert named - on_disk == set(), "rows whose blob is missing"
    assert temp_files(demo.data_dir) == [], "unfinished uploads left"


def test_killed_workers_and_master_leave_nothing_behind(
    sqlite_demo: DemoPortal, tmp_path: Path
) -> None:
    demo = sqlite_demo
    server = serve(demo, tmp_path, "first")
    try:
        first = [new_report(server.url, demo, i) for i in range(4)]
        answers = _send_all(server.url, first)
        assert all(_faults.answered(a) for a in answers), answers
        stored = {r.plaintext for r in first}

        stuck, orphans, temps = _crash_mid_store(server, demo, "workers", 100)
        print(f"after killing the workers: {orphans} orphan blob(s), {temps} temporary file(s)")
        assert orphans >= 2 * len(stuck)  # the debris is there, so the clean-up is tested
        assert temps >= 3
        _consistent(demo)  # the new workers removed it as they started

        # the reporters whose sends died send the very same request again: the proof
        # was not spent, so it goes through, once
        for report in stuck:
            answer = report.send(server.url)
            assert answer.status_code == 200, answer.text
            stored.add(report.plaintext)
            again = report.send(server.url)  # its answer lost: the same answer, no second copy
            assert again.json() == {"stored": True, "parts": 2}
        # a spent proof still buys nothing else
        replay = new_report(server.url, demo, 999)
        replay.fields["proof"] = stuck[0].fields["proof"]
        refused = replay.send(server.url)
        assert refused.status_code == 400
        assert "Nothing was stored" in refused.text
        assert decryptable_reports(demo.database_url, demo) == stored

        _, orphans, temps = _crash_mid_store(server, demo, "master", 200)
        print(f"after killing the master: {orphans} orphan blob(s), {temps} temporary file(s)")
        assert orphans >= 6
        assert temps >= 3
    finally:
        server.stop()
    server = serve(demo, tmp_path, "second")
    try:
        _consistent(demo)
        assert decryptable_reports(demo.database_url, demo) == stored
        late = new_report(server.url, demo, 300)
        assert late.send(server.url).status_code == 200
    finally:
        server.stop()


@pytest.fixture
def small_disk(demo_template: DemoPortal, tmp_path: Path) -> Iterator[DemoPortal]:
    """The data directory on an 8 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],  # noqa: S607
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        data_dir = mount / "var"
        yield _demo_copy(demo_template, data_dir, f"sqlite:///{data_dir / 'portal.sqlite3'}")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)  # noqa: S607


def _fill(path: Path, leave: int) -> None:
    """Write a file until only about ``leave`` bytes are free on its file system."""
    with path.open("wb") as filler:
        while shutil.disk_usage(path.parent).free > leave:
            try:
                filler.write(b"\0" * min(256 * 1024, shutil.disk_usage(path.parent).free - leave))
                filler.flush()
            except OSError:
                break


def test_a_full_disk_is_a_clear_507_and_nothing_half_stored(
    small_disk: DemoPortal, tmp_path: Path
) -> None:
    demo = small_disk
    server = serve(demo, tmp_path, "disk", PORTAL_MAX_UPLOAD_MIB="4", PORTAL_PENDING_MIB="4")
    try:
        filler = demo.data_dir / "filler"
        _fill(filler, 1024 * 1024)
        before = blob_files(demo.data_dir)
        # refused before the body is read: its length does not fit
        report = new_report(server.url, demo, 1, attachment=1024 * 1024)
        answer = report.send(server.url)
        assert answer.status_code == 507, answer.text
        assert "Nothing was stored" in answer.text
        # a body sent without a length passes that check and fills the disk as it is written
        headers, body = report.body(server.url)
        headers.pop("Content-Length")

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        shutil.disk_usage(demo.data_dir)
        _fill(demo.data_dir / "filler2", 2 * 1024 * 1024 + 512 * 1024)
        answer = requests.post(
            server.url + "/submit", data=chunks(), headers=headers,
            cookies=report.session.cookies, timeout=TIMEOUT,
        )  # fmt: skip
        assert answer.status_code == 507, answer.text
        assert "Nothing was stored" in answer.text
        assert blob_files(demo.data_dir) == before
        assert temp_files(demo.data_dir) == []
        # room again: the same report (its proof unspent) goes through
        filler.unlink()
        (demo.data_dir / "filler2").unlink()
        answer = report.send(server.url)
        assert answer.status_code == 200, answer.text
        _consistent(demo)
        assert decryptable_reports(demo.database_url, demo) == {report.plaintext}
    finally:
        server.stop()


@pytest.fixture
def postgres() -> Iterator[_faults.Postgres]:
    """A PostgreSQL server of this test's own, which it may stop and start again."""
    server = _faults.Postgres.create()
    try:
        yield server
    finally:
        server.destroy()


def test_postgres_outage_is_a_503_and_the_portal_recovers(
    demo_template: DemoPortal, tmp_path: Path, postgres: _faults.Postgres
) -> None:
    demo = _demo_copy(demo_template, tmp_path / "var", postgres.url)
    server = serve(demo, tmp_path, "pg")
    try:
        report = new_report(server.url, demo, 1)
        assert report.send(server.url).status_code == 200
        waiting = new_report(server.url, demo, 2)  # fetched its puzzle before the outage
        postgres.stop()
        started = time.monotonic()
        for path in ("/pow?for=submit", "/pow?for=followup"):
            answer = requests.get(server.url + path, timeout=TIMEOUT)
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"].isdigit()
            assert "try" in answer.json()["error"]
        answer = waiting.send(server.url)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"].isdigit()
        assert time.monotonic() - started < 30  # answered, not hung
        assert temp_files(demo.data_dir) == []
        postgres.start()
        # back without restarting the portal; the report that failed goes through as sent
        answer = waiting.send(server.url)
        assert answer.status_code == 200, answer.text
        assert requests.get(server.url + "/pow?for=submit", timeout=TIMEOUT).status_code == 200
        _consistent(demo)
        assert decryptable_reports(demo.database_url, demo) == {
            report.plaintext,
            waiting.plaintext,
        }
    finally:
        server.stop()
    engine = create_engine(postgres.url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM submission")) == 2
    engine.dispose()
    assert os.path.isdir(demo.data_dir)
