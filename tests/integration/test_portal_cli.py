"""The operator's `portal` command: init, the demo and its round trip, re-signing reviewers."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import urllib.request
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
        assert len(commands) == 15, banner.read_text()
        receipt = ""
        report_id = ""
        for line in commands:
            if line.endswith("/blobs/NAME"):
                line = line.removesuffix("NAME") + sorted((data_dir / "blobs").iterdir())[0].name
            line = line.replace(" ID ", f" {report_id} ").replace("RECEIPT", receipt)
            if " desk " in line:
                assert report_id in open_desk(line, shell_env, tmp_path)
                continue
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


def open_desk(line: str, env: dict[str, str], cwd: Path) -> str:
    """Start the printed ``reviewer desk`` line, fetch the queue at the address it prints, stop."""
    desk = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {line}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert desk.stdout is not None
        for printed in desk.stdout:
            if printed.startswith("desk: http://127.0.0.1:"):
                with urllib.request.urlopen(printed.split()[1], timeout=60) as answer:
                    return str(answer.read().decode())
        raise AssertionError(
            f"the desk printed no address: {desk.stderr.read() if desk.stderr else ''}"
        )
    finally:
        desk.terminate()
        desk.communicate(timeout=30)  # closes both pipes


def portal_in(cwd: Path, *args: str | Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """`python -m portal ARGS` run from ``cwd``, with ``environ`` over this process's."""
    return subprocess.run(
        [sys.executable, "-m", "portal", *map(str, args)], cwd=cwd,
        env={**os.environ, **environ}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("portal: error:"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_an_empty_data_dir_is_never_the_current_directory(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    for args in (
        ("--data-dir", "", "init"),
        ("init", "--data-dir="),
        ("--data-dir", "", "purge"),
        ("backup", "--out", "out", "--to-key", "k", "--data-dir", ""),
    ):
        assert "--data-dir is empty" in one_line_error(portal_in(here, *args)), args
        assert list(here.iterdir()) == [], args  # nothing written into the current directory
    done = portal_in(here, "init", PORTAL_DATA_DIR="")  # an empty variable counts as unset
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in here.iterdir()) == ["var"]
    assert (here / "var" / "secret_key").is_file()


def test_the_data_dir_given_twice_differently_is_refused(tmp_path: Path) -> None:
    error = one_line_error(portal_in(tmp_path, "--data-dir", "a", "serve", "--data-dir", "b"))
    assert "'a'" in error
    assert "'b'" in error
    one_line_error(portal_in(tmp_path, "--data-dir", "a", "reviewers", "list", "--data-dir", "b"))
    assert list(tmp_path.iterdir()) == []
    # deploy-configs --data-dir names the data directory on the target host: no conflict
    out = tmp_path / "out"
    done = portal_in(
        tmp_path, "--data-dir", "a", "deploy-configs", "--out", out, "--data-dir", "/srv/cso-x"
    )
    assert done.returncode == 0, done.stderr
    rendered = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "PORTAL_DATA_DIR=/srv/cso-x" in rendered


def test_a_data_dir_with_control_characters_is_refused(tmp_path: Path) -> None:
    for name in ("v\x1b]0;HACKED\x07", "v\x1b[2J", "v\x7f", "v\u009b2J", "v\nline2"):
        error = one_line_error(portal_in(tmp_path, "--data-dir", tmp_path / name, "init"))
        assert "control characters" in error
        assert not any(ch in error for ch in "\x1b\x07\x7f\u009b")
        error = one_line_error(portal_in(tmp_path, "init", PORTAL_DATA_DIR=str(tmp_path / name)))
        assert "control characters" in error
    assert list(tmp_path.iterdir()) == []
    odd = tmp_path / "odd\x1bdir"  # the current directory itself, with ./var
    odd.mkdir()
    assert "control characters" in one_line_error(portal_in(odd, "init"))
    assert list(odd.iterdir()) == []


def test_every_printed_path_is_shell_quoted(demo_template: DemoPortal, tmp_path: Path) -> None:
    data_dir = tmp_path / "h x'$(touch PWNED)`touch PWNED2`;ls"
    shutil.copytree(demo_template.data_dir, data_dir)
    (data_dir / "secret_key").unlink()  # printed again when made again
    done = portal_in(tmp_path, "--data-dir", data_dir, "init", "--demo")
    assert done.returncode == 0, done.stderr
    expected = {
        "secret key": f"{data_dir}/secret_key",
        "database": f"sqlite:///{data_dir}/portal.sqlite3",
        "demo keys": f"{data_dir}/demo/",
        "demo passphrase": f"{data_dir}/demo/passphrase",
        "key directory": f"{data_dir}/key-directory.json",
        "demo sync keys": f"{data_dir}/demo/",
    }
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    for label, path in expected.items():
        if label != "database" or "DATABASE_URL" not in os.environ:
            assert shlex.split(printed[label])[0] == path, printed[label]
    shell_env = {**os.environ, "PATH": "/usr/bin:/bin"}
    listing = printed["next"].removesuffix(" serve") + " reviewers list"
    ran = subprocess.run(["/bin/sh", "-c", listing], cwd=tmp_path, env=shell_env,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "reviewer-1" in ran.stdout
    port = free_port()
    with (tmp_path / "serve.out").open("wb") as out, (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {printed['next']} --port {port}"],
            cwd=tmp_path, env=shell_env, stdout=out, stderr=log,
        )  # fmt: skip
    try:
        wait_until_listening(port, server, tmp_path / "serve.log")
    finally:
        server.terminate()
        server.wait(timeout=30)
    banner = (tmp_path / "serve.out").read_text().splitlines()[0]
    shown = re.fullmatch(r"CSO portal on \S+ \(data in (.+)\); Ctrl-C stops", banner)
    assert shown is not None, banner
    assert shlex.split(shown.group(1)) == [str(data_dir)]
    assert not list(tmp_path.glob("PWNED*"))  # no printed line ran what the name holds


def test_hints_run_from_a_virtualenv_with_a_space_in_its_path(tmp_path: Path) -> None:
    """A virtualenv at ``my venv/``: the printed ``next:`` line still runs as printed."""
    venv = Path(sys.prefix)
    spaced = tmp_path / "my venv"
    (spaced / "bin").mkdir(parents=True)
    (spaced / "pyvenv.cfg").write_bytes((venv / "pyvenv.cfg").read_bytes())
    lib = f"lib/python{sys.version_info.major}.{sys.version_info.minor}"
    (spaced / lib).mkdir(parents=True)
    (spaced / lib / "site-packages").symlink_to(venv / lib / "site-packages")
    (spaced / "bin" / "python").symlink_to(Path(sys.executable).resolve())
    (spaced / "bin" / "portal").symlink_to(venv / "bin" / "portal")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    env.pop("DATABASE_URL", None)
    data_dir = tmp_path / "var"
    done = subprocess.run(
        [spaced / "bin" / "python", "-m", "portal", "--data-dir", data_dir, "init"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (serve_line,) = [line for line in done.stdout.splitlines() if line.startswith("next: ")]
    assert serve_line.startswith(f"next: '{spaced}/bin/portal' --data-dir ")
    ran = subprocess.run(
        ["/bin/sh", "-c", serve_line.removeprefix("next: ") + " --help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "--role" in ran.stdout
