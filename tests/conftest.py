"""Shared fixtures: keys are costly to make (argon2id MODERATE), so make them once."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from crypto.keys import EncryptionKeyPair, SigningKeyPair

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
PASSPHRASE = b"correct horse battery staple"


def load_vectors(name: str) -> dict[str, Any]:
    """Read one vector file from tests/vectors."""
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert {"schema", "source", "rationale"} <= document.keys()
    return document


@pytest.fixture(scope="session")
def identities() -> list[EncryptionKeyPair]:
    """Three reviewer encryption key pairs."""
    return [EncryptionKeyPair.generate() for _ in range(3)]


@pytest.fixture(scope="session")
def reviewer_key_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, KeyBundle]]:
    """Three passphrase-protected reviewer key files (mode 0600)."""
    folder = tmp_path_factory.mktemp("keys")
    made = []
    for i in range(3):
        bundle = KeyBundle.new_reviewer()
        path = folder / f"reviewer-{i}.key"
        path.write_bytes(encrypt_key_file(bundle, PASSPHRASE))
        path.chmod(0o600)
        made.append((path, bundle))
    return made


@pytest.fixture(scope="session")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file holding the fixtures' passphrase on its first line."""
    path = tmp_path_factory.mktemp("pass") / "passphrase"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


# --- the portal ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Portals started from the environment keep their runtime store here, not in /dev/shm."""
    monkeypatch.setenv("PORTAL_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))


@dataclass(frozen=True)
class DemoPortal:
    """A data directory made by `portal init --demo`, and its reviewer keys."""

    data_dir: Path
    reviewers: tuple[KeyBundle, ...]
    passphrase: bytes
    database_url: str = ""

    def environ(self, **settings: str) -> dict[str, str]:
        """Portal settings for this data directory's database, plus ``settings``.

        The runtime store (tmpfs in deployment) goes beside the data directory.
        """
        runtime = self.data_dir.parent / f"{self.data_dir.name}-runtime"
        return {"DATABASE_URL": self.database_url, "PORTAL_RUNTIME_DIR": str(runtime), **settings}

    def identity(self, index: int = 0) -> EncryptionKeyPair:
        """A demo reviewer's decryption key."""
        key = self.reviewers[index].encryption
        assert key is not None
        return key


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> DemoPortal:
    """`portal init --demo` once per session (argon2id makes keys slow)."""
    from portal.cli.main import main as portal_main

    data_dir = tmp_path_factory.mktemp("demo-template") / "var"
    assert portal_main(["--data-dir", str(data_dir), "init", "--demo"]) == 0
    passphrase = (data_dir / "demo" / "passphrase").read_bytes().strip()
    reviewers = tuple(
        decrypt_key_file((data_dir / "demo" / f"{label}.key").read_bytes(), passphrase)
        for label in ("reviewer-1", "reviewer-2")
    )
    return DemoPortal(data_dir, reviewers, passphrase)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for this test session (see tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind the portal supports, one per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portal.sqlite3'}"
        return
    from sqlalchemy import create_engine, text

    server = request.getfixturevalue("postgres_url")
    name = f"test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def demo(demo_template: DemoPortal, tmp_path: Path, database_url: str) -> DemoPortal:
    """A fresh copy of the demo data directory, with an empty database."""
    from portal.storage.db import upgrade

    data_dir = tmp_path / "var"
    shutil.copytree(
        demo_template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3", "blobs")
    )
    (data_dir / "blobs").mkdir(mode=0o700)
    upgrade(database_url)
    return DemoPortal(data_dir, demo_template.reviewers, demo_template.passphrase, database_url)


@pytest.fixture
def make_app(demo: DemoPortal) -> Iterator[Callable[..., Flask]]:
    """Build portals over the demo data directory with extra settings; clean up after."""
    from portal.config import load_config
    from portal.web.app import create_app

    made: list[Flask] = []

    def build(**settings: str) -> Flask:
        # a light proof of work keeps tests quick; tests of the work itself set their own
        environ = demo.environ(**{"PORTAL_TESTING": "1", "PORTAL_POW_BITS": "4", **settings})
        made.append(create_app(load_config(environ, data_dir=demo.data_dir)))
        return made[-1]

    yield build
    for app in made:
        app.extensions["portal"]["engine"].dispose()
        app.extensions["portal"]["runtime"].dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The portal built by its factory over the demo data directory."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the portal."""
    return app.test_client()


# --- the sync API ------------------------------------------------------------

#: the keys of the reviewer account "alice" that ``sync_app`` enrols
SYNC_KEY = SigningKeyPair.generate()
SIGNING_KEY = SigningKeyPair.generate()


@pytest.fixture
def sync_app(demo: DemoPortal) -> Iterator[Flask]:
    """The portal's sync API over the demo data directory, with "alice" enrolled."""
    from portal.config import load_config
    from portal.storage.models import ReviewerAccount
    from portal.web.app import create_app

    config = load_config(demo.environ(PORTAL_TESTING="1"), data_dir=demo.data_dir)
    app = create_app(config, "sync")
    with app.extensions["portal"]["sessions"].begin() as session:
        session.add(
            ReviewerAccount(
                label="alice", sync_key=str(SYNC_KEY.token), signing_key=str(SIGNING_KEY.token)
            )
        )
    yield app
    app.extensions["portal"]["engine"].dispose()


def b64(data: bytes) -> str:
    """Unpadded URL-safe base64, as the sync API takes signatures."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# --- backups -----------------------------------------------------------------


@pytest.fixture(scope="module")
def backup_key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The offline backup key: its file, its passphrase, and the public key for the host."""
    folder = tmp_path_factory.mktemp("backup-key")
    bundle = KeyBundle.new_reviewer()
    assert bundle.encryption is not None
    (folder / "backup.key").write_bytes(encrypt_key_file(bundle, PASSPHRASE))
    (folder / "passphrase").write_bytes(PASSPHRASE + b"\n")
    (folder / "backup.pub").write_text(f"# offline backup key\n{bundle.encryption.token}\n")
    return {"key": folder / "backup.key", "passphrase": folder / "passphrase",
            "public": folder / "backup.pub"}  # fmt: skip


def ceremony_key(data_dir: Path) -> str:
    """The organisation key, as the key-ceremony record has it."""
    return (data_dir / "organisation.pub").read_text().strip()


def backup(data_dir: Path, out: Path, public_key: Path, *options: str) -> Path:
    """``portal backup`` (it needs only the public key); return the file it made."""
    from portal.cli.main import main as portal_main

    assert portal_main(["--data-dir", str(data_dir), "backup", "--out", str(out),
                        "--to-key", str(public_key), *options]) == 0  # fmt: skip
    [made] = out.iterdir()
    return made


def restore(
    made: Path,
    target: Path,
    keys: dict[str, Path],
    ceremony: Path,
    *options: str,
    organisation: str | None = None,
) -> int:
    """``portal restore`` with the offline key and what the key-ceremony record holds.

    ``ceremony`` is a folder with the organisation key and the newest key
    directory the ceremony signed.
    """
    from portal.cli.main import main as portal_main

    return portal_main(["--data-dir", str(target), "restore", str(made), "--key", str(keys["key"]),
                        "--passphrase-file", str(keys["passphrase"]),
                        "--organisation-key", organisation or ceremony_key(ceremony),
                        "--key-directory", str(ceremony / "key-directory.json"),
                        *options])  # fmt: skip
