"""STIX 2.1 export: a bundle of incidents, their locations and their links, made with ``stix2``.

Each incident becomes an ``incident`` SDO carrying two property extensions:

* the OASIS Incident Core Extension (``CORE_EXTENSION``), for what it has a
  place for: ``determination`` from the outcome, ``investigation_status``
  (closed once a reviewer confirmed it, new for unverified feed rows) and
  ``incident_types`` (the category);
* our own maritime extension (``MARITIME_EXTENSION``, defined by an
  ``extension-definition`` object in the bundle and described in
  ``incident_db/STIX.md``) for everything STIX has no property for: ship
  type and status, perpetrators, weapons, boarding, crew, local time, the
  Admiralty grade.

Positions are ``location`` SDOs joined by ``located-at`` relationships;
reviewer and found links become ``duplicate-of`` and ``related-to``
relationships. Ids are UUIDv5 of the incident id, so exporting twice gives
the same ids.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any, TextIO

import stix2  # type: ignore[import-untyped]

from incident_db.exports import ExportedIncident
from incident_db.taxonomy import SUCCESSFUL, label

CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
MARITIME_EXTENSION = "extension-definition--3b1f6c2e-8e0a-4c57-9d43-5a2f0e7c9b14"
NAMESPACE = uuid.UUID("6f0d6b4e-2a87-4f43-8f39-1c7a5e2b9d30")
#: when the producer identity and the extension definition were first published
PUBLISHED = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
DETERMINATION = {
    SUCCESSFUL: "successful-attempt",
    "attempted": "failed-attempt",
    "foiled-by-crew": "blocked",
}
#: metres per degree of latitude: a position's precision from its decimals
METRES_PER_DEGREE = 111_320
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


def _id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, name)}"


PRODUCER = stix2.Identity(
    id=_id("identity", "cso-portal incident-db"),
    name="cso-portal shared incident database",
    identity_class="system",
    created=PUBLISHED,
    modified=PUBLISHED,
)
DEFINITION = stix2.ExtensionDefinition(
    id=MARITIME_EXTENSION,
    created_by_ref=PRODUCER.id,
    created=PUBLISHED,
    modified=PUBLISHED,
    name="cso-portal maritime incident",
    description="Ship, attack, crew and verification details of a maritime security incident.",
    schema=MARITIME_SCHEMA,
    version="1.0.0",
    extension_types=["property-extension"],
)


def _maritime(values: dict[str, Any], incident: ExportedIncident) -> dict[str, Any]:
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


def _incident(incident: ExportedIncident) -> stix2.Incident:
    values = incident.values()
    row = incident.row
    confirmed = values["verification_status"] == "confirmed"
    what = label("incident_type", values["incident_type"] or "") or label(
        "category", values["category"]
    )
    name = f"{what}: {values['place'] or 'position only'} ({values['local_date'] or 'undated'})"
    created = row.added_at.replace(tzinfo=dt.UTC)
    references = []
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
    return stix2.Incident(
        id=_id("incident", row.id),
        created=created,
        modified=created,
        created_by_ref=PRODUCER.id,
        name=name[:250],
        description=values["narrative"] or None,
        external_references=references or None,
        labels=["confirmed" if confirmed else "unverified"],
        extensions={
            CORE_EXTENSION: {
                "extension_type": "property-extension",
                "determination": DETERMINATION.get(values["outcome"], "suspected"),
                "investigation_status": "closed" if confirmed else "new",
                "incident_types": [values["category"]],
            },
            MARITIME_EXTENSION: _maritime(values, incident),
        },
    )


def _location(incident: ExportedIncident, created: dt.datetime) -> stix2.Location | None:
    row = incident.row
    if row.latitude is None or row.longitude is None:
        return None
    decimals = 6 if row.position_decimals is None else row.position_decimals
    return stix2.Location(
        id=_id("location", row.id),
        created=created,
        modified=created,
        created_by_ref=PRODUCER.id,
        name=row.place or None,
        latitude=row.latitude,
        longitude=row.longitude,
        precision=float(METRES_PER_DEGREE / 10**decimals),
    )


def bundle(incidents: Iterable[ExportedIncident]) -> stix2.Bundle:
    """The STIX bundle for ``incidents``."""
    objects: list[Any] = [PRODUCER, DEFINITION]
    exported: set[str] = set()
    pending_links: list[tuple[str, dict[str, Any], dt.datetime]] = []
    for incident in incidents:
        sdo = _incident(incident)
        objects.append(sdo)
        exported.add(incident.row.id)
        location = _location(incident, sdo.created)
        if location is not None:
            objects.append(location)
            objects.append(
                stix2.Relationship(
                    id=_id("relationship", f"located-at {incident.row.id}"),
                    created=sdo.created, modified=sdo.created, created_by_ref=PRODUCER.id,
                    relationship_type="located-at", source_ref=sdo.id, target_ref=location.id,
                )
            )  # fmt: skip
        pending_links.extend(
            (incident.row.id, link, sdo.created) for link in incident.links
            if link["direction"] == "out"
        )  # fmt: skip
    for mine, link, created in pending_links:
        if link["other"] not in exported:
            continue  # the other incident was merged away or never arrived
        kind = "duplicate-of" if link["relation"] == "duplicate-of" else "related-to"
        note = link["relation"]
        if link["distance_nm"] is not None:
            note += f": {link['distance_nm']} nm and {link['hours_apart']} h apart"
        objects.append(
            stix2.Relationship(
                id=_id("relationship", f"{link['relation']} {mine} {link['other']}"),
                created=created, modified=created, created_by_ref=PRODUCER.id,
                relationship_type=kind, description=note,
                source_ref=_id("incident", mine), target_ref=_id("incident", link["other"]),
            )
        )  # fmt: skip
    return stix2.Bundle(objects=objects, id=_id("bundle", f"export {len(exported)}"))


def write_stix(incidents: Iterable[ExportedIncident], out: TextIO) -> int:
    """Write the bundle as JSON; return how many incidents it holds."""
    made = bundle(incidents)
    out.write(made.serialize(pretty=False, ensure_ascii=False))
    out.write("\n")
    return sum(1 for o in made.objects if o.type == "incident")
