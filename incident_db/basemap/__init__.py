"""Natural Earth land outlines for the map, at three levels of detail.

``land.bin`` holds Natural Earth 4.1.0 land polygons (public domain; made
with Natural Earth, naturalearthdata.com) as redistributed in TopoJSON by
the npm package world-atlas 2.0.2, pinned in ``npm/`` and converted by
``regenerate.py``. It ships inside the package: the map needs no request
to any other origin.

The file: ``MAGIC``, then zlib of, per level, the level's name, its grid
(scale and translate, as in TopoJSON: degrees = grid * scale + translate),
the number of rings, each ring's length, and the points as little-endian
int32 (x, y) pairs, each the difference from the ring's previous point
(the first from (0, 0)), which is what makes them compress.

Which level a map uses depends on how many degrees it spans: 1:110m for the
world, 1:50m for a sea, 1:10m near a port, where an anchorage lies a mile or
two off a coastline that the coarser levels draw a few miles wrong.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

LAND_FILE = Path(__file__).with_name("land.bin")
MAGIC = b"IDB-LAND-1\n"
#: the levels, coarsest first, and the widest span (degrees) each one is drawn at
LEVELS = ("110m", "50m", "10m")
WIDEST_SPAN = {"10m": 8.0, "50m": 50.0, "110m": 361.0}
SOURCE = "Natural Earth 4.1.0 land (public domain), from the npm package world-atlas 2.0.2"
ATTRIBUTION = "Land: Made with Natural Earth (public domain)"


@dataclass
class Level:
    """One level of detail: rings of integer grid points and the grid they are on."""

    name: str
    scale: tuple[float, float]
    translate: tuple[float, float]
    rings: list[list[tuple[int, int]]] = field(default_factory=list)


def encode(levels: list[Level]) -> bytes:
    """The bytes of ``land.bin`` for ``levels`` (deterministic: same input, same bytes)."""
    body = bytearray()
    body += struct.pack("<I", len(levels))
    for level in levels:
        name = level.name.encode("ascii")
        body += struct.pack("<B", len(name)) + name
        body += struct.pack("<4d", *level.scale, *level.translate)
        body += struct.pack("<I", len(level.rings))
        body += struct.pack(f"<{len(level.rings)}I", *(len(ring) for ring in level.rings))
        for ring in level.rings:
            points = np.asarray(ring, dtype=np.int64)
            deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
            body += deltas.astype("<i4").tobytes()
    return MAGIC + zlib.compress(bytes(body), 9)


@dataclass(frozen=True)
class LandLevel:
    """A decoded level: each ring as an (n, 2) array of longitude, latitude, and its bounds."""

    name: str
    rings: tuple[npt.NDArray[np.float64], ...]
    #: per ring: west, south, east, north
    bounds: npt.NDArray[np.float64]


def decode(data: bytes) -> dict[str, LandLevel]:
    """The levels in ``data`` (the bytes of ``land.bin``); ValueError if it is not one."""
    if not data.startswith(MAGIC):
        raise ValueError("not a land file")
    body = memoryview(zlib.decompress(data[len(MAGIC) :]))
    (count,) = struct.unpack_from("<I", body, 0)
    offset = 4
    levels = {}
    for _ in range(count):
        (length,) = struct.unpack_from("<B", body, offset)
        name = bytes(body[offset + 1 : offset + 1 + length]).decode("ascii")
        offset += 1 + length
        sx, sy, tx, ty = struct.unpack_from("<4d", body, offset)
        offset += 32
        (ring_count,) = struct.unpack_from("<I", body, offset)
        offset += 4
        sizes = struct.unpack_from(f"<{ring_count}I", body, offset)
        offset += 4 * ring_count
        total = sum(sizes)
        flat = np.frombuffer(body, dtype="<i4", count=total * 2, offset=offset).reshape(-1, 2)
        offset += 8 * total
        rings = []
        start = 0
        for size in sizes:
            grid = np.cumsum(flat[start : start + size].astype(np.int64), axis=0)
            start += size
            rings.append(grid * np.array([sx, sy]) + np.array([tx, ty]))
        bounds = np.array(
            [(r[:, 0].min(), r[:, 1].min(), r[:, 0].max(), r[:, 1].max()) for r in rings]
        ).reshape(-1, 4)
        levels[name] = LandLevel(name, tuple(rings), bounds)
    return levels


@cache
def land() -> dict[str, LandLevel]:
    """The levels of the shipped ``land.bin``, read once per process."""
    return decode(LAND_FILE.read_bytes())


def level_for(span_degrees: float) -> str:
    """The level to draw a map that spans ``span_degrees`` (the wider of its two spans)."""
    for name in reversed(LEVELS):
        if span_degrees <= WIDEST_SPAN[name]:
            return name
    return LEVELS[0]


def rings_in(bbox: tuple[float, float, float, float], level: str) -> list[npt.NDArray[np.float64]]:
    """The rings of ``level`` whose bounds meet ``bbox`` (west, south, east, north)."""
    west, south, east, north = bbox
    chosen = land()[level]
    b = chosen.bounds
    meets = (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)
    return [chosen.rings[i] for i in np.flatnonzero(meets)]
