"""Import an external feed (a CSV file) through a column mapping.

Every row ends up accounted for: added, already present from an earlier
import of the same feed, or rejected with its reason. Feed rows become
incidents of the same shape as reviewers' records, flagged external and
unverified. A row's id is derived from the feed's name and the row's
mapped content (plus a counter for identical rows), so importing the same
file again adds nothing, and nothing from an ignored column, such as a
ship's name, goes into it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from incident_db.corroboration import Window, link_close_incidents, located
from incident_db.errors import FeedError, RecordError
from incident_db.mapping import LIST_FIELDS, SLUG_FIELDS, FeedMapping, normalise_word
from incident_db.models import FeedImport, core_table
from incident_db.narrative import count_perpetrators
from incident_db.record import MAX_LINE_TEXT, MAX_LONG_TEXT, IncidentRecord, parse_record
from incident_db.store import (
    Source,
    When,
    content_sha256,
    existing_digests,
    incident_row,
    provenance_row,
    tag_rows,
    write_incidents,
)

_TIME = re.compile(r"([0-9]{1,2}):?([0-9]{2})(?:\s*(UTC|GMT|Z|LT|local))?", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RowRejected(Exception):  # noqa: N818 - a verdict on one row, not a program error
    """One row cannot be imported; the message is the reason."""


@dataclass(frozen=True)
class FeedRow:
    """A feed row turned into an incident, with where it was in the file."""

    row: int  # the record's number, 1 for the first row after the header
    line: int  # the file line the record starts on (descriptions span lines)
    record: IncidentRecord
    when: When
    source: str  # the feed's name, with the row's sub-source if the mapping has one
    digest: str


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported, and why."""

    row: int
    line: int
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What an import did with every row."""

    feed: str
    rows: int
    added: int
    already_present: int
    rejected: tuple[Rejection, ...]
    links_found: int


def _slug(mapping: FeedMapping, field: str, raw: str) -> str | None:
    """The slug a feed word maps to; None for a word mapped to nothing."""
    table = mapping.values.get(field, {})
    word = normalise_word(raw)
    slug = table.get(word, table.get("*"))
    if slug is None:
        raise RowRejected(f"{field}: no mapping for {raw!r}")
    return slug or None


def _coordinate(raw: str, name: str, bound: float) -> tuple[float, int]:
    try:
        value = float(raw)
    except ValueError:
        raise RowRejected(f"{name}: {raw!r} is not a number") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise RowRejected(f"{name}: {raw!r} is out of range")
    decimals = min(6, len(raw.strip().partition(".")[2].rstrip("0")))
    return round(value, decimals), decimals


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Windows-1252, once or more (a quirk of some feeds)."""
    for _ in range(3):
        if "Ã" not in text and "â€" not in text:
            break
        try:
            text = text.encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
    return text


