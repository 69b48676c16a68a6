"""Redacting a report: the steps ``reviewer redact`` and the desk's redaction page share.

Both front ends do the same four things: find the identifiers in each text
field of the report (:func:`suggestions`), let the reviewer accept or reject
each and add words or spans of their own (:func:`words_in`,
:func:`manual_span`), turn the choices into the redacted text a record may
hold (:func:`redact_field`), and store the result in the item's
``redaction`` (:func:`store_redaction`). Only the way the reviewer answers
differs: prompts at a terminal, checkboxes and selections in a page.

:func:`preview` is the desk's "what will be signed": the exact record that
reviewer_tool/forwarding.py would build from a redaction not yet stored,
with the hard identity check's verdict, so the reviewer sees a refusal,
naming the field, before anything is signed or even saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reviewer_tool.errors import ReviewerError
from reviewer_tool.forward_flow import incident_links
from reviewer_tool.forwarding import (
    MULTILINE_FIELDS,
    TEXT_FIELDS,
    build_record,
    check_values,
    clean_text,
    identity_leaks,
    identity_values,
    ship_identifiers,
    unsafe_characters,
)
from reviewer_tool.redaction import Finding, detect_identifiers, redact_text
from reviewer_tool.redaction.position import MAX_DECIMALS
from reviewer_tool.workspace import Item, Workspace

#: about 1 km: the position a forwarded record carries unless the reviewer says otherwise
DEFAULT_DECIMALS = 2
#: what a manual redaction is called in the text (``[redacted: manual]``)
MANUAL = "manual"


def text_fields(item: Item) -> dict[str, str]:
    """The report's free-text fields that hold something, in :data:`TEXT_FIELDS` order."""
    fields = item.record["report"].get("report", {})
    return {name: fields[name] for name in TEXT_FIELDS if fields.get(name)}


def suggestions(item: Item) -> dict[str, list[Finding]]:
    """Every identifier the detector finds in each text field, by field name.

    The report's identity-section values and the ship identifiers written in
    its own text are looked for too, wherever they appear.
    """
    values, known = identity_values(item), ship_identifiers(item)
    return {
        name: detect_identifiers(text, values, known) for name, text in text_fields(item).items()
    }


def split_terms(raw: str) -> list[str]:
    """Words to remove, given as one line separated by ``|`` (blank ones dropped)."""
    return [term for term in (part.strip() for part in raw.split("|")) if term]


def words_in(text: str, terms: Iterable[str]) -> list[Finding]:
    """A manual finding wherever one of ``terms`` occurs in ``text``, ignoring case."""
    lowered = text.lower()
    findings = []
    for term in terms:
        start = lowered.find(term.lower())
        while start >= 0:
            end = start + len(term)
            findings.append(Finding(MANUAL, start, end, text[start:end], 1.0))
            start = lowered.find(term.lower(), end)
    return findings


def manual_span(text: str, start: int, end: int) -> Finding:
    """A manual finding over ``text[start:end]``, the reviewer's own selection.

    The offsets come from a page, so they are checked here again: a span
    outside the text, or an empty one, is refused.
    """
    if not 0 <= start < end <= len(text):
        raise ReviewerError("that selection is not inside the field's text; select it again")
    return Finding(MANUAL, start, end, text[start:end], 1.0)


def settle(findings: Iterable[Finding]) -> list[Finding]:
    """The findings in text order, without one that starts inside the one before it."""
    ordered = sorted(findings, key=lambda f: f.start)
    return [f for i, f in enumerate(ordered) if i == 0 or f.start >= ordered[i - 1].end]


def redact_field(name: str, text: str, chosen: Sequence[Finding]) -> tuple[str, int]:
    """The field's text with ``chosen`` replaced, cleaned as a record holds it, and how
    many control or invisible characters were dropped (reviewer_tool/forwarding.py)."""
    return clean_text(redact_text(text, chosen), multiline=name in MULTILINE_FIELDS)


