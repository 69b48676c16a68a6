"""The map: incidents of a filter on Natural Earth land, with the same incidents listed below.

``/map`` works without JavaScript: a GET form, the server-drawn SVG map
(mapsvg.py), the counts by kind and verification, and the list a page at a
time. With JavaScript, map.js pans and zooms the same picture, asking
``/map/land.json`` for the land of the new view and ``/map/points.json``
for its incidents, drawn one by one or, where more than ``CLUSTER_OVER``
share a cell of ``mapsvg.CELL`` pixels, as one numbered cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from sqlalchemy import func, select
from werkzeug.exceptions import BadRequest

from incident_db import tlp
from incident_db.brief.trend import KIND_LABELS, KINDS
from incident_db.models import Incident, core_table
from incident_db.taxonomy import CATEGORIES
from incident_db.web import mapsvg, sessions
from incident_db.web.filters import VERIFICATION, IncidentFilter, format_bbox, parse_bbox
from incident_db.web.mapsvg import MapPoint

map_page = Blueprint("map", __name__)

WIDTH, HEIGHT = 640, 420
#: incidents listed per page
PER_PAGE = 50
#: the server-drawn map draws each incident on its own up to this many, clusters beyond
SVG_SINGLE_LIMIT = 1500
WORLD = (-180.0, -60.0, 180.0, 80.0)


def _filter() -> IncidentFilter:
    try:
        return IncidentFilter.from_args(request.args)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def positioned(chosen: IncidentFilter) -> list[MapPoint]:
    """The incidents of ``chosen`` that have a position: only the columns a map needs."""
    table = core_table(Incident)
    query = select(
        table.c.id,
        table.c.latitude,
        table.c.longitude,
        table.c.kind,
        table.c.verification_status,
        table.c.tlp,
    ).where(chosen.where(table), table.c.latitude.is_not(None), table.c.longitude.is_not(None))
    rows = sessions.database().execute(query).all()
    # the level rides along so that a printed map leaves TLP:RED markers off (print.css)
    return [
        MapPoint(id_, lat, lon, kind, verification == "confirmed", level)
        for id_, lat, lon, kind, verification, level in rows
    ]


def extent(points: Sequence[MapPoint]) -> tuple[float, float, float, float]:
    """A box around ``points`` with a margin, or most of the world when there are none."""
    if not points:
        return WORLD
    lats = [p.latitude for p in points]
    lons = [p.longitude for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    margin = max(east - west, north - south, 2.0) * 0.08
    return (
        max(-180.0, west - margin),
        max(-85.0, south - margin),
        min(180.0, east + margin),
        min(85.0, north + margin),
    )


def _counts(points: Sequence[MapPoint]) -> list[tuple[str, int, int, int]]:
    """Per kind: its words, how many, how many confirmed, how many unverified."""
    rows = []
    for kind in KINDS:
        of_kind = [p for p in points if p.kind == kind]
        confirmed = sum(1 for p in of_kind if p.confirmed)
        rows.append((KIND_LABELS[kind], len(of_kind), confirmed, len(of_kind) - confirmed))
    return rows


def _page_number() -> int:
    text = request.args.get("page", "1")
    if not text.isdigit() or len(text) > 6 or int(text) < 1:
        raise BadRequest('"page" must be a whole number from 1.')
    return int(text)


def _listed(chosen: IncidentFilter, page: int) -> list[Any]:
    """One page of the list: the incidents on the map, newest first."""
    table = core_table(Incident)
    query = (
        select(
            table.c.id,
            table.c.local_date,
            table.c.place,
            table.c.category,
            table.c.kind,
            table.c.verification_status,
            table.c.tlp,
        )
        .where(chosen.where(table), table.c.latitude.is_not(None), table.c.longitude.is_not(None))
        .order_by(table.c.local_date.desc(), table.c.id)
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    )
    return list(sessions.database().execute(query))


@map_page.get("/map")
@sessions.requires("member")
def show() -> Response:
    """The map page: filter form, map, counts, and the list of the incidents drawn."""
    chosen = _filter()
    page = _page_number()
    points = positioned(chosen)
    box = chosen.bbox or extent(points)
    drawn = mapsvg.view(box, WIDTH, HEIGHT)
    if len(points) > SVG_SINGLE_LIMIT:
        single, groups = mapsvg.cluster(points, drawn, WIDTH, HEIGHT)
    else:
        single, groups = list(points), []
    svg = mapsvg.render_map_svg(
        box,
        single,
        width=WIDTH,
        height=HEIGHT,
        clusters=groups,
        label="Map of the incidents chosen",
        legend_band=False,
    )
    table = core_table(Incident)
    unplaced = sessions.database().scalar(
        select(func.count())
        .select_from(table)
        .where(chosen.where(table), table.c.latitude.is_(None))
    )
    pages = max(1, -(-len(points) // PER_PAGE))
    page = min(page, pages)
    listed = _listed(chosen, page)
    html = render_template(
        "map.html",
        chosen=chosen,
        query=chosen.query_string(),
        view_query=chosen.with_bbox(_round_box(box)).query_string(),
        svg=svg,
        counts=_counts(points),
        total=len(points),
        confirmed=sum(1 for p in points if p.confirmed),
        unplaced=unplaced or 0,
        listed=listed,
        listed_red=sum(1 for row in listed if row.tlp == "red"),
        red_left_out=red_count(chosen),
        tlp_levels=tlp.LEVELS,
        page=page,
        pages=pages,
        categories=CATEGORIES,
        kinds=[(k, KIND_LABELS[k]) for k in KINDS],
        verification=VERIFICATION,
        bbox_text=format_bbox(chosen.bbox) if chosen.bbox else "",
        clustered=sum(g.count for g in groups),
        samples=mapsvg.legend_icons(),
    )
    return Response(html, 200)


def red_count(chosen: IncidentFilter) -> int:
    """How many TLP:RED incidents ``chosen`` holds, placed or not: no download carries them."""
    table = core_table(Incident)
    query = select(func.count()).select_from(table).where(chosen.where(table), table.c.tlp == "red")
    return int(sessions.database().scalar(query) or 0)


def _round_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = (round(v, 4) for v in box)
    return (max(-180.0, west), max(-90.0, south), min(180.0, east), min(90.0, north))


def _size(name: str, default: int) -> int:
    text = request.args.get(name, str(default))
    if not text.isdigit() or not 100 <= int(text) <= 4000:
        raise BadRequest(f'"{name}" must be a whole number of pixels from 100 to 4000.')
    return int(text)


def _view_box() -> tuple[float, float, float, float]:
    try:
        box = parse_bbox(request.args.get("bbox", ""))
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if box is None:
        raise BadRequest('"bbox" is needed: the view as west,south,east,north.')
    return box


@map_page.get("/map/points.json")
@sessions.requires("member")
def points_json() -> Response:
    """The incidents of the filter inside ``bbox`` (the view), single or clustered per cell."""
    chosen = _filter()
    box = _view_box()
    width, height = _size("width", WIDTH), _size("height", HEIGHT)
    points = positioned(chosen.with_bbox(box))
    single, groups = mapsvg.cluster(points, box, width, height)
    response = jsonify(
        bbox=list(box),
        total=len(points),
        points=[
            {
                "id": p.incident_id,
                "lat": p.latitude,
                "lon": p.longitude,
                "kind": p.kind,
                "confirmed": p.confirmed,
                # map.js marks it as mapsvg does, so that print.css leaves it off paper
                "red": p.tlp == "red",
            }
            for p in single
        ],
        clusters=[
            {
                "lat": g.latitude,
                "lon": g.longitude,
                "count": g.count,
                "kinds": g.kinds,
                "confirmed": g.confirmed,
            }
            for g in groups
        ],
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@map_page.get("/map/land.json")
@sessions.requires("member")
def land_json() -> Response:
    """The SVG path of the land in the view ``bbox`` drawn ``width`` x ``height``."""
    box = _view_box()
    width, height = _size("width", WIDTH), _size("height", HEIGHT)
    response = jsonify(d=mapsvg.land_path(box, width, height))
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
