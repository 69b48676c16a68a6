"""The port and anchorage guide: find a place by any of its names, read its brief.

A place is its *place key* (incident_db/places.py), the same folding
``incident-db brief --place`` uses, so "Chattogram", "Chittagong 'B'
Anchorage" and "Chittagong, Bangladesh" all lead to one page. The page is
the brief library's figures (make_brief) for the place and period, in the
brief's own words (brief/wording.py): a member reads the numbers the CLI
prints. Every page here is a GET: nothing changes.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import Connection, case, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from incident_db.brief import Selection, feed_credits, resolve_period, wording
from incident_db.brief.figures import compute
from incident_db.brief.selection import (
    COLUMNS,
    DEFAULT_MONTHS,
    select_incidents,
    select_rows,
    shift_months,
)
from incident_db.brief.text import clean
from incident_db.brief.trend import kind, make_trend
from incident_db.models import Incident, core_table
from incident_db.places import place_key
from incident_db.taxonomy import label
from incident_db.web import sessions
from incident_db.web.mapsvg import MapPoint, legend_icons, render_map_svg

places = Blueprint("places", __name__)

#: a search longer than this is not a place name
MAX_QUERY = 200
MAX_RESULTS = 50
#: incidents listed on a place page (the most recent first); the figures count them all
MAX_LISTED = 100
#: at least this much of the globe around a place's incidents, in degrees, so a map of
#: one anchorage still shows the coast it lies on
MIN_MAP_SPAN = 1.0
#: incident ids looked up per query for their TLP levels
LEVELS_CHUNK = 1000
EARLIEST = dt.date(1900, 1, 1)
#: one incident of each kind (brief.trend.KIND_LABELS names them in the plural)
ONE_OF_KIND = {"actual-attack": "actual attack", "attempted-attack": "attempted attack",
               "suspicious-approach": "suspicious approach",
               "other": "other or not stated"}  # fmt: skip


class PeriodError(ValueError):
    """A period form that cannot be read (one line, for the member)."""


@dataclass(frozen=True)
class Place:
    """A place key with the name most of its incidents use, and how many there are."""

    key: str
    name: str
    on_record: int  # incidents, whole archive
    recent: int  # incidents in the period asked about


@dataclass(frozen=True)
class Period:
    """The dates a place page covers; ``whole_archive`` leaves both open."""

    since: dt.date | None
    until: dt.date | None
    whole_archive: bool = False
    confirmed_only: bool = False


def today() -> dt.date:
    """The UTC day, as the CLI brief takes it."""
    return dt.datetime.now(dt.UTC).date()


def default_period(day: dt.date) -> tuple[dt.date, dt.date]:
    """The brief's default, as resolve_period gives it: the last 24 months ending ``day``."""
    return shift_months(day, -DEFAULT_MONTHS) + dt.timedelta(days=1), day


def _day(text: str, what: str) -> dt.date | None:
    if not text.strip():
        return None
    try:
        day = dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise PeriodError(f"The {what} date must be a day written YYYY-MM-DD.") from None
    if not EARLIEST <= day <= dt.date(2100, 12, 31):
        raise PeriodError(f"The {what} date must be between 1900 and 2100.")
    return day


def read_period(args: MultiDict[str, str], day: dt.date) -> Period:
    """The period form of a place page (``since``, ``until``, ``archive``, ``confirmed``)."""
    whole = args.get("archive") == "1"
    confirmed = args.get("confirmed") == "1"
    since = _day(args.get("since", "")[:40], "first")
    until = _day(args.get("until", "")[:40], "last")
    since, until = resolve_period(since, until, day, whole_archive=whole)
    if since and until and since > until:
        raise PeriodError("The first date is after the last one.")
    return Period(since, until, whole, confirmed)


# --- finding places ------------------------------------------------------------------


def _places(db: Session, condition: Any, since: dt.date, until: dt.date) -> list[Place]:
    """The places whose incidents meet ``condition``, most incidents in the period first."""
    table = core_table(Incident)
    recent = func.sum(case((table.c.local_date.between(since, until), 1), else_=0))
    query = (
        select(table.c.place_key, table.c.place, func.count(), recent)
        .where(table.c.merged_into.is_(None), table.c.place_key.is_not(None), condition)
        .group_by(table.c.place_key, table.c.place)
    )
    names: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    recents: Counter[str] = Counter()
    for key, name, count, in_period in db.execute(query):
        names[key][name or key] += count
        totals[key] += count
        recents[key] += in_period or 0
    found = [
        Place(key, min(n.items(), key=lambda item: (-item[1], item[0]))[0], totals[key],
              recents[key])
        for key, n in names.items()
    ]  # fmt: skip
    return sorted(found, key=lambda p: (-p.recent, -p.on_record, p.key))


