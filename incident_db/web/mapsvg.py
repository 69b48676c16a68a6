"""A map as inline SVG: Natural Earth land and one marker per incident, drawn on the server.

The projection is equirectangular with its standard parallel at the middle
of the box (so that a degree of longitude is as wide as it is there), and
the box is widened to the picture's proportions: ``view(bbox, width,
height)`` gives the box actually drawn, and a point's place in it is linear
in longitude and latitude (map.js relies on that to draw in the same
picture). Land comes at the level of detail the span needs
(``incident_db.basemap``), clipped to the picture and thinned to about half
a pixel.

Markers: the shape says the kind (actual attack: filled circle; attempted:
filled triangle; suspicious approach: hollow diamond; other: small square),
the line says the verification (confirmed: solid dark outline; unverified:
lighter, dashed, and hollow where the shape would be filled). The legend
says the same in words, and every marker has a title with the incident's id
and kind. A TLP:RED incident's marker carries the class :data:`RED_MARKER`,
which print.css hides: on screen a member sees it, on paper it is not there.
Everything is presentation attributes: the CSP allows no inline
style.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from markupsafe import Markup, escape

from incident_db import basemap
from incident_db.brief.trend import KIND_LABELS, KINDS

Box = tuple[float, float, float, float]
SEA = "#dbe9f4"
LAND = "#e8e4d8"
LAND_EDGE = "#a59f8a"
INK = "#1b1b1b"
LIGHT = "#5a6470"
FILL = {
    "actual-attack": "#b3261e",
    "attempted-attack": "#b35c00",
    "suspicious-approach": "#1f5fa8",
    "other": "#4d4d4d",
}
LEGEND_HEIGHT = 64
#: the class of a TLP:RED incident's marker: print.css hides it (RED is not printed)
RED_MARKER = "tlp-red-marker"
#: one incident of each kind, for a marker's title
KIND_SINGULAR = {
    "actual-attack": "actual attack",
    "attempted-attack": "attempted attack",
    "suspicious-approach": "suspicious approach",
    "other": "other or not stated",
}


@dataclass
class MapPoint:
    """One incident on a map."""

    incident_id: str
    latitude: float
    longitude: float
    kind: str
    confirmed: bool
    #: the incident's TLP level: a TLP:RED marker is drawn with :data:`RED_MARKER`
    tlp: str = ""


@dataclass(frozen=True)
class Cluster:
    """Several incidents drawn as one mark: where they are on average, how many, of which kinds."""

    latitude: float
    longitude: float
    count: int
    kinds: dict[str, int]
    confirmed: int


#: a cell of the clustering grid, in pixels, and how many incidents a cell draws one by one
CELL = 28
CLUSTER_OVER = 3


def cluster(
    points: Sequence[MapPoint], box: Box, width: int, height: int
) -> tuple[list[MapPoint], list[Cluster]]:
    """Split ``points`` into those drawn alone and clusters (cells of more than ``CLUSTER_OVER``).

    ``box`` is the box drawn (from :func:`view`).
    """
    if not points:
        return [], []
    west, south, east, north = box
    lat = np.fromiter((p.latitude for p in points), dtype=np.float64, count=len(points))
    lon = np.fromiter((p.longitude for p in points), dtype=np.float64, count=len(points))
    column = np.floor((lon - west) * (width / (east - west)) / CELL).astype(np.int64)
    row = np.floor((north - lat) * (height / (north - south)) / CELL).astype(np.int64)
    _, cell, sizes = np.unique(
        np.column_stack((column, row)), axis=0, return_inverse=True, return_counts=True
    )
    cell = cell.reshape(-1)
    crowded = sizes > CLUSTER_OVER
    single = [point for point, alone in zip(points, ~crowded[cell], strict=True) if alone]
    confirmed = np.fromiter((p.confirmed for p in points), dtype=np.float64, count=len(points))
    kind_index = {k: i for i, k in enumerate(KINDS)}
    kinds = np.fromiter((kind_index.get(p.kind, len(KINDS) - 1) for p in points), np.int64)
    cells = len(sizes)
    sums_lat = np.bincount(cell, weights=lat, minlength=cells)
    sums_lon = np.bincount(cell, weights=lon, minlength=cells)
    sums_confirmed = np.bincount(cell, weights=confirmed, minlength=cells)
    by_kind = [np.bincount(cell[kinds == i], minlength=cells) for i in range(len(KINDS))]
    groups = [
        Cluster(
            latitude=float(sums_lat[c] / sizes[c]),
            longitude=float(sums_lon[c] / sizes[c]),
            count=int(sizes[c]),
            kinds={k: int(by_kind[i][c]) for i, k in enumerate(KINDS) if by_kind[i][c]},
            confirmed=int(sums_confirmed[c]),
        )
        for c in np.flatnonzero(crowded)
    ]
    return single, groups


def view(bbox: Box, width: int, height: int) -> Box:
    """The box drawn for ``bbox`` in a ``width`` x ``height`` picture: ``bbox`` widened to fit."""
    west, south, east, north = bbox
    middle_lat = (south + north) / 2
    squeeze = max(math.cos(math.radians(middle_lat)), 0.2)
    span_lon = max(east - west, 1e-6) * squeeze
    span_lat = max(north - south, 1e-6)
    scale = min(width / span_lon, height / span_lat)  # pixels per degree of latitude
    half_lon = width / (2 * scale * squeeze)
    half_lat = height / (2 * scale)
    middle_lon = (west + east) / 2
    return (middle_lon - half_lon, middle_lat - half_lat, middle_lon + half_lon,
            middle_lat + half_lat)  # fmt: skip


def _project(
    lonlat: npt.NDArray[np.float64], box: Box, width: int, height: int
) -> npt.NDArray[np.float64]:
    west, south, east, north = box
    x = (lonlat[:, 0] - west) * (width / (east - west))
    y = (north - lonlat[:, 1]) * (height / (north - south))
    return np.column_stack((x, y))


def _clip_edge(
    points: npt.NDArray[np.float64], axis: int, limit: float, keep_below: bool
) -> npt.NDArray[np.float64]:
    """One Sutherland-Hodgman pass: the ring cut by the line ``coordinate[axis] == limit``."""
    if len(points) == 0:
        return points
    values = points[:, axis]
    inside = values <= limit if keep_below else values >= limit
    if inside.all():
        return points
    if not inside.any():
        return points[:0]
    previous = np.roll(points, 1, axis=0)
    was_inside = np.roll(inside, 1)
    crossing = inside != was_inside
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (limit - previous[:, axis]) / (values - previous[:, axis])
        cut = previous + (points - previous) * t[:, None]
    # each edge (previous -> point) gives: the crossing if it crosses, then the point if inside
    out = np.stack((cut, points), axis=1).reshape(-1, 2)
    keep = np.column_stack((crossing, inside)).reshape(-1)
    return out[keep]


def _clip(points: npt.NDArray[np.float64], width: int, height: int) -> npt.NDArray[np.float64]:
    margin = 2.0
    points = _clip_edge(points, 0, -margin, keep_below=False)
    points = _clip_edge(points, 0, width + margin, keep_below=True)
    points = _clip_edge(points, 1, -margin, keep_below=False)
    return _clip_edge(points, 1, height + margin, keep_below=True)


def _thin(points: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Points on a half-pixel grid, in units of half a pixel, without repeats in a row."""
    grid = np.rint(points * 2).astype(np.int64)
    if len(grid) < 2:
        return grid
    moved = np.any(grid != np.roll(grid, 1, axis=0), axis=1)
    moved[0] = True
    return grid[moved]


