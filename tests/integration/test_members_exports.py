"""Exports of the filtered incidents from the members' service, on SQLite and PostgreSQL.

What each export holds is checked against a count written here in plain
SQL and against the numbers the sample was built to give; the files are
read back by independent readers (Python's csv and json, and the stix2
library's strict parser).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import secrets
from collections.abc import Iterator
from html import unescape as html_unescape
from typing import Any

import pytest
import stix2
from flask import Flask, render_template
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from werkzeug.datastructures import MultiDict

from incident_db.db import open_database
from incident_db.exports import iter_incidents
from incident_db.exports.geojson import write_geojson
from incident_db.exports.table import write_csv
from incident_db.ingest import ingest_batch
from incident_db.models import Incident, core_table
from incident_db.web import exports
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from incident_db.web.filters import IncidentFilter
from tests.integration.test_members_web import ORIGIN, audit_actions, signed_in
from tests.unit.incident_db.factories import REVIEWER, batch, record

TODAY = dt.datetime.now(dt.UTC).date()
HOSTILE_NARRATIVE = "=cmd|' /C calc'!A0"
HOSTILE_PLACE = '@HYPERLINK("http://example.invalid/","x")'
CHITTAGONG = {"lat": 22.2, "lon": 91.7, "decimals": 1}
BELAWAN = {"lat": 3.8, "lon": 98.7, "decimals": 1}
LAGOS = {"lat": 6.4, "lon": 3.4, "decimals": 1}
#: (days before today, position, changes): five in the default 24 months, one long before
SAMPLE = (
    (10, CHITTAGONG, {"narrative": HOSTILE_NARRATIVE}),
    (100, CHITTAGONG, {"narrative": "+SUM(A1:A9)", "place": HOSTILE_PLACE}),
    (200, BELAWAN, {"narrative": "-2+3", "weapons": ["guns"]}),
    (20, LAGOS, {"category": "suspicious-approach", "incident_type": None, "outcome": None}),
    (400, LAGOS, {}),
    (1000, CHITTAGONG, {}),
)
#: the Bay of Bengal and the Malacca Strait: Chittagong and Belawan, not Lagos
EAST = (85.0, 0.0, 100.0, 25.0)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    records = []
    for number, (days, position, changes) in enumerate(SAMPLE, start=1):
        day = TODAY - dt.timedelta(days=days)
        records.append(record(number, occurred_local=f"{day.isoformat()}T02:30",
                              position=position, **changes))  # fmt: skip
    ingest_batch(made, batch(records), {REVIEWER.token})
    yield made
    made.dispose()


@pytest.fixture
def app(engine: Engine, database_url: str) -> Iterator[Flask]:
    config = WebConfig(database_url=database_url, secret_key=secrets.token_bytes(32),
                       origin=ORIGIN, rp_id="localhost", testing=True)  # fmt: skip
    made = create_app(config)
    yield made
    made.extensions["incident_db"]["engine"].dispose()


@pytest.fixture
def member(app: Flask, engine: Engine) -> FlaskClient:
    return signed_in(app, engine, "cso@example.org", "member")


def default_filter(**changes: Any) -> IncidentFilter:
    """The filter a page starts from (24 months ending today), with ``changes``."""
    return dataclasses.replace(IncidentFilter.from_args(MultiDict()), **changes)


def sql_count(engine: Engine, chosen: IncidentFilter) -> int:
    """How many live incidents the filter's dates, box and categories hold, in plain SQL."""
    query = ("SELECT COUNT(*) FROM incident WHERE merged_into IS NULL "
             "AND local_date BETWEEN :since AND :until")  # fmt: skip
    params: dict[str, Any] = {"since": chosen.since, "until": chosen.until}
    if chosen.bbox is not None:
        query += " AND longitude BETWEEN :w AND :e AND latitude BETWEEN :s AND :n"
        params.update(zip(("w", "s", "e", "n"), chosen.bbox, strict=True))
    if chosen.categories:
        assert len(chosen.categories) == 1
        query += " AND category = :category"
        params["category"] = chosen.categories[0]
    with engine.connect() as connection:
        return int(connection.execute(text(query), params).scalar_one())


def exported(client: FlaskClient, kind: str, chosen: IncidentFilter) -> tuple[Any, int]:
    """GET the export; the response and how many incidents its file holds (read independently)."""
    response = client.get(f"/export.{kind}?{chosen.query_string()}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    if kind == "csv":
        count = len(list(csv.DictReader(io.StringIO(body))))
    elif kind == "geojson":
        count = len(json.loads(body)["features"])
    else:
        parsed = stix2.parse(body, allow_custom=False)
        count = sum(1 for o in parsed.objects if o.type == "incident")
    return response, count


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({}, 5), ({"bbox": EAST}, 3), ({"categories": ("suspicious-approach",)}, 1)],
)
def test_each_export_holds_what_the_filter_selects(
    member: FlaskClient, engine: Engine, changes: dict[str, Any], expected: int
) -> None:
    chosen = default_filter(**changes)
    assert sql_count(engine, chosen) == expected
    for kind in ("csv", "geojson", "stix"):
        response, count = exported(member, kind, chosen)
        assert count == expected, kind
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith(f'attachment; filename="incidents-{TODAY.isoformat()}.')
    lines = [(actor, action, detail) for actor, action, detail in audit_actions(engine)
             if action.startswith("export.")]  # fmt: skip
    query = chosen.query_string()
    assert sorted(lines) == sorted(
        (
            "cso@example.org",
            f"export.{kind}",
            {
                "filter": query,
                "incidents": expected,
                "tlp_red_left_out": 0,
                "clearance": "amber+strict",
            },
        )
        for kind in ("csv", "geojson", "stix")
    )


