"""Fixtures for the deployment tests: a rendered host tree and the stack running on it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DemoPortal
from tests.deploy.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    """A directory nginx's www-data workers can reach (pytest's own is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="cso-deploy-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(stack_root: Path, demo_template: DemoPortal) -> Iterator[Stack]:
    """nginx in front of gunicorn, both from the rendered files, on loopback ports."""
    with running_stack(stack_root / "host", demo_template) as running:
        yield running