@lru_cache(maxsize=128)
def land_path(bbox: Box, width: int, height: int) -> str:
    """The SVG path data of the land in the picture of ``bbox`` (a box from :func:`view`).

    Kept for the next page drawing the same view (a place page, the map's
    first view, a pan back): clipping the coast costs more than the rest of
    a map together, and the land of a view never changes.
    """
    west, south, east, north = bbox
    level = basemap.level_for(max(east - west, north - south))
    parts = []
    for ring in basemap.rings_in(bbox, level):
        grid = _thin(_clip(_project(ring, bbox, width, height), width, height))
        if len(grid) < 3:
            continue
        text = " ".join(f"{x / 2:g} {y / 2:g}" for x, y in grid.tolist())
        parts.append(f"M{text}Z")
    return "".join(parts)


def marker_size(width: int) -> float:
    """The marker radius for a picture ``width`` pixels wide (legible when scaled down)."""
    return max(5.0, width / 110)


def marker(kind: str, confirmed: bool, x: float, y: float, r: float) -> str:
    """The SVG shape of one marker at (x, y) (attributes only, no title)."""
    colour = FILL.get(kind, FILL["other"])
    line = (f'stroke="{INK}" stroke-width="{r / 3.5:.2f}"' if confirmed else
            f'stroke="{colour}" stroke-width="{r / 3.5:.2f}" stroke-dasharray="{r / 2.5:.2f} '
            f'{r / 4:.2f}" stroke-opacity="0.85"')  # fmt: skip
    filled = confirmed and kind != "suspicious-approach"
    fill = f'fill="{colour}"' if filled else 'fill="#ffffff" fill-opacity="0.75"'
    if kind == "actual-attack":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {fill} {line}/>'
    if kind == "attempted-attack":
        h = r * 1.2
        points = f"{x:.1f},{y - h:.1f} {x + h:.1f},{y + h * 0.8:.1f} {x - h:.1f},{y + h * 0.8:.1f}"
        return f'<polygon points="{points}" {fill} {line}/>'
    if kind == "suspicious-approach":
        h = r * 1.25
        points = f"{x:.1f},{y - h:.1f} {x + h:.1f},{y:.1f} {x:.1f},{y + h:.1f} {x - h:.1f},{y:.1f}"
        fill = 'fill="#ffffff" fill-opacity="0.75"'
        return f'<polygon points="{points}" {fill} {line}/>'
    s = r * 0.75
    size = f'width="{2 * s:.1f}" height="{2 * s:.1f}"'
    return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" {size} {fill} {line}/>'


