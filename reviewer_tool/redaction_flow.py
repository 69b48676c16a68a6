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

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crypto.characters import unsafe
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
from reviewer_tool.redaction._folding import _fold_char
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
    """A manual finding wherever one of ``terms`` occurs in ``text``, ignoring case.

    Text and terms are folded alike (:func:`_fold_typed`) and compared folded,
    but every span is of ``text`` itself, widened to whole characters: a
    letter whose lower case is longer ("İ"), or that folds to two ("ß",
    "ﬁ"), must not shift where a later name is cut, and an accent written
    after its letter goes with it. Nothing after this looks for the typed
    words again (the hard check knows identity values only), so a part of a
    word left here would be forwarded.
    """
    folded, origin = _fold_typed(text)
    spans: dict[tuple[int, int], None] = {}  # in order found, each once
    for term in terms:
        pieces = [piece for piece in _fold_typed(term)[0].split(" ") if piece]
        if not pieces:
            continue  # only spaces, accents or invisible characters: nothing to look for
        # a space typed between words meets any white space, or none ("Ahmed\u2028Bello")
        pattern = re.compile(" ?".join(re.escape(piece) for piece in pieces))
        match = pattern.search(folded)
        while match:
            spans[_widen(text, origin[match.start()], origin[match.end() - 1] + 1)] = None
            match = pattern.search(folded, match.start() + 1)  # overlapping ones too
    return [Finding(MANUAL, start, end, text[start:end], 1.0) for start, end in spans]


def _fold_typed(text: str) -> tuple[str, list[int]]:
    """``text`` folded for finding typed words, and where each folded character came from.

    Each character is case folded, then folded as the hard check folds it
    (redaction/_folding.py: compatibility decomposition, look-alike letters to
    one skeleton, other scripts' digits to ASCII), and accents are dropped. A run
    of white space becomes one space. A character that cleaning drops
    (controls, invisible and format characters) is dropped here too, so that
    "Ahm\\u200bed", forwarded as "Ahmed", is found as "Ahmed".
    """
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isspace() and (char in "\t\n\r" or not unsafe(char)):
            parts = " "
        elif unsafe(char):
            continue
        else:
            # case folded first: the skeletons of a capital and of its small letter
            # may differ (Greek capital kappa's is "k", small kappa's is "ĸ")
            parts = "".join(_fold_char(small) for small in char.casefold())
        for part in parts:
            space = part.isspace()
            if unicodedata.combining(part) or (space and chars[-1:] == [" "]):
                continue
            chars.append(" " if space else part)
            origin.append(index)
    return "".join(chars), origin


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` grown to whole characters as a reader sees them: the marks
    written after a letter (accents, vowel signs), emoji skin tones and the invisible
    characters that follow."""
    while start > 0 and unicodedata.category(text[start]).startswith("M"):
        start -= 1
    while end < len(text) and _trailing(text[end]):
        end += 1
    return start, end


def _trailing(char: str) -> bool:
    """Whether ``char`` belongs with the character before it."""
    if unicodedata.category(char).startswith("M") or "\U0001f3fb" <= char <= "\U0001f3ff":
        return True
    return unsafe(char) and not char.isspace()


def manual_span(text: str, start: int, end: int) -> Finding:
    """A manual finding over ``text[start:end]``, the reviewer's own selection.

    The offsets come from a page, so they are checked here again: a span
    outside the text, or an empty one, is refused.
    """
    if not 0 <= start < end <= len(text):
        raise ReviewerError("that selection is not inside the field's text; select it again")
    return Finding(MANUAL, start, end, text[start:end], 1.0)


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

    Overlapping choices are all kept: a selection or typed word that starts
    inside a detected identifier and reaches past it must remove both, and
    redact_text merges overlapping spans into one.
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
