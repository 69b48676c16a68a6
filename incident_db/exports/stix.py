"""STIX 2.1 export: incidents, their locations and their links, as plain JSON-ready dicts.

Each incident becomes an ``incident`` SDO carrying two property extensions:

* the OASIS Incident Core Extension (``CORE_EXTENSION``), for what it has a
  place for: ``determination`` from the outcome, ``investigation_status``
  (closed once a reviewer confirmed it, new for unverified feed rows) and
  ``incident_types`` (the category);
* our own maritime extension (``MARITIME_EXTENSION``, defined by an
  ``extension-definition`` object and described in ``incident_db/STIX.md``)
  for everything STIX has no property for: ship type and status,
  perpetrators, weapons, boarding, crew, local time, the Admiralty grade.

Positions are ``location`` SDOs joined by ``located-at`` relationships;
reviewer and found links become ``duplicate-of`` and ``related-to``
relationships. Ids are UUIDv5 of the incident id, so exporting twice gives
the same ids.

Every object but the five OASIS TLP 2.0 marking definitions carries exactly
one TLP marking (``object_marking_refs``): an incident's objects its level, a
link the stricter of its two ends, the producer and the extension definition
TLP:CLEAR. Nothing a clearance does not allow is made (``tlp.allows``, which
never allows RED).

The objects are built as plain dicts, not ``stix2`` objects: the TAXII
server builds a page of 1,000 of them per request, and ``stix2`` objects
check every property as they are made, far too slowly for that. Their
conformance is checked in the tests by ``stix2-validator`` (strict) instead.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any, TextIO

from incident_db import tlp
from incident_db.exports import ExportedIncident
from incident_db.stix_ids import NAMESPACE, incident_uuid, link_uuid, located_at_uuid, stix_uuid
from incident_db.taxonomy import SUCCESSFUL, label

CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
MARITIME_EXTENSION = "extension-definition--3b1f6c2e-8e0a-4c57-9d43-5a2f0e7c9b14"
#: when the producer identity and the extension definition were first published
PUBLISHED = "2026-11-21T00:00:00.000Z"
DETERMINATION = {
    SUCCESSFUL: "successful-attempt",
    "attempted": "failed-attempt",
    "foiled-by-crew": "blocked",
}
#: metres per degree of latitude: a position's precision from its decimals
METRES_PER_DEGREE = 111_320
#: the most decimals a position may have (cso-incident/v1, RECORD.md)
MOST_DECIMALS = 6
MARITIME_SCHEMA = (
    "Maritime incident properties of cso-portal (incident_db/STIX.md): category, "
    "report_type, incident_type, location_type, vessel_type, vessel_status, boarding_method, "
    "outcome (slugs of the cso-incident/v1 taxonomy); local_date, local_time, utc_offset, "
    "occurred_utc; place; perpetrators_min, perpetrators_max; weapons, boarding_points, "
    "stolen, actions_taken, reported_to, cyber_systems (lists of slugs); crew (counts by "
    "consequence); suspect_craft, stowaways, cyber (objects); verification_status, "
    "admiralty_grade, signer_fingerprint, origin. No vessel name or identifier, ever."
)

#: the maritime extension's plain properties, taken as they are from the export values
MARITIME_FIELDS = (
    "category", "report_type", "incident_type", "local_date", "local_time", "utc_offset",
    "occurred_utc", "place", "location_type", "vessel_type", "vessel_status",
    "perpetrators_min", "perpetrators_max", "weapons", "boarding_method", "boarding_points",
    "stolen", "actions_taken", "outcome", "reported_to", "cyber_systems",
    "verification_status", "signer_fingerprint", "origin",
)  # fmt: skip


PRODUCER_ID = f"identity--{stix_uuid('cso-portal incident-db')}"
_PRODUCER: dict[str, Any] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": PRODUCER_ID,
    "created": PUBLISHED,
    "modified": PUBLISHED,
    "name": "cso-portal shared incident database",
    "identity_class": "system",
    "object_marking_refs": [tlp.STIX_MARKINGS["clear"]],
}
_DEFINITION: dict[str, Any] = {
    "type": "extension-definition",
    "spec_version": "2.1",
    "id": MARITIME_EXTENSION,
    "created_by_ref": PRODUCER_ID,
    "created": PUBLISHED,
    "modified": PUBLISHED,
    "name": "cso-portal maritime incident",
    "description": "Ship, attack, crew and verification details of a maritime security incident.",
    "schema": MARITIME_SCHEMA,
    "version": "1.0.0",
    "extension_types": ["property-extension"],
    "object_marking_refs": [tlp.STIX_MARKINGS["clear"]],
}


def stix_time(moment: dt.datetime) -> str:
    """``moment`` as a STIX timestamp: UTC, millisecond precision, ``Z`` (``…T…:…:….123Z``).

    A naive datetime is taken as UTC (the database stores naive UTC); an
    aware one is converted. Sub-millisecond digits are cut, never rounded up,
    so an earlier moment never prints later than a later one.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def common_objects() -> list[dict[str, Any]]:
    """What every bundle holds besides incidents, each a fresh copy.

    The five OASIS TLP 2.0 marking definitions (as published, unmarked), then
    the producer identity and the maritime extension definition (TLP:CLEAR).
    """
    markings = [tlp.stix_marking_definition(level) for level in tlp.LEVELS]
    return [*markings, copy.deepcopy(_PRODUCER), copy.deepcopy(_DEFINITION)]


