"""How the report and redaction pages show what a reporter sent: labels, values, hidden characters.

Every string here came from a sender. Jinja escapes it; this module adds
what escaping does not: a character that carries no visible content
(a control character such as a terminal's escape, a bidirectional override,
a zero-width space, a filler) is shown as a small visible marker such as
``U+202E`` instead of acting on the page, so a narrative cannot reorder the
text around it or hide words. The joiners, which shape Persian and Indic
words, and line breaks and tabs are kept as they are.

Labels are the reviewer's words for each field of portal/web/FIELDS.md
(shorter than the reporter's form: no examples or help); a choice is shown
by its label from the incident vocabulary (incident_db/taxonomy.py), and a
value outside it is shown as sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from markupsafe import Markup, escape

from crypto.characters import JOINERS, unsafe
from incident_db.taxonomy import VOCABULARIES
from reviewer_tool.forwarding import FORM_TO_RECORD
from reviewer_tool.redaction import Finding

#: the reviewer's name for each report field, in the order the form asks for them
REPORT_LABELS = {
    "category": "Kind of incident",
    "report_type": "Report type",
    "reported_to": "Also reported to",
    "incident_local_time": "When (local date and time)",
    "incident_utc_offset": "Local time is UTC",
    "place_name": "Port, anchorage, berth or terminal",
    "location_type": "Type of location",
    "latitude": "Latitude (decimal degrees)",
    "longitude": "Longitude (decimal degrees)",
    "vessel_status": "The ship was",
    "vessel_type": "Type of ship",
    "incident_type": "What happened",
    "perpetrators_min": "Perpetrators, at least",
    "perpetrators_max": "Perpetrators, at most",
    "weapons": "Weapons seen",
    "boarding_method": "How they boarded",
    "boarding_point": "Where they boarded or what they targeted",
    "stolen": "What was stolen",
    "suspect_craft_count": "Number of suspect craft",
    "suspect_craft_type": "Type of suspect craft",
    "suspect_craft_description": "Suspect craft: colour, engines, markings",
    "outcome": "Outcome",
    "crew_threatened": "Crew threatened",
    "crew_tied_up": "Crew tied up",
    "crew_assaulted": "Crew assaulted",
    "crew_injured": "Crew injured",
    "crew_hostage": "Crew taken hostage",
    "crew_kidnapped": "Crew kidnapped",
    "crew_killed": "Crew killed",
    "crew_missing": "Crew missing",
    "actions_taken": "Actions taken",
    "stowaway_count": "Number of stowaways",
    "stowaway_embarkation_port": "Port where the stowaways embarked",
    "stowaway_embarkation_berth": "Berth or terminal where they embarked",
    "stowaway_hiding_place": "Where they hid",
    "stowaway_how_found": "How they were found",
    "cyber_systems": "Systems affected",
    "cyber_vector": "How the attack came in",
    "cyber_impact": "Impact on the ship's operation",
    "narrative": "What happened, in the reporter's words",
}
#: the identity section, which is never forwarded
IDENTITY_LABELS = {
    "identity_company": "Company",
    "identity_vessel": "Ship's name",
    "identity_imo": "IMO number",
    "identity_call_sign": "Call sign",
    "identity_mmsi": "MMSI",
    "identity_flag": "Flag",
    "identity_contact": "How to contact the reporter",
}
#: what each kind of detected identifier is called on the page
KIND_LABELS = {
    "imo": "IMO ship number",
    "imo_company": "IMO company number",
    "mmsi": "MMSI",
    "call_sign": "call sign",
    "email": "e-mail address",
    "url": "web address",
    "phone": "phone number",
    "identity": "identity-section value",
    "person": "person's name",
    "manual": "your own redaction",
}
#: what is shown as it is of the characters crypto/characters.py calls unsafe (a browser
#: reads CR LF, or CR alone, as a line break)
_KEEP = JOINERS + "\n\t\r"


def field_label(name: str) -> str:
    """The label of a report or identity field; a name nobody defined is shown as it is."""
    return REPORT_LABELS.get(name) or IDENTITY_LABELS.get(name) or name


def kind_label(kind: str) -> str:
    """What a finding's kind is called on the page."""
    return KIND_LABELS.get(kind, kind)


def _choice(name: str, value: Any) -> str:
    vocabulary = VOCABULARIES.get(FORM_TO_RECORD.get(name, ""), {})
    return vocabulary.get(value, str(value)) if isinstance(value, str) else str(value)


def shown_value(name: str, value: Any) -> str:
    """A report field's value as words: a choice by its label, a list joined with commas."""
    if isinstance(value, list):
        return ", ".join(_choice(name, member) for member in value)
    return _choice(name, value)


def report_rows(fields: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, label, value) of every report field but the narrative, in the form's order;
    a field this desk does not know comes last, under its own name."""
    known = [name for name in REPORT_LABELS if name in fields and name != "narrative"]
    unknown = sorted(name for name in fields if name not in REPORT_LABELS)
    return [(name, field_label(name), shown_value(name, fields[name])) for name in known + unknown]


def _marker(char: str) -> Markup:
    return Markup('<span class="hidden-char">U+{:04X}</span>').format(ord(char))


def visible(text: Any) -> Markup:
    """``text`` escaped, with every invisible or control character shown as a marker."""
    text = str(text)
    if not any(unsafe(char, _KEEP) for char in text):
        return escape(text)
    return Markup("").join(_marker(char) if unsafe(char, _KEEP) else escape(char) for char in text)


def _runs(text: str, at: int) -> Iterator[dict[str, Any]]:
    """``text`` (starting at offset ``at`` of its field) as plain runs and hidden characters.

    A run ends after every line break: a browser reads CR LF as one LF, so
    the offsets a page computes inside a run never drift across lines, and
    each run says how long it is (``len``) for a selection that ends with it.
    """
    start = 0
    for index, char in enumerate(text):
        if unsafe(char, _KEEP):
            if index > start:
                yield _run(text[start:index], at + start)
            yield {"at": at + index, "hidden": f"U+{ord(char):04X}"}
            start = index + 1
        elif char == "\n":
            yield _run(text[start : index + 1], at + start)
            start = index + 1
    if start < len(text):
        yield _run(text[start:], at + start)


def _run(text: str, at: int) -> dict[str, Any]:
    return {"at": at, "text": text, "len": len(text)}


def segments(text: str, findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """``text`` cut into runs for the redaction page, each finding as a ``mark`` segment.

    Each run carries the offset in ``text`` where it starts, which is how the
    page turns a selection into offsets (reviewer_tool/desk/static/redact.js).
    Findings are in text order and do not overlap (detect_identifiers merges).
    """
    out: list[dict[str, Any]] = []
    pos = 0
    for number, finding in enumerate(findings):
        if finding.start < pos:
            continue  # an overlap the detector did not merge: shown in the list only
        out.extend(_runs(text[pos : finding.start], pos))
        out.append({
            "mark": number, "kind": finding.kind, "start": finding.start, "end": finding.end,
            "runs": list(_runs(text[finding.start : finding.end], finding.start)),
        })  # fmt: skip
        pos = finding.end
    out.extend(_runs(text[pos:], pos))
    return out