def _clean(text: str, limit: int, *, multiline: bool) -> str | None:
    text = repair_mojibake(text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text) if multiline else " ".join(text.split())
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def _when(mapping: FeedMapping, date_raw: str | None, time_raw: str | None) -> When:
    day = None
    if date_raw is not None:
        try:
            day = dt.datetime.strptime(date_raw.strip(), mapping.date_format).date()
        except ValueError:
            raise RowRejected(f"date: {date_raw!r} is not {mapping.date_format}") from None
    if time_raw is None:
        return When(local_date=day)
    match = _TIME.fullmatch(time_raw.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise RowRejected(f"time: {time_raw!r} is not HH:MM")
    clock = f"{int(match[1]):02d}:{match[2]}"
    zone = (match[3] or mapping.bare_time).lower()
    if zone in ("utc", "gmt", "z"):
        if day is None:
            return When()
        at = dt.datetime.combine(day, dt.time(int(clock[:2]), int(clock[3:])))
        # the feed's date goes with its UTC time; local date may differ near midnight
        return When(local_date=day, occurred_utc=at)
    return When(local_date=day, local_time=clock)


def _document(mapping: FeedMapping, cell: dict[str, str | None]) -> dict[str, Any]:
    """The cso-incident/v1 members a row gives, before its id is known."""
    obj: dict[str, Any] = {"schema": "cso-incident/v1"}
    for field in sorted(SLUG_FIELDS):
        raw = cell.get(field)
        value = _slug(mapping, field, raw) if raw is not None else None
        value = value or mapping.constants.get(field)
        if value:
            obj[field] = value
    for field in sorted(LIST_FIELDS):
        raw = cell.get(field)
        words = [] if raw is None else raw.split(mapping.list_separator)
        mapped = [_slug(mapping, field, w) for w in words if w.strip()]
        if mapped:
            obj[field] = sorted({m for m in mapped if m})
    for field in ("perpetrators_min", "perpetrators_max"):
        raw = cell.get(field)
        if raw is not None:
            if not raw.strip().isdigit():
                raise RowRejected(f"{field}: {raw!r} is not a whole number")
            obj[field] = int(raw)
    lat, lon = cell.get("latitude"), cell.get("longitude")
    if (lat is None) != (lon is None):
        raise RowRejected("position: latitude and longitude come together")
    if lat is not None and lon is not None:
        (y, dy), (x, dx) = _coordinate(lat, "latitude", 90), _coordinate(lon, "longitude", 180)
        obj["position"] = {"lat": y, "lon": x, "decimals": max(dy, dx)}
    place = None if cell.get("place") is None else _clean(cell["place"] or "", MAX_LINE_TEXT,
                                                          multiline=False)  # fmt: skip
    narrative = cell.get("narrative")
    text = None if narrative is None else _clean(narrative, MAX_LONG_TEXT, multiline=True)
    if place:
        obj["place"] = place
    kind = str(obj.get("incident_type", ""))
    if "outcome" not in obj and kind in mapping.outcome_from_incident_type:
        obj["outcome"] = mapping.outcome_from_incident_type[kind]
    if text:
        obj["narrative"] = text
        _derive(mapping, obj, text)
    return obj


def _derive(mapping: FeedMapping, obj: dict[str, Any], text: str) -> None:
    """Fill fields the columns left empty from the mapping's keyword rules."""
    from_columns = set(obj)
    for rule in mapping.derive:
        if rule.field in from_columns or not rule.pattern.search(text):
            continue
        if rule.unless is not None and rule.unless.search(text):
            continue
        if rule.field in LIST_FIELDS:
            values = obj.setdefault(rule.field, [])
            if rule.value not in values:
                values.append(rule.value)
        else:
            obj.setdefault(rule.field, rule.value)
    if mapping.perpetrators_from_narrative and "perpetrators_min" not in obj:
        counted = count_perpetrators(text)
        if counted is not None:
            obj["perpetrators_min"], obj["perpetrators_max"] = counted


def _rows(path: Path, mapping: FeedMapping) -> Iterator[tuple[int, int, dict[str, str]]]:
    """Numbered rows of the CSV file as column → text, after checking its header."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise FeedError(f"{path.name}: empty file, no header")
        if len(set(header)) != len(header):
            raise FeedError(f"{path.name}: a column name is repeated in the header")
        used = set(mapping.columns.values())
        missing = sorted(used - set(header))
        if missing:
            raise FeedError(f"{path.name}: no column {missing[0]!r}, which the mapping reads")
        unexpected = [c for c in header if c not in used and c not in mapping.ignored]
        if unexpected:
            raise FeedError(
                f"{path.name}: column {unexpected[0]!r} is neither mapped nor ignored by "
                f"mapping {mapping.name}"
            )
        line = reader.line_num
        for number, values in enumerate(reader, start=1):
            start, line = line + 1, reader.line_num
            if len(values) != len(header):
                yield number, start, {"": f"{len(values)} fields, the header has {len(header)}"}
                continue
            yield number, start, dict(zip(header, values, strict=True))


def read_feed(path: Path, mapping: FeedMapping) -> tuple[int, list[FeedRow], list[Rejection]]:
    """Convert every row; return the row count, the incidents and the rejections."""
    rows: list[FeedRow] = []
    rejected: list[Rejection] = []
    seen: Counter[str] = Counter()
    count = 0
    try:
        for number, line, values in _rows(path, mapping):
            count = number
            try:
                if "" in values:
                    raise RowRejected(values[""])
                rows.append(_convert(mapping, number, line, values, seen))
            except (RowRejected, RecordError) as error:
                reason = error.diagnostics() if isinstance(error, RecordError) else str(error)
                rejected.append(Rejection(number, line, reason))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FeedError(f"{path.name}: cannot read: {error}") from None
    return count, rows, rejected


def _convert(
    mapping: FeedMapping, number: int, line: int, values: dict[str, str], seen: Counter[str]
) -> FeedRow:
    cell: dict[str, str | None] = {}
    for field, column in mapping.columns.items():
        raw = values[column]
        cell[field] = None if raw.strip() in mapping.nulls else raw
    when = _when(mapping, cell.get("date"), cell.get("time"))
    obj = _document(mapping, cell)
    sub = cell.get("source")
    source = mapping.name if sub is None else f"{mapping.name}/{normalise_word(sub)}"[:100]
    digest = content_sha256(
        obj | {"when": [str(when.local_date), when.local_time, str(when.occurred_utc)],
               "source": source}
    )  # fmt: skip
    seen[digest] += 1
    key = f"{mapping.name}\n{digest}\n{seen[digest]}".encode()
    obj["id"] = hashlib.sha256(key).hexdigest()[:32]
    record = parse_record(obj, unverified=True)
    return FeedRow(number, line, record, when, source, content_sha256(record.to_json()))


def import_feed(
    engine: Engine,
    path: Path,
    mapping: FeedMapping,
    *,
    window: Window | None = None,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Read ``path`` with ``mapping`` and store its new rows in one transaction."""
    count, rows, rejected = read_feed(path, mapping)
    file_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    added_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
    with engine.begin() as connection:
        stored = existing_digests(connection, (r.record.id for r in rows))
        new = [r for r in rows if r.record.id not in stored]
        incidents = [
            incident_row(r.record, r.when, origin="external", digest=r.digest,
                         signer_fingerprint=None, added_at=added_at)
            for r in new
        ]  # fmt: skip
        tags = [tag for r in new for tag in tag_rows(r.record)]
        provenance = [
            provenance_row(Source("external-feed", r.source, file_sha256), r.record.id, r.row,
                           added_at, file_line=r.line)
            for r in new
        ]  # fmt: skip
        write_incidents(connection, incidents, tags, provenance, [])
        connection.execute(
            insert(core_table(FeedImport)),
            {"feed": mapping.name, "file_sha256": file_sha256, "imported_at": added_at,
             "rows": count, "added": len(new), "already_present": len(rows) - len(new),
             "rejected": len(rejected), "credit": mapping.credit},
        )  # fmt: skip
        found = link_close_incidents(connection, located(incidents), window or Window())
    return ImportReport(mapping.name, count, len(new), len(rows) - len(new), tuple(rejected),
                        found)  # fmt: skip
