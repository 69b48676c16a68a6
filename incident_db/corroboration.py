"""Corroboration: incidents close in time and space are linked as possible duplicates.

Two reports of one robbery, from a reviewer and from IMB, or from two
crews, should be read together, not counted twice without a warning. After
every ingest and import the new incidents are compared with all others:
within ``hours`` (default 24) and ``nm`` nautical miles (default 5) they get
a ``possible-duplicate`` link. A person then decides, and ``merge`` folds
one into the other while keeping where both came from.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from incident_db import tlp
from incident_db.errors import MergeError
from incident_db.geo import distance_nm, latitude_margin
from incident_db.models import Incident, IncidentLink, Provenance, core_table
from incident_db.store import CHUNK, bump_versions, write

POSSIBLE_DUPLICATE = "possible-duplicate"


@dataclass(frozen=True)
class Window:
    """How close two incidents must be to be linked."""

    hours: float = 24.0
    nm: float = 5.0


def _insert_ignoring_duplicates(connection: Connection, rows: list[dict[str, object]]) -> None:
    """Insert links, skipping any that exist (both supported databases have ON CONFLICT)."""
    if not rows:
        return
    table = core_table(IncidentLink)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), CHUNK):
        statement = dialect.insert(table).on_conflict_do_nothing()
        connection.execute(statement, rows[start : start + CHUNK])


@dataclass(frozen=True)
class Located:
    """Where and when an incident happened, as far as linking needs."""

    id: str
    latitude: float
    longitude: float
    approx_utc: dt.datetime
    approx_day: int


def located(rows: Iterable[Mapping[str, Any]]) -> list[Located]:
    """The incident rows (or row mappings) that have both a position and a time."""
    return [
        Located(r["id"], r["latitude"], r["longitude"], r["approx_utc"], r["approx_day"])
        for r in rows
        if r["latitude"] is not None and r["approx_day"] is not None
    ]


def link_close_incidents(connection: Connection, new: Sequence[Located], window: Window) -> int:
    """Link each of ``new`` to every other live incident within ``window``; return new pairs.

    The SQL join narrows by day and latitude on an index; the exact
    distance and time difference are then checked here.
    """
    # instants within h hours fall on days at most ceil(h / 24) apart
    days = math.ceil(window.hours / 24)
    margin = latitude_margin(window.nm)
    by_id = {item.id: item for item in new}
    pairs: dict[tuple[str, str], dict[str, object]] = {}
    for start in range(0, len(new), CHUNK):
        for mine_id, other, lat, lon, when in _neighbours(
            connection, new[start : start + CHUNK], days, margin
        ):
            mine = by_id[mine_id]
            other_utc = when if isinstance(when, dt.datetime) else dt.datetime.fromisoformat(when)
            hours = abs((mine.approx_utc - other_utc).total_seconds()) / 3600
            if hours > window.hours:
                continue
            miles = distance_nm(mine.latitude, mine.longitude, lat, lon)
            if miles > window.nm:
                continue
            first, second = sorted((mine_id, other))
            pairs[(first, second)] = {
                "incident_id": first, "other_id": second, "relation": POSSIBLE_DUPLICATE,
                "origin": "found", "distance_nm": round(miles, 2), "hours_apart": round(hours, 2),
            }  # fmt: skip
    for pair in _already_linked(connection, list(by_id)):
        pairs.pop(pair, None)
    write(connection, IncidentLink, list(pairs.values()))
    # a link is exported with the incident that holds it: an older one has a new version
    bump_versions(connection, [first for first, _second in pairs if first not in by_id])
    return len(pairs)


# The new incidents are sent as data (arrays on PostgreSQL, a VALUES list on
# SQLite) rather than looked up by id: each probe then goes straight to the
# (day, latitude) index. Plain SQL, since building a VALUES construct of a
# thousand bound parameters in SQLAlchemy costs more than running it.
_NEIGHBOURS = """
SELECT probe.id, incident.id, incident.latitude, incident.longitude, incident.approx_utc
FROM {probe}
JOIN incident ON incident.approx_day BETWEEN probe.day - {days} AND probe.day + {days}
 AND incident.latitude BETWEEN probe.lat - {margin!r} AND probe.lat + {margin!r}
WHERE incident.id <> probe.id AND incident.merged_into IS NULL
 AND incident.longitude IS NOT NULL
