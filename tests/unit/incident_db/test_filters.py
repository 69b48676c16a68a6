"""The incident filter: what query arguments it accepts, and that it writes them back the same."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.datastructures import MultiDict

from incident_db.models import Incident, core_table
from incident_db.web.filters import IncidentFilter, parse_bbox

TODAY = dt.date(2026, 3, 15)


def parsed(query: str) -> IncidentFilter:
    return IncidentFilter.from_args(MultiDict(parse_qsl(query)), today=TODAY)


def test_the_default_is_the_briefs_24_months_ending_today() -> None:
    chosen = parsed("")
    assert (chosen.since, chosen.until) == (dt.date(2024, 3, 16), TODAY)
    assert (chosen.categories, chosen.kinds, chosen.verification, chosen.bbox) == ((), (), (), None)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "since=2001-02-03&until=2002-03-04",
        "kind=other&kind=actual-attack&verification=unverified",
        "category=stowaways&category=piracy-or-armed-robbery&bbox=-10.5,-3.25,7.125,8",
        "bbox=-180,-90,180,90&verification=confirmed&verification=unverified",
        "bbox=0.1,1e-05,0.30000000000000004,0.2",
    ],
)
def test_query_string_round_trips(query: str) -> None:
    chosen = parsed(query)
    assert parsed(chosen.query_string()) == chosen


def test_values_come_back_in_vocabulary_order_without_repeats() -> None:
    chosen = parsed("kind=other&kind=actual-attack&kind=other&kind=%20other%20")
    assert chosen.kinds == ("actual-attack", "other")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("since=yesterday", '"since" must be a date'),
        ("until=2024-1-5", '"until" must be a date'),
        ("since=1800-01-01", '"since" must be a date'),
        ("since=2025-01-02&until=2025-01-01", "starts after it ends"),
        ("kind=boarded", '"kind" must be one of'),
        ("category=%1b[31m", '"category" must be one of'),
        ("verification=true", '"verification" must be one of'),
        ("bbox=1,2,3,4,5", '"bbox" must be four numbers'),
        ("bbox=3,0,1,1", '"bbox" must be four numbers'),
        ("bbox=0,1,1,1", '"bbox" must be four numbers'),
        ("bbox=inf,0,1,1", '"bbox" must be four numbers'),
        ("bbox=-181,0,1,1", '"bbox" must be four numbers'),
        ("bbox=" + "1" * 30 + ",0,1,1", '"bbox" must be four numbers'),
    ],
)
def test_bad_arguments_give_one_line(query: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[")) as raised:
        parsed(query)
    assert "\n" not in str(raised.value)


def test_parse_bbox_reads_four_numbers() -> None:
    assert parse_bbox(" 2, 3 ,9,7 ") == (2.0, 3.0, 9.0, 7.0)
    assert parse_bbox("") is None


def test_the_box_uses_each_databases_spatial_index() -> None:
    table = core_table(Incident)
    condition = parsed("bbox=2,3,9,7").where(table)
    on_sqlite = str(condition.compile(dialect=sqlite.dialect()))
    assert "incident.rowid IN (SELECT id FROM incident_rtree WHERE max_lat >= 3.0" in on_sqlite
    assert "= 1" not in on_sqlite  # a bare IN, which the planner can use
    on_postgres = str(condition.compile(dialect=postgresql.dialect()))
    assert "point(incident.longitude, incident.latitude) <@ box(point(2.0, 3.0)" in on_postgres
    assert "incident.merged_into IS NULL" in on_sqlite


def test_a_filter_selects_on_sqlite_without_the_index_table() -> None:
    """Without a box the condition needs no R*Tree, and leaves merged incidents out."""
    engine = create_engine("sqlite://")
    core_table(Incident).create(engine)
    with engine.connect() as connection:
        statement = core_table(Incident).select().where(parsed("").where(core_table(Incident)))
        assert connection.execute(statement).all() == []
    engine.dispose()
