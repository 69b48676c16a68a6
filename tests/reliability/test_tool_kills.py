"""The offline tools killed with SIGKILL mid-run: a rerun finishes, and nothing is half-imported.

``reviewer import`` commits a bundle in small transactions and skips what is
already there; ``incident-db ingest`` writes a whole batch in one
transaction. Either may be killed at any moment (a power cut, an operator's
``kill -9``), so each is started on an input big enough to take seconds and
killed again and again, each time later. After every kill the store must
be whole: it opens, SQLite's own check passes, and every row has its data
(a report its attachments, a batch its incidents). Then a rerun completes
and holds every report or incident exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench._incidents_data import Generator
from crypto.batch import sign_batch
from crypto.keyfile import KeyBundle
from incident_db.db import upgrade
from reviewer_tool.cli import main as reviewer
from reviewer_tool.workspace import Workspace
from tests.conftest import ROOT
from tests.integration.reviewer_helpers import (
    PORTAL,
    InboxEntry,
    followup_document,
    report_document,
    write_inbox,
)
from tests.unit.incident_db.factories import REVIEWER

#: seconds after the start at which each run is killed; the last ones land mid-import
KILL_AFTER = (0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
#: inputs that take a few seconds to import on the test machine
REPORTS = 2400
INCIDENTS = 5000
ATTACHMENT = bytes(range(256)) * 8


def _started(arguments: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *arguments], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _kill_after(arguments: list[str], delay: float) -> bool:
    """Run the command and SIGKILL it after ``delay`` seconds; False if it ended first."""
    process = _started(arguments)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True
    return False


def _kill_when(arguments: list[str], ready: Callable[[], bool]) -> bool:
    """Run the command and SIGKILL it as soon as ``ready()``; False if it ended first."""
    process = _started(arguments)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    process.wait(timeout=60)
    return False


def _integrity(path: Path) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _count(path: Path, sql: str) -> int:
    """One number from the database at ``path``; 0 when the table is not made yet."""
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# --- reviewer import ------------------------------------------------------------------


def _inbox(path: Path, recipient: bytes) -> tuple[set[str], set[str]]:
    """Reports (a third with an attachment) and follow-ups; their ids, reports then follow-ups."""
    entries: list[InboxEntry] = []
    for i in range(REPORTS):
        if i % 7 == 0 and i:  # a follow-up with an attachment, to the entry before it
            followup = followup_document(f"More about it ({i}).", [("log.txt", "text/plain",
                                                                    ATTACHMENT)])  # fmt: skip
            entries.append((followup, [ATTACHMENT], i - 1))
        elif i % 3 == 0:
            attachment = ("log.txt", "text/plain", ATTACHMENT)
            entries.append((report_document(f"Report {i}.", attachments=[attachment]),
                            [ATTACHMENT]))  # fmt: skip
        else:
            entries.append((report_document(f"Report {i}: " + "paint stolen. " * 12), []))
    ids = write_inbox(path, PORTAL, [recipient], entries)
    followups = {ids[i] for i in range(1, REPORTS) if i % 7 == 0}
    return set(ids) - followups, followups


def _check_workspace(root: Path, keys: KeyBundle, reports: set[str], followups: set[str]) -> int:
    """Whatever a kill left is whole: every report and follow-up with its attachments.

    Returns how many reports are in. A bundle recorded as imported means
    every one of its submissions is.
    """
    _integrity(root / "workspace.db")
    ws = Workspace(root, keys)  # unlocked with the key: the passphrase is checked at the end
    try:
        rows = ws.db.execute("SELECT id, summary FROM item").fetchall()
        assert {row[0] for row in rows} <= reports
        for item_id, summary in rows:
            count = ws.unseal_json(summary)["attachments"]
            stored = ws.db.execute(
                "SELECT position, data FROM attachment WHERE item_id = ? ORDER BY position",
                (item_id,),
            ).fetchall()
            assert [p for p, _ in stored] == list(range(1, count + 1)), item_id
            assert all(ws.unseal(data) == ATTACHMENT for _, data in stored)
        messages = ws.db.execute("SELECT id, summary FROM followup").fetchall()
        assert {row[0] for row in messages} <= followups
        for followup_id, summary in messages:
            (count,) = ws.db.execute(
                "SELECT count(*) FROM followup_attachment WHERE followup_id = ?", (followup_id,)
            ).fetchone()
            assert count == ws.unseal_json(summary)["attachments"] == 1
        (bundles,) = ws.db.execute("SELECT count(*) FROM bundle WHERE complete = 1").fetchone()
        if bundles:
            assert (len(rows), len(messages)) == (len(reports), len(followups))
        return len(rows)
    finally:
        ws.close()


def test_a_killed_reviewer_import_leaves_whole_reports_and_reruns(
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file, keys = reviewer_key_files[0]
    assert keys.encryption is not None
    root = tmp_path / "ws"
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    assert reviewer(["init", "--key", str(key_file), "--portal-key", str(PORTAL.token),
                     *options]) == 0  # fmt: skip
    inbox = tmp_path / "inbox.bundle"
    reports, followups = _inbox(inbox, keys.encryption.public)
    command = ["-m", "reviewer_tool", "import", str(inbox), *options]

    seen = []
    for delay in KILL_AFTER:
        if not _kill_after(command, delay):
            break  # the import finished first: later kills would find nothing to do
        seen.append(_check_workspace(root, keys, reports, followups))
    # and once more the moment a transaction of reports is committed
    items = root / "workspace.db"
    before = _count(items, "SELECT count(*) FROM item")
    if _kill_when(command, lambda: _count(items, "SELECT count(*) FROM item") > before):
        seen.append(_check_workspace(root, keys, reports, followups))
    # the kills landed before, during and (with the poll) inside the import
    assert 0 in seen
    assert any(0 < n < len(reports) for n in seen), seen

    capsys.readouterr()
    assert reviewer(["import", str(inbox), *options]) == 0
    assert "already in the workspace" in capsys.readouterr().out
    assert _check_workspace(root, keys, reports, followups) == len(reports)
    assert _count(items, "SELECT count(*) FROM followup") == len(followups)
    # the workspace opens with its passphrase, and every report is in the queue once
    assert reviewer(["list", "--json", *options]) == 0
    queue = json.loads(capsys.readouterr().out)
    assert sorted(row["id"] for row in queue) == sorted(reports)


# --- incident-db ingest ---------------------------------------------------------------


def _incident_batch(path: Path) -> set[str]:
    """A signed batch of realistic records (as the benchmark makes them); their ids."""
    generator = Generator()
    records: list[dict[str, Any]] = [generator.record() for _ in range(INCIDENTS)]
    path.write_bytes(sign_batch(records, REVIEWER, batch_id=secrets.token_hex(16),
                                created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
    return {record["id"] for record in records}


def _check_incidents(path: Path, ids: set[str]) -> int:
    """All of the batch or none of it: incidents, their provenance and the batch's own row."""
    if not path.exists():
        return 0
    _integrity(path)
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "incident" not in tables:
            return 0
        stored = [row[0] for row in db.execute("SELECT id FROM incident")]
        (batches,) = db.execute("SELECT count(*) FROM reviewer_batch").fetchone()
        (provenance,) = db.execute("SELECT count(DISTINCT incident_id) FROM provenance").fetchone()
        (tagged,) = db.execute("SELECT count(DISTINCT incident_id) FROM incident_tag").fetchone()
    assert len(stored) == len(set(stored))
    assert set(stored) in (set(), ids)
    assert batches == (1 if stored else 0)
    assert provenance == len(stored)
    assert (tagged > 0) == bool(stored)
    return len(stored)