def test_streamed_files_equal_the_command_line_exporters(
    member: FlaskClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 2)  # three pieces for five incidents
    chosen = default_filter()
    with engine.connect() as connection:
        where = chosen.where(core_table(Incident))
        whole = {}
        for kind, writer in (("csv", write_csv), ("geojson", write_geojson)):
            out = io.StringIO()
            writer(iter_incidents(connection, where), out)
            whole[kind] = out.getvalue()
    for kind in ("csv", "geojson"):
        assert (
            member.get(f"/export.{kind}?{chosen.query_string()}").get_data(as_text=True)
            == (whole[kind])
        )


def test_formula_cells_are_neutralised_in_csv(member: FlaskClient) -> None:
    response, _ = exported(member, "csv", default_filter())
    rows = {r["id"][-1]: r for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert rows["1"]["narrative"] == "'" + HOSTILE_NARRATIVE
    assert rows["2"]["narrative"] == "'+SUM(A1:A9)"
    assert rows["2"]["place"] == "'" + HOSTILE_PLACE
    assert rows["3"]["narrative"] == "'-2+3"
    formula_start = ("=", "+", "-", "@", "\t", "\r")
    for row in rows.values():
        for name, value in row.items():
            if name not in ("latitude", "longitude", "utc_offset"):  # numbers, not text
                assert not value.startswith(formula_start), (name, value)


def test_an_anonymous_request_gets_401_and_no_file(app: Flask, engine: Engine) -> None:
    client = app.test_client()
    for kind in ("csv", "geojson", "stix"):
        response = client.get(f"/export.{kind}")
        assert response.status_code == 401
        assert "Content-Disposition" not in response.headers
        assert "Chittagong" not in response.get_data(as_text=True)
    assert not [a for _, a, _ in audit_actions(engine) if a.startswith("export.")]


def test_every_role_may_export(app: Flask, engine: Engine) -> None:
    for role in ("member", "editor", "admin"):
        client = signed_in(app, engine, f"{role}@example.org", role)
        assert client.get("/export.csv").status_code == 200, role


def test_a_bad_filter_or_a_too_large_stix_bundle_is_refused(
    member: FlaskClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = member.get("/export.csv?since=yesterday")
    assert response.status_code == 400
    assert "Content-Disposition" not in response.headers
    monkeypatch.setattr(exports, "STIX_MOST", 4)
    response = member.get("/export.stix")
    assert response.status_code == 400
    assert "at most 4 incidents" in response.get_data(as_text=True)
    assert member.get(f"/export.stix?{default_filter(bbox=EAST).query_string()}").status_code == 200
    assert [a for _, a, _ in audit_actions(engine) if a.startswith("export.")] == ["export.stix"]


def test_the_export_links_carry_the_filter(app: Flask, member: FlaskClient) -> None:
    chosen = default_filter(bbox=EAST, categories=("suspicious-approach",))
    with app.test_request_context("/"):
        html = render_template("export_links.html", filter=chosen)
    links = re.findall(r'href="([^"]+)"', html)
    query = chosen.query_string()
    assert links == [f"/export.{kind}?{query}".replace("&", "&amp;")
                     for kind in ("csv", "geojson", "stix")]  # fmt: skip
    _, count = exported(member, "csv", chosen)
    assert count == 0  # Lagos is not in the east box
    assert member.get(html_unescape(links[0])).status_code == 200


def test_heavy_requests_take_turns_per_member_and_per_worker(app: Flask, engine: Engine) -> None:
    """A member's second export waits for the first; a worker runs at most two at once."""
    first, second, third = (
        signed_in(app, engine, f"{name}@example.org", "member") for name in ("ann", "ben", "cy")
    )
    held = first.get("/export.csv", buffered=False)  # streamed: its slot is held until closed
    assert held.status_code == 200
    again = first.get("/export.geojson")
    assert again.status_code == 429, again.data
    assert again.headers["Retry-After"] == "10"
    assert b"already have an export" in again.data
    other = second.get("/export.csv", buffered=False)
    assert other.status_code == 200
    full = third.get("/export.stix")
    assert full.status_code == 429
    assert b"other exports" in full.data
    held.close()
    other.close()
    assert first.get("/export.geojson").status_code == 200  # given back once the answer ended
    assert third.get("/export.stix").status_code == 200
    refused = [a for _, a, _ in audit_actions(engine) if a.startswith("export.")]
    assert len(refused) == 4  # the two refused requests left no audit line


def test_a_voyage_brief_is_heavy_but_its_form_is_not(app: Flask, engine: Engine) -> None:
    client = signed_in(app, engine, "dee@example.org", "member")
    held = client.get("/export.csv", buffered=False)
    assert client.get("/voyage").status_code == 200  # the empty form needs no slot
    assert client.get("/voyage", query_string={"calls": "Chittagong"}).status_code == 429
    assert client.get("/voyage.pdf", query_string={"calls": "Chittagong"}).status_code == 429
    held.close()
    assert client.get("/voyage.pdf", query_string={"calls": "Nowhere at all"}).status_code == 400
