"""The database's vocabulary accepts every choice the report form offers."""

from __future__ import annotations

import pytest

from incident_db.taxonomy import CREW, VOCABULARIES, slug
from portal.fields import BY_NAME, FIELDS

#: report form field → record field (the record's name for the same thing)
SHARED = {
    "category": "category",
    "report_type": "report_type",
    "incident_type": "incident_type",
    "location_type": "location_type",
    "vessel_type": "vessel_type",
    "vessel_status": "vessel_status",
    "weapons": "weapons",
    "boarding_method": "boarding_method",
    "boarding_point": "boarding_points",
    "stolen": "stolen",
    "actions_taken": "actions_taken",
    "outcome": "outcome",
    "reported_to": "reported_to",
    "suspect_craft_type": "suspect_craft.type",
    "stowaway_hiding_place": "stowaways.hiding_place",
    "cyber_systems": "cyber.systems",
    "cyber_vector": "cyber.vector",
}


@pytest.mark.parametrize(("form_field", "record_field"), sorted(SHARED.items()))
def test_every_form_choice_is_a_database_slug(form_field: str, record_field: str) -> None:
    choices = [value for value, _ in BY_NAME[form_field].choices]
    assert choices, form_field
    assert set(choices) == set(VOCABULARIES[record_field]), form_field


def test_every_form_choice_field_is_covered() -> None:
    """A new choice field on the form must be mapped here (or deliberately left out)."""
    not_shared = {"incident_utc_offset"}  # the record carries the offset as text
    choice_fields = {f.name for f in FIELDS if f.choices} - not_shared
    assert choice_fields == set(SHARED)


def test_crew_members_match_the_form() -> None:
    form = {f.name.removeprefix("crew_") for f in FIELDS if f.name.startswith("crew_")}
    assert form == set(CREW)


def test_slugs_are_made_like_the_forms() -> None:
    assert slug("Ship's stores") == "ship-s-stores"
    assert slug("Cargo crime (theft, tampering)") == "cargo-crime-theft-tampering"
    for field in FIELDS:
        for value, label in field.choices:
            if field.name != "incident_utc_offset":
                assert slug(label) == value