def incident_objects(incident: ExportedIncident, clearance: str) -> list[dict[str, Any]]:
    """The STIX objects of one incident that a holder of ``clearance`` may receive.

    The ``incident`` SDO, its ``location`` and ``located-at`` relationship if
    it has a position, and one relationship per outgoing link whose other end
    is live and whose stricter level the clearance allows. Nothing at all if
    the clearance does not allow the incident's own level (RED never).
    Raises :class:`incident_db.tlp.UnknownLevelError` for a clearance that is not
    one of ``tlp.PARTNER_LEVELS``.
    """
    tlp.check_clearance(clearance)
    row = incident.row
    level = row.tlp
    if not tlp.allows(clearance, level):
        return []
    created = stix_time(row.added_at)
    # a version is never older than the incident; cut to the millisecond, still so
    modified = max(created, stix_time(row.version_at))
    marking = tlp.STIX_MARKINGS[level]
    sdo = _incident(incident, created, modified, [marking])
    objects = [sdo]
    location = _location(row, created, modified, [marking])
    if location is not None:
        objects.append(location)
        objects.append(_relationship(located_at_uuid(row.id), "located-at", sdo["id"],
                                     location["id"], created, modified, [marking]))  # fmt: skip
    for link in incident.links:
        if link["direction"] != "out":
            continue  # the other incident's objects carry it
        other_level = link.get("other_tlp")
        if other_level is None:
            continue  # the other incident was merged away or never stored
        both = tlp.strictest(level, other_level)
        if not tlp.allows(clearance, both):
            continue
        kind = "duplicate-of" if link["relation"] == "duplicate-of" else "related-to"
        note = link["relation"]
        if link["distance_nm"] is not None:
            note += f": {link['distance_nm']} nm and {link['hours_apart']} h apart"
        target = f"incident--{incident_uuid(link['other'])}"
        relation = _relationship(link_uuid(link["relation"], row.id, link["other"]), kind,
                                 sdo["id"], target, created, modified,
                                 [tlp.STIX_MARKINGS[both]])  # fmt: skip
        relation["description"] = note
        objects.append(relation)
    return objects


def _relationship(
    uid: str, kind: str, source: str, target: str, created: str, modified: str, marking: list[str]
) -> dict[str, Any]:
    return {
        "type": "relationship", "spec_version": "2.1", "id": f"relationship--{uid}",
        "created_by_ref": PRODUCER_ID, "created": created, "modified": modified,
        "relationship_type": kind, "source_ref": source, "target_ref": target,
        "object_marking_refs": marking,
    }  # fmt: skip


def _maritime(values: dict[str, Any]) -> dict[str, Any]:
    """The maritime extension's properties: only those with a value."""
    crew = {k[5:]: v for k, v in values.items() if k.startswith("crew_") and v}
    nested = {
        "suspect_craft": {k[14:]: values[k] for k in values if k.startswith("suspect_craft_")},
        "stowaways": {k[9:]: values[k] for k in values if k.startswith("stowaway_")},
        "cyber": {"vector": values["cyber_vector"], "impact": values["cyber_impact"]},
    }
    plain = {k: values[k] for k in MARITIME_FIELDS}
    plain["admiralty_grade"] = values["grade"]
    plain["crew"] = crew
    for key, members in nested.items():
        plain[key] = {k: v for k, v in members.items() if v is not None}
    out = {k: v for k, v in plain.items() if v not in (None, [], {})}
    return {"extension_type": "property-extension", **out}


