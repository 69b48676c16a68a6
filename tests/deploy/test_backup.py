"""``portal backup`` and ``portal restore``: a real round trip, on SQLite and PostgreSQL.

A portal with a stored report is backed up while its database is open; the
backup file is one envelope sealed to the backup key only, and holds neither
plaintext nor the portal's secrets in the clear. Restoring it with the
offline key gives a data directory that a new portal serves from, whose
blobs still open for the reviewers; a damaged or foreign backup restores
nothing at all.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from crypto.envelope import inspect, open_bytes
from portal.cli.main import main as portal_main
from portal.config import load_config
from portal.deploy.backup import prune
from portal.storage.models import Part, Submission
from portal.web.app import create_app
from tests.conftest import DemoPortal, backup, restore
from tests.integration.portal_server import send_plain

CANARY = "CANARY-8b2c-BACKUP"


def portal_app(data_dir: Path, database_url: str) -> Flask:
    """The portal over ``data_dir``, built by its factory."""
    runtime = os.environ["PORTAL_RUNTIME_DIR"]  # a temporary folder (tests/conftest.py)
    environ = {"DATABASE_URL": database_url, "PORTAL_TESTING": "1", "PORTAL_RUNTIME_DIR": runtime}
    return create_app(load_config(environ, data_dir=data_dir))


def submit(app: Flask) -> None:
    """One report sent without JavaScript."""
    client = app.test_client()
    form = {
        "category": "piracy-or-armed-robbery",
        "incident_local_time": "2026-11-20T02:10",
        "incident_utc_offset": "+01:00",
        "narrative": f"{CANARY} robbers at the anchorage",
    }
    response = send_plain(client, form)
    assert response.status_code == 200, response.data


def stored(app: Flask) -> list[tuple[str, list[str]]]:
    """Submissions and their blobs, as the database has them."""
    with app.extensions["portal"]["sessions"]() as session:
        return [
            (s.id, [p.blob for p in sorted(s.parts, key=lambda p: p.position)])
            for s in session.scalars(select(Submission).order_by(Submission.id))
        ]


def round_trip(demo: DemoPortal, keys: dict[str, Path], tmp_path: Path, restored_url: str) -> None:
    """Submit, back up, restore into a new directory; check everything on the way."""
    app = portal_app(demo.data_dir, demo.database_url)
    submit(app)
    before = stored(app)
    app.extensions["portal"]["engine"].dispose()
    made = backup(demo.data_dir, tmp_path / "backups", keys["public"], "--keep", "3")
    assert re.fullmatch(r"cso-portal-backup-\d{8}T\d{6}Z\.tar\.cso", made.name)
    assert made.stat().st_mode & 0o777 == 0o600
    sealed = made.read_bytes()
    with made.open("rb") as handle:
        assert len(inspect(handle).recipients) == 1  # the backup key, and no one else
    secrets = [CANARY.encode(), (demo.data_dir / "portal-signing.key").read_bytes().strip(),
               (demo.data_dir / "secret_key").read_bytes().strip(), b"SQLite format 3"]  # fmt: skip
    assert not any(secret in sealed for secret in secrets)

    target = tmp_path / "restored"
    assert restore(made, target, keys, demo.data_dir) == 0
    restored = portal_app(target, restored_url)
    try:
        assert stored(restored) == before
        assert restored.test_client().get("/").status_code == 200
        for name in ("portal-signing.key", "key-directory.json", "organisation.pub"):
            assert (target / name).read_bytes() == (demo.data_dir / name).read_bytes()
        blobs = sorted(p.name for p in (demo.data_dir / "blobs").iterdir())
        assert sorted(p.name for p in (target / "blobs").iterdir()) == blobs
        report = open_bytes((target / "blobs" / before[0][1][0]).read_bytes(), demo.identity(1))
        assert CANARY.encode() in report
    finally:
        restored.extensions["portal"]["engine"].dispose()
    assert (target / "secret_key").read_bytes() != (demo.data_dir / "secret_key").read_bytes()
    assert not (target / "demo").exists()  # demo keys are never backed up
    assert target.stat().st_mode & 0o777 == 0o700


def test_sqlite_round_trip(
    demo_template: DemoPortal, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    shutil.copytree(demo_template.data_dir, data_dir)
    demo = DemoPortal(data_dir, demo_template.reviewers, demo_template.passphrase)
    round_trip(demo, backup_key, tmp_path, "")


def databases(server: str, *names: str) -> list[str]:
    """New, empty databases on the test server; their URLs."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return [server.rsplit("/", 1)[0] + f"/{name}" for name in names]


