"""A forged backup: built by someone who holds only the *public* backup key.

The backup public key sits on the portal's host, so anyone who reads that
host can seal a tar stream that ``portal restore`` opens with the offline
key. These tests play that attacker with the real ``portal backup`` and
``portal restore`` commands: a backup that brings its own organisation key,
or a directory that key signed, or a tar member or SQLite database built to
do harm, restores nothing; a genuine backup still restores, under the
organisation key the operator brings from the key ceremony.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from crypto.directory import read_directory, sign_directory
from crypto.envelope import seal_bytes
from crypto.keyfile import KeyBundle, decrypt_key_file
from crypto.keys import EncryptionKeyPair, KeyKind, SigningKeyPair, parse_public_key
from portal.cli.main import main as portal_main
from portal.config import load_config
from portal.storage import receipts
from portal.web.app import create_app
from portal.web.sync import login_message
from tests.conftest import DemoPortal, b64, backup, ceremony_key, restore
from tests.integration.portal_server import serve_portal

Member = tuple[tarfile.TarInfo, bytes]


@pytest.fixture
def victim(demo_template: DemoPortal, tmp_path: Path) -> Path:
    """The real portal's data directory; its organisation key is the ceremony's."""
    data_dir = tmp_path / "victim"
    shutil.copytree(demo_template.data_dir, data_dir, ignore=shutil.ignore_patterns("demo"))
    return data_dir


def attacker_copy(victim: Path, tmp_path: Path) -> Path:
    """A copy of the victim's data directory, for the attacker to change and back up."""
    own = tmp_path / "attacker"
    shutil.copytree(victim, own)
    return own


def attacker_portal(victim: Path, tmp_path: Path, real_org_pub: bool) -> Path:
    """A portal the attacker built, whose directory their own key signed.

    It lists the real reviewers too (their keys are public), so nothing looks
    amiss to anyone reading the reviewer list.
    """
    own = attacker_copy(victim, tmp_path)
    organisation = KeyBundle.new_organisation().signing
    real = read_directory(
        (victim / "key-directory.json").read_bytes(),
        parse_public_key(ceremony_key(victim), KeyKind.SIGNING),
    )
    mine = KeyBundle.new_reviewer().encryption
    assert mine is not None
    reviewers = [(r.label, r.encryption_key) for r in real.reviewers]
    signed = sign_directory(organisation, [*reviewers, ("reviewer-3", mine.token)],
                            serial=real.serial + 1, issued_at=datetime.now(UTC),
                            valid_for=timedelta(days=30))  # fmt: skip
    (own / "key-directory.json").write_bytes(signed)
    if not real_org_pub:
        (own / "organisation.pub").write_text(f"{organisation.token}\n")
    return own


def test_a_backup_that_brings_its_own_organisation_key_is_refused(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = attacker_portal(victim, tmp_path, real_org_pub=False)
    forged = backup(own, tmp_path / "forged", backup_key["public"])
    capsys.readouterr()
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim) == 2
    assert "organisation key" in capsys.readouterr().err
    assert not target.exists()
    assert not any(p.name.startswith(".restored") for p in tmp_path.iterdir())


def test_a_backup_whose_directory_another_key_signed_is_refused(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = attacker_portal(victim, tmp_path, real_org_pub=True)
    forged = backup(own, tmp_path / "forged", backup_key["public"])
    capsys.readouterr()
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim) == 2
    assert "key directory" in capsys.readouterr().err
    assert not target.exists()


