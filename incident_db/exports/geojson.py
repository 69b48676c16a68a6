"""GeoJSON export (RFC 7946): a FeatureCollection of the live incidents.

Coordinates are [longitude, latitude] in WGS 84, as RFC 7946 §3.1.1 says,
with no more decimals than the incident's position had after coarsening.
An incident without a position is a Feature with a null geometry (§3.2).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from incident_db.exports import ExportedIncident


def feature(incident: ExportedIncident) -> dict[str, Any]:
    """One incident as a GeoJSON Feature."""
    properties = incident.values()
    lat, lon = properties.pop("latitude"), properties.pop("longitude")
    decimals = properties.pop("position_decimals")
    geometry = None
    if lat is not None and lon is not None:
        places = 6 if decimals is None else decimals
        geometry = {"type": "Point", "coordinates": [round(lon, places), round(lat, places)]}
    properties["position_decimals"] = decimals
    properties["sources"] = incident.sources
    properties["links"] = incident.links
    properties["attachments"] = incident.attachments
    return {"type": "Feature", "id": properties["id"], "geometry": geometry,
            "properties": properties}  # fmt: skip


def write_geojson(incidents: Iterable[ExportedIncident], out: TextIO) -> int:
    """Write a FeatureCollection, one Feature per line; return how many were written."""
    out.write('{"type": "FeatureCollection", "features": [\n')
    count = 0
    for incident in incidents:
        if count:
            out.write(",\n")
        out.write(json.dumps(feature(incident), ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n]}\n")
    return count
