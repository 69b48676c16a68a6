"""Shared fixtures: keys are costly to make (argon2id MODERATE), so make them once."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.keyfile import KeyBundle, decrypt_key_file, encrypt_key_file
from crypto.keys import EncryptionKeyPair

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


@dataclass(frozen=True)
class DemoPortal:
    """A data directory made by `portal init --demo`, and its reviewer keys."""

    data_dir: Path
    reviewers: tuple[KeyBundle, ...]
    passphrase: bytes

    def identity(self, index: int = 0) -> EncryptionKeyPair:
        """A demo reviewer's decryption key."""
        key = self.reviewers[index].encryption
        assert key is not None
        return key


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> DemoPortal:
    """`portal init --demo` once per session (argon2id makes keys slow)."""
    from portal.cli import main as portal_main

    data_dir = tmp_path_factory.mktemp("demo-template") / "var"
    assert portal_main(["--data-dir", str(data_dir), "init", "--demo"]) == 0
    passphrase = (data_dir / "demo" / "passphrase").read_bytes().strip()
    reviewers = tuple(
        decrypt_key_file((data_dir / "demo" / f"{label}.key").read_bytes(), passphrase)
        for label in ("reviewer-1", "reviewer-2")
    )
    return DemoPortal(data_dir, reviewers, passphrase)


@pytest.fixture
def demo(demo_template: DemoPortal, tmp_path: Path) -> DemoPortal:
    """A fresh copy of the demo data directory, with an empty database."""
    from portal.db import upgrade

    data_dir = tmp_path / "var"
    shutil.copytree(
        demo_template.data_dir, data_dir, ignore=shutil.ignore_patterns("*.sqlite3", "blobs")
    )
    (data_dir / "blobs").mkdir(mode=0o700)
    upgrade(f"sqlite:///{data_dir / 'portal.sqlite3'}")
    return DemoPortal(data_dir, demo_template.reviewers, demo_template.passphrase)


@pytest.fixture
def app(demo: DemoPortal) -> Flask:
    """The portal built by its factory over the demo data directory."""
    from portal.app import create_app
    from portal.config import load_config

    return create_app(load_config({"PORTAL_TESTING": "1"}, data_dir=demo.data_dir))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the portal."""
    return app.test_client()
