"""Standard exports of the live incidents: CSV, GeoJSON (RFC 7946), STIX 2.1 and MISP.

All of them read the same stream of :class:`ExportedIncident`, one per
incident that has not been merged into another, with its tags, every
provenance row (those of incidents merged into it included) and its links.

Every stream is cut to a TLP *clearance* (``incident_db/tlp.py``): an
incident comes out only if ``tlp.allows(clearance, level)``, so TLP:RED
never does, whatever the caller asks for. Each link names the level of the
incident at its other end (``other_tlp``), so a writer can leave out a link
to an incident its reader may not see.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_, select

from incident_db import tlp
from incident_db.attachments import attachments_by_incident
from incident_db.models import (
    CREW_COLUMNS,
    Incident,
    IncidentLink,
    IncidentTag,
    Provenance,
    core_table,
)
from incident_db.record import format_offset
from incident_db.store import FACETS

#: rows fetched per query while streaming
PAGE = 2000
#: the members of ``ExportedIncident.values()``, in order: the CSV columns
EXPORT_FIELDS = (
    "id", "origin", "category", "report_type", "incident_type", "local_date", "local_time",
    "utc_offset", "occurred_utc", "latitude", "longitude", "position_decimals", "place",
    "location_type", "vessel_type", "vessel_status", "perpetrators_min", "perpetrators_max",
    "boarding_method", "outcome", *FACETS, *CREW_COLUMNS, "suspect_craft_count",
    "suspect_craft_type", "suspect_craft_description", "stowaway_count",
    "stowaway_embarkation_port", "stowaway_embarkation_berth", "stowaway_hiding_place",
    "stowaway_how_found", "cyber_vector", "cyber_impact", "narrative", "verification_status",
    "grade", "signer_fingerprint", "tlp",
)  # fmt: skip


@dataclass(frozen=True)
class ExportedIncident:
    """One live incident with everything the exports show."""

    row: Any  # the incident row
    tags: dict[str, list[str]] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    #: files forwarded with reviewer batches: sha256, name, media_type, size (SPEC §16.9)
    attachments: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> dict[str, Any]:
        """The incident as one flat mapping of plain JSON values (lists for tags)."""
        r = self.row
        out: dict[str, Any] = {
            "id": r.id,
            "origin": r.origin,
            "category": r.category,
            "report_type": r.report_type,
            "incident_type": r.incident_type,
            "local_date": None if r.local_date is None else r.local_date.isoformat(),
            "local_time": r.local_time,
            "utc_offset": None
            if r.utc_offset_minutes is None
            else format_offset(r.utc_offset_minutes),
            "occurred_utc": None if r.occurred_utc is None else _utc(r.occurred_utc),
            "latitude": r.latitude,
            "longitude": r.longitude,
            "position_decimals": r.position_decimals,
            "place": r.place,
            "location_type": r.location_type,
            "vessel_type": r.vessel_type,
            "vessel_status": r.vessel_status,
            "perpetrators_min": r.perpetrators_min,
            "perpetrators_max": r.perpetrators_max,
            "boarding_method": r.boarding_method,
            "outcome": r.outcome,
        }
        for facet in FACETS:
            out[facet] = sorted(self.tags.get(facet, []))
        for column in CREW_COLUMNS:
            out[column] = getattr(r, column)
        for name in ("suspect_craft_count", "suspect_craft_type", "suspect_craft_description",
                     "stowaway_count", "stowaway_embarkation_port", "stowaway_embarkation_berth",
                     "stowaway_hiding_place", "stowaway_how_found", "cyber_vector",
                     "cyber_impact", "narrative", "verification_status", "grade",
                     "signer_fingerprint", "tlp"):  # fmt: skip
            out[name] = getattr(r, name)
        return out


def _utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_incidents(
    connection: Connection,
    where: ColumnElement[bool] | None = None,
    *,
    clearance: str = tlp.EXPORT_MAX,
) -> Iterator[ExportedIncident]:
    """Every live incident ``clearance`` allows, in id order, a page at a time.

    ``where`` is a condition on ``core_table(Incident)`` (the members' service
    passes its filter's). Only levels ``tlp.allows(clearance, level)`` come
    out: never TLP:RED, and nothing at all for a clearance that is not a level.
    """
    levels = tlp.allowed_levels(clearance)
    if not levels:
        return
    table = core_table(Incident)
    after = ""
    while True:
        query = (
            select(table)
            .where(table.c.merged_into.is_(None), table.c.id > after, table.c.tlp.in_(levels))
            .order_by(table.c.id)
            .limit(PAGE)
        )
        if where is not None:
            query = query.where(where)
        rows = list(connection.execute(query))
        if not rows:
            return
        # checked again here, row by row: the SQL condition is not the only guard
        yield from exported_incidents(
            connection, [row for row in rows if tlp.allows(clearance, row.tlp)],
            clearance=clearance,
        )  # fmt: skip
        after = rows[-1].id


def exported_incidents(
    connection: Connection, rows: Sequence[Any], *, clearance: str | None = None
) -> list[ExportedIncident]:
    """The incident ``rows`` (already fetched, any order) with their tags, sources, links, files.

    The rows are not filtered: the caller chose them for its clearance. With
    ``clearance``, a link whose other end is a stored incident (merged or
    not) at a level the clearance does not allow is left out, so not even
    that incident's id goes with the file; so is a provenance row whose
    original incident (one merged into this) is at such a level.
    """
    if not rows:
        return []
    ids = [r.id for r in rows]
    tags, sources, links = _details(connection, ids, clearance)
    files = attachments_by_incident(connection, ids)
    return [ExportedIncident(row, tags.get(row.id, {}), sources.get(row.id, []),
                             links.get(row.id, []), files.get(row.id, []))
            for row in rows]  # fmt: skip


def _details(
    connection: Connection, ids: list[str], clearance: str | None = None
) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[dict[str, Any]]], dict[str, list[Any]]]:
    tag_table, origin, link = (
        core_table(IncidentTag),
        core_table(Provenance),
        core_table(IncidentLink),
    )
    tags: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for incident_id, facet, value in connection.execute(
        select(tag_table.c.incident_id, tag_table.c.facet, tag_table.c.value).where(
            tag_table.c.incident_id.in_(ids)
        )
    ):
        tags[incident_id][facet].append(value)
    sources: dict[str, list[dict[str, Any]]] = defaultdict(list)
    query = select(origin).where(origin.c.incident_id.in_(ids)).order_by(origin.c.id)
    provenance = list(connection.execute(query))
    # a merge moves the absorbed incident's rows here, and its level may be (or later be
    # made) stricter than this one's: its batch and line go only where that level may go
    first = _levels(connection, sorted({row.original_id for row in provenance}))
    for row in provenance:
        level = first.get(row.original_id, (None, False))[0]
        if clearance is not None and level is not None and not tlp.allows(clearance, level):
            continue
        sources[row.incident_id].append(
            {"kind": row.kind, "source": row.source, "row": row.row, "file_line": row.file_line,
             "signer_fingerprint": row.signer_fingerprint, "original_id": row.original_id}
        )  # fmt: skip
    links: dict[str, list[Any]] = defaultdict(list)
    query = select(link).where(or_(link.c.incident_id.in_(ids), link.c.other_id.in_(ids)))
    wanted = set(ids)
    found = []
    for row in connection.execute(query):
        if row.relation == "merged-into":
            continue
        for mine, other in ((row.incident_id, row.other_id), (row.other_id, row.incident_id)):
            if mine in wanted:
                found.append((mine, other, row))
    levels = _levels(connection, sorted({other for _, other, _ in found}))
    for mine, other, row in found:
        level, live = levels.get(other, (None, False))
        if clearance is not None and level is not None and not tlp.allows(clearance, level):
            continue
        links[mine].append(
            {"relation": row.relation, "other": other, "origin": row.origin,
             "direction": "out" if mine == row.incident_id else "in",
             "distance_nm": row.distance_nm, "hours_apart": row.hours_apart,
             "other_tlp": level if live else None}
        )  # fmt: skip
    return tags, sources, links


def _levels(connection: Connection, ids: list[str]) -> dict[str, tuple[str, bool]]:
    """The TLP level of each of ``ids`` that is stored, and whether it is live (not merged)."""
    table = core_table(Incident)
    levels: dict[str, tuple[str, bool]] = {}
    for start in range(0, len(ids), PAGE):
        query = select(table.c.id, table.c.tlp, table.c.merged_into).where(
            table.c.id.in_(ids[start : start + PAGE])
        )
        levels.update((row.id, (row.tlp, row.merged_into is None))
                      for row in connection.execute(query))  # fmt: skip
    return levels
