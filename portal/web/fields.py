"""The report form's fields: names, kinds, choices and which categories they serve.

Field ``name``s are a stable interface (documented in ``portal/web/FIELDS.md``):
the browser builds the report JSON from them, the no-JavaScript path builds
the same JSON on the server, and the reviewer tool reads it. Choices follow
../shared/DOMAIN.md (IMO MSC.1/Circ.1334, BMP5/UKMTO/MDAT-GoG, IMB PRC).

This module is the table, data only; ``field_rules.py`` words the messages
and builds the rules JSON from it, and ``attachment_limits.py`` sizes the
attachments. Labels, help texts and section titles are lazy translations
(Flask-Babel): each is read in the page's language as it is drawn, and in
English outside a request (``scripts/fields_doc.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

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


#: words a reporter reads: a lazy translation (in the page's language once drawn), or plain
Words = str | LazyString


def _vocabulary(record_field: str) -> tuple[tuple[str, Words], ...]:
    """(value, label) pairs of a choice field, from the one incident vocabulary.

    The form offers exactly what the shared database accepts
    (``incident_db/taxonomy.py``, which imports nothing but the standard
    library), so a reporter's choice passes unchanged to the database. The
    value (the slug) never changes; the label is translated as it is drawn
    (the catalog template takes every vocabulary label, see ``i18n.py``).
    """
    return tuple((value, _l(label)) for value, label in VOCABULARIES[record_field].items())


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
    label: Words
    kind: Kind
    section: str
    categories: tuple[str, ...] = ALL
    choices: tuple[tuple[str, Words], ...] = ()
    max_length: int = 200
    help: Words = ""
    required: bool = False
    #: ``min`` and ``max`` are figures; ``example`` is words
    extra: dict[str, Words] = field(default_factory=dict)
    #: what messages call the field, when the label is too long for that
    short: Words = ""

    @property
    def for_every_category(self) -> bool:
        """Whether the field is asked whatever kind of incident is chosen."""
        return self.categories == ALL

    @property
    def name_in_messages(self) -> Words:
        """The words a message about this field starts with."""
        return self.short or self.label


FIELDS: tuple[Field, ...] = (
    Field(
        "category",
        _l("What kind of incident?"),
        Kind.CHOICE,
        "what",
        choices=CATEGORIES,
        required=True,
    ),
    Field(
        "report_type",
        _l("Report type"),
        Kind.CHOICE,
        "what",
        choices=_vocabulary("report_type"),
    ),
    Field("incident_local_time", _l("When (local date and time)"), Kind.LOCAL_TIME, "when"),
    Field(
        "incident_utc_offset",
        _l("Local time is UTC"),
        Kind.UTC_OFFSET,
        "when",
        choices=UTC_OFFSETS,
        help=_l("The offset of the local time you gave, e.g. +01:00."),
    ),
    Field("place_name", _l("Port, anchorage, berth or terminal"), Kind.TEXT, "where"),
    Field(
        "location_type",
        _l("Type of location"),
        Kind.CHOICE,
        "where",
        choices=_vocabulary("location_type"),
    ),
    Field(
        "latitude",
        _l(
            "Latitude: degrees and minutes like 22°16.2'N or 22 16.2N, or decimal degrees "
            "like 22.27"
        ),
        Kind.COORDINATE,
        "where",
        help=_l(
            "Optional. Spaces work instead of ° and ', like 22 16.2N. You may type the whole "
            "position here, like 22°16.2'N 091°48.5'E or 22 16.2N 091 48.5E."
        ),
        extra={"min": "-90", "max": "90", "example": _l("22°16.2'N or 22 16.2N")},
        short=_l("Latitude"),
    ),
    Field(
        "longitude",
        _l(
            "Longitude: degrees and minutes like 091°48.5'E or 091 48.5E, or decimal degrees "
            "like 91.8083"
        ),
        Kind.COORDINATE,
        "where",
        help=_l(
            "Optional. Spaces work instead of ° and ', like 091 48.5E. West is W, or a minus "
            "sign in decimal degrees."
        ),
        extra={"min": "-180", "max": "180", "example": _l("091°48.5'E or 091 48.5E")},
        short=_l("Longitude"),
    ),
    Field(
        "vessel_status",
        _l("The ship was"),
        Kind.CHOICE,
        "where",
        choices=_vocabulary("vessel_status"),
    ),
    Field(
        "vessel_type",
        _l("Type of ship (never its name here)"),
        Kind.CHOICE,
        "where",
        choices=_vocabulary("vessel_type"),
    ),
    Field(
        "incident_type",
        _l("What happened"),
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("incident_type"),
    ),
    Field(
        "perpetrators_min",
        _l("Number of perpetrators, at least"),
        Kind.COUNT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "perpetrators_max",
        _l("Number of perpetrators, at most"),
        Kind.COUNT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "weapons",
        _l("Weapons seen"),
        Kind.MULTI,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("weapons"),
    ),
    Field(
        "boarding_method",
        _l("How they boarded"),
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("boarding_method"),
    ),
    Field(
        "boarding_point",
        _l("Where they boarded or what they targeted"),
        Kind.MULTI,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("boarding_points"),
    ),
    Field(
        "stolen",
        _l("What was stolen"),
        Kind.MULTI,
        "attack",
        categories=(*ATTACK, "cargo-crime-theft-tampering", "insider-threat"),
        choices=_vocabulary("stolen"),
    ),
    *(
        Field(f"crew_{slug}", label, Kind.COUNT, "crew", categories=ATTACK)
        for slug, label in (
            ("threatened", _l("Crew threatened")),
            ("tied_up", _l("Crew tied up")),
            ("assaulted", _l("Crew assaulted")),
            ("injured", _l("Crew injured")),
            ("hostage", _l("Crew taken hostage")),
            ("kidnapped", _l("Crew kidnapped")),
            ("killed", _l("Crew killed")),
            ("missing", _l("Crew missing")),
        )
    ),
    Field(
        "actions_taken",
        _l("Actions taken"),
        Kind.MULTI,
        "crew",
        categories=ATTACK,
        choices=_vocabulary("actions_taken"),
    ),
    Field(
        "suspect_craft_count",
        _l("Number of suspect craft"),
        Kind.COUNT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "suspect_craft_type",
        _l("Type of suspect craft"),
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("suspect_craft.type"),
    ),
    Field(
        "suspect_craft_description",
        _l("Suspect craft: colour, engines, markings"),
        Kind.TEXT,
        "attack",
        categories=ATTACK,
    ),
    Field(
        "outcome",
        _l("Outcome"),
        Kind.CHOICE,
        "attack",
        categories=ATTACK,
        choices=_vocabulary("outcome"),
    ),
    Field(
        "reported_to",
        _l("Also reported to"),
        Kind.MULTI,
        "what",
        choices=_vocabulary("reported_to"),
    ),
    Field(
        "stowaway_count",
        _l("Number of stowaways"),
        Kind.COUNT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "stowaway_embarkation_port",
        _l("Port where they embarked"),
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "stowaway_embarkation_berth",
        _l("Berth or terminal where they embarked"),
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "stowaway_hiding_place",
        _l("Where they hid"),
        Kind.CHOICE,
        "stowaway",
        categories=("stowaways",),
        choices=_vocabulary("stowaways.hiding_place"),
    ),
    Field(
        "stowaway_how_found",
        _l("How they were found"),
        Kind.TEXT,
        "stowaway",
        categories=("stowaways",),
    ),
    Field(
        "cyber_systems",
        _l("Systems affected"),
        Kind.MULTI,
        "cyber",
        categories=("cyber-incident",),
        choices=_vocabulary("cyber.systems"),
    ),
    Field(
        "cyber_vector",
        _l("How it came in"),
        Kind.CHOICE,
        "cyber",
        categories=("cyber-incident",),
        choices=_vocabulary("cyber.vector"),
    ),
    Field(
        "cyber_impact",
        _l("Impact on the ship's operation"),
        Kind.TEXT,
        "cyber",
        categories=("cyber-incident",),
        max_length=1000,
    ),
    Field(
        "narrative",
        _l("What happened, in your own words"),
        Kind.LONG_TEXT,
        "narrative",
        max_length=20000,
        help=_l("Any language is fine. Leave out names if you can."),
    ),
    *(
        Field(f"identity_{slug}", label, Kind.TEXT, "identity")
        for slug, label in (
            ("company", _l("Company")),
            ("vessel", _l("Ship's name")),
            ("imo", _l("IMO number")),
            ("call_sign", _l("Call sign")),
            ("mmsi", _l("MMSI")),
            ("flag", _l("Flag")),
            ("contact", _l("How to contact you (optional)")),
        )
    ),
)

BY_NAME = {f.name: f for f in FIELDS}
SECTIONS = (
    ("what", _l("The incident")),
    ("when", _l("When")),
    ("where", _l("Where, and the ship")),
    ("attack", _l("The attack or approach")),
    ("crew", _l("The crew")),
    ("stowaway", _l("Stowaways")),
    ("cyber", _l("Cyber incident")),
    ("narrative", _l("Your account")),
    ("identity", _l("Identity (optional, reviewers only)")),
)
