"""The real Crime at Sea file (7,511 rows) on SQLite and PostgreSQL: import and briefs.

Every figure of a brief for a real anchorage, and for a circle around one,
is checked against an independent SQL query over the same rows, written
here in each database's own dialect rather than through the code under
test.
"""

from __future__ import annotations

import csv
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from incident_db.brief import Selection, make_brief
from incident_db.db import open_database
from incident_db.feeds import ImportReport, import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from incident_db.taxonomy import CREW, SUCCESSFUL
from tests.conftest import ROOT
from tests.unit.incident_db.factories import REVIEWER, batch, record

DATA = ROOT.parent / "shared" / "data" / "crime-at-sea" / "pirate_attacks.csv"
ROWS = 7511
pytestmark = pytest.mark.skipif(
    not DATA.is_file(), reason=f"the Crime at Sea data is not at {DATA} (see its README)"
)
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
EARTH_RADIUS_NM = 6371.0088 / 1.852


@dataclass(frozen=True)
class Loaded:
    """A database holding the whole file and a reviewer batch at Chittagong."""

    engine: Engine
    report: ImportReport


def _reviewer_records() -> list[dict[str, Any]]:
    """Confirmed incidents at Chittagong, so crew and grade figures are not all zero."""
    return [
        record(1),
        record(2, occurred_local="2024-05-03T23:45", crew={"injured": 2, "hostage": 1},
               verification={"status": "confirmed", "grade": "A1"}, weapons=["guns"]),
        record(3, occurred_local="2024-06-07T04:15", outcome="foiled-by-crew", crew=None,
               place="Chittagong Outer Anchorage", perpetrators_min=8, perpetrators_max=10),
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    """Import the file once per database kind for this module."""
    admin, name = None, ""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('crime-at-sea') / 'incidents.sqlite3'}"
    else:
        server = request.getfixturevalue("postgres_url")
        name = f"crime_{secrets.token_hex(4)}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.rsplit("/", 1)[0] + f"/{name}"
    engine = open_database(url)
    report = import_feed(engine, DATA, load_mapping("crime-at-sea"))
    ingest_batch(engine, batch(_reviewer_records()), {REVIEWER.token})
    yield Loaded(engine, report)
    engine.dispose()
    if admin is not None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_every_row_is_accounted_for(loaded: Loaded) -> None:
    report = loaded.report
    assert report.rows == ROWS
    assert report.added + report.already_present + len(report.rejected) == ROWS
    assert report.added > 7500
    assert all(r.reason for r in report.rejected)
    with loaded.engine.connect() as connection:
        imported = set(connection.execute(text(
            "SELECT row FROM provenance WHERE kind = 'external-feed'")).scalars())  # fmt: skip
    rejected = {r.row for r in report.rejected}
    assert imported | rejected == set(range(1, ROWS + 1))
    assert not imported & rejected


def test_importing_the_file_again_adds_nothing(loaded: Loaded) -> None:
    again = import_feed(loaded.engine, DATA, load_mapping("crime-at-sea"))
    assert (again.added, again.already_present) == (0, loaded.report.added)


def test_no_vessel_name_is_stored(loaded: Loaded) -> None:
    """No row's vessel_name reaches its incident, unless its other columns say it too."""
    with DATA.open(newline="", encoding="utf-8") as handle:
        source = dict(enumerate(csv.DictReader(handle), start=1))
    with loaded.engine.connect() as connection:
        stored = {
            row: f"{place} {narrative}".lower()
            for row, place, narrative in connection.execute(text(
                "SELECT p.row, i.place, i.narrative FROM provenance p "
                "JOIN incident i ON i.id = p.incident_id WHERE p.kind = 'external-feed'"))
        }  # fmt: skip
    checked = 0
    for row, text_stored in stored.items():
        name = source[row]["vessel_name"].lower()
        elsewhere = " ".join(v for k, v in source[row].items() if k != "vessel_name").lower()
        if name != "na" and name not in elsewhere:
            assert name not in text_stored, row
            checked += 1
    assert checked > 6000


# --- briefs against independent SQL ------------------------------------------------


