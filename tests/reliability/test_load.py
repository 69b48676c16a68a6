"""Many reporters at once against the real server, on SQLite and on PostgreSQL.

Reporters follow the browser's path (form, puzzle, sealed POST) against
`portal serve` (gunicorn, two workers of 16 threads) for a bounded time.
Not one may be refused or fail: a busy database must make reporters wait,
never lose a report. Afterwards every acknowledged submission must be in
the database once, with its blobs, decrypting to what was sent, nothing
else may be stored, and `portal export` followed by `reviewer import`
must hand every report to the reviewer.

The size fits `make test` (32 reporters for 10 s on each database). A
bigger run: ``CSO_LOAD_REPORTERS=100 CSO_LOAD_SECONDS=60 .venv/bin/pytest
-q -s tests/reliability/test_load.py``; ``-s`` prints the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, DemoPortal
from tests.integration.portal_server import serve_portal
from tests.reliability._load import check_stored, run_reporters

REPORTERS = int(os.environ.get("CSO_LOAD_REPORTERS", "32"))
SECONDS = float(os.environ.get("CSO_LOAD_SECONDS", "10"))

pytestmark = pytest.mark.slow


def _run(*command: str | Path, env: dict[str, str]) -> str:
    """Run a CLI of this project to completion; fail the test with its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", *map(str, command)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_concurrent_reporters_are_all_stored_and_exported(demo: DemoPortal, tmp_path: Path) -> None:
    recipients = [demo.identity(0).public, demo.identity(1).public]
    # the puzzles stay at the least work: the load under test is the storage's, and
    # difficulty that rises with the load has tests of its own (tests/security)
    settings = {"PORTAL_POW_BITS": "1", "PORTAL_POW_BURST": "100000", "PORTAL_WORKERS": "2",
                "PORTAL_THREADS": "16"}  # fmt: skip
    with serve_portal(demo, tmp_path, **settings) as server:
        result = run_reporters(server["url"], recipients, REPORTERS, SECONDS)
        log = server["log"].read_text(errors="replace")
    print(f"\n{demo.database_url.split(':')[0]}, {REPORTERS} reporters: {result.summary()}")
    assert result.errors == [], (result.errors[:5], log[-3000:])
    assert len(result.accepted) >= REPORTERS, result.summary()
    assert "database is locked" not in log
    started = time.monotonic()
    check_stored(demo.database_url, demo.data_dir / "blobs", demo.identity(0), result.accepted)
    print(f"checked in {time.monotonic() - started:.1f} s")

    started = time.monotonic()
    env = dict(os.environ, DATABASE_URL=demo.database_url)
    out = _run("portal", "--data-dir", demo.data_dir, "export", "--out", tmp_path / "inbox.bundle",
               env=env)  # fmt: skip
    assert f"{len(result.accepted)} submission(s)" in out, out
    passphrase = demo.data_dir / "demo" / "passphrase"
    workspace = ("--workspace", tmp_path / "ws", "--passphrase-file", passphrase)
    portal_key = (demo.data_dir / "portal-signing.pub").read_text().strip()
    _run("reviewer_tool", "init", "--key", demo.data_dir / "demo" / "reviewer-1.key",
         "--portal-key", portal_key, *workspace, env=env)  # fmt: skip
    _run("reviewer_tool", "import", tmp_path / "inbox.bundle", *workspace, env=env)
    queue = json.loads(_run("reviewer_tool", "list", "--json", *workspace, env=env))
    print(f"exported and imported in {time.monotonic() - started:.1f} s")
    assert len(queue) == len(result.accepted)
    assert sum(row["attachments"] for row in queue) == sum(
        1 for sent in result.accepted if sent.attachment_sha256 is not None
    )