def _references(incident: ExportedIncident) -> list[dict[str, Any]]:
    references: list[dict[str, Any]] = []
    for source in incident.sources:
        where = "line" if source["kind"] == "reviewer-batch" else "row"
        references.append(
            {
                "source_name": source["source"],
                "external_id": f"{where} {source['row']}",
                "description": f"{source['kind']} {source['source']}, {where} {source['row']}",
            }
        )
    for attachment in incident.attachments:
        # a file forwarded with a reviewer batch, named and bound by its hash (SPEC §16.9)
        references.append(
            {
                "source_name": "cso-attachment",
                "description": f"{attachment['name']} ({attachment['media_type']})",
                "hashes": {"SHA-256": attachment["sha256"]},
            }
        )
    return references


def _incident(
    incident: ExportedIncident, created: str, modified: str, marking: list[str]
) -> dict[str, Any]:
    values = incident.values()
    confirmed = values["verification_status"] == "confirmed"
    what = label("incident_type", values["incident_type"] or "") or label(
        "category", values["category"]
    )
    name = f"{what}: {values['place'] or 'position only'} ({values['local_date'] or 'undated'})"
    sdo: dict[str, Any] = {
        "type": "incident",
        "spec_version": "2.1",
        "id": f"incident--{incident_uuid(incident.row.id)}",
        "created_by_ref": PRODUCER_ID,
        "created": created,
        "modified": modified,
        "name": name[:250],
    }
    if values["narrative"]:
        sdo["description"] = values["narrative"]
    sdo["labels"] = ["confirmed" if confirmed else "unverified"]
    references = _references(incident)
    if references:
        sdo["external_references"] = references
    sdo["object_marking_refs"] = marking
    sdo["extensions"] = {
        CORE_EXTENSION: {
            "extension_type": "property-extension",
            "determination": DETERMINATION.get(values["outcome"], "suspected"),
            "investigation_status": "closed" if confirmed else "new",
            "incident_types": [values["category"]],
        },
        MARITIME_EXTENSION: _maritime(values),
    }
    return sdo


def _location(row: Any, created: str, modified: str, marking: list[str]) -> dict[str, Any] | None:
    """The position, to no more decimals than the incident keeps, and its precision in metres."""
    if row.latitude is None or row.longitude is None:
        return None
    decimals = MOST_DECIMALS if row.position_decimals is None else row.position_decimals
    decimals = min(max(decimals, 0), MOST_DECIMALS)
    latitude, longitude = round(row.latitude, decimals), round(row.longitude, decimals)
    if decimals == 0:  # "22.0" would claim a decimal the incident does not have
        latitude, longitude = int(latitude), int(longitude)
    location: dict[str, Any] = {
        "type": "location",
        "spec_version": "2.1",
        "id": f"location--{incident_uuid(row.id)}",
        "created_by_ref": PRODUCER_ID,
        "created": created,
        "modified": modified,
    }
    if row.place:
        location["name"] = row.place
    location |= {
        "latitude": latitude,
        "longitude": longitude,
        # one unit of the last decimal kept, in metres of latitude: the true
        # position lies within half a unit on each axis, so this bounds it
        "precision": METRES_PER_DEGREE / 10**decimals,
        "object_marking_refs": marking,
    }
    return location


def write_stix(incidents: Iterable[ExportedIncident], out: TextIO, clearance: str) -> int:
    """Write one bundle of what ``clearance`` allows of ``incidents``; return how many incidents.

    The bundle is written as it is made (a member's or partner's export need
    not fit in memory); links are written last, and only those whose other
    end is in the bundle. The bundle id is a UUIDv5 of the objects written,
    so it comes after them, and the same objects give the same bytes.
    Raises :class:`incident_db.tlp.UnknownLevelError` for an unknown clearance.
    """
    tlp.check_clearance(clearance)
    digest = hashlib.sha256()
    written = 0

    def emit(obj: dict[str, Any]) -> None:
        nonlocal written
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        digest.update(text.encode("utf-8"))
        out.write(("," if written else "") + text)
        written += 1

    out.write('{"type":"bundle","objects":[')
    for obj in common_objects():
        emit(obj)
    exported: set[str] = set()
    links: list[dict[str, Any]] = []
    for incident in incidents:
        objects = incident_objects(incident, clearance)
        if not objects:
            continue
        exported.add(objects[0]["id"])
        for obj in objects:
            if obj["type"] == "relationship" and obj["relationship_type"] != "located-at":
                links.append(obj)
            else:
                emit(obj)
    for link in links:
        if link["target_ref"] in exported:
            emit(link)
    bundle_id = uuid.uuid5(NAMESPACE, "bundle " + digest.hexdigest())
    out.write(f'],"id":"bundle--{bundle_id}"}}\n')
    return len(exported)
