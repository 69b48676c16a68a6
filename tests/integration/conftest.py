"""Fixtures shared by the reviewer tool's integration tests: a workspace per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crypto.keyfile import KeyBundle
from reviewer_tool.cli import main as reviewer
from tests.integration.reviewer_helpers import PORTAL


@pytest.fixture(scope="module")
def workspace_template(
    tmp_path_factory: pytest.TempPathFactory,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
) -> Path:
    root = tmp_path_factory.mktemp("ws-template") / "ws"
    key_file = reviewer_key_files[0][0]
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    assert (
        reviewer(["init", "--key", str(key_file), "--portal-key", str(PORTAL.token), *options]) == 0
    )
    return root


@pytest.fixture
def ws(workspace_template: Path, tmp_path: Path, passphrase_file: Path) -> list[str]:
    """A fresh copy of the workspace, as the common options of every command."""
    root = tmp_path / "ws"
    shutil.copytree(workspace_template, root)
    return ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]


@pytest.fixture
def recipient(reviewer_key_files: list[tuple[Path, KeyBundle]]) -> bytes:
    identity = reviewer_key_files[0][1].encryption
    assert identity is not None
    return identity.public
