"""Shared fixtures: keys are costly to make (argon2id MODERATE), so make them once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crypto.keyfile import KeyBundle, encrypt_key_file
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
