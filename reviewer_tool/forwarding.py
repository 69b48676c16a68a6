"""From a confirmed, redacted report to a shared-database record (incident_db/RECORD.md).

Only what the reviewer approved in ``reviewer redact`` is used for free
text; choices and counts are copied from the report; the identity section
never is. :func:`identity_leaks` is the hard check before anything is
signed: a record in which any identity-section value, or any IMO number,
MMSI or call sign the detector finds in the report's own text, can still be
found, in any string, is refused (reviewer_tool/redaction/_identity.py says
how: native digits, look-alike letters and invisible fillers all count). So
is a record holding a character crypto/characters.py calls unsafe
(:func:`unsafe_characters`); ``redact`` drops them (:func:`clean_text`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Any

from crypto.characters import JOINERS, unsafe
from incident_db.errors import RecordError
from incident_db.record import parse_record
from incident_db.taxonomy import CREW
from reviewer_tool.errors import ReviewerError
from reviewer_tool.redaction import coarsen_position, detect_identifiers, identity_values_in
from reviewer_tool.workspace import Item, Workspace

#: a Python-quoted value inside a record error ("stolen: 'Mary Ann' is not one of its values")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
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


#: detected kinds that name a ship or company, whatever the identity section says
SHIP_IDENTIFIERS = frozenset({"imo", "imo_company", "mmsi", "call_sign"})
#: report fields that become multi-line text in a record (incident_db/record.py)
MULTILINE_FIELDS = frozenset({"narrative", "cyber_impact"})
#: what record text may hold of the unsafe characters: the joiners, which shape
#: Persian and Indic words, and (in multi-line text) newline and tab
_KEEP = JOINERS + "\n\t"


def clean_text(text: str, *, multiline: bool) -> tuple[str, int]:
    """``text`` as a record may hold it, and how many characters were dropped.

    Line ends become LF (CRLF and CR from other systems), or spaces in a
    one-line field; every other control, format, private-use, unassigned or
    invisible character is dropped: it carries no content, and in the shared
    database it would act on a reader's terminal, make a record read other
    than it is, or end a line for a JSON Lines reader.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    kept = "".join(c for c in text if not unsafe(c, _KEEP))
    return kept, len(text) - len(kept)


def unsafe_characters(record: Mapping[str, Any]) -> list[str]:
    """Where in ``record`` a character that :func:`clean_text` drops stands."""
    return [
        path
        for path, text in _strings(dict(record))
        if "\r" in text or any(unsafe(c, _KEEP) for c in text)
    ]


def _refused(item: Item, why: str) -> str:
    """The one-line refusal for ``item``, with the two ways out."""
    short = item.id[:12]
    return (
        f"refused: report {short} {why}; redact it again (its Redact page in the desk, or"
        f" `reviewer redact {short}`), or leave it out by rejecting it (Reject on its page,"
        f" or `reviewer triage {short} --status rejected --grade F6`). Nothing written."
    )


def refusal(item: Item, record: Mapping[str, Any]) -> str | None:
    """Why ``record``, built from ``item``, must not be signed; None if it may be."""
    hidden = unsafe_characters(record)
    if hidden:
        return _refused(
            item,
            "holds control or invisible characters (bidi, zero-width, filler) in"
            f" {', '.join(hidden)}",
        )
    leaks = identity_leaks(record, check_values(item))
    if leaks:
        return _refused(
            item,
            "still holds an identity-section value or a ship identifier found in the report"
            f" in {', '.join(leaks)}",
        )
    return None


def ship_identifiers(item: Item) -> list[tuple[str, str]]:
    """(kind, value) of the IMO numbers, MMSIs and call signs the detector finds in
    the report's own text: a reporter who wrote "IMO 9074729" once and "907 4729"
    later named the ship twice, and only the first has a label to be found by."""
    fields = item.record["report"].get("report", {})
    found = {
        (finding.kind, finding.text)
        for name in TEXT_FIELDS
        if isinstance(fields.get(name), str)
        for finding in detect_identifiers(fields[name])
        # an unlabelled seven-digit number whose check digit fails is not an IMO number
        if finding.kind in SHIP_IDENTIFIERS and finding.confidence >= 0.6
    }
    return sorted(found)


def check_values(item: Item) -> list[str]:
    """What the hard check looks for: the identity section's values and the
    report's own ship identifiers (:func:`ship_identifiers`)."""
    return [*identity_values(item), *(value for _, value in ship_identifiers(item))]


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
    """The cso-incident/v1 JSON for a confirmed, redacted item, checked by :func:`refusal`
    and by parse_record; raises ReviewerError (one line, with the way out) if refused."""
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
        try:
            lat, lon = coarsen_position(fields["latitude"], fields["longitude"], decimals)
        except (TypeError, ValueError) as error:
            why = f"has a position that cannot be sent: {error}"
            raise ReviewerError(_refused(item, why)) from None
        record["position"] = {"lat": lat, "lon": lon, "decimals": decimals}
    crew = {name: fields[f"crew_{name}"] for name in CREW if fields.get(f"crew_{name}")}
    _set(record, "crew", crew or None)
    record["verification"] = {"status": "confirmed", "grade": triage["grade"]}
    duplicate = triage.get("duplicate_of")
    if duplicate and duplicate in links:
        record["links"] = [{"relation": "duplicate-of", "id": links[duplicate]}]
    # The record's own checks (lengths, vocabularies) are cheap; the identity check
    # reads every string, so a narrative too long for any record is refused first.
    try:
        parsed = parse_record(record).to_json()
    except RecordError as error:
        hidden = refusal(item, record) if "control or invisible" in str(error) else None
        if hidden:  # the usual message, naming every field that holds one
            raise ReviewerError(hidden) from None
        # A vocabulary error quotes the value, which may be an identity value: not here.
        reason = _QUOTED.sub("a value", str(error))
        raise ReviewerError(_refused(item, f"does not make a valid record: {reason}")) from None
    refused = refusal(item, record)
    if refused:
        raise ReviewerError(refused)
    return parsed


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
