"""Make the served page bundles from the browser modules, or check that they are fresh.

    python scripts/bundle.py          # write portal/web/static/bundle/*.js
    python scripts/bundle.py --check  # exit 1 if a committed bundle differs from a fresh build

The modules in ``portal/web/static/js/`` are the source of truth: small,
commented, tested under Node (tests/js/) one by one. A page does not load
them one by one, though: on a 64 kbit/s satellite link each of 25 modules
cost its own response headers and, over HTTP/1.1, six requests a round trip,
and their comments alone weighed more than the 40 KB page budget allows
(issue 15, ``bench/page_weight.py``). So each page loads one file, made here
by esbuild: the page's module and everything it imports statically, in one
ES module, minified (comments, whitespace and local names gone; strings,
and so every message and every msgid, left as they are).

The bundles are committed, so that neither ``make run`` nor the wheel build
needs Node.js; ``tests/integration/test_bundles.py`` builds them afresh and
fails on any difference, so nobody can change what a browser runs by hand.
esbuild comes from the npm registry exactly as ``scripts/bundler/package-lock.json``
pins it (``npm ci`` checks its integrity hash), installed into
``build/bundler-npm/``. Its output depends only on its version, its options
(below) and the sources: the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "portal" / "web" / "static"
PIN = Path(__file__).resolve().parent / "bundler"
INSTALL = ROOT / "build" / "bundler-npm"
ESBUILD = INSTALL / "node_modules" / "esbuild" / "bin" / "esbuild"
#: each page's module (under static/js/) → its bundle (under static/bundle/, same name)
ENTRIES = ("js/report-page.js", "js/followup-page.js")
OPTIONS = (
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--target=esnext",  # no syntax rewritten: what runs is what the sources say
    "--minify",
    "--charset=utf8",  # messages stay readable text, not \\u escapes
    "--legal-comments=eof",
    "--log-level=warning",
)


class BundleError(SystemExit):
    """The bundles could not be made, or a committed one is not a fresh build."""


def bundle_name(entry: str) -> str:
    """The path under static/ of the bundle made from ``entry`` (a path under static/)."""
    return "bundle/" + Path(entry).name


def install() -> Path:
    """The pinned esbuild, installed afresh by ``npm ci`` on every run.

    ``npm ci`` deletes what an earlier run left in ``node_modules`` and unpacks
    each package again, checked against the lock's integrity hashes, so a
    changed esbuild left in ``build/`` (a stale cache, a dirty machine) can
    neither make nor vouch for a bundle.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError("npm is needed to install esbuild (scripts/install-system-deps.sh)")
    INSTALL.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PIN / name, INSTALL / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=INSTALL, check=True
    )
    return ESBUILD


def build(out: Path) -> dict[str, bytes]:
    """Bundle every entry into ``out`` (laid out as static/); bundle path → its bytes."""
    esbuild = install()
    node = shutil.which("node")
    if node is None:
        raise BundleError("node is needed to run esbuild (scripts/install-system-deps.sh)")
    made = {}
    for entry in ENTRIES:
        name = bundle_name(entry)
        target = out / name
        banner = f"// Built by scripts/bundle.py from portal/web/static/{entry}: do not edit."
        done = subprocess.run(
            [node, str(esbuild), entry, *OPTIONS, f"--banner:js={banner}", f"--outfile={target}"],
            cwd=STATIC,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or done.stderr.strip():
            raise BundleError(f"esbuild failed on {entry}:\n{done.stderr}")
        made[name] = target.read_bytes()
    return made


def stale() -> list[str]:
    """The bundles under static/bundle/ that differ from a fresh build, or are missing or extra."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
    committed = {f"bundle/{path.name}": path.read_bytes() for path in (STATIC / "bundle").glob("*")}
    return sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )


def main() -> None:
    """Write the bundles, or with ``--check`` only compare them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if args.check:
        if differ := stale():
            raise BundleError(f"not a fresh build (run: python scripts/bundle.py): {differ}")
        print("bundles: fresh")
        return
    for path in (STATIC / "bundle").glob("*"):
        path.unlink()
    for name, data in build(STATIC).items():
        print(f"{name}: {len(data)} B")


if __name__ == "__main__":
    sys.exit(main())
