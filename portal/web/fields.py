"""The report form's fields: names, kinds, choices and which categories they serve.

Field ``name``s are a stable interface (documented in ``portal/web/FIELDS.md``):
the browser builds the report JSON from them, the no-JavaScript path builds
the same JSON on the server, and the reviewer tool reads it. Choices follow
../shared/DOMAIN.md (IMO MSC.1/Circ.1334, BMP5/UKMTO/MDAT-GoG, IMB PRC).

This module is the table, data only; ``field_rules.py`` words the messages
and builds the rules JSON from it, and ``attachment_limits.py`` sizes the
attachments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from incident_db.taxonomy import VOCABULARIES


class Kind(Enum):
    """How a field is entered and validated."""

    CHOICE = "choice"  # one value from ``choices``
    MULTI = "multi"  # any values from ``choices``
    TEXT = "text"  # one line
    LONG_TEXT = "long_text"  # the narrative
    COUNT = "count"  # a whole number 0..9999
    COORDINATE = "coordinate"  # decimal degrees, or degrees and minutes (portal/web/position.py)
    LOCAL_TIME = "local_time"  # YYYY-MM-DDTHH:MM
    UTC_OFFSET = "utc_offset"  # ±HH:MM


def _vocabulary(record_field: str) -> tuple[tuple[str, str], ...]:
    """(value, label) pairs of a choice field, from the one incident vocabulary.

    The form offers exactly what the shared database accepts
    (``incident_db/taxonomy.py``, which imports nothing but the standard
    library), so a reporter's choice passes unchanged to the database.
    """
    return tuple(VOCABULARIES[record_field].items())


CATEGORIES = _vocabulary("category")
ATTACK = ("piracy-or-armed-robbery", "suspicious-approach", "vessel-theft",
          "terrorism-or-militant-activity")  # fmt: skip
ALL = tuple(value for value, _ in CATEGORIES)
UTC_OFFSETS = tuple(
    (f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}",) * 2
    for m in range(-12 * 60, 14 * 60 + 1, 15)
    if m % 60 in (0, 30) or m in (345, 525, 765, -570)  # the quarter-hour zones in use
)


@dataclass(frozen=True)
class Field:
    """One form field."""

    name: str
    label: str
    kind: Kind
    section: str
    categories: tuple[str, ...] = ALL
    choices: tuple[tuple[str, str], ...] = ()
    max_length: int = 200
    help: str = ""
    required: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    #: what messages call the field, when the label is too long for that
    short: str = ""

    @property
    def name_in_messages(self) -> str:
        """The words a message about this field starts with."""
        return self.short or self.label


FIELDS: tuple[Field, ...] = (
    Field(
        "category", "What kind of incident?", Kind.CHOICE, "what", choices=CATEGORIES, required=True
    ),
    Field(
        "report_type",
        "Report type",
        Kind.CHOICE,
        "what",
        choices=_vocabulary("report_type"),
    ),
    Field("incident_local_time", "When (local date and time)", Kind.LOCAL_TIME, "when"),
    Field(
        "incident_utc_offset",
        "Local time is UTC",
        Kind.UTC_OFFSET,
        "when",
        choices=UTC_OFFSETS,
        help="The offset of the local time you gave, e.g. +01:00.",
    ),
    Field("place_name", "Port, anchorage, berth or terminal", Kind.TEXT, "where"),
    Field(
        "location_type",
        "Type of location",
        Kind.CHOICE,
        "where",
        choices=_vocabulary("location_type"),
    ),
    Field(
        "latitude",
        "Latitude: degrees and minutes like 22°16.2'N or 22 16.2N, or decimal degrees like 22.27",
        Kind.COORDINATE,
        "where",
        help=(
            "Optional. Spaces work instead of ° and ', like 22 16.2N. You may type the whole "
            "position here, like 22°16.2'N 091°48.5'E or 22 16.2N 091 48.5E."
        ),
        extra={"min": "-90", "max": "90", "example": "22°16.2'N or 22 16.2N"},
        short="Latitude",
    ),
    Field(
        "longitude",
        "Longitude: degrees and minutes like 091°48.5'E or 091 48.5E, or decimal degrees "
        "like 91.8083",
        Kind.COORDINATE,
        "where",
        help=(
            "Optional. Spaces work instead of ° and ', like 091 48.5E. West is W, or a minus "
            "sign in decimal degrees."
        ),
        extra={"min": "-180", "max": "180", "example": "091°48.5'E or 091 48.5E"},
        short="Longitude",
    ),
    Field(
        "vessel_status",
        "The ship was",
        Kind.CHOICE,
        "where",
        choices=_vocabulary("vessel_status"),
    ),
    Field(
        "vessel_type",
        "Type of ship (never its name here)",
        Kind.CHOICE,
        "where",
        choices=_vocabulary("vessel_type"),
    ),
    Field(
        "incident_type",
        "What happened",
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("incident_type"),
    ),
    Field(
        "perpetrators_min",
        "Number of perpetrators, at least",
        Kind.COUNT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "perpetrators_max",
        "Number of perpetrators, at most",
        Kind.COUNT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "weapons",
        "Weapons seen",
        Kind.MULTI,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("weapons"),
    ),
    Field(
        "boarding_method",
        "How they boarded",
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("boarding_method"),
    ),
    Field(
        "boarding_point",
        "Where they boarded or what they targeted",
        Kind.MULTI,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("boarding_points"),
    ),
    Field(
        "stolen",
        "What was stolen",
        Kind.MULTI,
        "attack",
        categories=(*ATTACK, "cargo-crime-theft-tampering", "insider-threat"),
        choices=_vocabulary("stolen"),
    ),
    *(
        Field(f"crew_{slug}", f"Crew {label}", Kind.COUNT, "crew", categories=ATTACK)
        for slug, label in (
            ("threatened", "threatened"),
            ("tied_up", "tied up"),
            ("assaulted", "assaulted"),
            ("injured", "injured"),
            ("hostage", "taken hostage"),
            ("kidnapped", "kidnapped"),
            ("killed", "killed"),
            ("missing", "missing"),
        )
    ),
    Field(
        "actions_taken",
        "Actions taken",
        Kind.MULTI,
        "crew",
        categories=ATTACK,
        choices=_vocabulary("actions_taken"),
    ),
    Field(
        "suspect_craft_count", "Number of suspect craft", Kind.COUNT, "attack", categories=ATTACK
    ),
    Field(
        "suspect_craft_type",
        "Type of suspect craft",
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("suspect_craft.type"),
    ),
    Field(
        "suspect_craft_description",
        "Suspect craft: colour, engines, markings",
        Kind.TEXT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "outcome",
        "Outcome",
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("outcome"),
    ),
    Field(
        "reported_to",
        "Also reported to",
        Kind.MULTI,
        "what",
        choices=_vocabulary("reported_to"),
    ),
    Field(
        "stowaway_count", "Number of stowaways", Kind.COUNT, "stowaway", categories=("stowaways",)
    ),
    Field(
        "stowaway_embarkation_port",
        "Port where they embarked",
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "stowaway_embarkation_berth",
        "Berth or terminal where they embarked",
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "stowaway_hiding_place",
        "Where they hid",
        Kind.CHOICE,
        "stowaway",
        categories=("stowaways",),
        choices=_vocabulary("stowaways.hiding_place"),
    ),
    Field(
        "stowaway_how_found",
        "How they were found",
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "cyber_systems",
        "Systems affected",
        Kind.MULTI,
        "cyber",
        categories=("cyber-incident",),
        choices=_vocabulary("cyber.systems"),
    ),
    Field(
        "cyber_vector",
        "How it came in",
        Kind.CHOICE,
        "cyber",
        categories=("cyber-incident",),
        choices=_vocabulary("cyber.vector"),
    ),
    Field(
        "cyber_impact",
        "Impact on the ship's operation",
        Kind.TEXT,
        "cyber",
        categories=("cyber-incident",),
        max_length=1000,
    ),
    Field(
        "narrative",
        "What happened, in your own words",
        Kind.LONG_TEXT,
        "narrative",
        max_length=20000,
        help="Any language is fine. Leave out names if you can.",
    ),
    *(
        Field(f"identity_{slug}", label, Kind.TEXT, "identity")
        for slug, label in (
            ("company", "Company"),
            ("vessel", "Ship's name"),
            ("imo", "IMO number"),
            ("call_sign", "Call sign"),
            ("mmsi", "MMSI"),
            ("flag", "Flag"),
            ("contact", "How to contact you (optional)"),
        )
    ),
)

BY_NAME = {f.name: f for f in FIELDS}
SECTIONS = (
    ("what", "The incident"),
    ("when", "When"),
    ("where", "Where, and the ship"),
    ("attack", "The attack or approach"),
    ("crew", "The crew"),
    ("stowaway", "Stowaways"),
    ("cyber", "Cyber incident"),
    ("narrative", "Your account"),
    ("identity", "Identity (optional, reviewers only)"),
)
