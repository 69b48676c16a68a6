"""MISP events of incidents, for the MISP feed (``incident_db/MISP.md``).

One incident becomes one MISP event built with PyMISP: its TLP, sector and
taxonomy tags, an ``incident`` and a ``geolocation`` object, and plain
attributes. The event uuid is UUIDv5 of the incident id and every object
and attribute uuid is derived from the event's, so a second export updates
the partner's events in place. Positions are written with the incident's
own decimals, never more. Writing the feed directory is
:mod:`incident_db.exports.misp`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymisp import MISPEvent, MISPObject, MISPOrganisation, MISPTag  # type: ignore[import-untyped]
from pymisp.abstract import resources_path  # type: ignore[import-untyped]

from incident_db import taxonomy, tlp
from incident_db.exports import ExportedIncident

#: namespace of the event uuids: uuid5(NAMESPACE, incident id)
NAMESPACE = uuid.UUID("0c6f4b52-93d1-4e55-9b0a-5d7e28c4a1f3")
#: the creator organisation of every event
ORGANISATION = {"name": "cso-portal", "uuid": "3f2b8c1e-6d4a-5b7f-9e0c-2a1d4c6b8e90"}
#: our taxonomy (``incident_db/misp/cso-maritime/machinetag.json``)
TAXONOMY = "cso-maritime"
TAXONOMY_FILE = Path(__file__).resolve().parents[1] / "misp" / TAXONOMY / "machinetag.json"
TAXONOMY_VERSION = 1
#: the MISP galaxy cluster of every event
SECTOR = 'misp-galaxy:sector="Maritime"'

#: MISP distribution by TLP level: 0 your organisation only, 1 this community only,
#: 2 connected communities, 3 all communities
DISTRIBUTION = {"clear": 3, "green": 2, "amber": 1, "amber+strict": 0}
#: MISP threat levels and analysis states (the numbers MISP uses)
HIGH, MEDIUM, LOW, UNDEFINED = 1, 2, 3, 4
INITIAL, ONGOING, COMPLETED = 0, 1, 2
_HIGH_TYPES = frozenset({"hijacked", "fired-upon", "explosion", "attack-weapons-discharged"})
_MEDIUM_TYPES = frozenset({"boarded", "illegal-boarding-citadel", "detained"})
_HIGH_CREW = ("crew_injured", "crew_hostage", "crew_kidnapped", "crew_killed", "crew_missing")
_MEDIUM_CREW = ("crew_threatened", "crew_tied_up", "crew_assaulted")
_HEAVY_WEAPONS = frozenset({"guns", "rpg-or-explosives"})
#: the STIX Incident Core determination of an outcome (the ``incident`` object template)
DETERMINATION = {
    taxonomy.SUCCESSFUL: "successful-attempt",
    "attempted": "failed-attempt",
    "foiled-by-crew": "blocked",
}
#: metres per degree of latitude, for the accuracy radius of a position
METRES_PER_DEGREE = 111_320
#: decimals of a position whose precision is not recorded (about 11 m), and the most ever written
DEFAULT_DECIMALS = 4
MAX_DECIMALS = 8
#: event attributes: export field → (MISP category, MISP type, vocabulary field)
PLAIN_ATTRIBUTES = (
    ("place", "Targeting data", "target-location", None),
    ("location_type", "Other", "text", "location_type"),
    ("vessel_type", "Other", "text", "vessel_type"),
    ("vessel_status", "Other", "text", "vessel_status"),
    ("report_type", "Other", "text", "report_type"),
    ("boarding_method", "Other", "text", "boarding_method"),
    ("outcome", "Other", "text", "outcome"),
    ("suspect_craft_type", "Other", "text", "suspect_craft.type"),
)  # fmt: skip
LIST_ATTRIBUTES = (("weapons", "weapons"), ("stolen", "stolen"))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _template(name: str) -> dict[str, Any]:
    path = Path(resources_path, "misp-objects", "objects", name, "definition.json")
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = json.load(handle)
    return template


#: the object templates, read once (PyMISP would look them up for every object)
TEMPLATES = {name: _template(name) for name in ("incident", "geolocation")}


_TAGS: dict[str, MISPTag] = {}


def _tag(name: str) -> MISPTag:
    """The MISPTag called ``name``, made once: events share them (they are never changed)."""
    tag = _TAGS.get(name)
    if tag is None:
        tag = _TAGS[name] = MISPTag()
        tag.from_dict(name=name)
    return tag


def event_uuid(incident_id: str) -> str:
    """The stable MISP event uuid of an incident."""
    return str(uuid.uuid5(NAMESPACE, incident_id))


def machinetag() -> dict[str, Any]:
    """The cso-maritime taxonomy in the MISP taxonomy format (our slugs as values)."""
    predicates = (
        ("category", "Category", taxonomy.CATEGORIES, "What kind of maritime security incident."),
        ("incident-type", "Incident type", taxonomy.INCIDENT_TYPES, "What happened to the ship."),
        ("outcome", "Outcome", taxonomy.OUTCOMES, "How the attempt ended for the perpetrators."),
    )
    return {
        "namespace": TAXONOMY,
        "expanded": "cso-portal maritime incidents",
        "description": "Category, incident type and outcome of maritime security incidents "
        "shared by the cso-portal incident database (the cso-incident/v1 vocabulary).",
        "version": TAXONOMY_VERSION,
        "refs": ["incident_db/MISP.md in the cso-portal source"],
        "predicates": [
            {"value": value, "expanded": expanded, "description": description, "exclusive": True}
            for value, expanded, _, description in predicates
        ],
        "values": [
            {
                "predicate": value,
                "entry": [{"value": s, "expanded": label} for s, label in vocabulary.items()],
            }
            for value, _, vocabulary, _ in predicates
        ],
    }


def _plain(text: str, limit: int) -> str:
    """One line without control characters, at most ``limit`` characters."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _epoch(moment: dt.datetime) -> int:
    """Seconds since 1970 of a naive UTC time (the database's convention)."""
    return calendar.timegm(moment.utctimetuple())


