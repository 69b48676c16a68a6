"""The incident record, cso-incident/v1: what a reviewer forwards (``RECORD.md``).

Standard library only (and crypto/characters.py, which is too): the reviewer
tool imports this module to build and pre-check records on an air-gapped
workstation, so it must not pull in the database or chart libraries.
:func:`parse_record` is the only way to build an :class:`IncidentRecord`
from JSON; it refuses unknown members, and in
particular any member that would identify a ship, company or person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crypto.characters import JOINERS, unsafe
from incident_db.errors import RecordError
from incident_db.taxonomy import CREW, GRADES, LINK_RELATIONS, VOCABULARIES

SCHEMA = "cso-incident/v1"
MAX_COUNT = 9999
MAX_LINE_TEXT = 200
MAX_LONG_TEXT = 20_000
MAX_IMPACT = 1000
#: lower-case member names that would carry a ship's, company's or person's identity
IDENTITY_NAMES = frozenset(
    {"vessel", "vessel_name", "ship", "ship_name", "name", "imo", "imo_number", "call_sign",
     "callsign", "mmsi", "flag", "company", "owner", "operator", "contact", "email", "phone",
     "master", "crew_names", "reporter"}
)  # fmt: skip
_ID = re.compile(r"[0-9a-f]{32}")
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")
_GRADES = frozenset(GRADES)


@dataclass(frozen=True)
class Position:
    """A position in decimal degrees, already coarsened to ``decimals`` places."""

    lat: float
    lon: float
    decimals: int


@dataclass(frozen=True)
class SuspectCraft:
    """The craft the perpetrators used."""

    count: int | None = None
    type: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Stowaways:
    """Stowaway details (IMO FAL.2/Circ.50)."""

    count: int | None = None
    embarkation_port: str | None = None
    embarkation_berth: str | None = None
    hiding_place: str | None = None
    how_found: str | None = None


@dataclass(frozen=True)
class Cyber:
    """Cyber incident details."""

    systems: tuple[str, ...] = ()
    vector: str | None = None
    impact: str | None = None


@dataclass(frozen=True)
class Verification:
    """How the reviewer rated the report: always confirmed, with an Admiralty grade."""

    status: str
    grade: str


@dataclass(frozen=True)
class Link:
    """A reviewer's statement that this incident relates to another one."""

    relation: str
    id: str


@dataclass(frozen=True)
class IncidentRecord:
    """One anonymised incident. Build from JSON with :func:`parse_record`.

    ``verification`` is None only for rows of an external feed, which are
    unverified and are never carried in a reviewer batch.
    """

    id: str
    category: str
    verification: Verification | None
    report_type: str | None = None
    incident_type: str | None = None
    occurred_local: datetime | None = None  # naive: the wall-clock time where it happened
    utc_offset_minutes: int | None = None
    position: Position | None = None
    place: str | None = None
    location_type: str | None = None
    vessel_type: str | None = None
    vessel_status: str | None = None
    perpetrators_min: int | None = None
    perpetrators_max: int | None = None
    weapons: tuple[str, ...] = ()
    boarding_method: str | None = None
    boarding_points: tuple[str, ...] = ()
    stolen: tuple[str, ...] = ()
    crew: Mapping[str, int] = field(default_factory=dict)
    actions_taken: tuple[str, ...] = ()
    outcome: str | None = None
    reported_to: tuple[str, ...] = ()
    suspect_craft: SuspectCraft | None = None
    stowaways: Stowaways | None = None
    cyber: Cyber | None = None
    narrative: str | None = None
    links: tuple[Link, ...] = ()

    @property
    def occurred_utc(self) -> datetime | None:
        """The UTC time (naive), when both local time and offset are known."""
        if self.occurred_local is None or self.utc_offset_minutes is None:
            return None
        return self.occurred_local - timedelta(minutes=self.utc_offset_minutes)

    def to_json(self) -> dict[str, Any]:
        """The record as cso-incident/v1 JSON; absent values and empty lists are left out."""
        out: dict[str, Any] = {"schema": SCHEMA, "id": self.id, "category": self.category}
        for name in ("report_type", "incident_type"):
            _put(out, name, getattr(self, name))
        if self.occurred_local is not None and self.utc_offset_minutes is not None:
            out["occurred_local"] = self.occurred_local.strftime("%Y-%m-%dT%H:%M")
            out["utc_offset"] = format_offset(self.utc_offset_minutes)
        if self.position is not None:
            p = self.position
            out["position"] = {"lat": p.lat, "lon": p.lon, "decimals": p.decimals}
        for name in ("place", "location_type", "vessel_type", "vessel_status", "perpetrators_min",
                     "perpetrators_max", "weapons", "boarding_method", "boarding_points",
                     "stolen", "actions_taken", "outcome", "reported_to"):  # fmt: skip
            _put(out, name, getattr(self, name))
        if self.crew:
            out["crew"] = dict(self.crew)
        for name in ("suspect_craft", "stowaways", "cyber"):
            part = getattr(self, name)
            if part is not None:
                members: dict[str, Any] = {}
                for key, value in vars(part).items():
                    _put(members, key, value)
                out[name] = members
        _put(out, "narrative", self.narrative)
        if self.verification is not None:
            out["verification"] = {
                "status": self.verification.status,
                "grade": self.verification.grade,
            }
        if self.links:
            out["links"] = [{"relation": k.relation, "id": k.id} for k in self.links]
        return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == ():
        return
    out[name] = list(value) if isinstance(value, tuple) else value


