"""Which incidents a page shows: the filter shared by the map, the place pages and exports.

An :class:`IncidentFilter` is built only by :meth:`IncidentFilter.from_args`
from a page's query arguments (hostile input: every value is checked against
its vocabulary or range, and anything wrong is a one-line ``ValueError``),
written back by :meth:`IncidentFilter.query_string`, and turned into SQL by
:meth:`IncidentFilter.where`. The period is the local date of the incident,
as in the briefs; by default the brief's last 24 months.

A box goes through the spatial index of migration 0003: the SQLite R*Tree
``incident_rtree``, or the GiST index on ``point(longitude, latitude)`` on
PostgreSQL, plus the exact comparison on the columns (the R*Tree keeps
32-bit bounds, rounded outwards). Since migration 0007 the R*Tree holds each
incident's day as well, and is asked for the box and the period at once: a
view over a busy ocean then reads the incidents of the period only, not
those of every year on record (PostgreSQL combines its GiST index with the
index on the day by itself).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Table, and_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.sqltypes import NullType
from werkzeug.datastructures import MultiDict

from incident_db import tlp
from incident_db.brief.selection import resolve_period
from incident_db.brief.trend import KINDS
from incident_db.taxonomy import CATEGORIES

VERIFICATION = ("confirmed", "unverified")
#: query arguments the filter reads; other arguments (a page number) are left alone
ARGUMENTS = ("since", "until", "category", "kind", "verification", "tlp", "bbox")
EARLIEST = dt.date(1900, 1, 1)
Box = tuple[float, float, float, float]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class IncidentFilter:
    """A period; optional categories, kinds, verification states, TLP levels; a box (W, S, E, N).

    ``levels`` are TLP slugs (``tlp.LEVELS``); the query spells them as the
    slug or the label (``tlp=amber%2Bstrict`` or ``tlp=TLP:AMBER%2BSTRICT``).
    """

    since: dt.date = field(default_factory=lambda: _default_period(_today())[0])
    until: dt.date = field(default_factory=_today)
    categories: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    verification: tuple[str, ...] = ()
    bbox: Box | None = None
    levels: tuple[str, ...] = ()

    @classmethod
    def from_args(
        cls, args: MultiDict[str, str], *, today: dt.date | None = None
    ) -> IncidentFilter:
        """Read the filter from query arguments; ValueError (one line) if one is wrong."""
        since = _day(args, "since")
        until = _day(args, "until")
        since, until = _period(since, until, today or _today())
        if since > until:
            raise ValueError("The period starts after it ends: swap the two dates.")
        return cls(
            since=since,
            until=until,
            categories=_choices(args, "category", tuple(CATEGORIES)),
            kinds=_choices(args, "kind", KINDS),
            verification=_choices(args, "verification", VERIFICATION),
            bbox=parse_bbox(args.get("bbox", "")),
            levels=_levels(args),
        )

    def query_string(self) -> str:
        """The query arguments that give this filter back through :meth:`from_args`."""
        pairs: list[tuple[str, str]] = [
            ("since", self.since.isoformat()),
            ("until", self.until.isoformat()),
        ]
        pairs += [("category", value) for value in self.categories]
        pairs += [("kind", value) for value in self.kinds]
        pairs += [("verification", value) for value in self.verification]
        pairs += [("tlp", value) for value in self.levels]
        if self.bbox is not None:
            pairs.append(("bbox", format_bbox(self.bbox)))
        return urlencode(pairs)

    def with_bbox(self, bbox: Box | None) -> IncidentFilter:
        """The same filter over another box (or none)."""
        return IncidentFilter(self.since, self.until, self.categories, self.kinds,
                              self.verification, bbox, self.levels)  # fmt: skip

    def where(self, table: Table) -> ColumnElement[bool]:
        """The condition on ``core_table(Incident)``; merged duplicates are left out."""
        parts: list[ColumnElement[bool]] = [
            table.c.merged_into.is_(None),
            table.c.local_date >= self.since,
            table.c.local_date <= self.until,
        ]
        if self.categories:
            parts.append(table.c.category.in_(self.categories))
        if self.kinds:
            parts.append(table.c.kind.in_(self.kinds))
        if self.verification:
            parts.append(table.c.verification_status.in_(self.verification))
        if self.levels:
            parts.append(table.c.tlp.in_(self.levels))
        if self.bbox is not None:
            west, south, east, north = self.bbox
            parts += [
                InBox(table, self.bbox, (self.since, self.until)),
                table.c.latitude.between(south, north),
                table.c.longitude.between(west, east),
            ]
        return and_(true(), *parts)


def _default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    since, until = resolve_period(None, None, today)
    if since is None or until is None:  # only whole_archive leaves an end open
        raise ValueError("no default period")
    return since, until


def _period(
    since: dt.date | None, until: dt.date | None, today: dt.date
) -> tuple[dt.date, dt.date]:
    start, end = resolve_period(since, until, today)
    if start is None or end is None:  # only whole_archive leaves an end open
        raise ValueError("no period")
    return start, end


def _day(args: MultiDict[str, str], name: str) -> dt.date | None:
    text = args.get(name, "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None or not EARLIEST <= day <= dt.date(2999, 12, 31):
        raise ValueError(f'"{name}" must be a date like 2025-03-31.')
    return day


def _choices(args: MultiDict[str, str], name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """The values of ``name``, each one of ``allowed``, in ``allowed``'s order, without repeats."""
    given = {value.strip() for value in args.getlist(name) if value.strip()}
    unknown = given - set(allowed)
    if unknown:
        raise ValueError(f'"{name}" must be one of: {", ".join(allowed)}.')
    return tuple(value for value in allowed if value in given)