def summary(points: Sequence[MapPoint], clusters: Sequence[Cluster] = ()) -> str:
    """The counts in words: "12 incidents: 5 actual attacks, …; 7 confirmed, 5 unverified"."""
    kinds = Counter(point.kind for point in points)
    for group in clusters:
        kinds.update(group.kinds)
    total = len(points) + sum(group.count for group in clusters)
    confirmed = sum(1 for p in points if p.confirmed) + sum(g.confirmed for g in clusters)
    noun = "incident" if total == 1 else "incidents"
    by_kind = ", ".join(f"{kinds[k]} {KIND_LABELS[k]}" for k in KINDS if kinds[k])
    words = f"{total} {noun}"
    if by_kind:
        words += f": {by_kind}"
    return f"{words}; {confirmed} confirmed, {total - confirmed} unverified"


def cluster_mark(group: Cluster, x: float, y: float, r: float) -> str:
    """A numbered circle for a cluster, its title saying what it holds."""
    size = r * (1.6 + min(len(str(group.count)), 5) * 0.25)
    title = f"{group.count} incidents here ({summary((), [group]).split(': ', 1)[-1]})"
    return (
        f'<g class="cluster" data-count="{group.count}"><title>{escape(title)}</title>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="#ffffff" fill-opacity="0.9" '
        f'stroke="{INK}" stroke-width="{r / 3.5:.2f}"/>'
        f'<text x="{x:.1f}" y="{y + r * 0.45:.1f}" text-anchor="middle" font-size="{r * 1.3:.1f}" '
        f'font-weight="700" fill="{INK}">{group.count}</text></g>'
    )


def legend_icons() -> list[tuple[str, Markup]]:
    """Each marker style as a small <svg> with its words, for a legend written in HTML."""
    r = 6.0
    samples = [(KIND_LABELS[k].capitalize(), k, True) for k in KINDS]
    samples += [("Confirmed: solid, dark outline", "actual-attack", True),
                ("Unverified: hollow, dashed, lighter", "actual-attack", False)]  # fmt: skip
    icons = []
    for words, kind, confirmed in samples:
        shape = marker(kind, confirmed, 10.0, 10.0, r)
        icon = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20" width="20" '
                f'height="20" aria-hidden="true" focusable="false">{shape}</svg>')  # fmt: skip
        icons.append((words, Markup(icon)))  # noqa: S704  (numbers and fixed words only)
    return icons


