"""Exports of the incidents a filter selects, as CSV, GeoJSON and STIX 2.1 (``/export.*``).

The query string is an :class:`IncidentFilter`'s (the map's and the place
pages' filter), so "export these" hands over exactly what the member is
looking at. The rows come from the command line's exporters
(incident_db/exports/): the same columns, the same CSV neutralising of
cells a spreadsheet would run as formulas, the same STIX objects.

CSV and GeoJSON are streamed a few hundred incidents at a time, so a
member can take the whole database without the worker holding it. A
STIX bundle is one JSON document that its readers load whole: a STIX
export is refused above :data:`STIX_MOST` incidents with a message saying
to narrow the filter (partners' platforms page through TAXII instead).

Every export is a line in the audit log (``export.csv``, ``export.geojson``,
``export.stix``) with the filter's query string and the number of
incidents, counted before the rows are sent (see :func:`_snapshot`).

TLP 2.0: members download at the export clearance (``tlp.EXPORT_MAX``,
AMBER+STRICT: they are the people of the receiving organisation). TLP:RED
never leaves the service: the rows come from ``iter_incidents`` at that
clearance, which never yields RED, and the number of RED incidents the
filter selects is said in the :data:`LEFT_OUT_HEADER` response header, in
the audit line and on the page that offers the download.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TextIO

from flask import Blueprint, Response, current_app
from flask import request as http_request
from sqlalchemy import ColumnElement, Connection, Engine, func, select
from werkzeug.exceptions import BadRequest

from incident_db import tlp
from incident_db.exports import ExportedIncident, iter_incidents
from incident_db.exports.geojson import write_geojson
from incident_db.exports.table import write_csv
from incident_db.members import store
from incident_db.models import Incident, core_table
from incident_db.web import heavy, sessions
from incident_db.web.filters import IncidentFilter

exports = Blueprint("exports", __name__)

#: incidents written per streamed piece
CHUNK = 500
#: the largest STIX bundle made (its readers hold it whole: about 10 kB per incident)
STIX_MOST = 10_000
#: what write_geojson puts around its features (checked on every piece)
GEOJSON_HEAD = '{"type": "FeatureCollection", "features": [\n'
GEOJSON_TAIL = "\n]}\n"
#: media type and file-name ending of each format
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "geojson": ("application/geo+json", "geojson"),
    "stix": ("application/stix+json;version=2.1", "stix.json"),
}

#: the response header saying how many TLP:RED incidents a download left out
LEFT_OUT_HEADER = "X-TLP-Red-Left-Out"
#: what members may download: everything but RED
CLEARANCE = tlp.EXPORT_MAX

Writer = Callable[[Iterable[ExportedIncident], TextIO], int]


@exports.get("/export.csv")
@sessions.requires("member")
def csv_export() -> Response:
    """The filter's incidents as CSV, one row each (the columns of ``incident-db export``)."""
    return _export("csv")


@exports.get("/export.geojson")
@sessions.requires("member")
def geojson_export() -> Response:
    """The filter's incidents as an RFC 7946 FeatureCollection."""
    return _export("geojson")


@exports.get("/export.stix")
@sessions.requires("member")
def stix_export() -> Response:
    """The filter's incidents as a STIX 2.1 bundle (at most STIX_MOST of them)."""
    return _export("stix")