def place_by_key(db: Session, key: str, day: dt.date) -> Place | None:
    """The place with exactly this key, or None when no incident has it."""
    since, until = default_period(day)
    found = _places(db, core_table(Incident).c.place_key == key, since, until)
    return found[0] if found else None


def resolve(db: Session, text: str, day: dt.date) -> Place | None:
    """The place a member means by ``text``: its key folded as the CLI folds it."""
    key = place_key(text[:MAX_QUERY])
    return None if key is None else place_by_key(db, key, day)


def suggestions(db: Session, text: str, day: dt.date) -> list[Place]:
    """Places with names like ``text`` (difflib on the keys, as ``incident-db brief`` hints)."""
    key = place_key(text[:MAX_QUERY]) or ""
    table = core_table(Incident)
    keys = db.scalars(
        select(table.c.place_key).where(table.c.merged_into.is_(None)).distinct()
    ).all()
    close = difflib.get_close_matches(key, [k for k in keys if k], n=5)
    if not close:
        return []
    since, until = default_period(day)
    found = {p.key: p for p in _places(db, table.c.place_key.in_(close), since, until)}
    return [found[k] for k in close if k in found]


def search(db: Session, text: str, day: dt.date) -> list[Place]:
    """Places whose key is, or contains, the folded ``text``; the exact one first."""
    key = place_key(text[:MAX_QUERY])
    if key is None:
        return []
    table = core_table(Incident)
    pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    since, until = default_period(day)
    found = _places(db, table.c.place_key.like(pattern, escape="\\"), since, until)
    found.sort(key=lambda p: p.key != key)  # stable: the rest keep their order
    return found[:MAX_RESULTS]


def busiest(db: Session, day: dt.date, limit: int = 20) -> list[Place]:
    """The places with most incidents in the default period."""
    since, until = default_period(day)
    table = core_table(Incident)
    return [
        p for p in _places(db, table.c.local_date.between(since, until), since, until) if p.recent
    ][:limit]


# --- a place's brief -----------------------------------------------------------------


def listed_incidents(connection: Connection, selection: Selection) -> list[dict[str, Any]]:
    """The selection's incidents, most recent first, as a page lists them."""
    return with_levels(connection, listed_rows(select_rows(connection, selection, COLUMNS)))


def listed_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows with the brief's COLUMNS (by local date), most recent first, as a page lists them."""
    listed = []
    for row in reversed(rows):
        listed.append({
            "id": row.id,
            "day": row.local_date.isoformat() if row.local_date else "date unknown",
            "time": row.local_time or "time unknown",
            "kind": ONE_OF_KIND[kind(row.incident_type, row.category, row.outcome)],
            "what": label("incident_type", row.incident_type) if row.incident_type else "",
            "confirmed": row.verification_status == "confirmed",
            "latitude": row.latitude,
            "longitude": row.longitude,
            "kind_key": kind(row.incident_type, row.category, row.outcome),
        })  # fmt: skip
    return listed


