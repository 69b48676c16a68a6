"""Weight of the intake page with every asset it loads, compressed, against 60 KB.

    python bench/page_weight.py [--data-dir DIR]

Renders the page through the app factory, then follows what the page pulls
in: its stylesheet, its module script, and every module that module imports,
transitively. Each response is gzip-compressed (level 6, nginx's usual) and
brotli is not assumed. Prints each asset, the total, and the ratio to the
60 KB budget (at most 1.0 meets it). Uses the demo data directory made by
`portal init --demo` in a temporary place.
"""

from __future__ import annotations

import gzip
import re
import tempfile
from pathlib import Path

from portal.app import create_app
from portal.cli import main as portal_main
from portal.config import load_config

BUDGET = 60 * 1024
IMPORT = re.compile(r"""^\s*(?:import|export)\s[^'"]*?from\s+['"](\./[^'"]+)['"]""", re.M)


def main() -> None:
    """Measure and print."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        portal_main(["--data-dir", str(data_dir), "init", "--demo"])
        runtime = {"PORTAL_RUNTIME_DIR": str(Path(tmp) / "run")}  # gone with the folder
        app = create_app(load_config(runtime, data_dir=data_dir))
        client = app.test_client()
        page = client.get("/").data
        assets = {"/": page}
        queue = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page)
        paths = [p.decode() for p in queue]
        while paths:
            path = paths.pop()
            if path in assets:
                continue
            response = client.get(path)
            assets[path] = response.data
            response.close()
            if path.endswith(".js"):
                folder = path.rsplit("/", 1)[0]
                for name in IMPORT.findall(response.data.decode()):
                    paths.append(f"{folder}/{name[2:]}")
        app.extensions["portal"]["engine"].dispose()
    total = 0
    for path, body in sorted(assets.items()):
        size = len(gzip.compress(body, compresslevel=6))
        total += size
        print(f"{path:40s} {len(body):7d} B raw {size:7d} B gzip")
    print(
        f"total: {len(assets)} files, {total} B compressed;"
        f" budget {BUDGET} B; ratio {total / BUDGET:.2f}"
    )


if __name__ == "__main__":
    main()
