"""Every benchmark script has a smoke size and runs in `make bench-smoke` and `make bench`.

A benchmark that no command runs rots unseen: these checks make a new
script in bench/ fail the tests until it is wired in. Helpers start with
an underscore and are not benchmarks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


def recipe(target: str) -> list[str]:
    """The command lines of a Makefile target's recipe."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert match is not None, f"the Makefile has no {target} target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_there_are_benchmarks() -> None:
    assert "envelope" in SCRIPTS
    assert "page_weight" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_has_a_smoke_option(name: str) -> None:
    source = (ROOT / "bench" / f"{name}.py").read_text()
    assert '"--smoke"' in source, f"bench/{name}.py has no --smoke option"
    assert 'if __name__ == "__main__":' in source, f"bench/{name}.py cannot run as a script"


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_in_bench_smoke(name: str) -> None:
    assert f"$(BIN)/python -m bench.{name} --smoke" in recipe("bench-smoke")


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_in_bench(name: str) -> None:
    assert f"$(BIN)/python -m bench.{name}" in recipe("bench")


def test_makefile_names_no_missing_benchmark() -> None:
    named = {
        m.group(1)
        for target in ("bench-smoke", "bench")
        for line in recipe(target)
        if (m := re.search(r"-m bench\.(\w+)", line))
    }
    assert named <= set(SCRIPTS), f"not in bench/: {sorted(named - set(SCRIPTS))}"


def test_no_script_shadows_a_package_of_the_project() -> None:
    # `python bench/x.py` puts bench/ first on sys.path, before the packages
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    clashes = [p.stem for p in (ROOT / "bench").glob("*.py") if p.stem in packages]
    assert not clashes, f"bench/ modules named like a package: {clashes}"


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_script_starts_both_ways(name: str) -> None:
    # the docstrings say `python bench/x.py`, the Makefile `python -m bench.x`
    for command in ([sys.executable, f"bench/{name}.py"], [sys.executable, "-m", f"bench.{name}"]):
        done = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, f"{' '.join(command[1:])} --help:\n{done.stderr}"
        assert "--smoke" in done.stdout
