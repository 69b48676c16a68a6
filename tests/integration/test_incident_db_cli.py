"""The ``incident-db`` command end to end: its ``main`` in process, and as a real process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from incident_db.cli import main
from tests.conftest import ROOT
from tests.unit.incident_db.factories import REVIEWER, STRANGER, batch, record
from tests.unit.incident_db.test_feeds import HEADER, ROWS


def subprocess_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m incident_db`` as a real process."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    return subprocess.run(
        [sys.executable, "-m", "incident_db", *map(str, args)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def incident_db(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the command's ``main`` in this process (a subprocess per call would take seconds)."""
    for name in [k for k in os.environ if k.startswith("INCIDENT_DB_")]:
        monkeypatch.delenv(name)

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A trusted-reviewers file, a good batch, and a feed with quirks."""
    trusted = tmp_path / "trusted-reviewers.txt"
    trusted.write_text(f"# reviewers of the shared database\n{REVIEWER.token}  # reviewer-1\n")
    good = tmp_path / "batch.jsonl"
    good.write_bytes(batch([record(1), record(2, occurred_local="2024-03-08T23:50")]))
    feed = tmp_path / "feed.csv"
    feed.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    return {"trusted": trusted, "batch": good, "feed": feed}


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_end_to_end(
    incident_db: Callable[..., subprocess.CompletedProcess[str]],
    database_url: str,
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    db = ("--db", database_url)
    out = _ok(incident_db("ingest", files["batch"], "--trusted", files["trusted"], *db))
    assert "2 records signed by" in out
    assert "2 added" in out
    again = _ok(incident_db("ingest", files["batch"], "--trusted", files["trusted"], *db))
    assert "already ingested: nothing changed" in again

    rejects = tmp_path / "rejects.csv"
    out = _ok(incident_db("import-feed", files["feed"], "--mapping", "crime-at-sea",
                          "--rejects", rejects, *db))  # fmt: skip
    assert "7 rows: 4 added, 0 already present, 3 rejected" in out
    with rejects.open(newline="") as handle:
        assert [r["row"] for r in csv.DictReader(handle)] == ["4", "5", "6"]

    brief_json = tmp_path / "brief.json"
    _ok(incident_db("brief", "--place", "Chittagong", "--whole-archive", "--format", "json",
                    "--out", brief_json, *db))  # fmt: skip
    figures = json.loads(brief_json.read_text())
    assert figures["incidents"] == 2
    assert figures["by_weekday"]["friday"] == 2
    assert figures["clock_window"]["known"] == 2
    assert figures["clock_window"]["from"] is None  # two times are too few for a window
    html = _ok(incident_db("brief", "--near", "22.2,91.7", "--radius-nm", "5",
                           "--since", "2024-01-01", *db))  # fmt: skip
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") == 3

    for kind in ("csv", "geojson", "stix"):
        target = tmp_path / f"export.{kind}"
        _ok(incident_db("export", "--format", kind, "--clearance", "amber", "--out", target, *db))
        assert target.stat().st_size > 100
    exported = _ok(incident_db("export", "--format", "csv", "--clearance", "amber", *db))
    assert len(list(csv.DictReader(exported.splitlines(keepends=True)))) == 2 + 4

    keep, absorb = f"{1:032x}", f"{2:032x}"
    assert "1 provenance rows" in _ok(incident_db("merge", keep, absorb, *db))
    assert "pairs within 24 h and 5 nm" in _ok(incident_db("link", *db))


def test_the_database_comes_from_the_option_or_the_environment(
    incident_db: Callable[..., subprocess.CompletedProcess[str]],
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _ok(incident_db("ingest", files["batch"], "--trusted", files["trusted"]))
    assert (work / "incidents.sqlite3").is_file()  # the default: a file in the current directory
    elsewhere = f"sqlite:///{tmp_path / 'env.sqlite3'}"
    monkeypatch.setenv("INCIDENT_DB_URL", elsewhere)
    _ok(incident_db("ingest", files["batch"], "--trusted", files["trusted"]))
    assert (tmp_path / "env.sqlite3").is_file()
    option = f"sqlite:///{tmp_path / 'option.sqlite3'}"
    _ok(incident_db("--db", option, "export", "--format", "csv", "--clearance", "clear"))
    assert (tmp_path / "option.sqlite3").is_file()


def test_every_failure_is_one_line_and_non_zero(
    incident_db: Callable[..., subprocess.CompletedProcess[str]],
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'incidents.sqlite3'}")
    untrusted = tmp_path / "untrusted.jsonl"
    untrusted.write_bytes(batch([record(1)], signer=STRANGER))
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(files["batch"].read_bytes()[:-40])
    bad_trusted = tmp_path / "bad-trusted.txt"
    bad_trusted.write_text(f"{REVIEWER.token}\ncsosig1notakey\n")
    cases = {
        "untrusted": (("ingest", untrusted, "--trusted", files["trusted"]),
                      "batch refused: line 1: signer"),
        "truncated": (("ingest", truncated, "--trusted", files["trusted"]), "batch refused: line"),
        "missing batch": (("ingest", tmp_path / "none.jsonl", "--trusted", files["trusted"]),
                          "none.jsonl: No such file or directory"),
        "bad trusted file": (("ingest", files["batch"], "--trusted", bad_trusted),
                             "bad-trusted.txt: line 2: "),
        "no mapping": (("import-feed", files["feed"], "--mapping", "nope"), "no mapping file"),
        "missing feed": (("import-feed", tmp_path / "none.csv", "--mapping", "crime-at-sea"),
                         "No such file or directory"),
        "bad position": (("brief", "--near", "north", "--radius-nm", "5"), "--near must be"),
        "no radius": (("brief", "--near", "1,2"), "--radius-nm must be"),
        "bad date": (("brief", "--place", "Lagos", "--since", "last year"), "--since must be"),
        "unknown incident": (("merge", "a" * 32, "b" * 32), "no incident"),
        "not an id": (("merge", "A", "b" * 32), "is not an incident id"),
    }  # fmt: skip
    for name, (args, message) in cases.items():
        done = incident_db(*args, *db)
        assert done.returncode != 0, name
        assert done.stderr.count("\n") == 1, (name, done.stderr)
        assert done.stderr.startswith("incident-db: "), (name, done.stderr)
        assert message in done.stderr, (name, done.stderr)


def test_a_real_process_fails_in_one_line(tmp_path: Path) -> None:
    """The installed entry point: exit status and stderr as a shell sees them."""
    unreachable = subprocess_run("brief", "--place", "x", "--db",
                                 "postgresql+psycopg://nobody@127.0.0.1:9/none")  # fmt: skip
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("incident-db: cannot open the database: ")
    assert unreachable.stderr.count("\n") == 1
    usage = subprocess_run("brief", "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert usage.returncode == 2  # argparse: --place or --near is required
    assert "one of the arguments --place --near is required" in usage.stderr


def test_a_place_with_no_incident_is_named_with_similar_places(
    incident_db: Callable[..., subprocess.CompletedProcess[str]],
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'incidents.sqlite3'}")
    _ok(incident_db("import-feed", files["feed"], "--mapping", "crime-at-sea", *db))
    out = tmp_path / "brief.json"
    done = incident_db("brief", "--place", "Tanjong Ubin", "--format", "json", "--out", out, *db)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["incidents"] == 0
    assert "no incident matches the place 'Tanjong Ubin'" in done.stderr
    assert "similar names: tanjung uban" in done.stderr
    done = incident_db("brief", "--place", "Tanjung Uban", "--whole-archive", "--format", "json",
                       "--out", out, *db)  # fmt: skip
    assert done.stderr == ""
