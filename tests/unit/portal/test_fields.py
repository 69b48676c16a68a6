"""The field names are a documented, stable interface."""

from __future__ import annotations

from portal.web.fields import BY_NAME, FIELDS
from scripts.fields_doc import render
from tests.conftest import ROOT


def test_fields_doc_is_current() -> None:
    assert (ROOT / "portal" / "web" / "FIELDS.md").read_text(encoding="utf-8") == render()


def test_required_names_exist() -> None:
    for name in ("category", "narrative", "identity_company", "identity_vessel"):
        assert name in BY_NAME
    assert len(BY_NAME) == len(FIELDS)  # no name used twice


def test_choice_values_are_stable_slugs() -> None:
    for field in FIELDS:
        for value, _ in field.choices:
            assert value == value.strip()
            assert all(c.isalnum() or c in "-+:" for c in value), value
