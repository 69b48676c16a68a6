"""Position coarsening before forwarding (reviewer_tool.redaction.coarsen_position)."""

from __future__ import annotations

import pytest

from reviewer_tool.redaction import coarsen_position


@pytest.mark.parametrize(
    ("decimals", "expected"),
    [
        (0, (1.0, 104.0)),
        (1, (1.3, 103.8)),
        (2, (1.27, 103.83)),
        (6, (1.265432, 103.834568)),
    ],
)
def test_rounds_to_the_given_decimals(decimals: int, expected: tuple[float, float]) -> None:
    """Latitude and longitude are rounded alike."""
    assert coarsen_position(1.2654321, 103.8345678, decimals) == expected


def test_no_negative_zero() -> None:
    """A position just south of the equator does not read "-0.0"."""
    assert str(coarsen_position(-0.04, -0.04, 1)) == "(0.0, 0.0)"


@pytest.mark.parametrize("decimals", [-1, 7, 2.0, True])
def test_decimals_out_of_range(decimals: object) -> None:
    """Only whole numbers 0..6 are accepted."""
    with pytest.raises(ValueError, match="decimals"):
        coarsen_position(1.0, 2.0, decimals)  # type: ignore[arg-type]


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, -180.5), (float("nan"), 0.0)])
def test_position_out_of_range(lat: float, lon: float) -> None:
    """Impossible positions are an error, not a rounded value."""
    with pytest.raises(ValueError, match="position"):
        coarsen_position(lat, lon, 2)