def _levels(args: MultiDict[str, str]) -> tuple[str, ...]:
    """The TLP levels asked for (slugs or labels), weakest first, without repeats."""
    message = '"tlp" must be one of: ' + ", ".join(tlp.LABELS[v] for v in tlp.LEVELS) + "."
    given = [value for value in args.getlist("tlp") if value.strip()]
    if len(given) > 4 * len(tlp.LEVELS):
        raise ValueError(message)
    try:
        chosen = {tlp.parse(value[:40]) for value in given}
    except tlp.UnknownLevelError:
        raise ValueError(message) from None
    return tuple(level for level in tlp.LEVELS if level in chosen)


def parse_bbox(text: str) -> Box | None:
    """``west,south,east,north`` in degrees (or empty for none); ValueError when not a box."""
    text = text.strip()
    if not text:
        return None
    parts = text.split(",")
    message = (
        '"bbox" must be four numbers west,south,east,north in degrees, '
        "with west < east (from -180 to 180) and south < north (from -90 to 90)."
    )
    if len(parts) != 4 or any(len(part) > 24 for part in parts):
        raise ValueError(message)
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise ValueError(message) from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise ValueError(message)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ValueError(message)
    return west, south, east, north


def format_bbox(bbox: Box) -> str:
    """The box as ``west,south,east,north``, short but exact enough to read back the same."""
    return ",".join(repr(float(value)) for value in bbox)


class InBox(ColumnElement[bool]):
    """The spatial index's half of a box condition: rows whose position may lie in ``bbox``.

    Compiled per database; the bounds are checked floats (``parse_bbox``) and
    written as literals, so the statement can never carry anything else.
    """

    # not Boolean: SQLite has no boolean type, and SQLAlchemy would write "(...) = 1",
    # which hides the IN from the planner
    type = NullType()
    inherit_cache = False  # the bounds are literals in the SQL text

    def __init__(
        self, table: Table, bbox: Box, period: tuple[dt.date, dt.date] | None = None
    ) -> None:
        """Hold the incident table, the box, and the period (first and last day) if any."""
        self.table = table
        self.bbox = tuple(float(value) for value in bbox)
        self.period = period


#: the Julian day number at the start of day 1 of the proleptic Gregorian calendar, less one:
#: ``date.toordinal() + JULIAN_OFFSET`` is SQLite's ``julianday()`` of that date
JULIAN_OFFSET = 1721424.5


def _literal(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("a box bound is not a number")
    return repr(value)


@compiles(InBox, "sqlite")
def _sqlite_box(element: InBox, compiler: SQLCompiler, **kw: Any) -> str:
    west, south, east, north = (_literal(v) for v in element.bbox)
    rowid = f"{compiler.preparer.format_table(element.table)}.rowid"
    days = ""
    if element.period is not None:  # whole days from checked dates: numbers only
        first, last = (day.toordinal() + JULIAN_OFFSET for day in element.period)
        days = f" AND max_day >= {first!r} AND min_day <= {last!r}"
    return (
        f"{rowid} IN (SELECT id FROM incident_rtree WHERE "  # noqa: S608
        f"max_lat >= {south} AND min_lat <= {north} AND max_lon >= {west} AND min_lon <= {east}"
        f"{days})"
    )


@compiles(InBox, "postgresql")
def _postgres_box(element: InBox, compiler: SQLCompiler, **kw: Any) -> str:
    west, south, east, north = (_literal(v) for v in element.bbox)
    lon = compiler.process(element.table.c.longitude, **kw)
    lat = compiler.process(element.table.c.latitude, **kw)
    return f"point({lon}, {lat}) <@ box(point({west}, {south}), point({east}, {north}))"


@compiles(InBox)
def _plain_box(_element: InBox, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "1 = 1"  # other databases: the exact comparison that follows does it all
