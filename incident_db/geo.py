"""Great-circle distances in nautical miles, and the boxes that pre-filter them in SQL."""

from __future__ import annotations

import math

#: mean Earth radius (6,371.0088 km) in nautical miles of 1,852 m
EARTH_RADIUS_NM = 6371008.8 / 1852


def distance_nm(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two positions in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_NM * math.asin(min(1.0, math.sqrt(a)))


def latitude_margin(radius_nm: float) -> float:
    """Degrees of latitude that contain every point within ``radius_nm``, with slack."""
    return radius_nm / 60.0 * 1.001 + 1e-9


def longitude_margin(lat: float, radius_nm: float) -> float | None:
    """Degrees of longitude that contain the circle; None when it nears a pole or wraps."""
    lat_edge = abs(lat) + latitude_margin(radius_nm)
    if lat_edge >= 89.0:
        return None
    margin = latitude_margin(radius_nm) / math.cos(math.radians(lat_edge))
    return None if margin >= 180.0 else margin
