"""Which incidents a brief covers: a place (with all its names) or a circle, and dates.

Without dates a brief covers the last ``DEFAULT_MONTHS`` months ending on
the day it is made (``resolve_period``): a captain asks what happens there
now, not what happened in 1995. The whole archive is still one option away.

A place is matched by its key (``places.py``), so "Chittagong" finds
"Chittagong Anchorage, Bangladesh" and "Chittagong 'B' Anchorage" alike;
the names merged are reported with the brief. A circle is pre-filtered in
SQL by a box on the indexed latitude, and decided here by great-circle
distance. Merged-away incidents are never counted.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select, true

from incident_db.errors import SelectionError
from incident_db.geo import distance_nm, latitude_margin, longitude_margin
from incident_db.models import CREW_COLUMNS, Incident, IncidentTag, Provenance, core_table
from incident_db.places import place_key

MAX_RADIUS_NM = 1000.0
DEFAULT_MONTHS = 24
COLUMNS = (
    "id", "origin", "category", "incident_type", "local_date", "local_time", "latitude",
    "longitude", "place", "vessel_type", "vessel_status", "perpetrators_min",
    "perpetrators_max", "boarding_method", "outcome", *CREW_COLUMNS, "verification_status",
    "grade",
)  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """What a brief is about. Exactly one of ``place`` and ``near`` is given."""

    place: str | None = None
    near: tuple[float, float] | None = None
    radius_nm: float | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    confirmed_only: bool = False

    def __post_init__(self) -> None:
        if (self.place is None) == (self.near is None):
            raise SelectionError("choose incidents with either --place or --near")
        if self.place is not None and place_key(self.place) is None:
            raise SelectionError("--place needs a name")
        if self.place is not None and self.radius_nm is not None:
            raise SelectionError("--radius-nm goes with --near, not --place")
        if self.near is not None:
            lat, lon = self.near
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise SelectionError("--near must be LAT,LON in decimal degrees")
            radius = self.radius_nm
            if radius is None or not math.isfinite(radius) or not 0 < radius <= MAX_RADIUS_NM:
                raise SelectionError(f"--radius-nm must be above 0 and at most {MAX_RADIUS_NM:g}")
        if self.since and self.until and self.since > self.until:
            raise SelectionError("--since is after --until")

    def describe(self) -> dict[str, Any]:
        """The selection as JSON."""
        return {
            "place": self.place,
            "place_key": place_key(self.place),
            "near": None if self.near is None else {"lat": self.near[0], "lon": self.near[1]},
            "radius_nm": self.radius_nm,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "confirmed_only": self.confirmed_only,
        }


@dataclass(frozen=True)
class Selected:
    """The incidents a brief covers, with their tags and sources."""

    selection: Selection
    rows: tuple[Any, ...]  # rows with the COLUMNS above
    tags: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # id → facet → values
    sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id → (kind, name)
    names: Counter[str] = field(default_factory=Counter)  # place name → incidents


def parse_near(text: str) -> tuple[float, float]:
    """``"22.2,91.7"`` → (22.2, 91.7); SelectionError otherwise."""
    match = re.fullmatch(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s*", text)
    if match is None:
        raise SelectionError(f"--near must be LAT,LON in decimal degrees, not {text!r}")
    return float(match[1]), float(match[2])


def parse_day(text: str, option: str) -> dt.date:
    """A YYYY-MM-DD date for ``option``; SelectionError otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SelectionError(f"{option} must be a date, YYYY-MM-DD, not {text!r}") from None


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months; the 31st becomes the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first_of_next = dt.date(year + (month == 11), (month + 1) % 12 + 1, 1)
    return dt.date(year, month + 1, min(day.day, (first_of_next - dt.timedelta(days=1)).day))


def resolve_period(
    since: dt.date | None,
    until: dt.date | None,
    today: dt.date,
    *,
    whole_archive: bool = False,
) -> tuple[dt.date | None, dt.date | None]:
    """The dates a brief covers when the user gave ``since`` and ``until`` (or not).

    A missing end is today; a missing start is ``DEFAULT_MONTHS`` months
    before the end (the day after, so both ends count: 2024-12-08 to
    2026-12-07). ``whole_archive`` leaves missing ends open instead.
    """
    if whole_archive:
        return since, until
    until = until or today
    return since or shift_months(until, -DEFAULT_MONTHS) + dt.timedelta(days=1), until


def where_clause(selection: Selection) -> ColumnElement[bool]:
    """The SQL condition for the selection (a box for circles, refined later)."""
    table = core_table(Incident)
    parts: list[ColumnElement[bool]] = [table.c.merged_into.is_(None)]
    if selection.place is not None:
        parts.append(table.c.place_key == place_key(selection.place))
    elif selection.near is not None and selection.radius_nm is not None:
        lat, lon = selection.near
        margin = latitude_margin(selection.radius_nm)
        parts.append(table.c.latitude.between(lat - margin, lat + margin))
        wide = longitude_margin(lat, selection.radius_nm)
        if wide is not None and -180 <= lon - wide and lon + wide <= 180:
            parts.append(table.c.longitude.between(lon - wide, lon + wide))
    if selection.since is not None:
        parts.append(table.c.local_date >= selection.since)
    if selection.until is not None:
        parts.append(table.c.local_date <= selection.until)
    if selection.confirmed_only:
        parts.append(table.c.verification_status == "confirmed")
    return and_(true(), *parts)


def select_rows(
    connection: Connection, selection: Selection, columns: tuple[str, ...]
) -> list[Any]:
    """The ``columns`` of every incident the selection covers, by local date."""
    table = core_table(Incident)
    wanted = dict.fromkeys((*columns, "id", "latitude", "longitude"))
    query = select(*(table.c[name] for name in wanted)).where(where_clause(selection))
    rows = list(connection.execute(query.order_by(table.c.local_date, table.c.id)))
    if selection.near is not None:
        lat, lon = selection.near
        radius = selection.radius_nm or 0.0
        rows = [r for r in rows if distance_nm(lat, lon, r.latitude, r.longitude) <= radius]
    return rows


def select_incidents(connection: Connection, selection: Selection) -> Selected:
    """Fetch the incidents, tags and sources the selection covers."""
    table = core_table(Incident)
    condition = where_clause(selection)
    rows = select_rows(connection, selection, COLUMNS)
    wanted = {r.id for r in rows}
    tags: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    tag_table = core_table(IncidentTag)
    tag_query = select(tag_table.c.incident_id, tag_table.c.facet, tag_table.c.value).join(
        table, table.c.id == tag_table.c.incident_id
    )
    for incident_id, facet, value in connection.execute(tag_query.where(condition)):
        if incident_id in wanted:
            tags[incident_id][facet].append(value)
    sources: dict[str, list[tuple[str, str]]] = defaultdict(list)
    origin = core_table(Provenance)
    source_query = select(origin.c.incident_id, origin.c.kind, origin.c.source).join(
        table, table.c.id == origin.c.incident_id
    )
    for incident_id, kind, name in connection.execute(source_query.where(condition)):
        if incident_id in wanted:
            sources[incident_id].append((kind, name))
    names = Counter(r.place for r in rows if r.place)
    return Selected(selection, tuple(rows), dict(tags), dict(sources), names)
