"""The operator's `portal` command: init, the demo, and re-signing reviewers."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from crypto.keyfile import KeyBundle, encrypt_key_file
from tests.conftest import DemoPortal
from tests.integration.cli_helpers import ROOT


def portal(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_init_makes_a_private_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    done = portal("--data-dir", data_dir, "init")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "portal.sqlite3").stat().st_mode) == 0o600
    secret = (data_dir / "secret_key").read_text()
    again = portal("--data-dir", data_dir, "init")
    assert again.returncode == 0
    assert (data_dir / "secret_key").read_text() == secret  # never replaced


def test_demo_files_and_reviewer_management(demo_template: DemoPortal, tmp_path: Path) -> None:
    data_dir = demo_template.data_dir
    for name in ("organisation.key", "reviewer-1.key", "reviewer-2.key", "passphrase"):
        assert stat.S_IMODE((data_dir / "demo" / name).stat().st_mode) == 0o600
    listing = portal("--data-dir", data_dir, "reviewers", "list")
    assert listing.returncode == 0, listing.stderr
    assert "reviewer-1" in listing.stdout
    assert "reviewer-2" in listing.stdout

    work = tmp_path / "var"
    work.mkdir()
    for name in ("key-directory.json", "organisation.pub"):
        (work / name).write_bytes((data_dir / name).read_bytes())
    org = ["--org-key", data_dir / "demo" / "organisation.key",
           "--passphrase-file", data_dir / "demo" / "passphrase"]  # fmt: skip
    newcomer = KeyBundle.new_reviewer()
    assert newcomer.encryption is not None
    token = str(newcomer.encryption.token)
    added = portal("--data-dir", work, "reviewers", "add", *org, "--label", "reviewer-3", token)
    assert added.returncode == 0, added.stderr
    assert "serial 2" in added.stdout
    assert token in portal("--data-dir", work, "reviewers", "list").stdout
    removed = portal("--data-dir", work, "reviewers", "remove", *org, "reviewer-1")
    assert removed.returncode == 0, removed.stderr
    listing = portal("--data-dir", work, "reviewers", "list").stdout
    assert "reviewer-1\t" not in listing
    assert "serial 3" in listing


def test_operator_mistakes_are_one_line_errors(demo_template: DemoPortal, tmp_path: Path) -> None:
    data_dir = demo_template.data_dir
    passphrase = data_dir / "demo" / "passphrase"
    not_org = tmp_path / "reviewer.key"
    not_org.write_bytes(encrypt_key_file(KeyBundle.new_reviewer(), passphrase.read_bytes().strip()))
    cases = [
        ("--data-dir", tmp_path / "empty", "reviewers", "list"),
        ("--data-dir", data_dir, "reviewers", "add", "--org-key", not_org, "--passphrase-file",
         passphrase, "--label", "x", "csoenc1nonsense"),
        ("--data-dir", data_dir, "reviewers", "remove", "--org-key", not_org,
         "--passphrase-file", passphrase, "reviewer-9"),
        ("--data-dir", tmp_path / "nosecret", "serve"),
    ]  # fmt: skip
    for args in cases:
        done = portal(*args)
        assert done.returncode != 0, args
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("portal: error:")
