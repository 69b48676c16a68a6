"""Positions as seafarers write them: the shared vectors (tests/vectors/positions.json).

The browser's reader (portal/web/static/js/position.js) is checked against the
same file under Node (tests/js/), so the two paths read every case alike.
"""

from __future__ import annotations

from typing import Any

import pytest

from portal.web.position import PositionError, parse_coordinate, parse_position
from tests.conftest import load_vectors

VECTORS = load_vectors("positions.json")


def _id(case: dict[str, Any]) -> str:
    return str(case["name"])


def test_the_vectors_cover_what_the_contract_asks() -> None:
    coordinates, positions = VECTORS["coordinates"], VECTORS["positions"]
    assert len(coordinates) + len(positions) >= 40
    texts = " ".join(c["input"] for c in coordinates)
    for sign in ("°", "º", "'", "\u2032", "\u2019"):  # degree, ordinal, apostrophe, prime, quote
        assert sign in texts
    assert {c["expect"] for c in coordinates} == {"success", "invalid"}
    assert {c["expect"] for c in positions} == {"success", "invalid"}
    for case in coordinates + positions:
        assert ("value" in case) == (case["expect"] == "success")
        assert case.get("error", False) == (case["expect"] == "invalid")


@pytest.mark.parametrize("case", VECTORS["coordinates"], ids=_id)
def test_coordinate(case: dict[str, Any]) -> None:
    if case["expect"] == "invalid":
        with pytest.raises(PositionError):
            parse_coordinate(case["input"], case["axis"])
        return
    value = parse_coordinate(case["input"], case["axis"])
    assert value == case["value"]
    assert str(value) != "-0.0"


@pytest.mark.parametrize("case", VECTORS["positions"], ids=_id)
def test_position(case: dict[str, Any]) -> None:
    if case["expect"] == "invalid":
        with pytest.raises(PositionError):
            parse_position(case["input"])
        return
    assert list(parse_position(case["input"])) == case["value"]


def test_every_accepted_coordinate_is_within_range_and_six_decimals() -> None:
    for case in VECTORS["coordinates"]:
        if case["expect"] == "success":
            limit = 90 if case["axis"] == "latitude" else 180
            assert abs(case["value"]) <= limit
            assert round(case["value"], 6) == case["value"]
