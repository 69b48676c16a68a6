"""The commands the portal prints as hints run as printed, wherever the shell's PATH points;
`--data-dir` goes before or after the subcommand (once); `make run PORT=…`; the sample
sender keeps a hostile server's control characters off the terminal."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from portal.cli.hints import command, demo_hints, sample_sender
from portal.cli.main import GIVEN_DATA_DIR, build_parser

ROOT = Path(__file__).resolve().parents[3]


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


@pytest.mark.parametrize("name", ["python", "portal"])
def test_a_hint_quotes_a_virtualenv_path_with_a_space(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", "/opt/my venv/bin/python")
    assert shlex.split(command(name)) == [f"/opt/my venv/bin/{name}"]


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
    assert any("demo.py send" in line for line in commands)  # this checkout has the sender
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


def test_the_sample_sender_is_offered_from_a_source_checkout_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    (data_dir / "demo").mkdir(parents=True)
    (data_dir / "portal-signing.pub").write_text("csosig1example\n")
    installed = tmp_path / "site-packages"  # where a wheel puts portal/: no scripts/, no .git
    (installed / "scripts").mkdir(parents=True)
    (installed / "scripts" / "demo.py").write_text("")  # even were a scripts/demo.py there
    assert sample_sender(installed) is None
    lines = demo_hints(data_dir, "http://h:1", installed)
    assert not any("demo.py send" in line or "demo.py followup" in line for line in lines)
    assert any(line.startswith("note: without a browser") for line in lines)
    assert all(os.access(shlex.split(c)[0], os.X_OK) for c in hint_commands(lines)[1:])
    (installed / ".git").mkdir()
    assert sample_sender(installed) == installed / "scripts" / "demo.py"
    assert sample_sender() == ROOT / "scripts" / "demo.py"


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
        dest = options.get("--data-dir", "")
        if path == ("deploy-configs",):
            assert dest == "layout_data_dir"  # deploy-configs: the data dir on the target host
        else:
            assert dest.startswith(GIVEN_DATA_DIR), path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], "from-env"),
        (["--data-dir", "before", "serve"], "before"),
        (["serve", "--data-dir", "after"], "after"),
        (["--data-dir", "same", "serve", "--data-dir", "./same/"], "same"),
        (["--data", "short", "serve"], "short"),
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


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "a", "serve", "--data-dir", "b"],
        ["--data-dir", "a", "reviewers", "--data-dir", "b", "list"],
        ["--data-dir", "a", "reviewers", "list", "--data-dir", "b"],
        ["reviewers", "--data-dir", "a", "list", "--data-dir", "b"],
        ["--data-dir", "a", "backup", "--out", "o", "--to-key", "k", "--data-dir", "b"],
        ["--data-dir", "", "init"],
        ["init", "--data-dir="],
        ["--data-dir", "var\x1b]0;title\x07", "init"],
        ["--data-dir", "var\x7f", "purge"],
        ["--data-dir", "var\x9b2J", "serve"],
        ["--data-dir", "var\nnext: rm -rf ~", "serve"],
    ],
)
def test_a_conflicting_empty_or_control_character_data_dir_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("portal: error: --data-dir") or "control characters" in err
    assert err.count("\n") == 1
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", err)  # shown escaped


def test_deploy_configs_data_dir_is_the_hosts_not_this_one() -> None:
    argv = ["--data-dir", "here", "deploy-configs", "--out", "o", "--data-dir", "/srv/cso"]
    parsed = build_parser().parse_args(argv)
    assert (parsed.data_dir, parsed.layout_data_dir) == (Path("here"), "/srv/cso")


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_portal_data_dir_counts_as_unset(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("PORTAL_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("PORTAL_DATA_DIR", value)
    assert build_parser().parse_args(["serve"]).data_dir == Path("var")


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


HOSTILE_PAGE = (
    '<main class="x"><p id="report-status">\x1b]0;OWNED\x07\x1b[2J\x9b31mStatus: '
    "received&#27;[5m</p>\n<p>a\x00b\tc\rd</p></main>"
)


class _Hostile(BaseHTTPRequestHandler):
    """A server that puts terminal escape sequences in its pages and reason phrase."""

    def do_GET(self) -> None:
        if self.path.startswith("/broken"):
            self.send_response(500, "Oops \x1b]0;OWNED\x07")
            self.end_headers()
            return
        fields = ("csrf_token", "once")
        page = HOSTILE_PAGE + "".join(f'<input type="hidden" name="{f}" value="t">' for f in fields)
        self._send(page.encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(HOSTILE_PAGE.encode())

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("verb", "path"), [("followup", "/"), ("send", "/"), ("followup", "/broken")]
)
def test_the_sample_sender_prints_no_control_character_of_the_server(verb: str, path: str) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}{path}"
    try:
        extra = ["1111 2222 3333 4444 5555 6666"] if verb == "followup" else []
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), verb, url, *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    shown = done.stdout + done.stderr
    assert "OWNED" in shown or "Oops" in shown, shown  # the text is there, its controls are not
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", shown), repr(shown)
    if verb == "followup" and path == "/":
        assert done.stdout.startswith("]0;OWNED[2J31mStatus: received[5m\n"), repr(done.stdout)
        assert done.stdout.splitlines()[1] == "ab c d"
