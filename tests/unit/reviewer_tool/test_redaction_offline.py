"""The redaction package runs on an air-gapped workstation: it must not load networking code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import reviewer_tool.redaction

NETWORK_MODULES = {
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "http.client",
    "urllib.request",
    "requests",
    "httpx",
    "smtplib",
    "ftplib",
    "asyncio",
}
PACKAGE = Path(reviewer_tool.redaction.__file__).parent


def test_sources_import_no_networking_module() -> None:
    """No module of the package names a networking module in an import."""
    for source in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module or ""}
            else:
                continue
            for name in names:
                assert not {name, name.split(".")[0]} & NETWORK_MODULES, (source.name, name)


def test_importing_the_package_loads_no_networking_module() -> None:
    """Nor do its dependencies (Pillow, pikepdf) pull one in on import."""
    probe = (
        "import sys, reviewer_tool.redaction.attachments, reviewer_tool.redaction.detect; "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not NETWORK_MODULES & set(loaded)
