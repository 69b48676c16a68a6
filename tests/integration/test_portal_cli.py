"""The operator's `portal` command: init, the demo and its round trip, re-signing reviewers."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from crypto.keyfile import KeyBundle, encrypt_key_file
from tests.conftest import DemoPortal
from tests.integration.cli_helpers import ROOT
from tests.integration.portal_server import free_port, wait_until_listening
from tests.unit.portal.test_cli_hints import hint_commands


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


def test_the_demo_round_trip_runs_as_printed(demo_template: DemoPortal, tmp_path: Path) -> None:
    """Follow `portal init --demo` and `portal serve` to the letter, from a shell off the venv.

    A report goes in through the sample sender, comes out with `portal
    export`, is answered with the reviewer tool, goes back with `portal
    import-replies`, and its reply is read at /followup with the receipt.
    Only NAME, ID, RECEIPT and the port are filled in, from earlier output.
    """
    data_dir = tmp_path / "var"
    shutil.copytree(demo_template.data_dir, data_dir)
    shell_env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORTAL_DATA_DIR")
    }
    shell_env.update(PATH="/usr/bin:/bin", COLUMNS="100")

    def shell(line: str) -> str:
        done = subprocess.run(
            ["/bin/sh", "-c", line], cwd=tmp_path, env=shell_env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
        return done.stdout

    again = portal("--data-dir", data_dir, "init", "--demo")  # a second run keeps everything
    assert again.returncode == 0, again.stderr
    (serve_line,) = [line for line in again.stdout.splitlines() if line.startswith("next: ")]
    port = free_port()
    banner = tmp_path / "serve.out"
    with banner.open("wb") as out, (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {serve_line.removeprefix('next: ')} --port {port}"],
            cwd=tmp_path, env=shell_env, stdout=out, stderr=log,
        )  # fmt: skip
    try:
        wait_until_listening(port, server, tmp_path / "serve.log")
        commands = hint_commands(banner.read_text().splitlines())
        assert len(commands) == 13, banner.read_text()
        receipt = ""
        report_id = ""
        for line in commands:
            if line.endswith("/blobs/NAME"):
                line = line.removesuffix("NAME") + sorted((data_dir / "blobs").iterdir())[0].name
            line = line.replace(" ID ", f" {report_id} ").replace("RECEIPT", receipt)
            out = shell(line)
            if "demo.py send" in line:
                receipt = re.search(r"receipt: ([\d ]{29})", out).group(1)  # type: ignore[union-attr]
                receipt = f"'{receipt}'"
            elif " list " in line:
                report_id = re.search(r"[│|] ([0-9a-f]{6,})", out).group(1)  # type: ignore[union-attr]
            elif "crypto decrypt" in line:
                assert '"schema":"cso-report/v1"' in out
            elif "import-replies" in line:
                assert out.startswith("1 reply(ies) imported"), out
        assert "Thank you. Which berth were you at?" in out  # the reporter's page, last
    finally:
        server.terminate()
        server.wait(timeout=30)