def test_a_killed_incident_db_ingest_leaves_all_or_nothing_and_reruns(tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    ids = _incident_batch(batch)
    trusted = tmp_path / "trusted-reviewers.txt"
    trusted.write_text(f"{REVIEWER.token}\n", encoding="utf-8")
    database = tmp_path / "incidents.sqlite3"
    url = f"sqlite:///{database}"
    command = ["-m", "incident_db", "--db", url, "ingest", str(batch), "--trusted", str(trusted)]

    # the schema first: a kill while it is made is the next test's subject
    upgrade(url)
    killed = 0  # kills that landed before the commit and left nothing
    stored = 0
    for delay in KILL_AFTER:
        if not _kill_after(command, delay):
            break
        # nothing, or the whole batch when the commit came just before the kill
        stored = _check_incidents(database, ids)
        if stored:
            break
        killed += 1
    assert killed >= 2

    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if stored:  # a kill came after the commit: the batch was whole already
        assert "already ingested: nothing changed" in done.stdout
    else:  # every kill came before the commit (or the run ended first and stored it all)
        assert f"{INCIDENTS} added, 0 already present" in done.stdout or killed < len(KILL_AFTER)
    assert _check_incidents(database, ids) == INCIDENTS
    again = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already ingested: nothing changed" in again.stdout
    assert _check_incidents(database, ids) == INCIDENTS


def _table_visible(database: Path, name: str) -> bool:
    try:
        with sqlite3.connect(database, timeout=0.001) as db:
            query = "SELECT count(*) FROM sqlite_master WHERE name = ?"
            return bool(db.execute(query, (name,)).fetchone()[0])
    except sqlite3.OperationalError:
        return False


def test_a_kill_while_the_schema_is_made_leaves_a_database_that_opens(tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    record = Generator().record()
    batch.write_bytes(sign_batch([record], REVIEWER, batch_id=secrets.token_hex(16),
                                 created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
    trusted = tmp_path / "trusted-reviewers.txt"
    trusted.write_text(f"{REVIEWER.token}\n", encoding="utf-8")
    database = tmp_path / "incidents.sqlite3"
    command = ["-m", "incident_db", "--db", f"sqlite:///{database}", "ingest", str(batch),
               "--trusted", str(trusted)]  # fmt: skip
    # the first table is visible to others: with transactional DDL, only once all are
    assert _kill_when(command, lambda: database.exists() and _table_visible(database, "incident"))
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _check_incidents(database, {record["id"]}) == 1
