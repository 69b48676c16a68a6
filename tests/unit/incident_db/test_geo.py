"""Great-circle distances and the boxes that pre-filter them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incident_db.geo import distance_nm, latitude_margin, longitude_margin


def test_a_minute_of_latitude_is_a_nautical_mile() -> None:
    assert distance_nm(0, 0, 1, 0) == pytest.approx(60.04, abs=0.01)
    assert distance_nm(22.2, 91.7, 22.2, 91.7) == 0


def test_across_the_antimeridian() -> None:
    assert distance_nm(0, 179.99, 0, -179.99) == pytest.approx(1.2, abs=0.01)


@given(
    st.floats(-80, 80), st.floats(-170, 170), st.floats(0.1, 200),
    st.floats(0, 1), st.floats(0, 6.283),
)  # fmt: skip
def test_the_box_holds_the_circle(
    lat: float, lon: float, radius: float, fraction: float, bearing: float
) -> None:
    import math

    # a point at a given distance and bearing, by small steps along the sphere
    angle = radius * fraction / 3440.065
    phi, lam = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi) * math.cos(angle)
                     + math.cos(phi) * math.sin(angle) * math.cos(bearing))  # fmt: skip
    lam2 = lam + math.atan2(math.sin(bearing) * math.sin(angle) * math.cos(phi),
                            math.cos(angle) - math.sin(phi) * math.sin(phi2))  # fmt: skip
    lat2, lon2 = math.degrees(phi2), math.degrees(lam2)
    assert abs(lat2 - lat) <= latitude_margin(radius)
    wide = longitude_margin(lat, radius)
    if wide is not None:
        assert abs(lon2 - lon) <= wide
