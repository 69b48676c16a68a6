"""From a confirmed, redacted report to a shared-database record (incident_db/RECORD.md).

Only what the reviewer approved in ``reviewer redact`` is used for free
text; choices and counts are copied from the report; the identity section
never is. :func:`identity_leaks` is the hard check before anything is
signed: a record in which any identity-section value can still be found,
in any string, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from typing import Any

from incident_db.errors import RecordError
from incident_db.record import parse_record
from incident_db.taxonomy import CREW
from reviewer_tool.errors import ReviewerError
from reviewer_tool.redaction import coarsen_position, identity_values_in
from reviewer_tool.workspace import Item, Workspace

#: report fields whose free text is redacted, and the record member each becomes
TEXT_FIELDS = {
    "narrative": "narrative",
    "place_name": "place",
    "suspect_craft_description": "suspect_craft.description",
    "stowaway_embarkation_port": "stowaways.embarkation_port",
    "stowaway_embarkation_berth": "stowaways.embarkation_berth",
    "stowaway_how_found": "stowaways.how_found",
    "cyber_impact": "cyber.impact",
}
#: identity values searched for; the flag is left out: "Panama" or "Liberia" in a
#: narrative is a place far more often than the ship's flag, and alone it names nobody
IDENTITY_FIELDS = (
    "identity_company",
    "identity_vessel",
    "identity_imo",
    "identity_call_sign",
    "identity_mmsi",
    "identity_contact",
)
#: report form field → record field, for every field copied as the reporter chose it
#: (a dotted target goes inside a group of the record)
FORM_TO_RECORD = {
    "category": "category",
    "report_type": "report_type",
    "incident_type": "incident_type",
    "location_type": "location_type",
    "vessel_type": "vessel_type",
    "vessel_status": "vessel_status",
    "perpetrators_min": "perpetrators_min",
    "perpetrators_max": "perpetrators_max",
    "weapons": "weapons",
    "boarding_method": "boarding_method",
    "boarding_point": "boarding_points",
    "stolen": "stolen",
    "actions_taken": "actions_taken",
    "outcome": "outcome",
    "reported_to": "reported_to",
    "suspect_craft_count": "suspect_craft.count",
    "suspect_craft_type": "suspect_craft.type",
    "stowaway_count": "stowaways.count",
    "stowaway_hiding_place": "stowaways.hiding_place",
    "cyber_systems": "cyber.systems",
    "cyber_vector": "cyber.vector",
}


def identity_values(item: Item) -> list[str]:
    """The values the reporter gave in the identity section (never forwarded)."""
    identity = item.record["report"].get("identity", {})
    return [str(identity[name]) for name in IDENTITY_FIELDS if identity.get(name)]


def incident_id(ws: Workspace, item: Item) -> str:
    """A stable record id that nobody without this workspace can link to the submission."""
    key = hmac.new(ws.seal_key, b"cso-reviewer incident id v1", hashlib.sha256).digest()
    return hmac.new(key, item.id.encode(), hashlib.sha256).hexdigest()[:32]


def _set(record: dict[str, Any], path: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        return
    if "." in path:
        group, member = path.split(".")
        record.setdefault(group, {})[member] = value
    else:
        record[path] = value


def build_record(ws: Workspace, item: Item, links: Mapping[str, str]) -> dict[str, Any]:
    """The cso-incident/v1 JSON for a confirmed, redacted item; checked by parse_record."""
    triage, redaction = item.record.get("triage"), item.record.get("redaction")
    if not triage or triage["status"] != "confirmed":
        raise ReviewerError(f"report {item.id[:12]} is not confirmed")
    if not redaction:
        raise ReviewerError(f"report {item.id[:12]} is not redacted yet: run `reviewer redact`")
    fields = item.record["report"].get("report", {})
    record: dict[str, Any] = {"schema": "cso-incident/v1", "id": incident_id(ws, item)}
    for source, target in FORM_TO_RECORD.items():
        _set(record, target, fields.get(source))
    for source, target in TEXT_FIELDS.items():
        _set(record, target, redaction["fields"].get(source))
    if fields.get("incident_local_time") and fields.get("incident_utc_offset"):
        record["occurred_local"] = fields["incident_local_time"]
        record["utc_offset"] = fields["incident_utc_offset"]
    if fields.get("latitude") is not None and fields.get("longitude") is not None:
        decimals = redaction.get("position_decimals")
        decimals = 4 if decimals is None else decimals
        lat, lon = coarsen_position(fields["latitude"], fields["longitude"], decimals)
        record["position"] = {"lat": lat, "lon": lon, "decimals": decimals}
    crew = {name: fields[f"crew_{name}"] for name in CREW if fields.get(f"crew_{name}")}
    _set(record, "crew", crew or None)
    record["verification"] = {"status": "confirmed", "grade": triage["grade"]}
    duplicate = triage.get("duplicate_of")
    if duplicate and duplicate in links:
        record["links"] = [{"relation": "duplicate-of", "id": links[duplicate]}]
    try:
        return parse_record(record).to_json()
    except RecordError as error:
        raise ReviewerError(f"report {item.id[:12]}: {error}") from None


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, member in value.items():
            yield from _strings(member, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _strings(member, f"{path}[{index}]")


def identity_leaks(record: Mapping[str, Any], values: list[str]) -> list[str]:
    """Where in ``record`` an identity value can still be found (empty means clean)."""
    return [path for path, text in _strings(dict(record)) if identity_values_in(text, values)]
