"""The shipped land file is exactly what the pinned world-atlas package gives."""

from __future__ import annotations

import hashlib
import json

from incident_db import basemap
from incident_db.basemap import regenerate


def test_land_file_matches_the_pinned_package() -> None:
    """npm ci installs world-atlas as the lock pins it; converting it again gives the same bytes."""
    lock = json.loads((regenerate.HERE / "npm" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/world-atlas"]
    assert pinned["version"] == "2.0.2"
    assert pinned["integrity"].startswith("sha512-")
    package = regenerate.install()
    made = regenerate.build(package)
    shipped = basemap.LAND_FILE.read_bytes()
    assert hashlib.sha256(made).hexdigest() == hashlib.sha256(shipped).hexdigest()


def test_each_level_has_the_land_it_should() -> None:
    """Coarse levels have fewer points; the fine one draws Lagos's lagoon coast near 6.4 N 3.4 E."""
    levels = basemap.land()
    points = {name: sum(len(ring) for ring in levels[name].rings) for name in basemap.LEVELS}
    assert points["110m"] < points["50m"] < points["10m"]
    near_lagos = basemap.rings_in((3.2, 6.3, 3.6, 6.6), "10m")
    assert near_lagos
    assert basemap.level_for(3) == "10m"
    assert basemap.level_for(30) == "50m"
    assert basemap.level_for(300) == "110m"
