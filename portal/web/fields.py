"""The report form's fields: names, kinds, choices and which categories they serve.

Field ``name``s are a stable interface (documented in ``portal/web/FIELDS.md``):
the browser builds the report JSON from them, the no-JavaScript path builds
the same JSON on the server, and the reviewer tool reads it. Choices follow
../shared/DOMAIN.md (IMO MSC.1/Circ.1334, BMP5/UKMTO/MDAT-GoG, IMB PRC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from crypto.envelope import CHUNK_SIZE, TAG_LENGTH
from crypto.header import MAX_STANZAS, header_length
from crypto.manifest import MAX_ATTACHMENTS
from crypto.padding import MIN_PADDED_LENGTH, padded_length
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

# --- the rules both paths check -------------------------------------------------------
#
# The server (portal/web/report.py, portal/web/intake.py) words every refusal with these
# templates, and the page embeds them, with the field table, as the rules JSON
# (:func:`form_rules`) that the browser checks with: one source, no second list.
# A ``{name}`` in a template is filled from the field's own entry in the rules
# (``label``, ``min``, ``max``, ``max_length``, ``example``), from the other field
# of a pair (``other``), or from the attachment limits (``max_count``; ``limit``,
# a figure in whole MiB like "25 MiB"; ``index``, a file's number from 1).

CONTENT_RULE = "Describe what happened, or fill in at least one detail besides the category."
MESSAGES: dict[str, str] = {
    "required": "{label}: please choose one",
    "choice": "{label}: not one of the listed choices",
    "one_value": "{label}: give one value only",
    "count": "{label}: a whole number from 0 to 9999",
    "coordinate": (
        "{label}: write it like {example}, or in decimal degrees from {min} to {max}; "
        "never more than {max}°"
    ),
    "local_time": "{label}: a date and time like 2026-11-21T02:10",
    "one_line": "{label}: one line only",
    "too_long": "{label}: at most {max_length} characters",
    "bad_chars": (
        "{label}: contains characters that cannot be part of a text "
        "(control characters or damaged encoding)"
    ),
    "order": "{label}: cannot be less than “{other}”",
    "content": "Nothing to send yet. " + CONTENT_RULE,
    "too_many_files": "Attachments: at most {max_count} files",
    "file_too_large": "Attachments: file {index} is larger than {limit}, the most allowed",
    "total_too_large": "Attachments: together they are larger than {limit}, the most allowed",
    "damaged_image": "Attachments: file {index} looks like a damaged image",
    "files_again": (
        "Files cannot be kept after an error: please choose your attachments again before sending."
    ),
    "form_expired": (
        "This form had expired or was opened in another browser session. Nothing was stored. "
        "Everything you typed is still below: choose any files again and send it again."
    ),
    "busy": (
        "Too many reports are arriving without JavaScript right now. Nothing was stored. "
        "Everything you typed is still below: please send it again in a few minutes."
    ),
    "unavailable": (
        "The portal cannot accept reports right now. Nothing was stored. "
        "Everything you typed is still below: please send it again later."
    ),
    "failed": (
        "Something went wrong on our side. Nothing was stored. "
        "Everything you typed is still below: please send it again later."
    ),
    "not_stored": "Nothing was stored. Please correct what is marked and send it again.",
    "still_storing": (
        "Your report is still being stored. Please wait a moment, then send it again: it will "
        "not be stored twice. Everything you typed is still below."
    ),
    "updated": (
        "The questions below are now those for the kind of incident you chose. "
        "Nothing has been sent yet."
    ),
}
#: (lower, upper): the first may not be above the second
PAIRS: tuple[tuple[str, str], ...] = (("perpetrators_min", "perpetrators_max"),)
KIB = 1024
MIB = 1024 * KIB
#: room for an envelope's header at its largest, beyond the sealed payload
_HEADER_ROOM = header_length(MAX_STANZAS)
#: the most a report's own JSON can take: 20,000 characters of narrative, the
#: other fields and a manifest of 64 entries come to well under this
REPORT_ROOM = 256 * KIB


def sealed_size(length: int) -> int:
    """The most an envelope of ``length`` bytes of plaintext takes (crypto/SPEC.md §3, §6, §7)."""
    padded = padded_length(length)
    chunks = -(-padded // CHUNK_SIZE)
    return _HEADER_ROOM + padded + chunks * TAG_LENGTH


def browser_attachment_limits(max_upload_bytes: int, max_attachments: int) -> tuple[int, int, int]:
    """(count, bytes per file, bytes in all) of plaintext the browser may take and seal.

    The server counts envelopes, which are larger than the files in them
    (padding, chunk tags, a header), so the browser checks the files against
    figures that always fit once sealed: each file's envelope within
    ``max_upload_bytes``, and every envelope, the report's included, within
    ``max_upload_bytes`` together. Padmé adds at most 1/16 to anything of
    256 bytes or more (and pads less to 1024 bytes), hence the linear bound
    for the total. Both figures are rounded down to what :func:`size_text`
    states exactly.
    """
    count = min(max_attachments, MAX_ATTACHMENTS)
    per_file = _round_down(_largest(lambda n: sealed_size(n) <= max_upload_bytes))
    each = MIN_PADDED_LENGTH + 2 * TAG_LENGTH + _HEADER_ROOM + 2
    room = max_upload_bytes - sealed_size(REPORT_ROOM) - count * each
    total = _round_down(max(0, room * 16 * CHUNK_SIZE // (17 * (CHUNK_SIZE + TAG_LENGTH))))
    return count, min(per_file, total), total


#: how far a no-JavaScript form may go over its stated total and still be read (and
#: drawn again, filled, saying which limit it broke) rather than cut off unread
PLAIN_HEADROOM = 256 * MIB


def plain_attachment_limits(
    max_upload_bytes: int, max_plain_upload_bytes: int
) -> tuple[int, int, int]:
    """(bytes per file, bytes of files in all, bytes of the whole form) without JavaScript.

    The files are held in memory as plaintext, so they are capped at the
    stated figures: a file over its limit, or any file once the total is
    passed, is dropped as it arrives and the form is drawn again, filled,
    saying which limit it broke. The whole form may be larger still, by at
    least :data:`PLAIN_HEADROOM` (a video chosen by mistake), since the bytes
    dropped cost no memory; only a form over that hard limit is refused
    unread, and the page states it.
    """
    total = max_upload_bytes
    per_file = min(max_plain_upload_bytes, total)
    return per_file, total, total + max(total, PLAIN_HEADROOM) + MIB


def _largest(fits: Callable[[int], bool]) -> int:
    """The largest n ≥ 0 with ``fits(n)`` (``fits`` holds up to some point, then not)."""
    low, high = 0, 1
    while fits(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def _round_down(length: int) -> int:
    """``length`` rounded down to whole MiB, or below 1 MiB to whole KiB."""
    unit = MIB if length >= MIB else KIB
    return length // unit * unit


def size_text(length: int) -> str:
    """A limit as the page and the messages state it: "25 MiB", "512 KiB"."""
    if length >= MIB and length % MIB == 0:
        return f"{length // MIB} MiB"
    if length % KIB == 0:
        return f"{length // KIB} KiB"
    return f"{length} bytes"


def form_rules(
    max_attachments: int,
    max_file_bytes: int,
    max_total_bytes: int,
    *,
    plain_max_file_bytes: int,
    plain_max_total_bytes: int,
    plain_max_request_bytes: int | None = None,
) -> dict[str, Any]:
    """The rules JSON the report page embeds (``<script id="form-rules">``).

    ``max_*`` are the browser's limits on plaintext files
    (:func:`browser_attachment_limits`), ``plain_*`` the no-JavaScript
    path's (:func:`plain_attachment_limits`: per file, all files, and the
    whole form, when given). Each limit comes with its ``*_text``, the
    figure a message's ``{limit}`` names.
    """
    limits = {
        "max_file_bytes": max_file_bytes,
        "max_total_bytes": max_total_bytes,
        "plain_max_file_bytes": plain_max_file_bytes,
        "plain_max_total_bytes": plain_max_total_bytes,
    }
    if plain_max_request_bytes is not None:
        limits["plain_max_request_bytes"] = plain_max_request_bytes
    return {
        "fields": [_field_rule(f) for f in FIELDS],
        "messages": dict(MESSAGES),
        "pairs": [list(pair) for pair in PAIRS],
        "content_rule": CONTENT_RULE,
        "attachments": {
            "max_count": max_attachments,
            **limits,
            **{key.replace("_bytes", "_text"): size_text(value) for key, value in limits.items()},
        },
    }


def _field_rule(f: Field) -> dict[str, Any]:
    low, high = field_range(f)
    return {
        "name": f.name,
        "label": f.name_in_messages,
        "kind": f.kind.value,
        "section": f.section,
        "categories": list(f.categories),
        "required": f.required,
        "max_length": f.max_length,
        "choices": [value for value, _ in f.choices],
        "min": low,
        "max": high,
        "example": f.extra.get("example"),
    }


def field_range(f: Field) -> tuple[int | None, int | None]:
    """The lowest and highest number ``f`` takes, if it takes a number."""
    if f.kind is Kind.COUNT:
        return 0, 9999
    if f.kind is Kind.COORDINATE:
        return int(f.extra["min"]), int(f.extra["max"])
    return None, None


def message(key: str, f: Field | None = None, **values: Any) -> str:
    """The text of message ``key``, about field ``f`` if any (see :data:`MESSAGES`)."""
    if f is not None:
        low, high = field_range(f)
        values = {"label": f.name_in_messages, "max_length": f.max_length, "min": low,
                  "max": high, "example": f.extra.get("example"), **values}  # fmt: skip
    return MESSAGES[key].format(**values)
