"""Column mappings: the shipped one loads; a wrong one is refused saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident_db.errors import FeedError
from incident_db.mapping import load_mapping, locate, shipped_names

MINIMAL = """
name = "tiny"
[constants]
category = "other"
[columns]
date = "when"
"""


def test_the_crime_at_sea_mapping_ships() -> None:
    assert "crime-at-sea" in shipped_names()
    mapping = load_mapping("crime-at-sea")
    assert mapping.name == "crime-at-sea"
    assert "vessel_name" in mapping.ignored
    assert "vessel_name" not in mapping.columns.values()
    assert mapping.values["incident_type"]["boarding"] == "boarded"
    assert mapping.values["incident_type"]["boarded"] == "boarded"
    assert mapping.values["vessel_status"]["steaming"] == "underway"
    assert "CC BY 4.0" in mapping.credit
    assert mapping.derive  # keyword rules for the IMB descriptions


def test_a_file_path_wins_over_a_shipped_name(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(MINIMAL)
    assert locate(str(path)) == path
    assert load_mapping(str(path)).name == "tiny"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("surprise = 1\n" + MINIMAL, "unknown setting"),
        ('name = "Bad Name"\n[constants]\ncategory = "other"', "name must be"),
        ('name = "t"\n[columns]\ndate = "d"', "category needs a column or a constant"),
        (MINIMAL + '\nvessel_name = "ship"', "no record field 'vessel_name'"),
        (MINIMAL.replace('"other"', '"robbery"'), "is not a category value"),
        (MINIMAL + '\n[values.vessel_type]\ntanker = "oil-tanker"', "is not a vessel_type"),
        (MINIMAL + '\n[values.place]\nx = "y"', "takes no slugs"),
        (MINIMAL + '\n[[derive]]\nfield = "weapons"\nvalue = "guns"\npattern = "(("',
         "bad pattern"),
        (MINIMAL + '\n[[derive]]\nfield = "weapons"\nvalue = "guns"\npattern = "{{nope}}"',
         "unknown snippet"),
        (MINIMAL + '\n[[derive]]\nfield = "narrative"\nvalue = "x"\npattern = "x"',
         "cannot be derived"),
        ("name = ", "mapping"),
    ],
)  # fmt: skip
def test_bad_mappings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(FeedError, match=message):
        load_mapping(str(path))


def test_an_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(FeedError, match=r"no shipped mapping of that name \(shipped: crime-at-sea"):
        load_mapping("imb-2030")
