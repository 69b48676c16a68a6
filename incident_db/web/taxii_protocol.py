"""The TAXII 2.1 protocol of the partners' server (``incident_db/web/taxii.py``).

What is the same on every endpoint: the media types and the Accept header
(§1.6.8), error messages (§3.6.1), an object's place in the collection's one
order (:class:`Position`), the ``next`` cursor that names such a place, and
the filters of a request (§3.4), parsed and checked; anything malformed is a
:class:`TaxiiError` with status 400 (or 406 for the Accept header).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Response, request

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
#: most objects per page, and the default
MAX_LIMIT = 1000
#: most values one match[...] filter may list
MATCH_MAX = 100
#: the query parameters this server reads (TAXII 2.1 §3.4); others are ignored, and audited
KNOWN_PARAMETERS = frozenset({"added_after", "limit", "next", "match[type]", "match[id]",
                              "match[version]", "match[spec_version]"})  # fmt: skip
#: ``Position.object_id`` that sorts after every object of its incident ("~" is above "z")
AFTER_ALL = "~"

_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STIX_ID = re.compile(rf"([a-z][a-z0-9-]{{0,60}})--({_UUID})")
_TYPE = re.compile(r"[a-z][a-z0-9-]{0,60}")
_SPEC_VERSION = re.compile(r"\d\.\d{1,2}")
#: a limit: ASCII digits only, and few of them (leading zeros allowed, as in "0010")
_LIMIT = re.compile(r"[0-9]{1,4}")
#: how many values of one filter the audit log keeps (with their count)
AUDIT_FIRST = 5
#: an object and where it sits in the collection's order
Item = tuple["Position", dict[str, Any]]


class TaxiiError(Exception):
    """A request refused with a TAXII error message (§3.6.1)."""

    def __init__(self, status: int, title: str, description: str = "") -> None:
        super().__init__(title)
        self.status, self.title, self.description = status, title, description


@dataclass(frozen=True, order=True)
class Position:
    """Where an object sits in the collection's one order."""

    added: dt.datetime  # naive UTC
    incident: str  # "" for the common objects
    object_id: str