def name_flags(name: str, values: Sequence[str]) -> list[str]:
    """The kinds of identifier an attachment's file name holds (it is never forwarded)."""
    return [finding.kind for finding in detect_identifiers(name, values)]


def check_decimals(value: Any) -> int:
    """A number of decimals a position may keep, 0 to 6; raises ReviewerError otherwise."""
    try:
        decimals = int(value)
    except (TypeError, ValueError):
        decimals = -1
    if isinstance(value, bool) or not 0 <= decimals <= MAX_DECIMALS:
        raise ReviewerError(f"the position keeps 0 to {MAX_DECIMALS} decimals")
    return decimals


def check_attachments(item: Item, positions: Iterable[int]) -> list[int]:
    """The chosen attachment positions (counted from 1), sorted, each one of the report's."""
    count = len(item.record["report"].get("attachments", []))
    chosen = sorted(set(positions))
    if any(not 1 <= position <= count for position in chosen):
        raise ReviewerError("an attachment chosen is not one of this report's")
    return chosen


def redaction_record(
    fields: Mapping[str, str], decimals: int, attachments: Sequence[int]
) -> dict[str, Any]:
    """What an item's ``redaction`` holds: the fields as approved, the position's
    precision, the attachments to forward, and the day it was done."""
    return {
        "fields": dict(fields),
        "position_decimals": decimals,
        "attachments": list(attachments),
        "on": datetime.now(UTC).date().isoformat(),
    }


def store_redaction(ws: Workspace, item: Item, redaction: Mapping[str, Any]) -> None:
    """Keep ``redaction`` as the item's approved version, replacing any earlier one."""
    item.record["redaction"] = dict(redaction)
    with ws.transaction():
        ws.put_item(item)


@dataclass(frozen=True)
class Redacted:
    """Every text field redacted at once: the page's answer before it is stored."""

    fields: dict[str, str]
    #: per field, how many control or invisible characters were dropped
    dropped: dict[str, int] = field(default_factory=dict)
    removed: int = 0


def redact_all(item: Item, chosen: Mapping[str, Sequence[Finding]]) -> Redacted:
    """Apply ``chosen`` (by field name; a field not named keeps its text) to every field.

    Overlapping choices are not dropped as :func:`settle` drops them: a
    selection that starts inside a detected identifier and reaches past it
    must remove both, and redact_text merges overlapping spans into one.
    """
    fields: dict[str, str] = {}
    dropped: dict[str, int] = {}
    removed = 0
    for name, text in text_fields(item).items():
        picked = list(chosen.get(name, ()))
        fields[name], count = redact_field(name, text, picked)
        if count:
            dropped[name] = count
        removed += len(picked)
    return Redacted(fields, dropped, removed)


@dataclass(frozen=True)
class Preview:
    """The record that would be signed from a redaction, or why none would be."""

    #: the cso-incident/v1 record, exactly as forwarding builds it; None when refused
    record: dict[str, Any] | None
    #: the one-line refusal (it names the fields), None when the record may be signed
    refusal: str | None
    #: record members whose text still holds an identity value or ship identifier
    leaks: list[str] = field(default_factory=list)
    #: record members that hold a control or invisible character
    hidden: list[str] = field(default_factory=list)


def preview(ws: Workspace, item: Item, redaction: Mapping[str, Any]) -> Preview:
    """What forwarding would sign if ``redaction`` were stored, checked the same way.

    The hard check runs on the redacted text members on their own as well,
    so a report not yet confirmed (for which no record can be built) still
    shows which fields would be refused.
    """
    members = {TEXT_FIELDS[name]: text for name, text in redaction.get("fields", {}).items()}
    leaks = identity_leaks(members, check_values(item))
    hidden = unsafe_characters(members)
    trial = Item(item.id, item.summary, {**item.record, "redaction": dict(redaction)})
    try:
        record = build_record(ws, trial, incident_links(ws))
    except ReviewerError as error:
        return Preview(None, error.diagnostics(), leaks, hidden)
    return Preview(record, None, leaks, hidden)
