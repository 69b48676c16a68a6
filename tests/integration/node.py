"""Running the project's Node helper scripts from Python tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def run_node(script: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``node script args…``, capturing text output; never raises on failure."""
    node = shutil.which("node")
    assert node is not None, "make test installs Node.js"
    return subprocess.run(
        [node, script, *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )
