"""A throw-away demo portal for the benchmarks: `portal init --demo` in a temp dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crypto.directory import read_directory
from crypto.keys import KeyKind, parse_public_key

ROOT = Path(__file__).resolve().parent.parent


def demo_portal(tmp: str) -> tuple[Path, list[bytes]]:
    """Initialise a demo data directory under ``tmp``; return it and the reviewer keys."""
    data_dir = Path(tmp) / "var"
    done = subprocess.run([sys.executable, "-m", "portal", "--data-dir", str(data_dir), "init",
                           "--demo"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"portal init --demo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    organisation = parse_public_key((data_dir / "organisation.pub").read_text(), KeyKind.SIGNING)
    directory = read_directory((data_dir / "key-directory.json").read_bytes(), organisation)
    return data_dir, list(directory.recipient_keys)
