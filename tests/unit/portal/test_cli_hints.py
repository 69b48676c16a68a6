"""The commands the portal prints as hints run as printed, wherever the shell's PATH points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portal.cli.main import command


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
