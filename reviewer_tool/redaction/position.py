"""Coarsening of positions before forwarding: an exact position and time identify a ship."""

from __future__ import annotations

import math

MAX_DECIMALS = 6  # 1e-6 degrees is about 0.1 m, finer than any GNSS fix in a report


def coarsen_position(lat: float, lon: float, decimals: int) -> tuple[float, float]:
    """Round a position to ``decimals`` places (0..6); raises ``ValueError`` otherwise."""
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise ValueError("decimals must be a whole number from 0 to 6")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError("decimals must be a whole number from 0 to 6")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("position must be finite")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("position is outside -90..90, -180..180")
    # Adding 0.0 turns a rounded -0.0 into 0.0, which reads as it should.
    return round(lat, decimals) + 0.0, round(lon, decimals) + 0.0
