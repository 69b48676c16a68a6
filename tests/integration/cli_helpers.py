"""Running ``python -m crypto`` as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI from the repository root, capturing everything."""
    return subprocess.run(
        [sys.executable, "-m", "crypto", *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=ROOT,
        check=False,
        timeout=600,
    )
