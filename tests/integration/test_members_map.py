"""The map page and its JSON, on the demo database, against SQL written here.

The demo database (Crime at Sea feed and reviewer batches) is built once per
module; for PostgreSQL its incidents are copied into a fresh database. What
the map draws (marker ids and cluster counts in the SVG, points.json) is
compared with plain SQL that picks the same incidents by its own rules:
the kind by a CASE written from the brief's definition, not through
``incident.kind`` or the filter's code.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, insert, select, text

from incident_db.db import open_database
from incident_db.demo import build_demo
from incident_db.models import Incident, core_table
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from tests.integration.test_members_web import ORIGIN, signed_in

TODAY = dt.datetime.now(dt.UTC).date()
KIND_SQL = """CASE
  WHEN incident_type = 'suspicious-approach' THEN 'suspicious-approach'
  WHEN incident_type IN ('boarded', 'hijacked', 'illegal-boarding-citadel', 'detained',
                         'explosion') THEN 'actual-attack'
  WHEN incident_type IN ('attempted-boarding', 'fired-upon', 'attack-weapons-discharged')
    THEN 'attempted-attack'
  WHEN incident_type IS NULL AND category = 'suspicious-approach' THEN 'suspicious-approach'
  WHEN incident_type IS NULL AND outcome = 'successful-items-stolen-or-control-taken'
    THEN 'actual-attack'
  WHEN incident_type IS NULL AND outcome = 'attempted' THEN 'attempted-attack'
  ELSE 'other' END"""
# (query string, the same filter as SQL conditions)
FILTERS = (
    ("", "local_date >= :default_since"),
    ("since=2000-01-01&kind=actual-attack&verification=confirmed",
     "local_date >= '2000-01-01' AND {kind} = 'actual-attack' "
     "AND verification_status = 'confirmed'"),
    ("since=2010-01-01&bbox=2,3,9,7",
     "local_date >= '2010-01-01' AND latitude >= 3 AND latitude <= 7 "
     "AND longitude >= 2 AND longitude <= 9"),
    ("since=2000-01-01&until=2015-12-31&kind=attempted-attack&kind=suspicious-approach"
     "&category=piracy-or-armed-robbery&bbox=95,-10,120,10",
     "local_date >= '2000-01-01' AND local_date <= '2015-12-31' "
     "AND {kind} IN ('attempted-attack', 'suspicious-approach') "
     "AND category = 'piracy-or-armed-robbery' AND latitude BETWEEN -10 AND 10 "
     "AND longitude BETWEEN 95 AND 120"),
    ("since=2000-01-01&verification=unverified&bbox=40,-5,60,20",
     "local_date >= '2000-01-01' AND verification_status = 'unverified' "
     "AND latitude BETWEEN -5 AND 20 AND longitude BETWEEN 40 AND 60"),
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database, built once for this module."""
    return build_demo(tmp_path_factory.mktemp("map-demo") / "demo")


def _copy_incidents(source_url: str, target_url: str) -> None:
    """Put the demo's incidents into the (migrated) database at ``target_url``."""
    table = core_table(Incident)
    source = create_engine(source_url)
    with source.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(table))]
    source.dispose()
    rows.sort(key=lambda row: row["merged_into"] is not None)  # the kept one first
    target = open_database(target_url)
    with target.begin() as connection:
        connection.execute(insert(table), rows)
    target.dispose()


@pytest.fixture
def engine(database_url: str, demo_url: str) -> Iterator[Engine]:
    if database_url.startswith("sqlite"):
        database_url = demo_url
    else:
        _copy_incidents(demo_url, database_url)
    made = open_database(database_url)
    yield made
    made.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[FlaskClient]:
    config = WebConfig(database_url=engine.url.render_as_string(hide_password=False),
                       secret_key=secrets.token_bytes(32), origin=ORIGIN, rp_id="localhost",
                       testing=True)  # fmt: skip
    app: Flask = create_app(config)
    yield signed_in(app, engine, f"map-{secrets.token_hex(4)}@example.org", "member")
    app.extensions["incident_db"]["engine"].dispose()


def expected_ids(engine: Engine, condition: str) -> set[str]:
    """The ids plain SQL finds: not merged, with a position, dated up to today by default."""
    sql = (
        "SELECT id FROM incident WHERE merged_into IS NULL AND latitude IS NOT NULL "  # noqa: S608
        "AND longitude IS NOT NULL AND local_date <= :today AND " + condition.format(kind=KIND_SQL)
    )
    since = TODAY.replace(year=TODAY.year - 2) + dt.timedelta(days=1)
    with engine.connect() as connection:
        found = connection.execute(text(sql), {"today": TODAY, "default_since": since})
        return {row[0] for row in found}