def _export(kind: str) -> Response:
    try:
        chosen = IncidentFilter.from_args(http_request.args)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    engine: Engine = current_app.extensions["incident_db"]["engine"]
    where = chosen.where(core_table(Incident))
    release = heavy.take()  # given back when the last byte is sent (or on any refusal)
    try:
        connection = _snapshot(engine)
    except BaseException:
        release()
        raise
    try:
        count, left_out = _count(connection, where)
        if kind == "stix" and count > STIX_MOST:
            raise BadRequest(
                f"A STIX bundle holds at most {STIX_MOST:,} incidents and this filter selects "
                f"{count:,}. Narrow it (a shorter period, fewer kinds or a smaller area), "
                "or export CSV or GeoJSON, which have no limit."
            )
        db = sessions.database()
        query = chosen.query_string()
        store.audit(db, sessions.member().handle, f"export.{kind}", query,
                    {"filter": query, "incidents": count, "tlp_red_left_out": left_out,
                     "clearance": CLEARANCE})  # fmt: skip
        db.commit()
    except BaseException:
        connection.close()
        release()
        raise
    media_type, ending = FORMATS[kind]
    day = dt.datetime.now(dt.UTC).date().isoformat()
    body = _released(_body(kind, connection, where), release)
    response = Response(body, mimetype=None, content_type=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="incidents-{day}.{ending}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers[LEFT_OUT_HEADER] = str(left_out)
    # a client that goes away before the first byte never starts the generator
    response.call_on_close(connection.close)
    response.call_on_close(release)
    return response


def _released(body: Iterator[bytes], release: Callable[[], None]) -> Iterator[bytes]:
    """``body``, giving the heavy slot back as soon as its last piece is out."""
    try:
        yield from body
    finally:
        release()


def _snapshot(engine: Engine) -> Connection:
    """A connection for the count and the rows.

    On PostgreSQL both run in one REPEATABLE READ transaction, so the audited
    count is the number of rows sent. SQLite's driver opens no transaction
    for reads (and one held open would stall the ingest for the whole
    download), so there an incident written during an export may be sent but
    not counted, or the other way round.
    """
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    connection.begin()
    return connection


def _count(connection: Connection, where: ColumnElement[bool]) -> tuple[int, int]:
    """How many incidents the export sends, and how many TLP:RED ones it leaves out."""
    table = core_table(Incident)
    query = (
        select(table.c.tlp, func.count())
        .where(table.c.merged_into.is_(None), where)
        .group_by(table.c.tlp)
    )
    by_level = {level: int(n) for level, n in connection.execute(query)}
    sent = sum(n for level, n in by_level.items() if tlp.allows(CLEARANCE, level))
    return sent, sum(by_level.values()) - sent


def _body(kind: str, connection: Connection, where: ColumnElement[bool]) -> Iterator[bytes]:
    """The export's bytes, piece by piece; the connection is closed at the end."""
    try:
        incidents = iter_incidents(connection, where, clearance=CLEARANCE)
        if kind == "csv":
            pieces = _csv_pieces(incidents)
        elif kind == "geojson":
            pieces = _geojson_pieces(incidents)
        else:
            from incident_db.exports.stix import write_stix

            pieces = iter([_written(partial(write_stix, clearance=CLEARANCE), incidents)])
        for piece in pieces:
            yield piece.encode("utf-8")
    finally:
        connection.close()


def _written(writer: Writer, incidents: Iterable[ExportedIncident]) -> str:
    out = io.StringIO()
    writer(incidents, out)
    return out.getvalue()


def _batches(incidents: Iterator[ExportedIncident]) -> Iterator[list[ExportedIncident]]:
    while batch := list(itertools.islice(incidents, CHUNK)):
        yield batch


def _csv_pieces(incidents: Iterator[ExportedIncident]) -> Iterator[str]:
    """write_csv's output a batch at a time: its header once, then the rows."""
    header = _written(write_csv, [])
    yield header
    for batch in _batches(incidents):
        yield _written(write_csv, batch)[len(header) :]


def _geojson_pieces(incidents: Iterator[ExportedIncident]) -> Iterator[str]:
    """write_geojson's output a batch at a time, byte for byte as it writes it whole."""
    yield GEOJSON_HEAD
    first = True
    for batch in _batches(incidents):
        text = _written(write_geojson, batch)
        if not (text.startswith(GEOJSON_HEAD) and text.endswith(GEOJSON_TAIL)):
            raise RuntimeError("write_geojson no longer writes the collection this module expects")
        yield ("" if first else ",\n") + text[len(GEOJSON_HEAD) : -len(GEOJSON_TAIL)]
        first = False
    yield GEOJSON_TAIL