@dataclass(frozen=True)
class Filters:
    """A request's filters (§3.4), parsed and checked."""

    added_after: dt.datetime | None
    limit: int
    after: Position | None
    types: frozenset[str] | None
    ids: frozenset[str] | None
    versions: frozenset[dt.datetime] | None  # None: "last", "first" or "all" (one version each)
    spec_versions: frozenset[str] | None
    unknown: tuple[str, ...] = ()  # names of query parameters this server does not read

    def audited(self) -> dict[str, Any]:
        """The filters as the audit log keeps them: parsed, and short whatever was sent."""
        found: dict[str, Any] = {"limit": self.limit, "next": self.after is not None}
        if self.added_after is not None:
            found["added_after"] = show_time(self.added_after)
        for key, values in (("types", self.types), ("ids", self.ids),
                            ("spec_versions", self.spec_versions)):  # fmt: skip
            if values is not None:
                found[key] = {"count": len(values), "first": sorted(values)[:AUDIT_FIRST]}
        if self.versions is not None:
            moments = sorted(show_time(moment) for moment in self.versions)
            found["versions"] = {"count": len(moments), "first": moments[:AUDIT_FIRST]}
        if self.unknown:
            found["unknown"] = list(self.unknown)
        return found

    def admits(self, position: Position, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` at ``position`` passes every filter but the paging ones."""
        if self.added_after is not None and position.added <= self.added_after:
            return False
        if self.types is not None and obj["type"] not in self.types:
            return False
        if self.ids is not None and obj["id"] not in self.ids:
            return False
        if self.spec_versions is not None and obj.get("spec_version") not in self.spec_versions:
            return False
        return self.versions is None or parse_time(object_version(obj)) in self.versions


# -- media types and answers ---------------------------------------------------------


def answer(body: dict[str, Any], media: str = TAXII, headers: dict[str, str] | None = None,
           status: int = 200) -> Response:  # fmt: skip
    """``body`` as compact JSON in the media type ``media``."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status, headers=headers, content_type=media)


def accepts(stix_too: bool = False) -> str:
    """The media type to answer in, from the Accept header (§1.6.8); 406 if none fits."""
    header = request.headers.get("Accept", "")
    if not header.strip():
        return TAXII
    for part in header.split(","):
        media, *raw = (piece.strip().lower() for piece in part.split(";"))
        params = dict(p.partition("=")[::2] for p in raw)
        if params.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        version = params.get("version", "2.1").strip('"')
        if media in ("*/*", "application/*"):
            return TAXII
        if media == "application/taxii+json" and version == "2.1":
            return TAXII
        if stix_too and media == "application/stix+json" and version == "2.1":
            return STIX
    offered = f"{TAXII} or {STIX}" if stix_too else TAXII
    raise TaxiiError(406, "The Accept header names no media type this server answers in",
                     f"Ask for {offered}.")  # fmt: skip


# -- query parameters ------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime | None:
    """A TAXII/STIX timestamp (UTC, ``Z``) as naive UTC, cut to microseconds; None if malformed."""
    found = _TIMESTAMP.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    micro = int((found.group(7) or "0")[:6].ljust(6, "0"))
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None


def show_time(moment: dt.datetime) -> str:
    """``moment`` (naive UTC) as a TAXII timestamp with microseconds: what added_after takes."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _values(name: str, pattern: re.Pattern[str]) -> frozenset[str] | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    values = [value.strip() for value in raw.split(",")]
    if not 0 < len(values) <= MATCH_MAX or not all(pattern.fullmatch(v) for v in values):
        raise TaxiiError(400, f"{name} is malformed",
                         f"Give 1 to {MATCH_MAX} comma-separated values.")  # fmt: skip
    return frozenset(values)


def _versions() -> frozenset[dt.datetime] | None:
    raw = request.args.get("match[version]")
    if raw is None:
        return None
    words = [value.strip() for value in raw.split(",")]
    if not 0 < len(words) <= MATCH_MAX:
        raise TaxiiError(400, "match[version] is malformed")
    if all(word in ("last", "first", "all") for word in words):
        return None  # each object here has one version: it is the first, the last and all
    moments = {parse_time(word) for word in words if word not in ("last", "first", "all")}
    if None in moments:
        raise TaxiiError(400, "match[version] is malformed",
                         "Give last, first, all or STIX timestamps such as "
                         "2024-05-01T12:00:00.000Z.")  # fmt: skip
    return frozenset(m for m in moments if m is not None)


def cursor_of(position: Position) -> str:
    """The ``next`` value that names ``position``: unpadded base64url of a JSON list."""
    raw = json.dumps([show_time(position.added), position.incident, position.object_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _uncursor(text: str) -> Position:
    try:
        if len(text) > 400:
            raise ValueError
        added, incident, object_id = json.loads(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        )
        moment = parse_time(added)
        if moment is None or not isinstance(incident, str) or len(incident) > 32:
            raise ValueError
        if not isinstance(object_id, str):
            raise ValueError
        if object_id != AFTER_ALL and not STIX_ID.fullmatch(object_id):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise TaxiiError(
            400,
            "next is not one this server gave out",
            "Pass the next value of the previous page unchanged.",
        ) from None
    return Position(moment, incident, object_id)


def request_filters() -> Filters:
    """The request's filters (§3.4.x), or 400 for a malformed one."""
    added_after = None
    if "added_after" in request.args:
        added_after = parse_time(request.args["added_after"].strip())
        if added_after is None:
            raise TaxiiError(400, "added_after is malformed",
                             "Give a UTC timestamp such as 2024-05-01T12:00:00.000Z.")  # fmt: skip
    limit = MAX_LIMIT
    if "limit" in request.args:
        limit = parse_limit(request.args["limit"])
    after = _uncursor(request.args["next"]) if "next" in request.args else None
    return Filters(added_after, limit, after, _values("match[type]", _TYPE),
                   _values("match[id]", STIX_ID), _versions(),
                   _values("match[spec_version]", _SPEC_VERSION),
                   unknown_parameters())  # fmt: skip


def parse_limit(raw: str) -> int:
    """A ``limit`` value: 1 to 4 ASCII digits, 1 to :data:`MAX_LIMIT`; else 400.

    The whole value is checked, not a prefix of it: no sign, space, other
    script's digits or long run of zeros gets through.
    """
    if _LIMIT.fullmatch(raw) is None or not 1 <= int(raw) <= MAX_LIMIT:
        raise TaxiiError(400, "limit is malformed", f"Give a number from 1 to {MAX_LIMIT}.")
    return int(raw)


def unknown_parameters() -> tuple[str, ...]:
    """The names of the query parameters this server does not read (the first few, cut short)."""
    names = sorted({name for name in request.args if name not in KNOWN_PARAMETERS})
    return tuple(name[:40] for name in names[:AUDIT_FIRST])


def object_version(obj: dict[str, Any]) -> str:
    """An object's version: ``modified``, or ``created`` for one that is never modified."""
    return str(obj.get("modified") or obj["created"])