def title(values: dict[str, Any]) -> str:
    """The event's ``info``: what happened, and where."""
    what = taxonomy.label("incident_type", values["incident_type"] or "") or taxonomy.label(
        "category", values["category"]
    )
    where = values["place"] or _position_text(values) or "position unknown"
    return _plain(f"{what}: {where}", 200)


def threat_level(values: dict[str, Any]) -> int:
    """High for violence against the crew, weapons discharged or a ship taken; see MISP.md."""
    kind = values["incident_type"]
    if kind in _HIGH_TYPES or any(values[c] for c in _HIGH_CREW):
        return HIGH
    if (
        kind in _MEDIUM_TYPES
        or values["outcome"] == taxonomy.SUCCESSFUL
        or any(values[c] for c in _MEDIUM_CREW)
        or _HEAVY_WEAPONS.intersection(values["weapons"])
    ):
        return MEDIUM
    return LOW if kind or values["outcome"] else UNDEFINED


def analysis(values: dict[str, Any]) -> int:
    """Completed for a reviewer's final report, ongoing for other reviewer reports, else initial."""
    if values["verification_status"] != "confirmed":
        return INITIAL
    return COMPLETED if values["report_type"] == "final" else ONGOING


def _decimals(values: dict[str, Any]) -> int:
    decimals = values["position_decimals"]
    return DEFAULT_DECIMALS if decimals is None else max(0, min(int(decimals), MAX_DECIMALS))


def _position_text(values: dict[str, Any]) -> str | None:
    if values["latitude"] is None or values["longitude"] is None:
        return None
    places = _decimals(values)
    return f"{values['latitude']:.{places}f}, {values['longitude']:.{places}f}"


def local_time_text(values: dict[str, Any]) -> str | None:
    """The local date and time as reported, as precise as known: ``2024-03-08 23:50 UTC+06:00``."""
    if values["local_date"] is None:
        return None
    parts = [values["local_date"]]
    if values["local_time"]:
        parts.append(values["local_time"])
    if values["utc_offset"]:
        parts.append("UTC" + values["utc_offset"])
    return " ".join(parts)


