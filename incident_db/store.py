"""Turning incident records into table rows, and writing many of them at once.

Both ways in, reviewer batches (``ingest.py``) and external feeds
(``feeds.py``), end here, so an incident is stored the same whichever way it
came. Writes use SQLAlchemy Core ``executemany``: a million records must go
in at tens of thousands a second, which per-object ORM sessions cannot do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from incident_db.brief.trend import kind
from incident_db.models import (
    CREW_COLUMNS,
    Base,
    Incident,
    IncidentLink,
    IncidentTag,
    Provenance,
    core_table,
)
from incident_db.places import place_key
from incident_db.record import IncidentRecord
from incident_db.stix_ids import incident_uuid, located_at_uuid
from incident_db.tlp import default_for

#: the record's multi-valued fields, stored as ``incident_tag`` facets
FACETS = ("weapons", "boarding_points", "stolen", "actions_taken", "reported_to", "cyber_systems")
_EPOCH = dt.date(1970, 1, 1)
#: bound parameters per statement, well under SQLite's limit
CHUNK = 500


@dataclass(frozen=True)
class When:
    """What is known of an incident's time; feeds often know less than records."""

    local_date: dt.date | None = None
    local_time: str | None = None  # "HH:MM" on the local wall clock
    utc_offset_minutes: int | None = None
    occurred_utc: dt.datetime | None = None  # naive, UTC

    @classmethod
    def of_record(cls, record: IncidentRecord) -> When:
        """The time of a cso-incident/v1 record: local time and offset, or nothing."""
        local = record.occurred_local
        if local is None:
            return cls()
        return cls(local.date(), local.strftime("%H:%M"), record.utc_offset_minutes,
                   record.occurred_utc)  # fmt: skip

    def approx_utc(self) -> dt.datetime | None:
        """UTC if known; else the local time (noon if none) taken as UTC, within ±14 h."""
        if self.occurred_utc is not None:
            return self.occurred_utc
        if self.local_date is None:
            return None
        hour, minute = (12, 0) if self.local_time is None else map(int, self.local_time.split(":"))
        return dt.datetime.combine(self.local_date, dt.time(hour, minute))


@dataclass(frozen=True)
class Source:
    """Where a batch of incidents comes from, for their provenance rows."""

    kind: str  # "reviewer-batch" or "external-feed"
    name: str  # batch id, or feed name (with its sub-source)
    file_sha256: str
    signer_fingerprint: str | None = None


def content_sha256(document: Mapping[str, Any]) -> str:
    """SHA-256 of a record's JSON with sorted keys: equal records, equal digests."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def incident_row(
    record: IncidentRecord,
    when: When,
    *,
    origin: str,
    digest: str,
    signer_fingerprint: str | None,
    added_at: dt.datetime,
) -> dict[str, Any]:
    """The ``incident`` row for ``record``."""
    approx = when.approx_utc()
    position, craft, stow, cyber = (
        record.position, record.suspect_craft, record.stowaways, record.cyber
    )  # fmt: skip
    verification = record.verification
    row: dict[str, Any] = {
        "id": record.id,
        "origin": origin,
        "category": record.category,
        "report_type": record.report_type,
        "incident_type": record.incident_type,
        "kind": kind(record.incident_type, record.category, record.outcome),
        "local_date": when.local_date,
        "local_time": when.local_time,
        "utc_offset_minutes": when.utc_offset_minutes,
        "occurred_utc": when.occurred_utc,
        "approx_utc": approx,
        "approx_day": None if approx is None else (approx.date() - _EPOCH).days,
        "latitude": None if position is None else position.lat,
        "longitude": None if position is None else position.lon,
        "position_decimals": None if position is None else position.decimals,
        "place": record.place,
        "place_key": place_key(record.place),
        "location_type": record.location_type,
        "vessel_type": record.vessel_type,
        "vessel_status": record.vessel_status,
        "perpetrators_min": record.perpetrators_min,
        "perpetrators_max": record.perpetrators_max,
        "boarding_method": record.boarding_method,
        "outcome": record.outcome,
        "suspect_craft_count": None if craft is None else craft.count,
        "suspect_craft_type": None if craft is None else craft.type,
        "suspect_craft_description": None if craft is None else craft.description,
        "stowaway_count": None if stow is None else stow.count,
        "stowaway_embarkation_port": None if stow is None else stow.embarkation_port,
        "stowaway_embarkation_berth": None if stow is None else stow.embarkation_berth,
        "stowaway_hiding_place": None if stow is None else stow.hiding_place,
        "stowaway_how_found": None if stow is None else stow.how_found,
        "cyber_vector": None if cyber is None else cyber.vector,
        "cyber_impact": None if cyber is None else cyber.impact,
        "narrative": record.narrative,
        "verification_status": "unverified" if verification is None else verification.status,
        "grade": None if verification is None else verification.grade,
        "signer_fingerprint": signer_fingerprint,
        "content_sha256": digest,
        "merged_into": None,
        "added_at": added_at,
        "tlp": default_for(origin),
        "version_at": added_at,
        "stix_uuid": incident_uuid(record.id),
        "stix_located_uuid": located_at_uuid(record.id),
    }
    crew = record.crew
    for column in CREW_COLUMNS:
        row[column] = crew.get(column[5:])
    return row


def tag_rows(record: IncidentRecord) -> list[dict[str, str]]:
    """The ``incident_tag`` rows for ``record``'s multi-valued fields."""
    rows: list[dict[str, str]] = []
    for facet in FACETS:
        if facet == "cyber_systems":
            values: Sequence[str] = () if record.cyber is None else record.cyber.systems
        else:
            values = getattr(record, facet)
        rows.extend({"incident_id": record.id, "facet": facet, "value": v} for v in values)
    return rows