def _sql(connection: Connection, where: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every brief figure, computed by hand-written SQL over the rows ``where`` selects."""
    postgres = connection.dialect.name == "postgresql"
    weekday = ("CAST(EXTRACT(DOW FROM local_date) AS INTEGER)" if postgres
               else "CAST(strftime('%w', local_date) AS INTEGER)")  # fmt: skip
    month = "to_char(local_date, 'YYYY-MM')" if postgres else "strftime('%Y-%m', local_date)"
    base = f"FROM incident WHERE merged_into IS NULL AND {where}"

    def rows(query: str) -> list[Any]:
        return list(connection.execute(text(query), params))

    def one(query: str) -> Any:
        return connection.execute(text(query), params).one()

    def grouped(column: str) -> dict[str, int]:
        return dict(rows(f"SELECT COALESCE({column}, 'not-stated'), COUNT(*) {base} "
                         f"GROUP BY COALESCE({column}, 'not-stated')"))  # fmt: skip

    def facet(name: str) -> dict[str, Any]:
        tagged = (f"FROM incident_tag t JOIN incident i ON i.id = t.incident_id "
                  f"WHERE t.facet = '{name}' AND i.id IN (SELECT id {base})")  # fmt: skip
        counts = dict(rows(f"SELECT t.value, COUNT(DISTINCT t.incident_id) {tagged} "
                           "GROUP BY t.value"))  # fmt: skip
        stating = one(f"SELECT COUNT(DISTINCT t.incident_id) {tagged}")[0]
        return {"incidents_stating": stating, "counts": counts}

    total, first, last, undated, untimed = one(
        "SELECT COUNT(*), MIN(local_date), MAX(local_date), "
        "SUM(CASE WHEN local_date IS NULL THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN local_time IS NULL THEN 1 ELSE 0 END) {base}"
    )
    days = dict(rows(f"SELECT {weekday}, COUNT(*) {base} AND local_date IS NOT NULL "
                     f"GROUP BY {weekday}"))  # fmt: skip
    hours = dict(rows("SELECT CAST(substr(local_time, 1, 2) AS INTEGER), COUNT(*) "
                      f"{base} AND local_time IS NOT NULL "
                      "GROUP BY CAST(substr(local_time, 1, 2) AS INTEGER)"))  # fmt: skip
    stating, fewest, most = one(
        "SELECT SUM(CASE WHEN perpetrators_min IS NOT NULL OR perpetrators_max IS NOT NULL "
        f"THEN 1 ELSE 0 END), MIN(perpetrators_min), MAX(perpetrators_max) {base}"
    )
    crew = {}
    for key in CREW:
        incidents, people = one(f"SELECT SUM(CASE WHEN crew_{key} > 0 THEN 1 ELSE 0 END), "
                                f"COALESCE(SUM(crew_{key}), 0) {base}")  # fmt: skip
        crew[key] = {"incidents": int(incidents or 0), "people": int(people)}
    successful, with_outcome = one(
        f"SELECT SUM(CASE WHEN outcome = '{SUCCESSFUL}' THEN 1 ELSE 0 END), COUNT(outcome) {base}"
    )
    confirmed = one(f"SELECT COUNT(*) {base} AND verification_status = 'confirmed'")[0]
    return {
        "names_merged": dict(
            rows(f"SELECT place, COUNT(*) {base} AND place IS NOT NULL GROUP BY place")
        ),
        "incidents": total,
        "period": {"first": str(first) if first else None, "last": str(last) if last else None},
        "by_weekday": {WEEKDAYS[d]: n for d, n in days.items()} | {"unknown": undated or 0},
        "by_hour": {f"{h:02d}": n for h, n in hours.items()} | {"unknown": untimed or 0},
        "by_month": dict(
            rows(f"SELECT {month}, COUNT(*) {base} AND local_date IS NOT NULL GROUP BY {month}")
        ),
        "categories": grouped("category"),
        "incident_types": grouped("incident_type"),
        "vessel_types": grouped("vessel_type"),
        "vessel_status": grouped("vessel_status"),
        "boarding_methods": grouped("boarding_method"),
        "outcomes": grouped("outcome"),
        "perpetrators": {"incidents_stating": stating or 0, "fewest": fewest, "most": most},
        "weapons": facet("weapons"),
        "boarding_points": facet("boarding_points"),
        "stolen": facet("stolen"),
        "actions_taken": facet("actions_taken"),
        "crew": crew,
        "success": {
            "successful": successful or 0,
            "with_outcome": with_outcome,
            "ratio": round((successful or 0) / with_outcome, 3) if with_outcome else None,
        },
        "sources": {
            "reviewer": one(f"SELECT COUNT(*) {base} AND origin = 'reviewer'")[0],
            "external": one(f"SELECT COUNT(*) {base} AND origin = 'external'")[0],
            "by_source": dict(
                rows(
                    "SELECT source, COUNT(DISTINCT incident_id) FROM provenance "  # noqa: S608 - fixed text
                    f"WHERE incident_id IN (SELECT id {base}) GROUP BY source"
                )
            ),
        },
        "verification": {
            "confirmed": confirmed,
            "unverified": total - confirmed,
            "grades": dict(
                rows(f"SELECT grade, COUNT(*) {base} AND grade IS NOT NULL GROUP BY grade")
            ),
        },
        "credits": dict(rows("SELECT feed, credit FROM feed_import")),
    }


#: figures checked against independent SQL in test_brief_figures_sql.py
CHECKED_ELSEWHERE = {"clock_window", "weekday_pattern", "trend", "perpetrator_numbers",
                     "what_helped", "source_shares"}  # fmt: skip


def _check(brief: dict[str, Any], expected: dict[str, Any]) -> None:
    """Compare every figure; months by their definition."""
    checked = {"schema", "selection"}
    brief_months = {m: n for m, n in brief["by_month"].items() if n}
    assert brief_months == expected["by_month"]
    months = list(brief["by_month"])
    assert months == sorted(months)
    assert months[0] == min(expected["by_month"])
    assert months[-1] == max(expected["by_month"])
    checked.add("by_month")
    checked |= CHECKED_ELSEWHERE
    names = {n["name"]: n["incidents"] for n in brief["names_merged"]}
    assert names == expected["names_merged"]
    checked.add("names_merged")
    for key in ("by_weekday", "by_hour"):
        assert {k: v for k, v in brief[key].items() if v} == {
            k: v for k, v in expected[key].items() if v
        }, key
        checked.add(key)
    for key, value in expected.items():
        if key not in checked:
            assert brief[key] == value, key
            checked.add(key)
    assert checked == set(brief), "a figure of the brief is not checked"


def test_place_brief_equals_independent_sql(loaded: Loaded) -> None:
    with loaded.engine.connect() as connection:
        brief = make_brief(connection, Selection(place="Chittagong"))
        expected = _sql(connection, "place_key = :key", {"key": "chittagong"})
    assert brief["incidents"] > 300
    assert len(brief["names_merged"]) > 50  # "Chittagong Anchorage", "Chittagong, Bangladesh" …
    assert brief["sources"]["reviewer"] == 3
    _check(brief, expected)


def test_dated_radius_brief_equals_independent_sql(loaded: Loaded) -> None:
    """Around Lagos, 2010 to 2020: the circle is decided by great-circle distance."""
    lat, lon, radius = 6.40, 3.40, 25.0
    selection = Selection(near=(lat, lon), radius_nm=radius, since=_day("2010-01-01"),
                          until=_day("2020-12-31"))  # fmt: skip
    distance = (
        f"2 * {EARTH_RADIUS_NM} * asin(sqrt(power(sin(radians(latitude - :lat) / 2), 2) + "
        "cos(radians(:lat)) * cos(radians(latitude)) * "
        "power(sin(radians(longitude - :lon) / 2), 2)))"
    )
    where = (f"latitude IS NOT NULL AND {distance} <= :radius "
             "AND local_date >= :since AND local_date <= :until")  # fmt: skip
    params = {"lat": lat, "lon": lon, "radius": radius, "since": _day("2010-01-01"),
              "until": _day("2020-12-31")}  # fmt: skip
    with loaded.engine.connect() as connection:
        brief = make_brief(connection, selection)
        expected = _sql(connection, where, params)
    assert brief["incidents"] > 50
    _check(brief, expected)


def _day(value: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(value)


def test_the_html_brief_is_one_self_contained_page(loaded: Loaded) -> None:
    from incident_db.brief.html import render_html

    with loaded.engine.connect() as connection:
        page = render_html(make_brief(connection, Selection(place="Chittagong Anchorage")))
    assert page.count("<svg") == 3
    assert "Chittagong Anchorage" in page
    assert "Crime at Sea" in page
    page = page.replace("http://www.w3.org/", "")  # SVG's namespace names, never fetched
    for outside in ("http://", "https://", "<script", "<link", "@import", "<img", "url(http"):
        assert outside not in page, outside
    assert not re.search(r"url\((?!#)", page)  # clip paths point inside the page only