class _Builder:
    """One incident's MISP event; every uuid derived from the event's."""

    def __init__(self, incident: ExportedIncident) -> None:
        self.values = incident.values()
        row = incident.row
        self.uuid = event_uuid(row.id)
        self.namespace = uuid.UUID(self.uuid)
        self.timestamp = _epoch(row.version_at)
        self.event = MISPEvent()
        self.added_day = row.added_at.date()

    def _uuid(self, name: str) -> str:
        return str(uuid.uuid5(self.namespace, name))

    def build(self, level: str) -> MISPEvent:
        """The event, with its tags, objects and attributes."""
        values, event = self.values, self.event
        event.uuid = self.uuid
        event.info = title(values)
        local = values["local_date"]
        event.set_date(dt.date.fromisoformat(local) if local else self.added_day)
        event.threat_level_id = threat_level(values)
        event.analysis = analysis(values)
        event.distribution = DISTRIBUTION[level]
        event.published = True
        event.timestamp = self.timestamp
        event.publish_timestamp = self.timestamp
        organisation = MISPOrganisation()
        organisation.from_dict(**ORGANISATION)
        event.Orgc = organisation
        event.tags = [_tag(name) for name in self._tags(level)]
        self._incident_object()
        self._geolocation_object()
        self._attributes()
        return event

    def _tags(self, level: str) -> Iterator[str]:
        values = self.values
        yield tlp.MISP_TAGS[level]
        yield SECTOR
        grade = values["grade"]
        if grade:
            yield f'admiralty-scale:source-reliability="{grade[0].lower()}"'
            yield f'admiralty-scale:information-credibility="{grade[1]}"'
        for field, predicate in (
            ("category", "category"),
            ("incident_type", "incident-type"),
            ("outcome", "outcome"),
        ):
            if values[field]:
                yield f'{TAXONOMY}:{predicate}="{values[field]}"'

    def _object(self, name: str) -> MISPObject:
        obj = MISPObject(name, misp_objects_template_custom=TEMPLATES[name])
        obj.uuid = self._uuid("object " + name)
        obj.timestamp = self.timestamp
        obj.distribution = 5  # as the event
        return obj

    def _add(self, obj: MISPObject, relation: str, value: str) -> None:
        obj.add_attribute(relation, value, uuid=self._uuid(f"{obj.name} {relation} {value}"),
                          timestamp=self.timestamp, distribution=5)  # fmt: skip

    def _incident_object(self) -> None:
        values = self.values
        obj = self._object("incident")
        self._add(obj, "name", self.event.info)
        if values["narrative"]:
            self._add(obj, "description", values["narrative"])
        self._add(obj, "incident_type", taxonomy.label("category", values["category"]))
        if values["incident_type"]:
            self._add(
                obj, "incident_type", taxonomy.label("incident_type", values["incident_type"])
            )
        self._add(obj, "determination", DETERMINATION.get(values["outcome"], "suspected"))
        confirmed = values["verification_status"] == "confirmed"
        self._add(obj, "investigation_status", "closed" if confirmed else "new")
        self.event.add_object(obj)

    def _geolocation_object(self) -> None:
        values = self.values
        if values["latitude"] is None or values["longitude"] is None:
            return
        places = _decimals(values)
        obj = self._object("geolocation")
        self._add(obj, "latitude", f"{values['latitude']:.{places}f}")
        self._add(obj, "longitude", f"{values['longitude']:.{places}f}")
        radius_km = METRES_PER_DEGREE * 10.0**-places / 2 / 1000
        self._add(obj, "accuracy-radius", f"{radius_km:.3g}")
        self._add(obj, "spacial-reference", "WGS84 EPSG:4326")
        self.event.add_object(obj)

    def _attribute(self, category: str, kind: str, value: str, field: str, correlate: bool) -> None:
        self.event.add_attribute(
            kind,
            value,
            category=category,
            comment=field,
            to_ids=False,
            disable_correlation=not correlate,
            distribution=5,
            uuid=self._uuid(f"{field} {value}"),
            timestamp=self.timestamp,
        )

    def _attributes(self) -> None:
        values = self.values
        for field, category, kind, vocabulary in PLAIN_ATTRIBUTES:
            value = values[field]
            if value:
                text = taxonomy.label(vocabulary, value) if vocabulary else value
                self._attribute(category, kind, _plain(text, 200), field, vocabulary is None)
        for field, vocabulary in LIST_ATTRIBUTES:
            for value in values[field]:
                self._attribute("Other", "text", taxonomy.label(vocabulary, value), field, False)
        low, high = values["perpetrators_min"], values["perpetrators_max"]
        if low is not None:
            count = str(low) if high in (None, low) else f"{low}-{high}"
            self._attribute("Other", "text", count, "perpetrators", False)
        for key, label in taxonomy.CREW.items():
            count = values["crew_" + key]
            if count:
                self._attribute("Other", "text", f"{count} {label}", "crew_" + key, False)
        local = local_time_text(values)
        if local:
            self._attribute("Other", "text", local, "local_time", False)
        if values["occurred_utc"]:
            # known to the minute only when the local time and its offset were reported
            self._attribute("Other", "datetime", values["occurred_utc"], "occurred_utc", False)


def build_event(incident: ExportedIncident, clearance: str) -> MISPEvent | None:
    """The MISP event of ``incident``, or None if ``clearance`` does not allow it (RED never)."""
    level = incident.row.tlp
    if not tlp.allows(clearance, level):
        return None
    return _Builder(incident).build(level)
