"""Every intake module imports on its own, in a fresh interpreter (issue 13, F7).

A circular import works or fails depending on which module is imported
first, so each is tried first, alone.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

MODULES = [
    "portal.web.plain_intake",
    "portal.web.intake",
    "portal.web.form_page",
    "portal.web.form_keys",
    "portal.web.request",
    "portal.web.report",
    "portal.web.fields",
    "portal.web.field_rules",
    "portal.web.attachment_limits",
    "portal.web.intake_checks",
    "portal.web.intake_store",
    "portal.web.plain_attachments",
]


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first_and_alone(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_intake_never_imports_the_no_javascript_path() -> None:
    """One direction only: plain_intake builds on intake, app.py brings both in."""
    source = (ROOT / "portal" / "web" / "intake.py").read_text(encoding="utf-8")
    assert "plain_intake" not in source.replace("``plain_intake.py``", "")