def legend(width: int, top: float) -> str:
    """The legend band under the map: each shape and each line style, said in words."""
    r = 6.0
    items = [(KIND_LABELS[k].capitalize(), k, True) for k in KINDS]
    items += [("Confirmed: solid, dark outline", "other", True),
              ("Unverified: hollow, dashed", "other", False)]  # fmt: skip
    columns = 3
    column_width = width / columns
    parts = [f'<g class="map-legend" font-size="12" fill="{INK}">']
    for index, (words, kind, confirmed) in enumerate(items):
        x = 10 + (index % columns) * column_width
        y = top + 16 + (index // columns) * 22
        shape_kind = kind if index < len(KINDS) else "actual-attack"
        parts.append(marker(shape_kind, confirmed, x + r, y, r))
        parts.append(f'<text x="{x + 3 * r:.1f}" y="{y + 4:.1f}">{escape(words)}</text>')
    parts.append("</g>")
    return "".join(parts)


def render_map_svg(
    bbox: Box,
    points: Sequence[MapPoint],
    *,
    width: int,
    height: int,
    label: str,
    legend_band: bool = True,
    clusters: Sequence[Cluster] = (),
) -> Markup:
    """An inline <svg> of ``bbox`` with the land and ``points``; role="img", counts in its label.

    ``legend_band=False`` leaves the legend out, for a page that gives it in HTML;
    ``clusters`` (from :func:`cluster`) are drawn as numbered circles, and
    counted in the label with ``points``.
    """
    box = view(bbox, width, height)
    west, south, east, north = box
    total_height = height + (LEGEND_HEIGHT if legend_band else 0)
    aria = f"{label}: {summary(points, clusters)}"
    r = marker_size(width)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="incident-map" role="img" '
        f'viewBox="0 0 {width} {total_height}" width="{width}" height="{total_height}" '
        f'aria-label="{escape(aria)}" data-bbox="{west:.6f},{south:.6f},{east:.6f},{north:.6f}" '
        f'data-width="{width}" data-height="{height}" preserveAspectRatio="xMidYMid meet">',
        f'<rect class="map-sea" x="0" y="0" width="{width}" height="{height}" fill="{SEA}"/>',
        f'<path class="map-land" fill="{LAND}" stroke="{LAND_EDGE}" stroke-width="0.6" '
        f'fill-rule="evenodd" d="{land_path(box, width, height)}"/>',
        '<g class="map-markers">',
    ]
    scale_x = width / (east - west)
    scale_y = height / (north - south)
    # confirmed markers last, so that they are drawn on top
    for point in sorted(points, key=lambda p: (p.confirmed, p.kind == "other")):
        x = (point.longitude - west) * scale_x
        y = (north - point.latitude) * scale_y
        state = "confirmed" if point.confirmed else "unverified"
        title = f"{point.incident_id}: {KIND_SINGULAR.get(point.kind, 'other')}, {state}"
        classes = f"marker {RED_MARKER}" if point.tlp == "red" else "marker"
        parts.append(
            f'<g class="{classes}" data-count="1" data-id="{escape(point.incident_id)}">'
            f"<title>{escape(title)}</title>{marker(point.kind, point.confirmed, x, y, r)}</g>"
        )
    for group in clusters:
        parts.append(cluster_mark(group, (group.longitude - west) * scale_x,
                                  (north - group.latitude) * scale_y, r))  # fmt: skip
    parts.append("</g>")
    parts.append(
        f'<text class="map-credit" x="{width - 6}" y="{height - 6}" font-size="10" '
        f'text-anchor="end" fill="{LIGHT}">{escape(basemap.ATTRIBUTION)}</text>'
    )
    if legend_band:
        parts.append(legend(width, height))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value above is a number or escaped)