"""


def _neighbours(
    connection: Connection, chunk: Sequence[Located], days: int, margin: float
) -> list[tuple[Any, ...]]:
    """Rows (probe id, other id, latitude, longitude, approx_utc) near each of ``chunk``."""
    if connection.dialect.name == "postgresql":
        probe = "unnest(%s::text[], %s::int[], %s::float8[]) AS probe(id, day, lat)"
        params: Any = (
            [c.id for c in chunk],
            [c.approx_day for c in chunk],
            [c.latitude for c in chunk],
        )
    else:
        marks = ", ".join("(?, ?, ?)" for _ in chunk)
        # only placeholders are formatted in: the values go as parameters
        rows = f"(VALUES {marks})"
        probe = f"(SELECT column1 AS id, column2 AS day, column3 AS lat FROM {rows}) AS probe"  # noqa: S608
        params = tuple(v for c in chunk for v in (c.id, c.approx_day, c.latitude))
    statement = _NEIGHBOURS.format(probe=probe, days=int(days), margin=float(margin))
    return list(connection.exec_driver_sql(statement, params))


def _already_linked(connection: Connection, ids: Sequence[str]) -> set[tuple[str, str]]:
    """The possible-duplicate pairs already stored that involve any of ``ids``."""
    links = core_table(IncidentLink)
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        query = select(links.c.incident_id, links.c.other_id).where(
            links.c.relation == POSSIBLE_DUPLICATE,
            or_(links.c.incident_id.in_(chunk), links.c.other_id.in_(chunk)),
        )
        found.update((first, second) for first, second in connection.execute(query))
    return found


def relink_all(connection: Connection, window: Window) -> tuple[int, int]:
    """Drop found links and find them again with ``window``; return (dropped, found)."""
    links = core_table(IncidentLink)
    dropped = connection.execute(links.delete().where(links.c.origin == "found")).rowcount
    table = core_table(Incident)
    live = select(table.c.id, table.c.latitude, table.c.longitude, table.c.approx_utc,
                  table.c.approx_day).where(table.c.merged_into.is_(None))  # fmt: skip
    found = located(dict(row._mapping) for row in connection.execute(live))
    return dropped, link_close_incidents(connection, found, window)


@dataclass(frozen=True)
class Merged:
    """What a merge did: provenance rows moved, and the kept incident's level before and after."""

    moved: int
    tlp_before: str
    tlp_after: str
    #: the absorbed incident's level (the cause when ``tlp_after`` is stricter)
    absorbed_tlp: str

    @property
    def tlp_raised(self) -> bool:
        """Whether the kept incident took a stricter level from the one it absorbed."""
        return self.tlp_before != self.tlp_after


def merge(connection: Connection, keep: str, absorb: str) -> Merged:
    """Fold incident ``absorb`` into ``keep``; say how many provenance rows moved.

    ``absorb`` stays in the database marked as merged, so nothing is lost,
    but briefs and exports count only ``keep``. Every provenance row of
    ``absorb`` (its batch line or feed row, and those of incidents merged
    into it before) now also vouches for ``keep``, and goes out with it:
    so ``keep`` takes the stricter of the two TLP levels, or a RED report's
    batch and line would leave with a GREEN incident.
    """
    if keep == absorb:
        raise MergeError("an incident cannot be merged into itself")
    table = core_table(Incident)
    found = {
        row.id: (row.merged_into, row.tlp)
        for row in connection.execute(
            select(table.c.id, table.c.merged_into, table.c.tlp).where(
                table.c.id.in_([keep, absorb])
            )
        )
    }
    for ident in (keep, absorb):
        if ident not in found:
            raise MergeError(f"no incident {ident}")
        if found[ident][0] is not None:
            raise MergeError(f"incident {ident} is already merged into {found[ident][0]}")
    before, absorbed_level = found[keep][1], found[absorb][1]
    after = tlp.strictest(before, absorbed_level)
    if after != before:
        connection.execute(update(table).where(table.c.id == keep).values(tlp=after))
    provenance = core_table(Provenance)
    moved = connection.execute(
        update(provenance).where(provenance.c.incident_id == absorb).values(incident_id=keep)
    ).rowcount
    connection.execute(update(table).where(table.c.merged_into == absorb).values(merged_into=keep))
    connection.execute(update(table).where(table.c.id == absorb).values(merged_into=keep))
    _insert_ignoring_duplicates(
        connection,
        [{"incident_id": absorb, "other_id": keep, "relation": "merged-into", "origin": "merge",
          "distance_nm": None, "hours_apart": None}],
    )  # fmt: skip
    # both change what a partner receives: one is gone, the other vouched for more
    changed = [keep, absorb]
    if after != before:
        # a link is marked with the stricter of its ends: links to ``keep`` changed too
        links = core_table(IncidentLink)
        changed += connection.scalars(
            select(links.c.incident_id).where(
                links.c.other_id == keep, links.c.relation != "merged-into"
            )
        ).all()
    bump_versions(connection, changed)
    return Merged(int(moved), before, after, absorbed_level)