def test_postgresql_round_trip(
    demo_template: DemoPortal,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.storage.db import upgrade

    source, target = databases(postgres_url, "backup_source", "backup_target")
    data_dir = tmp_path / "var"
    shutil.copytree(demo_template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3"))
    upgrade(source)
    monkeypatch.setenv("DATABASE_URL", source)
    app = portal_app(data_dir, source)
    submit(app)
    app.extensions["portal"]["engine"].dispose()
    made = backup(data_dir, tmp_path / "backups", backup_key["public"], "--keep", "3")
    monkeypatch.setenv("DATABASE_URL", target)
    ceremony = data_dir
    assert restore(made, tmp_path / "restored", backup_key, ceremony) == 0
    restored = portal_app(tmp_path / "restored", target)
    try:
        with restored.extensions["portal"]["sessions"]() as session:
            assert len(session.scalars(select(Part)).all()) == 1
    finally:
        restored.extensions["portal"]["engine"].dispose()
    # the database is not empty now
    assert restore(made, tmp_path / "again", backup_key, ceremony) == 2


def test_postgresql_backup_of_an_older_schema_restores_upgraded(
    demo_template: DemoPortal,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, text

    from portal.storage.db import alembic_config, upgrade

    source, target = databases(postgres_url, "older_source", "older_target")
    upgrade(source, "0004")  # before the budgets left the database (0006)
    engine = create_engine(source)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO rate_budget VALUES ('lookup', 3.0, 1.5)"))
    engine.dispose()
    data_dir = tmp_path / "var"
    shutil.copytree(demo_template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3"))
    monkeypatch.setenv("DATABASE_URL", source)
    made = backup(data_dir, tmp_path / "backups", backup_key["public"], "--keep", "3")
    monkeypatch.setenv("DATABASE_URL", target)
    assert restore(made, tmp_path / "restored", backup_key, data_dir) == 0
    head = ScriptDirectory.from_config(alembic_config(target)).get_current_head()
    engine = create_engine(target)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        tables = inspect(connection).get_table_names()
    engine.dispose()
    assert revision == head
    assert "rate_budget" not in tables


def test_damaged_or_foreign_backups_restore_nothing(
    demo_template: DemoPortal,
    backup_key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "var"
    shutil.copytree(demo_template.data_dir, data_dir)
    made = backup(data_dir, tmp_path / "backups", backup_key["public"], "--keep", "3")
    damaged = tmp_path / "damaged.tar.cso"
    raw = bytearray(made.read_bytes())
    raw[len(raw) // 2] ^= 1
    damaged.write_bytes(bytes(raw))
    truncated = tmp_path / "truncated.tar.cso"
    truncated.write_bytes(made.read_bytes()[:-100])
    capsys.readouterr()
    ceremony = data_dir
    for broken in (damaged, truncated):
        assert restore(broken, tmp_path / "restored", backup_key, ceremony) == 2
        assert "nothing was restored" in capsys.readouterr().err
        assert not (tmp_path / "restored").exists()
        assert not any(p.name.startswith(".restored") for p in tmp_path.iterdir())
    foreign = dict(backup_key, key=demo_template.data_dir / "demo" / "reviewer-1.key")
    foreign["passphrase"] = demo_template.data_dir / "demo" / "passphrase"
    assert restore(made, tmp_path / "restored", foreign, ceremony) == 2
    assert "does not open with this key" in capsys.readouterr().err
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "file").write_text("x")
    assert restore(made, tmp_path / "occupied", backup_key, ceremony) == 2
    assert "is not empty" in capsys.readouterr().err


def test_bad_backup_keys_are_one_line_errors(
    demo_template: DemoPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "backup.pub"
    key.write_text("csoenc1notakey\n")
    argv = ["--data-dir", str(demo_template.data_dir), "backup", "--out", str(tmp_path / "b"),
            "--to-key", str(key)]  # fmt: skip
    assert portal_main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"portal: error: {key}:")
    assert error.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"cso-portal-backup-2026112{day}T030000Z.tar.cso" for day in range(1, 6)]
    for name in [*names, "unrelated.txt"]:
        (tmp_path / name).write_text("x")
    removed = prune(tmp_path, 2)
    assert [p.name for p in removed] == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[3:], "unrelated.txt"])
