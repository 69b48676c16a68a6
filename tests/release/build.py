"""Building the release for the tests: the sdist and wheel of the files about to ship.

``make dist`` builds from the committed files only (``git archive HEAD``). A
test runs before the commit, so it builds from what the next commit holds: the
tracked files and the new ones git does not ignore, as they stand in the
checkout. Both are copied to a fresh directory first, so nothing ignored or
stale in the checkout (its build/, a data directory, a .env) is in reach of
the build. After the commit, the two are the same files.

The build runs without isolation, with the setuptools and wheel of this venv
(pinned with hashes in requirements/build.txt): pip and build never fetch a
build backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def run(argv: list[str | Path], **options: object) -> subprocess.CompletedProcess[str]:
    """Run a command to completion and fail the test with its output if it fails."""
    done = subprocess.run(
        [str(part) for part in argv], capture_output=True, text=True, timeout=600, **options
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def source_files(checkout: Path = CHECKOUT) -> list[str]:
    """The checkout's files as the next commit has them: tracked or new, not ignored."""
    git = shutil.which("git")
    assert git, "git is needed to list the checkout's files"
    listed = run([git, "-C", checkout, "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"]).stdout  # fmt: skip
    return sorted({name for name in listed.split("\0") if name and (checkout / name).is_file()})


def copy_sources(target: Path, checkout: Path = CHECKOUT) -> list[str]:
    """Copy :func:`source_files` into ``target``; their names."""
    names = source_files(checkout)
    for name in names:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkout / name, path)
    return names


def build(source: Path, out: Path, *, wheel_only: bool = False) -> None:
    """``python -m build --no-isolation``: the sdist and the wheel made from it, or
    (``wheel_only``) a wheel straight from the tree."""
    command: list[str | Path] = [sys.executable, "-m", "build", "--no-isolation"]
    if wheel_only:
        command.append("--wheel")
    run([*command, "--outdir", out, source])


def release_wheel(workdir: Path) -> Path:
    """A wheel of the files about to ship, built under ``workdir``, via its sdist."""
    copy_sources(workdir / "source")
    build(workdir / "source", workdir / "dist")
    (wheel,) = (workdir / "dist").glob("cso_portal-*.whl")
    return wheel
