"""The commands the portal prints as hints run as printed, wherever the shell's PATH points;
`--data-dir` goes before or after the subcommand; `make run PORT=…`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.cli.main import build_parser, command, demo_hints


@pytest.mark.parametrize("name", ["python", "portal", "reviewer"])
def test_a_hint_names_this_installation_even_off_the_path(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a fresh shell: the venv is not on it
    printed = command(name)
    assert Path(printed).is_absolute()
    assert os.access(printed, os.X_OK)
    args = ["-m", "crypto", "--help"] if name == "python" else ["--help"]
    result = subprocess.run([printed, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_hint_uses_the_bare_name_when_the_shell_finds_this_installation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert command("portal") == "portal"
    assert shutil.which("portal") == str(Path(sys.executable).parent / "portal")


def hint_commands(lines: list[str]) -> list[str]:
    """The commands in printed hints: indented lines, and "(or …: COMMAND)" alternatives."""
    found = []
    for line in lines:
        if not line.startswith("    "):
            continue
        alternative = re.fullmatch(r"\s*\(or[^:]*: (.+)\)", line)
        found.append(alternative.group(1) if alternative else line.strip())
    return found


def test_every_demo_hint_names_an_absolute_program_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    (tmp_path / "demo").mkdir()
    (tmp_path / "portal-signing.pub").write_text("csosig1example\n")
    lines = demo_hints(tmp_path, "http://127.0.0.1:8123")
    commands = hint_commands(lines)
    assert len(commands) >= 12
    for line in commands:
        words = shlex.split(line)
        if words[0] != "ls":
            assert os.access(words[0], os.X_OK), line  # runs without the venv on PATH
        for word in words[1:]:
            assert not word.startswith(("var/", "./", "inbox", "replies")), line
            if "/" in word and not word.startswith("http"):
                assert Path(word).is_absolute(), line
    assert any("import-replies" in line for line in commands)  # the last step is printed too
    assert any("/followup" in line for line in lines)
    assert any("init --demo" in line for line in lines)  # this demo has no sync accounts yet
    for name, kind in (("reviewer-1", "reviewer"), ("reviewer-1-sync", "sync")):
        listed = {"schema": "cso-key-file/v1", "kind": kind, "public": {"signing": f"{name}-pub"}}
        (tmp_path / "demo" / f"{name}.key").write_text(json.dumps(listed))
    lines = demo_hints(tmp_path, "http://h:1")
    assert not any("init --demo" in line for line in lines)
    enrol = [line for line in hint_commands(lines) if " accounts add " in line]
    assert enrol[0].endswith(
        "reviewer-1 --sync-key reviewer-1-sync-pub --signing-key reviewer-1-pub"
    )


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Any]:
    """Every (subcommand path, parser) pair that runs something."""
    chooser = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not chooser:
        yield path, parser
        return
    for name, child in chooser[0].choices.items():
        yield from _leaves(child, (*path, name))


def test_every_subcommand_takes_the_data_dir_after_it_as_well() -> None:
    leaves = list(_leaves(build_parser()))
    assert len(leaves) > 15
    for path, parser in leaves:
        options = {o: a.dest for a in parser._actions for o in a.option_strings}
        expected = "layout_data_dir" if path == ("deploy-configs",) else "data_dir"
        assert options.get("--data-dir") == expected, path  # deploy-configs: the host's path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], "from-env"),
        (["--data-dir", "before", "serve"], "before"),
        (["serve", "--data-dir", "after"], "after"),
        (["--data-dir", "before", "serve", "--data-dir", "after"], "after"),
        (["export", "--out", "x", "--data-dir", "after"], "after"),
        (["accounts", "list", "--data-dir", "after", "--record"], "after"),
        (["reviewers", "--data-dir", "middle", "list"], "middle"),
        (["--data-dir", "before", "accounts", "add", "bob", "--sync-key", "a",
          "--signing-key", "b"], "before"),
    ],
)  # fmt: skip
def test_the_data_dir_given_after_the_subcommand_wins(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", "from-env")
    assert build_parser().parse_args(argv).data_dir == Path(expected)


def test_the_data_dir_after_the_subcommand_is_used(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    done = subprocess.run(
        [command("portal"), "reviewers", "list", "--data-dir", str(bare)],
        capture_output=True, text=True, check=False, env={**os.environ, "PORTAL_DATA_DIR": "x"},
    )  # fmt: skip
    assert done.returncode == 2
    assert str(bare / "organisation.pub") in done.stderr  # not ./x, not ./var


@pytest.mark.parametrize(("extra", "port"), [([], "8000"), (["PORT=8123"], "8123")])
def test_make_run_takes_a_port(extra: list[str], port: str) -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        ["/usr/bin/make", "--dry-run", "--always-make", "-C", str(root), "run", *extra],
        capture_output=True, text=True, check=False, env={**os.environ, "PORT": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    serve = [line for line in done.stdout.splitlines() if " serve " in line]
    assert serve, done.stdout
    assert serve[-1].endswith(f"--port {port}"), done.stdout