def with_levels(connection: Connection, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``listed`` with each incident's TLP level (``tlp``), for its label on the page."""
    table = core_table(Incident)
    ids = [item["id"] for item in listed]
    levels: dict[str, str] = {}
    for start in range(0, len(ids), LEVELS_CHUNK):
        query = select(table.c.id, table.c.tlp).where(
            table.c.id.in_(ids[start : start + LEVELS_CHUNK])
        )
        levels.update((ident, level) for ident, level in connection.execute(query))
    return [{**item, "tlp": levels.get(item["id"], "red")} for item in listed]


def incident_map(
    incidents: list[dict[str, Any]], name: str, *, width: int, height: int, legend_band: bool = True
) -> Any:
    """A map of the incidents' positions, or None when none has one.

    Each incident carries its level (:func:`with_levels`): a TLP:RED one is
    drawn so that print.css leaves it off paper.

    ``legend_band=False`` leaves the legend out of the picture, for a page
    that writes it in HTML (legible on a phone, where the band's words shrink
    with the map).
    """
    placed = [i for i in incidents if i["latitude"] is not None and i["longitude"] is not None]
    points = [
        MapPoint(i["id"], i["latitude"], i["longitude"], i["kind_key"], i["confirmed"], i["tlp"])
        for i in placed
    ]
    if not points:
        return None
    lats = [p.latitude for p in points]
    lons = [p.longitude for p in points]
    middle_lat, middle_lon = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
    half_lat = max(max(lats) - min(lats), MIN_MAP_SPAN) * 0.6
    half_lon = max(max(lons) - min(lons), MIN_MAP_SPAN) * 0.6
    bbox = (
        max(-180.0, middle_lon - half_lon),
        max(-90.0, middle_lat - half_lat),
        min(180.0, middle_lon + half_lon),
        min(90.0, middle_lat + half_lat),
    )
    return render_map_svg(bbox, points, width=width, height=height, legend_band=legend_band,
                          label=f"Map of {len(points)} incident positions at {name}")  # fmt: skip


def brief_page(
    connection: Connection,
    place: Place,
    period: Period,
    day: dt.date,
    *,
    map_size: tuple[int, int] = (640, 420),
    legend_band: bool = True,
) -> dict[str, Any]:
    """Everything a place page shows: the figures, their sentences, tables, incidents and map.

    With ``legend_band=False`` the map comes without its legend and ``legend``
    holds the markers' icons and words for the page to write in HTML.
    """
    selection = Selection(place=place.name, since=period.since, until=period.until,
                          confirmed_only=period.confirmed_only)  # fmt: skip
    # make_brief's steps, keeping the rows: the page lists the very incidents it counts
    selected = select_incidents(connection, selection)
    feeds = {name.split("/")[0] for names in selected.sources.values() for _, name in names}
    credits = {k: v for k, v in feed_credits(connection).items() if k in feeds}
    trend = make_trend(connection, selection, selected.rows, day)
    figures = compute(selected, credits=credits, trend=trend)
    # every incident with its level: the map marks a RED one so that it is not printed
    incidents = with_levels(connection, listed_rows(selected.rows))
    placed = [i for i in incidents if i["latitude"] is not None and i["longitude"] is not None]
    by_title = {t["title"]: t for t in wording.tables(figures)}
    return {
        "figures": figures,
        "subtitle": wording.subtitle(figures),
        "trend_lines": wording.trend_lines(figures),
        "clock_line": wording.clock_line(figures),
        "days_line": wording.days_line(figures),
        "how_lines": how_lines(figures),
        "helped_line": wording.helped_line(figures),
        "sources_line": wording.sources_line(figures),
        "tables": by_title,
        "incidents": incidents[:MAX_LISTED],
        "more": max(0, len(incidents) - MAX_LISTED),
        "map": incident_map(
            incidents, place.name, width=map_size[0], height=map_size[1], legend_band=legend_band
        ),
        "map_red": sum(1 for point in placed if point["tlp"] == "red"),
        "legend": [] if legend_band else legend_icons(),
        "hours": {h: n for h, n in figures["by_hour"].items() if n},
    }


def how_lines(figures: dict[str, Any]) -> list[str]:
    """The modus-operandi sentences of the brief's key points (perpetrators to outcome)."""
    skip = {*wording.trend_lines(figures), wording.clock_line(figures),
            wording.days_line(figures), wording.sources_line(figures),
            wording.helped_line(figures)}  # fmt: skip
    if figures["incidents"] == 0:
        return []
    return [line for line in wording.key_points(figures) if line not in skip]


# --- the views -----------------------------------------------------------------------


@places.get("/places")
def find() -> str:
    """Search places by name; suggestions when nothing matches; the busiest ones otherwise."""
    db, day = sessions.database(), today()
    query = clean(request.args.get("q", "")[:MAX_QUERY]).strip()  # shown back: no controls
    found = search(db, query, day) if query else []
    similar = suggestions(db, query, day) if query and not found else []
    since, until = default_period(day)
    return render_template(
        "places.html", query=query, found=found, similar=similar,
        busiest=[] if query else busiest(db, day), since=since, until=until,
    )  # fmt: skip


@places.get("/places/<key>")
def place(key: str) -> tuple[str, int] | str:
    """A place's brief for the period asked (the last 24 months unless told otherwise)."""
    db, day = sessions.database(), today()
    key = clean(key[:MAX_QUERY])
    found = place_by_key(db, key, day) or resolve(db, key, day)
    if found is None:
        since, until = default_period(day)
        page = render_template("places.html", query=key, found=[], missing=True,
                               similar=suggestions(db, key, day), busiest=[], since=since,
                               until=until)  # fmt: skip
        return page, 404
    try:
        period = read_period(request.args, day)
    except PeriodError as error:
        default = Period(*default_period(day))
        page = render_template("place.html", place=found, period=default, problem=str(error),
                               brief=brief_page(db.connection(), found, default, day,
                                                legend_band=False))  # fmt: skip
        return page, 400
    brief = brief_page(db.connection(), found, period, day, legend_band=False)
    return render_template("place.html", place=found, period=period, brief=brief, problem=None)
