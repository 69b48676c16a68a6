"""The served page bundles are exactly what the pinned esbuild makes of the modules.

A browser runs ``portal/web/static/bundle/*.js``, not the commented modules
beside them that the Node tests check; these tests make sure that nobody
can change the one without the other (scripts/bundle.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bundle  # (scripts/ is not a package)

#: ``import x from "…"``, ``import "…"``, ``export … from "…"`` (not ``.importKey(``)
STATIC_IMPORT = re.compile(
    r"""(?:^|[;}\s])(?:import\s*[\w*{'"]|export\s*[\w*{][^;]*?from\s*['"])"""
)
DYNAMIC_IMPORT = re.compile(r"(?<![.\w$])import\s*\(")


def test_the_committed_bundles_are_a_fresh_build() -> None:
    """Build every bundle again from the sources; any byte of difference, or a stray file, fails."""
    assert bundle.stale() == [], "run: python scripts/bundle.py"


def test_esbuild_is_pinned_with_its_integrity_hash() -> None:
    lock = json.loads((bundle.PIN / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/esbuild"]
    assert pinned["version"] == "0.28.2"
    assert pinned["integrity"].startswith("sha512-")
    assert json.loads((bundle.PIN / "package.json").read_text())["dependencies"] == {
        "esbuild": "0.28.2"  # an exact version, not a range
    }


def test_a_bundle_imports_nothing_and_names_its_source() -> None:
    """One file per page: no import left for the browser to fetch one round trip later."""
    for entry in bundle.ENTRIES:
        text = (bundle.STATIC / bundle.bundle_name(entry)).read_text(encoding="utf-8")
        assert text.startswith(f"// Built by scripts/bundle.py from portal/web/static/{entry}")
        check = subprocess.run(  # the bundle parses as a module that imports nothing
            ["node", "--input-type=module", "--check"],  # noqa: S607
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert STATIC_IMPORT.search(text) is None
        assert DYNAMIC_IMPORT.search(text) is None
