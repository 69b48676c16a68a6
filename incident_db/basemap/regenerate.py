"""Make ``land.bin`` from the Natural Earth land outlines of the pinned npm package ``world-atlas``.

    python -m incident_db.basemap.regenerate [--check]

``npm/package.json`` and ``npm/package-lock.json`` pin world-atlas 2.0.2
(Natural Earth 4.1.0, public domain) with its integrity hash; ``npm ci``
installs exactly that into ``build/basemap-npm/`` (npm checks the hash).
Each of land-110m, land-50m and land-10m is a TopoJSON topology: its arcs
are decoded into closed rings on the topology's own integer grid and written
by :func:`incident_db.basemap.encode`. ``--check`` only compares the result
with the committed file and fails if they differ (the test suite does the
same through :func:`build`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from incident_db.basemap import LAND_FILE, LEVELS, Level, encode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INSTALL = ROOT / "build" / "basemap-npm"
PACKAGE = INSTALL / "node_modules" / "world-atlas"


def install() -> Path:
    """Install the pinned world-atlas with ``npm ci`` (integrity checked) and return its folder."""
    INSTALL.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / "npm" / name, INSTALL / name)
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch world-atlas (scripts/install-system-deps.sh)")
    subprocess.run(  # noqa: S603  (a fixed command line)
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=INSTALL, check=True
    )
    return PACKAGE


def _arc_points(topology: dict[str, Any]) -> list[list[tuple[int, int]]]:
    """Every arc as absolute grid points (TopoJSON stores deltas)."""
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x, y))
        arcs.append(points)
    return arcs


def rings(topology: dict[str, Any]) -> list[list[tuple[int, int]]]:
    """The rings (outer and holes) of every polygon of the ``land`` object, each closed."""
    arcs = _arc_points(topology)
    found = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for ring in polygon:
                points: list[tuple[int, int]] = []
                for index in ring:
                    part = arcs[index] if index >= 0 else arcs[~index][::-1]
                    points.extend(part if not points else part[1:])
                found.append(points)
    return found


def level(package: Path, name: str) -> Level:
    """One detail level from ``land-<name>.json``."""
    topology = json.loads((package / f"land-{name}.json").read_text(encoding="utf-8"))
    transform = topology["transform"]
    return Level(
        name=name,
        scale=(float(transform["scale"][0]), float(transform["scale"][1])),
        translate=(float(transform["translate"][0]), float(transform["translate"][1])),
        rings=rings(topology),
    )


def build(package: Path) -> bytes:
    """The bytes of ``land.bin`` made from the world-atlas package at ``package``."""
    return encode([level(package, name) for name in LEVELS])


def main() -> None:
    """Install the pinned package, convert it, and write (or check) ``land.bin``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    data = build(install())
    if args.check:
        if LAND_FILE.read_bytes() != data:
            sys.exit(f"{LAND_FILE} differs from what world-atlas gives: regenerate it")
        print(f"{LAND_FILE.name} matches world-atlas ({len(data):,} bytes)")
        return
    LAND_FILE.write_bytes(data)
    print(f"wrote {LAND_FILE} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