def test_a_genuine_backup_restores_under_the_ceremony_key(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    made = backup(victim, tmp_path / "backups", backup_key["public"])
    target = tmp_path / "restored"
    assert restore(made, target, backup_key, victim) == 0
    assert ceremony_key(target) == ceremony_key(victim)
    assert (target / "key-directory.json").read_bytes() == (
        victim / "key-directory.json"
    ).read_bytes()


def test_the_operator_cannot_restore_a_genuine_backup_under_another_key(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    made = backup(victim, tmp_path / "backups", backup_key["public"])
    other = str(KeyBundle.new_organisation().signing.token)
    assert restore(made, tmp_path / "restored", backup_key, victim, organisation=other) == 2
    assert not (tmp_path / "restored").exists()


# --- tar streams and databases built to do harm --------------------------------------


def _file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    return info, data


def _special(name: str, kind: bytes, target: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def genuine_members(victim: Path) -> list[Member]:
    """What a real backup of ``victim`` holds; the attacker can build all of it.

    The organisation key and the directory are public (browsers fetch them);
    the database is any portal's; the signing key is the attacker's own.
    """
    members = [_file("database/portal.sqlite3", _database_image(victim / "portal.sqlite3"))]
    for name in ("key-directory.json", "organisation.pub", "portal-signing.key",
                 "portal-signing.pub"):  # fmt: skip
        members.append(_file(f"data/{name}", (victim / name).read_bytes()))
    return members


def _database_image(path: Path) -> bytes:
    """The victim's database as one file, the way any SQLite tool copies it.

    The portal runs SQLite in WAL mode, so the file alone may lack recent pages
    and its header says WAL; the backup API gathers both, and a copy without
    its log says rollback journal (header bytes 18 and 19), as a backup must.
    """
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        image = bytearray(copy.serialize())
    finally:
        copy.close()
        source.close()
    image[18:20] = b"\x01\x01"
    return bytes(image)


def seal_members(
    members: list[Member], out: Path, public_key: Path, database: str = "sqlite"
) -> Path:
    """A tar stream with a manifest that matches it, sealed to the backup key."""
    buffer = io.BytesIO()
    listed = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
            if info.isfile():
                digest = hashlib.sha256(data).hexdigest()
                listed.append({"path": info.name, "size": len(data), "sha256": digest})
        manifest = {"schema": "cso-portal-backup/v1", "created_at": "2026-11-30T03:00:00Z",
                    "database": database, "files": listed}  # fmt: skip
        info, data = _file("manifest.json", json.dumps(manifest).encode())
        archive.addfile(info, io.BytesIO(data))
    token = public_key.read_text().strip().splitlines()[-1]  # after the comment lines
    recipient = parse_public_key(token, KeyKind.ENCRYPTION).key
    out.write_bytes(seal_bytes(buffer.getvalue(), [recipient]))
    return out


def test_the_forgery_harness_builds_a_backup_that_restores(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    forged = seal_members(genuine_members(victim), tmp_path / "b.tar.cso", backup_key["public"])
    assert restore(forged, tmp_path / "restored", backup_key, victim) == 0


BLOB = "0123456789abcdef0123456789abcdef"
HARMFUL_MEMBERS: dict[str, Callable[[], Member]] = {
    "symlink to a host file": lambda: _special(
        f"data/blobs/{BLOB}", tarfile.SYMTYPE, "/etc/passwd"
    ),
    "hard link": lambda: _special(f"data/blobs/{BLOB}", tarfile.LNKTYPE, "data/organisation.pub"),
    "character device": lambda: _special("data/blobs/tty", tarfile.CHRTYPE),
    "fifo": lambda: _special("data/blobs/pipe", tarfile.FIFOTYPE),
    "absolute path": lambda: _file("/tmp/cso-escape", b"x"),
    "parent directory": lambda: _file("data/../../cso-escape", b"x"),
    "blob name outside the pattern": lambda: _file("data/blobs/not-a-blob.sh", b"x"),
    "blob in a subfolder": lambda: _file(f"data/blobs/deeper/{BLOB}", b"x"),
    "hidden file": lambda: _file("data/.profile", b"x"),
    "a file the portal never writes": lambda: _file("data/secret_key", b"0" * 64),
    "a second database": lambda: _file("database/other.sqlite3", b"x"),
}


@pytest.mark.parametrize("harm", sorted(HARMFUL_MEMBERS))
def test_a_backup_with_a_harmful_tar_member_restores_nothing(
    harm: str, victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    members = [*genuine_members(victim), HARMFUL_MEMBERS[harm]()]
    forged = seal_members(members, tmp_path / "b.tar.cso", backup_key["public"])
    target = tmp_path / "sub" / "restored"
    assert restore(forged, target, backup_key, victim) == 2
    assert not target.exists()
    assert not (tmp_path / "cso-escape").exists()
    assert not Path("/tmp/cso-escape").exists()


def _database_with(victim: Path, tmp_path: Path, statements: str) -> bytes:
    path = tmp_path / "forged.sqlite3"
    path.write_bytes(_database_image(victim / "portal.sqlite3"))
    connection = sqlite3.connect(path)
    connection.executescript(statements)
    connection.close()
    return path.read_bytes()


def with_database(
    database: bytes, victim: Path, public_key: Path, tmp_path: Path, kind: str = "sqlite"
) -> Path:
    """A backup of ``victim`` that holds ``database``: a SQLite file, or a ``pg_dump -Fc``."""
    name = {"sqlite": "database/portal.sqlite3", "postgresql": "database/portal.pgdump"}[kind]
    members = [_file(name, database), *genuine_members(victim)[1:]]
    return seal_members(members, tmp_path / "b.tar.cso", public_key, kind)


HARMFUL_DATABASES = {
    # every report that arrives after the restore is silently thrown away
    "trigger": "CREATE TRIGGER drop_reports AFTER INSERT ON submission "
    "BEGIN DELETE FROM submission WHERE id = NEW.id; END;",
    "view": "CREATE VIEW everything AS SELECT * FROM submission;",
    "extra table": "CREATE TABLE harvest (payload BLOB);",
    "unknown schema version": "UPDATE alembic_version SET version_num = 'ffffffffffff';",
    "missing table": "DROP TABLE reply;",
}


@pytest.mark.parametrize("harm", sorted(HARMFUL_DATABASES))
def test_a_backup_whose_database_was_built_to_do_harm_restores_nothing(
    harm: str, victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    database = _database_with(victim, tmp_path, HARMFUL_DATABASES[harm])
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim) == 2
    assert not target.exists()


def test_a_backup_whose_database_is_not_sqlite_restores_nothing(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    damaged = bytearray((victim / "portal.sqlite3").read_bytes())
    damaged[4096:8192] = b"\xa5" * 4096  # a page of garbage behind a valid header
    for database in (b"#!/bin/sh\nrm -rf /\n", bytes(damaged)):
        forged = with_database(database, victim, backup_key["public"], tmp_path)
        target = tmp_path / "restored"
        assert restore(forged, target, backup_key, victim) == 2
        assert not target.exists()


# --- what a checker sees from outside ---------------------------------------------------


def verify_assets(url: str, pin: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``portal verify-assets`` against ``url`` with the organisation key option ``pin``."""
    code = portal_main(["verify-assets", "--url", url, *pin])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_assets_fails_against_a_portal_that_pins_another_key(
    victim: Path, demo_template: DemoPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = ceremony_key(victim)
    fingerprint = parse_public_key(published, KeyKind.SIGNING).fingerprint
    own = attacker_portal(victim, tmp_path, real_org_pub=False)
    hijacked = DemoPortal(own, demo_template.reviewers, demo_template.passphrase)
    with serve_portal(hijacked, tmp_path) as running:
        for pin in (["--organisation-key", published], ["--organisation-fingerprint", fingerprint]):
            code, output = verify_assets(running["url"], pin, capsys)
            assert code == 2, output
            assert "FAIL page /: pins another organisation key" in output
            assert "FAIL page /followup: pins another organisation key" in output


def test_verify_assets_passes_against_a_portal_that_pins_the_published_key(
    victim: Path, demo_template: DemoPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = ceremony_key(victim)
    fingerprint = parse_public_key(published, KeyKind.SIGNING).fingerprint
    genuine = DemoPortal(victim, demo_template.reviewers, demo_template.passphrase)
    with serve_portal(genuine, tmp_path) as running:
        for pin in (["--organisation-key", published], ["--organisation-fingerprint", fingerprint]):
            code, output = verify_assets(running["url"], pin, capsys)
            assert code == 0, output
            assert "ok   page /: pins the expected organisation key" in output


# --- PostgreSQL dumps built to do harm ----------------------------------------------------
#
# A PostgreSQL backup holds ``pg_dump --format=custom``: a table of contents whose entries
# carry SQL text (definitions, and for each table's data the COPY statement to run), then
# the data. The attacker writes all of it. Nothing of it but rows may reach the database.


def new_database(server: str, prefix: str) -> str:
    """A new, empty database on the test server; its URL."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def attacker_dump(server: str, statements: list[str]) -> bytes:
    """A portal database with rows, changed by ``statements``, as ``pg_dump -Fc`` writes it.

    The dump goes through a pipe, so it records no data offsets and the tests
    can rewrite its table of contents at any length (:func:`rewrite_toc`).
    """
    from sqlalchemy import create_engine

    from portal.deploy.backup import libpq_environment
    from portal.storage.db import upgrade

    source = new_database(server, "forged")
    upgrade(source)
    engine = create_engine(source)
    with engine.begin() as connection:
        for statement in [*sql(GOOD_ROWS).split(";"), *statements]:
            if statement.strip():
                # a bytea literal is '\x…' in PostgreSQL, X'…' in SQLite
                connection.exec_driver_sql(statement.replace("X'", "'\\x"))
    engine.dispose()
    command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges"]
    return subprocess.run(
        command, env=libpq_environment(source), capture_output=True, check=True
    ).stdout


def rewrite_toc(dump: bytes, old: str, new: str) -> bytes:
    """``dump`` with one string of its table of contents replaced by ``new``.

    A custom-format string is a sign byte, a 4-byte little-endian length and
    the bytes; an archive written to a pipe has no offsets to keep in step.
    """

    def field(value: str) -> bytes:
        raw = value.encode()
        return b"\x00" + len(raw).to_bytes(4, "little") + raw

    assert dump.count(field(old)) == 1
    return dump.replace(field(old), field(new))


def restore_dump(
    dump: bytes,
    target_url: str,
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> int:
    """``portal restore`` of a backup holding ``dump``, into the database ``target_url``."""
    forged = with_database(dump, victim, backup_key["public"], tmp_path, "postgresql")
    monkeypatch.setenv("DATABASE_URL", target_url)
    return restore(forged, tmp_path / "restored", backup_key, victim)


def schema_of(url: str) -> list[str]:
    """Every schema object of the database at ``url``, as ``pg_dump --schema-only`` prints it."""
    from portal.deploy.backup import libpq_environment

    command = ["pg_dump", "--schema-only", "--no-owner", "--no-privileges"]
    printed = subprocess.run(command, env=libpq_environment(url), capture_output=True, check=True)
    skipped = ("--", "\\restrict", "\\unrestrict")  # comments, and a random key per run
    return [line for line in printed.stdout.decode().splitlines() if not line.startswith(skipped)]


def role_settings(url: str) -> int:
    """How many role or database settings apply in the database at ``url``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(
            text(
                "SELECT count(*) FROM pg_db_role_setting WHERE setdatabase IN "
                "(0, (SELECT oid FROM pg_database WHERE datname = current_database()))"
            )
        ).scalar_one()
    engine.dispose()
    return int(count)


@pytest.fixture(scope="module")
def made_here(postgres_url: str) -> dict[str, list[str]]:
    """The schema of an empty database, and of one this code's migrations made."""
    from portal.storage.db import upgrade

    empty, migrated = new_database(postgres_url, "empty"), new_database(postgres_url, "migrated")
    upgrade(migrated)
    return {"empty": schema_of(empty), "migrated": schema_of(migrated)}


def assert_only_rows_arrived(code: int, target: str, made_here: dict[str, list[str]]) -> None:
    """Refused and nothing in the database, or restored into this code's own schema."""
    assert code in (0, 2)
    assert schema_of(target) == made_here["migrated" if code == 0 else "empty"]
    assert role_settings(target) == 0


#: each a change to a portal database that no migration makes, and that would do harm
HARMFUL_SCHEMAS = {
    # every report that arrives after the restore is silently thrown away
    "trigger": [
        "CREATE FUNCTION drop_report() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM submission WHERE id = NEW.id; RETURN NULL; END $$",
        "CREATE TRIGGER drop_reports AFTER INSERT ON submission "
        "FOR EACH ROW EXECUTE FUNCTION drop_report()",
    ],
    # each stored part's id is its arrival time, to the microsecond
    "column default": [
        "ALTER TABLE part ALTER COLUMN id TYPE bigint",
        "ALTER TABLE part ALTER COLUMN id SET DEFAULT "
        "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
    ],
    # a sync challenge can be answered twice
    "dropped primary key": ["ALTER TABLE sync_challenge DROP CONSTRAINT sync_challenge_pkey"],
    # the portal's own role reads no report back
    "row-level security": [
        "ALTER TABLE submission ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE submission FORCE ROW LEVEL SECURITY",
        "CREATE POLICY hide ON submission USING (false) WITH CHECK (true)",
    ],
    # shadows a built-in for anyone whose search_path puts public first
    "function": [
        "CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$"
    ],
    # runs the attacker's function on every row, as the restoring role, while the dump loads
    "index on a function": [
        "CREATE FUNCTION mark(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$",
        "CREATE INDEX marked ON part (mark(blob))",
    ],
    "view": ["CREATE VIEW everything AS SELECT * FROM submission"],
    "extra table": ["CREATE TABLE harvest (payload bytea)", "INSERT INTO harvest VALUES ('x')"],
    "extra schema": ["CREATE SCHEMA elsewhere", "CREATE TABLE elsewhere.harvest (x int)"],
}


@pytest.mark.parametrize("harm", sorted(HARMFUL_SCHEMAS))
def test_a_postgresql_dump_that_brings_its_own_schema_leaves_none_of_it(
    harm: str,
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    made_here: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dump = attacker_dump(postgres_url, HARMFUL_SCHEMAS[harm])
    target = new_database(postgres_url, "target")
    code = restore_dump(dump, target, victim, backup_key, tmp_path, monkeypatch)
    assert_only_rows_arrived(code, target, made_here)


def test_a_postgresql_dump_cannot_make_part_ids_arrival_times(
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import create_engine, text

    dump = attacker_dump(postgres_url, HARMFUL_SCHEMAS["column default"])
    target = new_database(postgres_url, "target")
    if restore_dump(dump, target, victim, backup_key, tmp_path, monkeypatch) != 0:
        return  # refused: nothing to store into
    engine = create_engine(target)
    with engine.begin() as connection:  # a report arrives at the restored portal
        connection.execute(text(sql(
            "INSERT INTO submission (id, received_on, receipt_locator, receipt_hash, "
            "receipt_index, status) VALUES ('$HEX32', CURRENT_DATE, '0000', '', '$HEX64', "
            "'received')"
        )))  # fmt: skip
        stored = connection.execute(text(
            "INSERT INTO part (submission_id, position, kind, blob, size) SELECT id, 0, 'REPORT', "
            "md5(id), 1 FROM submission WHERE received_on = CURRENT_DATE RETURNING id"
        )).scalar_one()  # fmt: skip
    engine.dispose()
    assert stored < 1000  # counted, not a clock: about 1.8e15 microseconds have passed since 1970


def test_a_postgresql_dump_cannot_make_sync_challenges_reusable(
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    dump = attacker_dump(postgres_url, HARMFUL_SCHEMAS["dropped primary key"])
    target = new_database(postgres_url, "target")
    if restore_dump(dump, target, victim, backup_key, tmp_path, monkeypatch) != 0:
        return
    spend = text(
        "INSERT INTO sync_challenge (id, account_label, expires_at) "
        "VALUES (repeat('e', 64), 'alice', now() + interval '1 minute')"
    )
    engine = create_engine(target)
    with engine.begin() as connection:
        connection.execute(spend)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(spend)  # the same challenge, spent again
    engine.dispose()


def test_a_postgresql_dump_that_sets_a_role_setting_sets_nothing(
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    made_here: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = new_database(postgres_url, "target")
    database = target.rsplit("/", 1)[1]
    # A sequence's entry is SQL text that pg_restore runs as it stands: here it sets the
    # portal's search_path in the restored database, before any check could look.
    dump = rewrite_toc(
        attacker_dump(postgres_url, []),
        "SELECT pg_catalog.setval('public.reviewer_account_id_seq', 1, false);\n",
        f"ALTER ROLE CURRENT_USER IN DATABASE {database} SET search_path = public, pg_temp;\n",
    )
    code = restore_dump(dump, target, victim, backup_key, tmp_path, monkeypatch)
    assert_only_rows_arrived(code, target, made_here)


def test_a_postgresql_dump_whose_copy_statement_is_other_sql_runs_none_of_it(
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    made_here: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = new_database(postgres_url, "target")
    database = target.rsplit("/", 1)[1]
    # Each table's data entry names the statement that loads it; pg_restore runs that text
    # even with --data-only. Here it makes every later transaction of the portal read-only
    # (no report can be stored), then loads the rows as usual.
    dump = rewrite_toc(
        attacker_dump(postgres_url, []),
        "COPY public.sync_session (token_hash, account_id, expires_at) FROM stdin;\n",
        f"ALTER ROLE CURRENT_USER IN DATABASE {database} "
        "SET default_transaction_read_only = on;\n"
        "COPY public.sync_session (token_hash, account_id, expires_at) FROM stdin;\n",
    )
    code = restore_dump(dump, target, victim, backup_key, tmp_path, monkeypatch)
    assert_only_rows_arrived(code, target, made_here)


def test_a_postgresql_dump_as_a_portal_writes_it_restores_its_rows(
    victim: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    postgres_url: str,
    made_here: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import create_engine, text

    target = new_database(postgres_url, "target")
    code = restore_dump(
        attacker_dump(postgres_url, []), target, victim, backup_key, tmp_path, monkeypatch
    )
    assert code == 0
    assert_only_rows_arrived(code, target, made_here)
    engine = create_engine(target)
    with engine.connect() as connection:
        counts = connection.execute(text(
            "SELECT (SELECT count(*) FROM submission), (SELECT count(*) FROM part), "
            "(SELECT count(*) FROM inbox_entry), (SELECT count(*) FROM reply), "
            "(SELECT count(*) FROM team_update)"
        )).one()  # fmt: skip
        counter = connection.execute(text("SELECT last_value FROM inbox_entry_seq_seq")).scalar()
        team = connection.execute(text("SELECT last_value FROM team_update_seq_seq")).scalar()
        relayed = connection.execute(text("SELECT data FROM team_update")).scalar()
    engine.dispose()
    assert tuple(counts) == (2, 3, 2, 1, 1)
    assert counter == 2
    assert team == 1
    assert bytes(relayed) == TEAM_UPDATE


# --- accounts, sessions and rows: what a forged database brings -------------------------

SYNC_KEY, REPLY_KEY = SigningKeyPair.generate(), SigningKeyPair.generate()
ATTACKER_SYNC, ATTACKER_REPLY = SigningKeyPair.generate(), SigningKeyPair.generate()


def enrol(data_dir: Path, label: str, sync: SigningKeyPair, reply: SigningKeyPair) -> str:
    """``portal accounts add``; returns the line the operator's enrolment record gets."""
    keys = ["--sync-key", str(sync.token), "--signing-key", str(reply.token)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert portal_main(["--data-dir", str(data_dir), "accounts", "add", label, *keys]) == 0
    line = printed.getvalue().splitlines()[-1].strip()  # the record line it tells us to keep
    assert line == f"{label} {sync.token} {reply.token}"
    return line + "\n"


@pytest.fixture
def enrolled(victim: Path, tmp_path: Path) -> Path:
    """The victim with one real reviewer account; returns the operator's enrolment record."""
    record = tmp_path / "accounts.txt"
    record.write_text(
        "# label, sync key, replies-signing key\n" + enrol(victim, "alice", SYNC_KEY, REPLY_KEY)
    )
    return record


def sync_client(data_dir: Path) -> FlaskClient:
    """The restored portal's sync API, as a transfer machine reaches it."""
    config = load_config({"PORTAL_TESTING": "1"}, data_dir=data_dir)
    return create_app(config, "sync").test_client()


def log_in(client: FlaskClient, label: str, key: SigningKeyPair) -> int:
    """A challenge login with ``key``; the HTTP status of the login."""
    challenge = client.post("/reviewer-sync/v1/login/challenge", json={"account": label})
    value = challenge.get_json()["challenge"]
    signature = key.sign(login_message(label, bytes.fromhex(value)))
    body = {"account": label, "challenge": value, "signature": b64(signature)}
    response = client.post("/reviewer-sync/v1/login", json=body)
    return response.status_code


def backup_with_monitor(victim: Path, tmp_path: Path, public_key: Path) -> Path:
    """A backup of the victim with one more sync account: the attacker's "monitor"."""
    own = attacker_copy(victim, tmp_path)
    enrol(own, "cso-backup-monitor", ATTACKER_SYNC, ATTACKER_REPLY)
    return backup(own, tmp_path / "forged", public_key)


def test_a_sync_account_smuggled_into_a_backup_cannot_log_in(
    victim: Path,
    enrolled: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = backup_with_monitor(victim, tmp_path, backup_key["public"])
    capsys.readouterr()
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim) == 0
    err = capsys.readouterr().err
    assert "alice" in err  # the labels to re-enrol, or not
    assert "cso-backup-monitor" in err
    client = sync_client(target)
    assert log_in(client, "cso-backup-monitor", ATTACKER_SYNC) == 401
    assert log_in(client, "alice", SYNC_KEY) == 401  # no account comes from a backup


def test_a_backup_whose_accounts_differ_from_the_enrolment_record_is_refused(
    victim: Path,
    enrolled: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = backup_with_monitor(victim, tmp_path, backup_key["public"])
    capsys.readouterr()
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim, "--accounts", str(enrolled)) == 2
    assert "cso-backup-monitor" in capsys.readouterr().err
    assert not target.exists()


def test_a_backup_that_swaps_a_reviewers_keys_is_refused(
    victim: Path, enrolled: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    own = attacker_copy(victim, tmp_path)
    connection = sqlite3.connect(own / "portal.sqlite3")
    connection.execute("UPDATE reviewer_account SET signing_key = ?", (str(ATTACKER_REPLY.token),))
    connection.commit()
    connection.close()
    forged = backup(own, tmp_path / "forged", backup_key["public"])
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim, "--accounts", str(enrolled)) == 2
    assert not target.exists()


def test_a_genuine_backup_keeps_the_accounts_of_the_enrolment_record(
    victim: Path, enrolled: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    made = backup(victim, tmp_path / "backups", backup_key["public"])
    target = tmp_path / "restored"
    assert restore(made, target, backup_key, victim, "--accounts", str(enrolled)) == 0
    assert log_in(sync_client(target), "alice", SYNC_KEY) == 200


def test_accounts_list_record_prints_what_restore_reads(
    victim: Path, enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert portal_main(["--data-dir", str(victim), "accounts", "list", "--record"]) == 0
    kept = [line for line in enrolled.read_text().splitlines() if not line.startswith("#")]
    assert capsys.readouterr().out.splitlines() == kept


def test_a_sync_session_smuggled_into_a_backup_opens_nothing(
    victim: Path, enrolled: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    own = attacker_copy(victim, tmp_path)
    token = secrets.token_urlsafe(32)
    connection = sqlite3.connect(own / "portal.sqlite3")
    connection.execute(
        "INSERT INTO sync_session VALUES (?, (SELECT id FROM reviewer_account), "
        "'2099-01-01 00:00:00.000000')",
        (hashlib.sha256(token.encode()).hexdigest(),),
    )
    connection.commit()
    connection.close()
    forged = backup(own, tmp_path / "forged", backup_key["public"])
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim, "--accounts", str(enrolled)) == 0
    inbox = sync_client(target).get(
        "/reviewer-sync/v1/inbox", headers={"Authorization": f"Bearer {token}"}
    )
    assert inbox.status_code == 401


#: a relayed team update: an envelope sealed to reviewers, which the portal cannot open
TEAM_UPDATE = seal_bytes(b"a signed team update", [EncryptionKeyPair.generate().public])
#: placeholders in the SQL below: a report, a follow-up to it, and any hex of that length
_NAMES = {"$REPORT": "a" * 32, "$FOLLOWUP": "b" * 32, "$ATTACKER_SYNC": str(ATTACKER_SYNC.token),
          "$ATTACKER_REPLY": str(ATTACKER_REPLY.token), "$TEAM_DATA": TEAM_UPDATE.hex(),
          "$TEAM_SIZE": str(len(TEAM_UPDATE))}  # fmt: skip


def sql(template: str) -> str:
    """``template`` with its placeholders filled (ids and keys, never anything quoted)."""
    for name, value in _NAMES.items():
        template = template.replace(name, value)
    return re.sub(r"\$HEX(\d+)", lambda m: secrets.token_hex(int(m.group(1)) // 2), template)


GOOD_ROWS = """
INSERT INTO submission (id, received_on, receipt_locator, receipt_hash, receipt_index, status)
    VALUES ('$REPORT', '2026-01-01', '1234', '', '$HEX64', 'received');
INSERT INTO submission (id, received_on, receipt_locator, receipt_hash, status, thread_id)
    VALUES ('$FOLLOWUP', '2026-01-03', '', '', 'received', '$REPORT');
INSERT INTO part (submission_id, position, kind, blob, size, sha256)
    VALUES ('$REPORT', 0, 'REPORT', 'dddddddddddddddddddddddddddddddd', 1000, '$HEX64'),
           ('$REPORT', 1, 'ATTACHMENT', '$HEX32', 2000, NULL),
           ('$FOLLOWUP', 0, 'REPORT', '$HEX32', 500, '$HEX64');
INSERT INTO inbox_entry (submission_id, acknowledged_on) VALUES ('$REPORT', '2026-01-02');
INSERT INTO inbox_entry (submission_id) VALUES ('$FOLLOWUP');
INSERT INTO reply (reply_id, submission_id, status, blob, size, received_on)
    VALUES ('$HEX32', '$REPORT', 'closed', '$HEX32', 300, '2026-01-05');
INSERT INTO team_update (update_id, data, size, received_on)
    VALUES ('$HEX32', X'$TEAM_DATA', $TEAM_SIZE, '2026-01-05');
"""
BINARY_ID, NINES = "x'" + "00" * 16 + "'", "'" + "9" * 32 + "'"
ANOTHER = """
INSERT INTO submission (id, received_on, receipt_locator, receipt_hash, receipt_index, status,
    thread_id) VALUES (%s, '2026-01-04', %s, '', %s, 'received', %s);
INSERT INTO inbox_entry (submission_id) VALUES (%s)
"""
PART = (
    "INSERT INTO part (submission_id, position, kind, blob, size) VALUES (%s, 0, 'REPORT', %s, 1);"
)
#: each a change to GOOD_ROWS that no portal makes, and that would do harm or hide it
BAD_ROWS = {
    "submission id not 32 hex": ANOTHER % ("'../../x'", "'1234'", "'$HEX64'", "NULL", "'../../x'"),
    "submission id not text": ANOTHER % (BINARY_ID, "'1234'", "'$HEX64'", "NULL", BINARY_ID),
    "status outside the known set": "UPDATE submission SET status = 'we read your report'",
    "arrival day in the future": "UPDATE submission SET received_on = '2999-01-01'",
    "arrival not a day": "UPDATE submission SET received_on = '2026-01-01 03:14:15'",
    "locator not 4 digits": "UPDATE submission SET receipt_locator = 'abcd' WHERE id = '$REPORT'",
    "receipt index not 64 hex": "UPDATE submission SET receipt_index = 'x' WHERE id = '$REPORT'",
    "follow-up with a receipt": "UPDATE submission SET receipt_locator = '1234' "
    "WHERE id = '$FOLLOWUP'",
    "follow-up of a follow-up": ANOTHER % (NINES, "''", "NULL", "'$FOLLOWUP'", NINES),
    "part blob name outside the pattern": "UPDATE part SET blob = '../portal-signing.key' "
    "WHERE position = 1",
    "part kind unknown": "UPDATE part SET kind = 'EXECUTABLE' WHERE position = 1",
    "report part not first": "UPDATE part SET kind = 'ATTACHMENT' WHERE position = 0 "
    "AND submission_id = '$REPORT'",
    "part size negative": "UPDATE part SET size = -1",
    "part size not a number": "UPDATE part SET size = 'large'",
    "part sha256 malformed": "UPDATE part SET sha256 = 'zz' WHERE position = 0",
    "reply and part share a blob": "UPDATE reply SET blob = 'dddddddddddddddddddddddddddddddd'",
    "reply id malformed": "UPDATE reply SET reply_id = 'r1'",
    "reply status unknown": "UPDATE reply SET status = 'pwned'",
    "reply before its report": "UPDATE reply SET received_on = '2025-01-01'",
    "reply with neither message nor status": "UPDATE reply SET blob = NULL, status = NULL",
    "acknowledged before arrival": "UPDATE inbox_entry SET acknowledged_on = '2020-01-01' "
    "WHERE acknowledged_on IS NOT NULL",
    "submission outside the inbox": "DELETE FROM inbox_entry WHERE submission_id = '$FOLLOWUP'",
    "inbox counter near its end": "UPDATE sqlite_sequence SET seq = 9223372036854775806 "
    "WHERE name = 'inbox_entry'",
    "inbox counter behind the inbox": "UPDATE sqlite_sequence SET seq = 0 "
    "WHERE name = 'inbox_entry'",
    "cursor beyond every submission": "UPDATE reviewer_account SET acknowledged_cursor = 1000000",
    "team update not an envelope": "UPDATE team_update SET data = X'00', size = 1",
    "team update text, not bytes": "UPDATE team_update SET data = 'hello', size = 5",
    "team update size not its data's": "UPDATE team_update SET size = 5",
    "team update id malformed": "UPDATE team_update SET update_id = 'u1'",
    "team update from a day to come": "UPDATE team_update SET received_on = '2999-01-01'",
    "team counter behind the updates": "UPDATE sqlite_sequence SET seq = 0 "
    "WHERE name = 'team_update'",
    "counter for a table that has none": "INSERT INTO sqlite_sequence VALUES ('reply', 5)",
    "team cursor beyond every update": "UPDATE reviewer_account SET team_cursor = 1000",
    "account label that writes to the terminal": "INSERT INTO reviewer_account (label, sync_key, "
    "signing_key, acknowledged_cursor, failures) VALUES ('x\x1b]0;pwned\x07', "
    "'$ATTACKER_SYNC', '$ATTACKER_REPLY', 0, 0)",
}


def test_rows_as_a_portal_writes_them_restore(
    victim: Path, enrolled: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    database = _database_with(victim, tmp_path, sql(GOOD_ROWS))
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim, "--accounts", str(enrolled)) == 0
    restored = sqlite3.connect(target / "portal.sqlite3")
    try:  # the relayed team update, and the counter its cursors follow
        rows = restored.execute("SELECT seq, data FROM team_update").fetchall()
        counters = dict(restored.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    finally:
        restored.close()
    assert rows == [(1, TEAM_UPDATE)]
    assert counters["team_update"] == 1


@pytest.mark.parametrize("harm", sorted(BAD_ROWS))
def test_a_backup_with_a_row_no_portal_writes_restores_nothing(
    harm: str,
    victim: Path,
    enrolled: Path,
    backup_key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = _database_with(victim, tmp_path, sql(GOOD_ROWS + BAD_ROWS[harm] + ";"))
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    capsys.readouterr()
    target = tmp_path / "restored"
    assert restore(forged, target, backup_key, victim, "--accounts", str(enrolled)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert "\x1b" not in err  # and nothing for the terminal
    assert not target.exists()


def _legacy_rows(hashed: str, count: int, locator: str = "0000") -> str:
    """Reports as filed before migration 0005: a per-report hash and no receipt index."""
    rows = []
    for n in range(count):
        submission = f"'{n:032x}'"
        values = (submission, f"'{locator}'", "NULL", "NULL", submission)
        rows.append((ANOTHER % values).replace("''", f"'{hashed}'", 1) + ";")
        rows.append(PART % (submission, f"'{n + 2**64:032x}'"))
    return "".join(rows)


def _server_hash() -> str:
    """A receipt hash made with exactly the server's argon2id parameters."""
    hasher = PasswordHasher(time_cost=receipts.TIME_COST, memory_cost=receipts.MEMORY_KIB,
                            parallelism=receipts.PARALLELISM)  # fmt: skip
    return hasher.hash(b"x" * 32)


def test_a_backup_cannot_plant_a_receipt_hash_that_names_its_own_cost(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    # a real attacker names 4 GiB and thousands of passes; this one stays cheap to make
    costly = PasswordHasher(time_cost=3, memory_cost=32 * 1024, parallelism=1).hash(b"x")
    database = _database_with(victim, tmp_path, _legacy_rows(costly, 1))
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    assert restore(forged, tmp_path / "restored", backup_key, victim) == 2
    assert not (tmp_path / "restored").exists()


def test_a_backup_cannot_stuff_a_receipt_bucket_with_unindexed_reports(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    hashed = _server_hash()
    database = _database_with(victim, tmp_path, _legacy_rows(hashed, 200))
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    assert restore(forged, tmp_path / "restored", backup_key, victim) == 2
    assert not (tmp_path / "restored").exists()


def test_unindexed_reports_as_an_old_portal_kept_them_restore(
    victim: Path, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    hashed = _server_hash()
    database = _database_with(victim, tmp_path, _legacy_rows(hashed, 3))
    forged = with_database(database, victim, backup_key["public"], tmp_path)
    assert restore(forged, tmp_path / "restored", backup_key, victim) == 0


# --- the key directory: never older than the ceremony's newest ------------------------


def resign_without(victim: Path, demo: Path, removed: str, tmp_path: Path) -> Path:
    """The ceremony removes ``removed`` and signs a newer directory; returns its folder.

    ``demo`` holds the demo organisation key (in life it never leaves the ceremony).
    """
    passphrase = (demo / "passphrase").read_bytes().strip()
    organisation = decrypt_key_file((demo / "organisation.key").read_bytes(), passphrase).signing
    current = read_directory(
        (victim / "key-directory.json").read_bytes(),
        parse_public_key(ceremony_key(victim), KeyKind.SIGNING),
    )
    kept = [(r.label, r.encryption_key) for r in current.reviewers if r.label != removed]
    ceremony = tmp_path / "ceremony"
    ceremony.mkdir()
    shutil.copy(victim / "organisation.pub", ceremony)
    (ceremony / "key-directory.json").write_bytes(
        sign_directory(
            organisation,
            kept,
            serial=current.serial + 1,
            issued_at=datetime.now(UTC),
            valid_for=timedelta(days=30),
        )
    )
    return ceremony


def test_a_backup_cannot_roll_the_directory_back_to_a_removed_reviewer(
    victim: Path, demo_template: DemoPortal, backup_key: dict[str, Path], tmp_path: Path
) -> None:
    old = backup(victim, tmp_path / "backups", backup_key["public"])  # lists reviewer-2
    ceremony = resign_without(
        victim, demo_template.data_dir / "demo", "reviewer-2", tmp_path
    )  # reviewer-2 has left
    target = tmp_path / "restored"
    assert restore(old, target, backup_key, ceremony) == 0
    restored = read_directory(
        (target / "key-directory.json").read_bytes(),
        parse_public_key(ceremony_key(ceremony), KeyKind.SIGNING),
    )
    assert [r.label for r in restored.reviewers] == ["reviewer-1"]


def test_a_backup_newer_than_the_ceremony_directory_is_refused(
    victim: Path,
    demo_template: DemoPortal,
    backup_key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ceremony = resign_without(victim, demo_template.data_dir / "demo", "reviewer-2", tmp_path)
    stale = tmp_path / "stale"
    stale.mkdir()
    for name in ("organisation.pub", "key-directory.json"):
        shutil.copy(victim / name, stale)
        shutil.copy(ceremony / name, victim)  # the host has the newest directory
    made = backup(victim, tmp_path / "backups", backup_key["public"])
    capsys.readouterr()
    assert restore(made, tmp_path / "restored", backup_key, stale) == 2
    assert "serial" in capsys.readouterr().err
    assert not (tmp_path / "restored").exists()
