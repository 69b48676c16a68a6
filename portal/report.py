"""The report document (``cso-report/v1``) and the checks on its values.

The browser builds this JSON from the form; without JavaScript the server
builds the same JSON from the posted form, in memory, and encrypts it at
once. Shape::

    {"schema": "cso-report/v1", "encrypted_by": "browser" | "server",
     "report": {name: value, ...},            # only the fields that were filled
     "identity": {name: value, ...},          # identity_* fields, reviewers only
     "attachments": [manifest entries]}       # crypto/SPEC.md §11
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crypto.manifest import AttachmentEntry, manifest_json
from portal.fields import BY_NAME, FIELDS, Field, Kind

SCHEMA = "cso-report/v1"
_COORDINATE = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,6})?")


class InvalidReportError(Exception):
    """A value cannot be accepted; the message names the field and is safe to show."""


def _check_text(field: Field, value: str) -> str:
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    if len(value) > field.max_length:
        raise InvalidReportError(f"{field.label}: at most {field.max_length} characters")
    for char in value:
        if char in "\n\t" and field.kind is Kind.LONG_TEXT:
            continue
        category = unicodedata.category(char)
        if category in {"Cc", "Cs", "Co"} or char == "\ufffd" or category == "Cn":
            raise InvalidReportError(
                f"{field.label}: contains characters that cannot be part of a text "
                "(control characters or damaged encoding)"
            )
    return value


def check_value(field: Field, values: Sequence[str]) -> Any:
    """The validated value of ``field`` from the posted strings, or None when empty."""
    present = [v for v in values if v.strip()]
    if not present:
        if field.required:
            raise InvalidReportError(f"{field.label}: please choose one")
        return None
    if field.kind is Kind.MULTI:
        allowed = {value for value, _ in field.choices}
        if any(v not in allowed for v in present) or len(set(present)) != len(present):
            raise InvalidReportError(f"{field.label}: not one of the listed choices")
        return present
    if len(present) > 1:
        raise InvalidReportError(f"{field.label}: give one value only")
    value = present[0].strip()
    if field.kind in (Kind.CHOICE, Kind.UTC_OFFSET):
        if value not in {v for v, _ in field.choices}:
            raise InvalidReportError(f"{field.label}: not one of the listed choices")
        return value
    if field.kind is Kind.COUNT:
        if not value.isascii() or not value.isdigit() or int(value) > 9999:
            raise InvalidReportError(f"{field.label}: a whole number from 0 to 9999")
        return int(value)
    if field.kind is Kind.COORDINATE:
        limit = 90 if field.name == "latitude" else 180
        if not _COORDINATE.fullmatch(value) or abs(float(value)) > limit:
            raise InvalidReportError(f"{field.label}: decimal degrees between -{limit} and {limit}")
        return float(value)
    if field.kind is Kind.LOCAL_TIME:
        example = f"{field.label}: a date and time like 2026-11-21T02:10"
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M")
        except ValueError:
            raise InvalidReportError(example) from None
        if not value.isascii() or moment.year < 1990:
            raise InvalidReportError(example)
        return value
    if field.kind is Kind.TEXT and "\n" in value:
        raise InvalidReportError(f"{field.label}: one line only")
    return _check_text(field, value)


def build_report(
    form: Mapping[str, Sequence[str]],
    attachments: Sequence[AttachmentEntry],
    encrypted_by: str,
) -> dict[str, Any]:
    """Check every known field in ``form`` and assemble the report document.

    Unknown field names are ignored (a newer page may send more); known ones
    must be valid.
    """
    report: dict[str, Any] = {}
    identity: dict[str, Any] = {}
    for field in FIELDS:
        value = check_value(field, form.get(field.name, ()))
        if value is None:
            continue
        if field.section == "identity":
            identity[field.name] = value
        else:
            report[field.name] = value
    low, high = report.get("perpetrators_min"), report.get("perpetrators_max")
    if low is not None and high is not None and low > high:
        raise InvalidReportError("Number of perpetrators: the lower number is above the higher one")
    if "narrative" not in report and len(report) <= 1:
        raise InvalidReportError("Please describe what happened, or fill in some details")
    return {
        "schema": SCHEMA,
        "encrypted_by": encrypted_by,
        "report": report,
        "identity": identity,
        "attachments": manifest_json(attachments),
    }


def encode_report(document: Mapping[str, Any]) -> bytes:
    """The report as UTF-8 JSON bytes, as they are encrypted."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def field_for(name: str) -> Field:
    """The field called ``name`` (KeyError if there is none)."""
    return BY_NAME[name]
