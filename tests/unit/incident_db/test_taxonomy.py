"""The database's vocabulary accepts every choice the report form offers."""

from __future__ import annotations

import pytest

from incident_db.taxonomy import CREW, VOCABULARIES, slug
from portal.web.fields import BY_NAME, FIELDS
from reviewer_tool.forwarding import FORM_TO_RECORD

#: the form's choice fields and where forwarding puts them in a record
SHARED = {form: record for form, record in FORM_TO_RECORD.items() if BY_NAME[form].choices}


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