def link_rows(record: IncidentRecord) -> list[dict[str, Any]]:
    """The reviewer's own links (duplicate-of, corroborates) from ``record``."""
    return [
        {"incident_id": record.id, "other_id": link.id, "relation": link.relation,
         "origin": "reviewer", "distance_nm": None, "hours_apart": None}
        for link in record.links
    ]  # fmt: skip


def provenance_row(
    source: Source, incident_id: str, row: int, added_at: dt.datetime, file_line: int | None = None
) -> dict[str, Any]:
    """The ``provenance`` row saying where ``incident_id`` came from."""
    return {
        "incident_id": incident_id,
        "kind": source.kind,
        "source": source.name,
        "row": row,
        "file_line": file_line,
        "file_sha256": source.file_sha256,
        "signer_fingerprint": source.signer_fingerprint,
        "original_id": incident_id,
        "added_at": added_at,
    }


def existing_digests(connection: Connection, ids: Iterable[str]) -> dict[str, str]:
    """Map each of ``ids`` already stored to its content digest."""
    found: dict[str, str] = {}
    pending = list(ids)
    table = core_table(Incident)
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        query = select(table.c.id, table.c.content_sha256).where(table.c.id.in_(chunk))
        found.update((row.id, row.content_sha256) for row in connection.execute(query))
    return found


def write(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table, in bulk.

    SQLAlchemy's own executemany spends more time per row than SQLite does,
    so the rows go to the driver directly: COPY on PostgreSQL, one prepared
    INSERT through ``executemany`` on SQLite, each value passed through the
    column type's own bind processor, as SQLAlchemy would.
    """
    if not rows:
        return
    table = core_table(model)
    dialect = connection.dialect
    columns = list(rows[0])
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    if dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        with cursor.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        return
    if dialect.name != "sqlite":
        connection.execute(insert(table), list(rows))
        return
    # the dialect's own form of each type: SQLite's DateTime writes "… 08:34:32.000000"
    # where the driver alone would write "… 08:34:32", and text compares differently
    processors = [
        (i, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for i, name in enumerate(columns)
    ]
    convert = [(i, p) for i, p in processors if p is not None]
    values = []
    for row in rows:
        value = [row[name] for name in columns]
        for index, process in convert:
            value[index] = process(value[index])
        values.append(tuple(value))
    marks = ", ".join("?" * len(columns))
    # names come from the table definition, values go as parameters
    statement = f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"  # noqa: S608
    connection.exec_driver_sql(statement, values)


def write_incidents(
    connection: Connection,
    incidents: Sequence[dict[str, Any]],
    tags: Sequence[dict[str, Any]],
    provenance: Sequence[dict[str, Any]],
    links: Sequence[dict[str, Any]],
) -> None:
    """Write new incidents with their tags, provenance and reviewer links."""
    write(connection, Incident, incidents)
    write(connection, IncidentTag, tags)
    write(connection, Provenance, provenance)
    write(connection, IncidentLink, links)
    if connection.dialect.name == "postgresql" and len(incidents) > 1000:
        # after a bulk load the planner's statistics are stale, and the
        # corroboration join that follows would scan instead of using its index
        connection.exec_driver_sql("ANALYZE incident")


#: the smallest step between two versions of one incident (``version_at``)
VERSION_STEP = dt.timedelta(milliseconds=1)


def bump_versions(
    connection: Connection, ids: Iterable[str], now: dt.datetime | None = None
) -> None:
    """Mark the stored incidents ``ids`` changed now: a ``version_at`` later than each one's last.

    Partners pull what changed after a moment (TAXII ``added_after``), so a
    change that alters what an incident exports (a link found to it, a merge)
    must move its version on, strictly. One moment serves the whole set:
    whole milliseconds, and after the latest of their previous versions.
    """
    table = core_table(Incident)
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is not None:  # naive values are UTC already
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    pending = list(dict.fromkeys(ids))
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        latest = connection.execute(
            select(func.max(table.c.version_at)).where(table.c.id.in_(chunk))
        ).scalar()
        if latest is None:
            continue
        at = max(moment, latest + VERSION_STEP)
        connection.execute(update(table).where(table.c.id.in_(chunk)).values(version_at=at))
