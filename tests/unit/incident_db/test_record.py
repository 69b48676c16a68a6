"""The incident record, cso-incident/v1 (incident_db/RECORD.md)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pytest

from incident_db.errors import RecordError
from incident_db.record import IncidentRecord, parse_record
from tests.conftest import ROOT
from tests.unit.incident_db.factories import record


def _refused(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError, match=rf"^{field}: "):
        parse_record(obj)


def test_round_trip() -> None:
    obj = record(1)
    parsed = parse_record(obj)
    assert parsed.to_json() == obj
    assert parse_record(parsed.to_json()) == parsed


def test_utc_is_derived_from_local_time_and_offset() -> None:
    parsed = parse_record(record(1, occurred_local="2024-03-01T02:30", utc_offset="+06:00"))
    assert parsed.occurred_local == dt.datetime(2024, 3, 1, 2, 30)
    assert parsed.occurred_utc == dt.datetime(2024, 2, 29, 20, 30)
    west = parse_record(record(1, occurred_local="2024-03-01T23:45", utc_offset="-09:30"))
    assert west.occurred_utc == dt.datetime(2024, 3, 2, 9, 15)


def test_only_the_required_members() -> None:
    minimal = {
        "schema": "cso-incident/v1",
        "id": "f" * 32,
        "category": "stowaways",
        "verification": {"status": "confirmed", "grade": "F6"},
    }
    parsed = parse_record(minimal)
    assert parsed.weapons == ()
    assert parsed.occurred_utc is None
    assert parsed.to_json() == minimal
    assert parse_record(minimal | {"weapons": []}).to_json() == minimal  # [] is the default


def test_nested_groups() -> None:
    obj = record(
        2,
        category="cyber-incident",
        cyber={"systems": ["ecdis", "gnss"], "vector": "gnss-spoofing", "impact": "Lost fix\n"},
        stowaways={"count": 2, "embarkation_port": "Lagos", "hiding_place": "rudder-trunk"},
        suspect_craft={"count": 1, "type": "skiff", "description": "white hull"},
    )
    parsed = parse_record(obj)
    assert parsed.cyber is not None
    assert parsed.cyber.systems == ("ecdis", "gnss")
    assert parsed.stowaways is not None
    assert parsed.stowaways.embarkation_berth is None
    assert parsed.to_json() == obj


@pytest.mark.parametrize(
    "name",
    ["identity_vessel", "identity_imo", "identity_company", "vessel_name", "imo", "mmsi",
     "call_sign", "flag", "company", "contact", "IMO_Number"],
)  # fmt: skip
def test_identity_members_are_refused(name: str) -> None:
    with pytest.raises(RecordError, match="never holds a ship's, company's or person's identity"):
        parse_record(record(1) | {name: "MV Cosmic Leader"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schema": "cso-incident/v2"}, "schema"),
        ({"id": "A" * 32}, "id"),
        ({"id": "abc"}, "id"),
        ({"category": None}, "category"),
        ({"category": "Piracy"}, "category"),
        ({"verification": None}, "verification"),
        ({"verification": {"status": "unverified", "grade": "B2"}}, "verification.status"),
        ({"verification": {"status": "confirmed", "grade": "G7"}}, "verification.grade"),
        ({"weapons": ["knives-or-machetes", "knives-or-machetes"]}, "weapons"),
        ({"weapons": "guns"}, "weapons"),
        ({"stolen": ["gold"]}, "stolen"),
        ({"perpetrators_min": -1}, "perpetrators_min"),
        ({"perpetrators_min": True}, "perpetrators_min"),
        ({"perpetrators_max": 10_000}, "perpetrators_max"),
        ({"perpetrators_min": 6, "perpetrators_max": 5}, "perpetrators_min"),
        ({"crew": {"eaten": 1}}, "crew.eaten"),
        ({"crew": {}}, "crew"),
        ({"occurred_local": None}, "occurred_local"),
        ({"utc_offset": None}, "occurred_local"),
        ({"occurred_local": "2024-02-30T02:30"}, "occurred_local"),
        ({"occurred_local": "2024-03-01 02:30"}, "occurred_local"),
        ({"utc_offset": "+5"}, "utc_offset"),
        ({"utc_offset": "+14:30"}, "utc_offset"),
        ({"utc_offset": "+05:10"}, "utc_offset"),
        ({"position": {"lat": 22.2, "lon": 91.7}}, "position"),
        ({"position": {"lat": 95.0, "lon": 91.7, "decimals": 1}}, "position.lat"),
        ({"position": {"lat": 22.25, "lon": 91.7, "decimals": 1}}, "position.lat"),
        ({"position": {"lat": 22.2, "lon": "91.7", "decimals": 1}}, "position.lon"),
        ({"position": {"lat": 22.2, "lon": 91.7, "decimals": 7}}, "position.decimals"),
        ({"place": ""}, "place"),
        ({"place": "Berth 5\nApapa"}, "place"),
        ({"place": "x" * 201}, "place"),
        ({"narrative": "x" * 20_001}, "narrative"),
        ({"narrative": "bell\x07"}, "narrative"),
        ({"links": [{"relation": "same-as", "id": "0" * 32}]}, "links"),
        ({"links": [{"relation": "corroborates", "id": f"{1:032x}"}]}, "links"),
        ({"suspect_craft": {"colour": "red"}}, "suspect_craft.colour"),
        ({"cyber": {"systems": ["toaster"]}}, "cyber.systems"),
        ({"mystery": 1}, "mystery"),
    ],
)
def test_bad_values_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    _refused(record(1, **changes), field)  # a None change removes the member


def test_feed_rows_are_unverified() -> None:
    obj = record(3, verification=None)
    parsed = parse_record(obj, unverified=True)
    assert parsed.verification is None
    assert "verification" not in parsed.to_json()
    with pytest.raises(RecordError, match=r"^verification: an external feed row"):
        parse_record(record(3), unverified=True)


def test_the_record_module_needs_only_the_standard_library() -> None:
    """The reviewer tool imports it on an air-gapped workstation without the database stack."""
    code = (
        "import sys; import incident_db.record, incident_db.taxonomy; "
        "heavy = {'sqlalchemy', 'matplotlib', 'stix2', 'jinja2', 'alembic', 'numpy'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_records_are_frozen() -> None:
    parsed = parse_record(record(1))
    with pytest.raises(AttributeError):
        parsed.category = "other"  # type: ignore[misc]
    assert isinstance(parsed, IncidentRecord)