def drawn(page: str) -> tuple[set[str], int]:
    """The marker ids in the page's SVG, and the incidents its clusters stand for."""
    svg = page[page.index("<svg") : page.index("</svg>")]
    ids = set(re.findall(r'<g class="marker" data-count="1" data-id="([^"]+)"', svg))
    clustered = sum(int(n) for n in re.findall(r'<g class="cluster" data-count="(\d+)"', svg))
    return ids, clustered


@pytest.mark.parametrize(("query", "condition"), FILTERS)
def test_the_map_draws_what_sql_finds(
    client: FlaskClient, engine: Engine, query: str, condition: str
) -> None:
    expected = expected_ids(engine, condition)
    response = client.get(f"/map?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    ids, clustered = drawn(page)
    if clustered == 0:
        assert ids == expected
    else:
        assert len(ids) + clustered == len(expected)
        assert ids <= expected
    total = re.search(r"(\d+) incidents? with a position", page)
    assert total
    assert int(total.group(1)) == len(expected)
    # the list holds the same incidents, a page at a time
    listed: set[str] = set()
    number = 1
    while True:
        part = client.get(f"/map?{query}&page={number}").get_data(as_text=True)
        listed |= set(re.findall(r'<tr class="map-item" data-id="([^"]+)">', part))
        if "Next page" not in part or number > 200:
            break
        number += 1
    assert listed == expected


@pytest.mark.parametrize(("query", "condition"), FILTERS[1:])
def test_points_json_finds_what_sql_finds(
    client: FlaskClient, engine: Engine, query: str, condition: str
) -> None:
    expected = expected_ids(engine, condition)
    box = re.search(r"bbox=([^&]+)", query)
    bbox = box.group(1) if box else "-180,-90,180,90"
    plain = re.sub(r"&?bbox=[^&]+", "", query)
    answer: Any = client.get(f"/map/points.json?{plain}&bbox={bbox}&width=640&height=420").json
    assert answer["total"] == len(expected)
    ids = {point["id"] for point in answer["points"]}
    assert ids <= expected
    assert len(ids) + sum(c["count"] for c in answer["clusters"]) == len(expected)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("kind=attack", '"kind" must be one of'),
        ("verification=maybe", '"verification" must be one of'),
        ("category=%3Cscript%3E", '"category" must be one of'),
        ("since=2024-02-30", '"since" must be a date'),
        ("since=2025-01-01&until=2024-01-01", "starts after it ends"),
        ("bbox=1,2,3", '"bbox" must be four numbers'),
        ("bbox=10,0,5,5", '"bbox" must be four numbers'),
        ("bbox=nan,0,5,5", '"bbox" must be four numbers'),
        ("bbox=0,0,5,95", '"bbox" must be four numbers'),
        ("page=0", '"page" must be a whole number'),
    ],
)
def test_bad_filters_are_refused_with_one_line(client: FlaskClient, query: str, words: str) -> None:
    response = client.get(f"/map?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    message = re.search(r'<p class="problem" role="alert">([^<]*)</p>', page)
    assert message
    assert words.replace('"', "&#34;") in message.group(1)
    assert "<script>" not in page


def test_json_routes_need_a_view_and_a_member(client: FlaskClient, engine: Engine) -> None:
    assert client.get("/map/points.json").status_code == 400
    assert client.get("/map/land.json?bbox=0,0,1,1&width=99").status_code == 400
    land = client.get("/map/land.json?bbox=2,3,9,7&width=640&height=420")
    assert land.status_code == 200
    assert land.json["d"].startswith("M")
    anonymous = client.application.test_client()
    assert anonymous.get("/map").status_code == 401
    assert anonymous.get("/map/points.json?bbox=0,0,1,1").status_code == 401


def test_kind_column_matches_the_rule(engine: Engine) -> None:
    """Every incident's stored kind is the one the brief's rule gives (written at ingest)."""
    sql = f"SELECT count(*) FROM incident WHERE kind <> {KIND_SQL}"  # noqa: S608
    with engine.connect() as connection:
        assert connection.execute(text(sql)).scalar() == 0
        assert connection.execute(text("SELECT count(DISTINCT kind) FROM incident")).scalar() > 2