def format_offset(minutes: int) -> str:
    """``+05:30`` for 330 minutes."""
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- parsing -----------------------------------------------------------------


# The checks below run a million times in a large ingest: plain sets and
# exact type tests, no per-call allocation beyond what the result needs.


def _slug(name: str) -> Callable[[Any], str]:
    choices = frozenset(VOCABULARIES[name])

    def check(value: Any) -> str:
        if type(value) is not str or value not in choices:
            raise RecordError(f"{name}: {value!r} is not one of its values")
        return value

    return check


def _slugs(name: str) -> Callable[[Any], tuple[str, ...]]:
    choices = frozenset(VOCABULARIES[name])

    def check(value: Any) -> tuple[str, ...]:
        if type(value) is not list:
            raise RecordError(f"{name}: must be a list")
        if not all(type(item) is str for item in value) or not choices.issuperset(value):
            bad = next(v for v in value if type(v) is not str or v not in choices)
            raise RecordError(f"{name}: {bad!r} is not one of its values")
        if len(set(value)) != len(value):
            raise RecordError(f"{name}: a value is repeated")
        return tuple(value)

    return check


def _count(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int or not 0 <= value <= MAX_COUNT:
            raise RecordError(f"{name}: must be a whole number from 0 to {MAX_COUNT}")
        return value

    return check


def _text(
    name: str, limit: int = MAX_LINE_TEXT, *, multiline: bool = False
) -> Callable[[Any], str]:
    # crypto/characters.py: controls, format, private-use, unassigned and invisible
    # characters act on a reader or hide text; only the joiners (and newline and tab
    # where the text has lines) are kept
    allowed = JOINERS + ("\n\t" if multiline else "")

    def check(value: Any) -> str:
        if type(value) is not str or not value or value.isspace():
            raise RecordError(f"{name}: must be a non-empty string")
        if len(value) > limit:
            raise RecordError(f"{name}: longer than {limit} characters")
        if any(unsafe(c, allowed) for c in value):
            raise RecordError(f"{name}: contains control or invisible characters")
        return value

    return check


def _object(name: str, value: Any, allowed: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """Check a nested object's members; return them parsed."""
    if not isinstance(value, dict) or not value:
        raise RecordError(f"{name}: must be a non-empty object")
    parsed = {}
    for key, member in value.items():
        check = allowed.get(key)
        if check is None:
            raise RecordError(f"{name}.{key}: unknown field")
        parsed[key] = check(member)
    return parsed


def _position(value: Any) -> Position:
    if not isinstance(value, dict) or set(value) != {"lat", "lon", "decimals"}:
        raise RecordError("position: must have exactly lat, lon and decimals")
    decimals = value["decimals"]
    if type(decimals) is not int or not 0 <= decimals <= 6:
        raise RecordError("position.decimals: must be a whole number from 0 to 6")
    coordinates = []
    for name, bound in (("lat", 90.0), ("lon", 180.0)):
        number = value[name]
        if type(number) not in (int, float) or not -bound <= number <= bound:
            raise RecordError(f"position.{name}: must be a number from -{bound:g} to {bound:g}")
        if round(number, decimals) != number:  # the reviewer's coarsening must hold
            raise RecordError(f"position.{name}: has more than {decimals} decimals")
        coordinates.append(float(number))
    return Position(coordinates[0], coordinates[1], decimals)


_CREW = {key: _count(f"crew.{key}") for key in CREW}


def _crew(value: Any) -> dict[str, int]:
    return _object("crew", value, _CREW)


def _verification(value: Any) -> Verification:
    if not isinstance(value, dict) or set(value) != {"status", "grade"}:
        raise RecordError("verification: must have exactly status and grade")
    if value["status"] != "confirmed":
        raise RecordError("verification.status: a batch carries only confirmed incidents")
    grade = value["grade"]
    if not isinstance(grade, str) or grade not in _GRADES:  # a list is not hashable
        raise RecordError("verification.grade: must be an Admiralty grade, A1 to F6")
    return Verification("confirmed", grade)


def _links(value: Any) -> tuple[Link, ...]:
    if not isinstance(value, list):
        raise RecordError("links: must be a list")
    links = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"relation", "id"}:
            raise RecordError("links: each link has exactly relation and id")
        relation = item["relation"]
        if not isinstance(relation, str) or relation not in LINK_RELATIONS:
            raise RecordError(f"links: relation {relation!r} is not one of its values")
        if not isinstance(item["id"], str) or not _ID.fullmatch(item["id"]):
            raise RecordError("links: id must be 32 lower-case hexadecimal digits")
        links.append(Link(relation, item["id"]))
    if len(set(links)) != len(links):
        raise RecordError("links: a link is repeated")
    return tuple(links)


_SUSPECT_CRAFT = {
    "count": _count("suspect_craft.count"),
    "type": _slug("suspect_craft.type"),
    "description": _text("suspect_craft.description"),
}
_STOWAWAYS = {
    "count": _count("stowaways.count"),
    "embarkation_port": _text("stowaways.embarkation_port"),
    "embarkation_berth": _text("stowaways.embarkation_berth"),
    "hiding_place": _slug("stowaways.hiding_place"),
    "how_found": _text("stowaways.how_found"),
}
_CYBER = {
    "systems": _slugs("cyber.systems"),
    "vector": _slug("cyber.vector"),
    "impact": _text("cyber.impact", MAX_IMPACT, multiline=True),
}
#: top-level member → parser; the ones parsed together are handled in parse_record
_FIELDS: dict[str, Callable[[Any], Any]] = {
    "category": _slug("category"),
    "report_type": _slug("report_type"),
    "incident_type": _slug("incident_type"),
    "position": _position,
    "place": _text("place"),
    "location_type": _slug("location_type"),
    "vessel_type": _slug("vessel_type"),
    "vessel_status": _slug("vessel_status"),
    "perpetrators_min": _count("perpetrators_min"),
    "perpetrators_max": _count("perpetrators_max"),
    "weapons": _slugs("weapons"),
    "boarding_method": _slug("boarding_method"),
    "boarding_points": _slugs("boarding_points"),
    "stolen": _slugs("stolen"),
    "crew": _crew,
    "actions_taken": _slugs("actions_taken"),
    "outcome": _slug("outcome"),
    "reported_to": _slugs("reported_to"),
    "suspect_craft": lambda v: SuspectCraft(**_object("suspect_craft", v, _SUSPECT_CRAFT)),
    "stowaways": lambda v: Stowaways(**_object("stowaways", v, _STOWAWAYS)),
    "cyber": lambda v: Cyber(**_object("cyber", v, _CYBER)),
    "narrative": _text("narrative", MAX_LONG_TEXT, multiline=True),
    "verification": _verification,
    "links": _links,
}
_TOGETHER = frozenset({"schema", "id", "occurred_local", "utc_offset"})


def _unknown(name: str) -> RecordError:
    lowered = name.lower()
    if lowered.startswith("identity") or lowered in IDENTITY_NAMES:
        return RecordError(
            f"{name}: refused: the shared database never holds a ship's, company's or "
            "person's identity"
        )
    return RecordError(f"{name}: unknown field")


def _when(obj: Mapping[str, Any]) -> tuple[datetime | None, int | None]:
    local, offset = obj.get("occurred_local"), obj.get("utc_offset")
    if local is None and offset is None:
        return None, None
    if local is None or offset is None:
        raise RecordError("occurred_local: give both occurred_local and utc_offset, or neither")
    try:
        if not isinstance(local, str) or not _LOCAL.fullmatch(local):
            raise ValueError
        # slicing is ten times faster than strptime, and the regex fixed the layout
        moment = datetime(
            int(local[:4]), int(local[5:7]), int(local[8:10]), int(local[11:13]), int(local[14:])
        )
    except ValueError:
        raise RecordError("occurred_local: must be a valid YYYY-MM-DDTHH:MM") from None
    match = _OFFSET.fullmatch(offset) if isinstance(offset, str) else None
    if match is None:
        raise RecordError("utc_offset: must be ±HH:MM")
    minutes = int(match[2]) * 60 + int(match[3])
    minutes = -minutes if match[1] == "-" else minutes
    if int(match[3]) % 15 or not -12 * 60 <= minutes <= 14 * 60:
        raise RecordError("utc_offset: must be from -12:00 to +14:00 in quarter hours")
    return moment, minutes


def parse_record(obj: Mapping[str, Any], *, unverified: bool = False) -> IncidentRecord:
    """Check one cso-incident/v1 object and build its record.

    Raises :class:`RecordError` naming the first offending field. With
    ``unverified`` (external feeds only) ``verification`` must be absent.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise RecordError("record: must be a JSON object")
    if obj.get("schema") != SCHEMA:
        raise RecordError(f"schema: must be {SCHEMA!r}")
    ident = obj.get("id")
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        raise RecordError("id: must be 32 lower-case hexadecimal digits")
    values: dict[str, Any] = {}
    for name, value in obj.items():
        check = _FIELDS.get(name)
        if check is not None:
            values[name] = check(value)
        elif name not in _TOGETHER:
            raise _unknown(name)
    if "category" not in values:
        raise RecordError("category: required")
    if unverified and "verification" in values:
        raise RecordError("verification: an external feed row cannot be verified")
    if not unverified and "verification" not in values:
        raise RecordError("verification: required (status confirmed and a grade)")
    low, high = values.get("perpetrators_min"), values.get("perpetrators_max")
    if low is not None and high is not None and low > high:
        raise RecordError("perpetrators_min: greater than perpetrators_max")
    if any(link.id == ident for link in values.get("links", ())):
        raise RecordError("links: an incident cannot link to itself")
    local, offset = _when(obj)
    values.setdefault("verification", None)
    return IncidentRecord(id=ident, occurred_local=local, utc_offset_minutes=offset, **values)
