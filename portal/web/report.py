"""The report document (``cso-report/v1``) and the checks on its values.

The browser builds this JSON from the form; without JavaScript the server
builds the same JSON from the posted form, in memory, and encrypts it at
once. Shape::

    {"schema": "cso-report/v1", "encrypted_by": "browser" | "server",
     "language": "en",                        # BCP 47 code of the page the reporter used
     "report": {name: value, ...},            # only the fields that were filled
     "identity": {name: value, ...},          # identity_* fields, reviewers only
     "attachments": [manifest entries]}       # crypto/SPEC.md §11

Values are canonical: choice values are slugs, never the translated labels
the reporter saw, and numbers, times and positions typed in any script are
read into ASCII digits first (``portal/web/digits.py``). Free text is kept
as typed. ``language`` (since issue 15) says which language the free text is
likely in; a short well-formed code (:data:`LANGUAGE`), nothing else.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import flask

from crypto.manifest import AttachmentEntry, manifest_json
from portal.web.digits import ascii_digits, whole_number_text
from portal.web.field_rules import PAIRS, message
from portal.web.fields import BY_NAME, FIELDS, Field, Kind
from portal.web.position import PositionError, parse_coordinate, parse_position

SCHEMA = "cso-report/v1"
#: a language code the document may carry: a primary subtag and optional
#: subtags, ASCII letters and digits only (BCP 47's shape, not its registry)
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
MAX_LANGUAGE = 16


class InvalidReportError(Exception):
    """A value cannot be accepted; the message names the field and is safe to show.

    ``field`` is the name of the field at fault, or None for a rule about the
    whole form (the content rule). ``problems`` lists every problem found in
    the same form, this one first, so that a page can mark them all at once.
    ``key`` names the message template in :data:`portal.web.field_rules.MESSAGES`.
    """

    def __init__(self, text: str, field: str | None = None, key: str = "") -> None:
        super().__init__(text)
        self.field = field
        self.key = key
        self.problems: list[InvalidReportError] = [self]


def _problem(key: str, f: Field | None = None, **values: Any) -> InvalidReportError:
    return InvalidReportError(message(key, f, **values), f.name if f else None, key)


def is_bad_char(char: str) -> bool:
    """Whether ``char`` can be no part of a text: see :func:`_check_text`."""
    point = ord(char)
    return (
        unicodedata.category(char) in {"Cc", "Cs", "Co"}
        or char == "\ufffd"
        or 0xFDD0 <= point <= 0xFDEF
        or (point & 0xFFFE) == 0xFFFE
    )


def _check_text(field: Field, value: str) -> str:
    """The text normalised (NFC, newlines, trimmed); refused if too long or holding a bad character.

    Bad: control characters (but a newline or tab in the narrative),
    surrogates, private use, the replacement character of a damaged
    encoding, and the noncharacters (U+FDD0 to U+FDEF, and the last two of
    every plane). Characters this Python's Unicode tables do not know
    (category Cn) are accepted: each Unicode version assigns new ones (an
    emoji from Unicode 15 is Cn in Python 3.11's Unicode 14), browsers know
    them sooner, and the browser's check (rules.js) must give the same verdict.
    """
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    if len(value) > field.max_length:
        raise _problem("too_long", field)
    for char in value:
        if char in "\n\t" and field.kind is Kind.LONG_TEXT:
            continue
        if is_bad_char(char):
            raise _problem("bad_chars", field)
    return value


def filled(values: Sequence[str]) -> list[str]:
    """The posted values that say something: not empty, not only spaces."""
    return [v for v in values if v.strip()]


def check_value(field: Field, values: Sequence[str]) -> Any:
    """The validated value of ``field`` from the posted strings, or None when empty."""
    present = filled(values)
    if not present:
        if field.required:
            raise _problem("required", field)
        return None
    if field.kind is Kind.MULTI:
        allowed = {value for value, _ in field.choices}
        if any(v not in allowed for v in present) or len(set(present)) != len(present):
            raise _problem("choice", field)
        return present
    if len(present) > 1:
        raise _problem("one_value", field)
    value = present[0].strip()
    if field.kind is Kind.UTC_OFFSET:
        value = ascii_digits(value).replace("\u2212", "-")  # MINUS SIGN
    if field.kind in (Kind.CHOICE, Kind.UTC_OFFSET):
        if value not in {v for v, _ in field.choices}:
            raise _problem("choice", field)
        return value
    if field.kind is Kind.COUNT:
        value = whole_number_text(value)
        if not value.isascii() or not value.isdigit() or int(value) > 9999:
            raise _problem("count", field)
        return int(value)
    if field.kind is Kind.COORDINATE:
        try:
            return parse_coordinate(value, field.name)
        except PositionError:
            raise _problem("coordinate", field) from None
    if field.kind is Kind.LOCAL_TIME:
        value = ascii_digits(value)
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M")
        except ValueError:
            raise _problem("local_time", field) from None
        if not value.isascii() or moment.year < 1990:
            raise _problem("local_time", field)
        return value
    if field.kind is Kind.TEXT and "\n" in value:
        raise _problem("one_line", field)
    return _check_text(field, value)


def _split_position(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Latitude and longitude, when a whole position was typed into the latitude field.

    Only when the longitude field is empty and the latitude field holds one
    value that reads as a whole position (``portal/web/position.py``); else {}.
    """
    latitude = filled(form.get("latitude", ()))
    if len(latitude) != 1 or filled(form.get("longitude", ())):
        return {}
    try:
        north, east = parse_position(latitude[0])
    except PositionError:
        return {}
    return {"latitude": north, "longitude": east}


def is_language(code: object) -> bool:
    """Whether ``code`` is a language code the document may carry (:data:`LANGUAGE`)."""
    return isinstance(code, str) and len(code) <= MAX_LANGUAGE and bool(LANGUAGE.fullmatch(code))


def page_language() -> str:
    """The code of the language this request's page is in ("en" outside a request).

    The i18n layer sets ``g.lang_code`` from the URL; it chooses among the
    shipped languages, but the value is checked here all the same.
    """
    code = flask.g.get("lang_code", "en") if flask.has_app_context() else "en"
    return code if is_language(code) else "en"


def build_report(
    form: Mapping[str, Sequence[str]],
    attachments: Sequence[AttachmentEntry],
    encrypted_by: str,
    language: str | None = None,
) -> dict[str, Any]:
    """Check every known field in ``form`` and assemble the report document.

    Unknown field names are ignored (a newer page may send more); known ones
    must be valid. Every problem is found before refusing: the
    :class:`InvalidReportError` raised is the first, and its ``problems``
    hold them all, in the order of the form. ``language`` is the code of the
    page the reporter used, by default this request's (:func:`page_language`);
    a malformed one is a programming error (ValueError).
    """
    language = page_language() if language is None else language
    if not is_language(language):
        raise ValueError("not a language code")
    report: dict[str, Any] = {}
    identity: dict[str, Any] = {}
    problems: list[InvalidReportError] = []
    position = _split_position(form)
    for field in FIELDS:
        try:
            if field.name in position:
                value = position[field.name]
            else:
                value = check_value(field, form.get(field.name, ()))
        except InvalidReportError as problem:
            problems.append(problem)
            continue
        if value is None:
            continue
        if field.section == "identity":
            identity[field.name] = value
        else:
            report[field.name] = value
    for low_name, high_name in PAIRS:
        low, high = report.get(low_name), report.get(high_name)
        if low is not None and high is not None and low > high:
            other = BY_NAME[low_name].name_in_messages
            problems.append(_problem("order", BY_NAME[high_name], other=other))
    if not has_content(form):
        problems.append(_problem("content"))
    if problems:
        first = problems[0]
        first.problems = problems
        raise first
    return {
        "schema": SCHEMA,
        "encrypted_by": encrypted_by,
        "language": language,
        "report": report,
        "identity": identity,
        "attachments": manifest_json(attachments),
    }


def has_content(form: Mapping[str, Sequence[str]]) -> bool:
    """The content rule: a narrative, or some detail of the incident besides its category.

    Judged on what was typed, valid or not, so that a mistyped detail is
    reported as such and not as an empty report.
    """
    return any(
        filled(form.get(f.name, ()))
        for f in FIELDS
        if f.name != "category" and f.section != "identity"
    )


def encode_report(document: Mapping[str, Any]) -> bytes:
    """The report as UTF-8 JSON bytes, as they are encrypted."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def field_for(name: str) -> Field:
    """The field called ``name`` (KeyError if there is none)."""
    return BY_NAME[name]
