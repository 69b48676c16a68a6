"""Place keys: the names that mean the same port or anchorage share one."""

from __future__ import annotations

import pytest

from incident_db.places import place_key


@pytest.mark.parametrize(
    "name",
    [
        "Chittagong",
        "Chittagong Anchorage, Bangladesh",
        "Chittagong, Bangladesh",
        "Chittagong Anchorage 'B', Bangladesh",
        "Chittagong 'C' Anchorage",
        "Chittagong Alpha Anchorage, Bangladesh (Used coordinates from other incidents)",
        "Berth No. 9, Chittagong Port, Bangladesh",
        "Outer Anchorage, Chittagong, Bangladesh",
        "CHITTAGONG ROADS",
        "Chattogram Anchorage",
    ],
)
def test_names_of_one_anchorage_share_a_key(name: str) -> None:
    assert place_key(name) == "chittagong"


def test_abbreviations_and_spellings() -> None:
    assert place_key("Tg. Priok Anchorage, Indonesia") == "tanjung priok"
    assert place_key("Tanjung Priok, Jakarta, Indonesia") == "tanjung priok"
    assert place_key("Dar-Es-Salam Anchor, Tanzania") == "dar es salaam"
    assert place_key("Mui Vung Tau Anchorage") == "vung tau"
    assert place_key("Callao Anchorage No. 12, Peru") == "callao"
    assert place_key("Port of Callao, Peru") == "callao"


def test_ports_named_port_keep_their_name() -> None:
    assert place_key("Port Harcourt, Nigeria") == "port harcourt"
    assert place_key("Port of Spain, Trinidad") == "port of spain"
    assert place_key("Port au Prince Anchorage, Haiti") == "port au prince"


def test_different_places_stay_apart() -> None:
    assert place_key("Muara Berau Anchorage, Samarinda") == "muara berau"
    assert place_key("Samarinda Anchorage, Indonesia") == "samarinda"
    assert place_key("Belawan, Indonesia") != place_key("Lagos, Nigeria")


def test_a_distance_from_a_place_is_not_the_place() -> None:
    assert place_key("Around 20nm SW of Lagos, Nigeria") != place_key("Lagos, Nigeria")
    assert place_key("16 miles South of Lagos") != "lagos"


def test_no_name_no_key() -> None:
    assert place_key(None) is None
    assert place_key("   ") is None
