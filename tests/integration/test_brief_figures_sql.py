"""The brief's clock window, trend and days on the real Crime at Sea file, against plain SQL.

Each figure comes from ``incident-db`` (its library, and its command for
the default period) and is checked against a second computation written
here: SQL through Python's own ``sqlite3`` on the same file, and a
different algorithm in Python (the window by brute force from every start
time, not by sliding over the sorted list). Nothing here calls the brief's
own code to get an expected value. The file is imported once per module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from incident_db.brief import Selection, make_brief
from incident_db.cli import main
from incident_db.db import open_database
from incident_db.feeds import import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from tests.conftest import ROOT
from tests.unit.incident_db.factories import REVIEWER, batch, record

DATA = ROOT.parent / "shared" / "data" / "crime-at-sea" / "pirate_attacks.csv"
pytestmark = pytest.mark.skipif(
    not DATA.is_file(), reason=f"the Crime at Sea data is not at {DATA} (see its README)"
)
# strftime('%w'): 0 is Sunday
SQL_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
TODAY = dt.datetime.now(dt.UTC).date()
# reviewer incidents at Chittagong: (days before today, incident type, category, outcome);
# six in the last 24 months (a 730- or 731-day period), three in the 24 months before
RECENT = (
    (3, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (40, "boarded", "piracy-or-armed-robbery", None),
    (41, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (200, "boarded", "piracy-or-armed-robbery", None),
    (600, "attempted-boarding", "piracy-or-armed-robbery", "attempted"),
    (800, "boarded", "piracy-or-armed-robbery", None),
    (1000, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (100, "fired-upon", "piracy-or-armed-robbery", None),  # an attempted attack, as the IMB has it
    (900, None, "suspicious-approach", None),
)
PLACES = {"Chittagong": "chittagong", "Belawan": "belawan"}


@dataclass(frozen=True)
class Loaded:
    """The whole file and a few recent reviewer incidents, in one SQLite file."""

    engine: Engine
    url: str
    path: Path


def _recent_records() -> list[dict[str, Any]]:
    """Reviewer incidents dated relative to today, so the default period has something in it."""
    records = []
    for number, (days, incident_type, category, outcome) in enumerate(RECENT, start=1):
        day = TODAY - dt.timedelta(days=days)
        records.append(record(number, occurred_local=f"{day.isoformat()}T0{number}:15",
                              incident_type=incident_type, category=category,
                              outcome=outcome))  # fmt: skip
    return records


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Import the file once for this module."""
    path = tmp_path_factory.mktemp("brief-sql") / "incidents.sqlite3"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    import_feed(engine, DATA, load_mapping("crime-at-sea"))
    ingest_batch(engine, batch(_recent_records()), {REVIEWER.token})
    yield Loaded(engine, url, path)
    engine.dispose()


# --- the independent computation -----------------------------------------------------


def _rows(loaded: Loaded, key: str, since: dt.date | None, until: dt.date | None) -> list[Any]:
    """(local_date, local_time, incident_type, category, outcome) of the place, by plain SQL."""
    query = ("SELECT local_date, local_time, incident_type, category, outcome FROM incident "
             "WHERE merged_into IS NULL AND place_key = ?")  # fmt: skip
    params: list[Any] = [key]
    if since is not None:
        query += " AND local_date >= ?"
        params.append(since.isoformat())
    if until is not None:
        query += " AND local_date <= ?"
        params.append(until.isoformat())
    with sqlite3.connect(loaded.path) as connection:
        return connection.execute(query, params).fetchall()


def _sql_weekdays(loaded: Loaded, key: str, since: dt.date, until: dt.date) -> dict[str, int]:
    with sqlite3.connect(loaded.path) as connection:
        counted = connection.execute(
            "SELECT CAST(strftime('%w', local_date) AS INTEGER), COUNT(*) FROM incident "
            "WHERE merged_into IS NULL AND place_key = ? AND local_date BETWEEN ? AND ? "
            "GROUP BY 1",
            (key, since.isoformat(), until.isoformat()),
        ).fetchall()
    return {SQL_WEEKDAYS[day]: n for day, n in counted}


def _sql_kinds(loaded: Loaded, key: str, since: dt.date, until: dt.date) -> dict[str, int]:
    """Incidents by kind, the rule written out as one SQL CASE."""
    case = """CASE
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
    with sqlite3.connect(loaded.path) as connection:
        counted = connection.execute(
            f"SELECT {case}, COUNT(*) FROM incident WHERE merged_into IS NULL "  # noqa: S608 - fixed text
            "AND place_key = ? AND local_date BETWEEN ? AND ? GROUP BY 1",
            (key, since.isoformat(), until.isoformat()),
        ).fetchall()
    kinds = dict.fromkeys(("actual-attack", "attempted-attack", "suspicious-approach", "other"), 0)
    return kinds | dict(counted)


def _brute_force_window(clocks: list[str], share: float) -> tuple[str, str, int, int] | None:
    """From every minute of the day, the shortest clockwise stretch holding ceil(share x M)."""
    times = [int(c[:2]) * 60 + int(c[3:]) for c in clocks]
    if len(times) < 5:
        return None
    needed = math.ceil(round(share * len(times), 9))
    best: tuple[int, int] | None = None  # (span, start)
    for start in range(1440):
        ahead = sorted((t - start) % 1440 for t in times)
        if ahead[0] != 0:
            continue  # a tightest window starts on an incident
        span = ahead[needed - 1]
        if best is None or span < best[0]:
            best = (span, start)
    assert best is not None
    span, start = best
    holds = sum(1 for t in times if (t - start) % 1440 <= span)
    end = (start + span) % 1440
    return f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}", holds, span


def _check_timing(brief: dict[str, Any], rows: list[Any], share: float = 0.8) -> None:
    """The clock window and the weekday pattern against the plain rows."""
    clocks = [r[1] for r in rows if r[1] is not None]
    window, expected = brief["clock_window"], _brute_force_window(clocks, share)
    assert window["known"] == len(clocks)
    if expected is None:
        assert window["from"] is None
    else:
        got = (window["from"], window["to"], window["holds"], window["minutes"])
        assert got == expected
        assert window["holds"] >= share * len(clocks)
    dated = [dt.date.fromisoformat(r[0]) for r in rows if r[0] is not None]
    mean = len(dated) / 7
    counts = {d: sum(1 for x in dated if SQL_WEEKDAYS[(x.weekday() + 1) % 7] == d)
              for d in SQL_WEEKDAYS}  # fmt: skip
    standing = {d for d, n in counts.items() if len(dated) >= 14 and n >= 1.5 * mean - 1e-9}
    assert set(brief["weekday_pattern"]["standing_out"]) == standing
    assert brief["weekday_pattern"]["dated"] == len(dated)


def _check_trend(loaded: Loaded, brief: dict[str, Any], key: str, since: dt.date,
                 until: dt.date) -> None:  # fmt: skip
    days = (until - since).days + 1
    before_since, before_until = since - dt.timedelta(days=days), since - dt.timedelta(days=1)
    trend = brief["trend"]
    assert trend["period"] == {"since": since.isoformat(), "until": until.isoformat(),
                               "days": days}  # fmt: skip
    assert trend["previous"] == {"since": before_since.isoformat(),
                                 "until": before_until.isoformat(), "days": days}  # fmt: skip
    now = _sql_kinds(loaded, key, since, until)
    before = _sql_kinds(loaded, key, before_since, before_until)
    assert {k: (v["period"], v["previous"]) for k, v in trend["by_kind"].items()} == {
        k: (now[k], before[k]) for k in now
    }
    assert (trend["all"]["period"], trend["all"]["previous"]) == (
        sum(now.values()), sum(before.values()))  # fmt: skip
    assert trend["all"]["period"] == brief["incidents"]
    if sum(before.values()) == 0:
        assert trend["all"]["change_percent"] is None


# --- the tests -----------------------------------------------------------------------


@pytest.mark.parametrize("place", list(PLACES))
def test_whole_archive_window_and_days_equal_independent_sql(loaded: Loaded, place: str) -> None:
    with loaded.engine.connect() as connection:
        brief = make_brief(connection, Selection(place=place))
    rows = _rows(loaded, PLACES[place], None, None)
    assert brief["incidents"] == len(rows) > 150
    assert brief["trend"] is None  # no period before the whole archive
    assert brief["clock_window"]["known"] >= 10  # enough for a window: it is really checked
    _check_timing(brief, rows)
    assert {k: v for k, v in brief["by_weekday"].items() if k != "unknown" and v} == (
        _sql_weekdays(loaded, PLACES[place], dt.date(1900, 1, 1), dt.date(2100, 1, 1)))  # fmt: skip


@pytest.mark.parametrize(("place", "share"), [("Chittagong", 0.8), ("Belawan", 0.6)])
def test_a_dated_brief_from_the_command_equals_independent_sql(
    loaded: Loaded, tmp_path: Path, place: str, share: float
) -> None:
    """2009 to 2020 against the 4,383 days before, through ``incident-db brief --format json``."""
    since, until = dt.date(2009, 1, 1), dt.date(2020, 12, 31)
    out = tmp_path / "brief.json"
    code = main(["--db", loaded.url, "brief", "--place", place, "--since", since.isoformat(),
                 "--until", until.isoformat(), "--clock-share", str(share), "--format", "json",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    brief = json.loads(out.read_text(encoding="utf-8"))
    rows = _rows(loaded, PLACES[place], since, until)
    assert brief["incidents"] == len(rows)
    assert brief["trend"]["previous"]["since"] == "1997-01-01"
    _check_trend(loaded, brief, PLACES[place], since, until)
    assert brief["trend"]["all"]["previous"] > 10  # a real comparison, with a percentage
    assert brief["trend"]["all"]["change_percent"] is not None
    _check_timing(brief, rows, share)
    assert brief["clock_window"]["share"] == share


def test_the_default_brief_is_the_last_24_months(loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "brief.json"
    assert main(["--db", loaded.url, "brief", "--place", "Chittagong", "--format", "json",
                 "--out", str(out)]) == 0  # fmt: skip
    brief = json.loads(out.read_text(encoding="utf-8"))
    until = TODAY
    since = dt.date(until.year - 2, until.month, until.day) + dt.timedelta(days=1)  # not 29 Feb
    assert brief["selection"]["since"] == since.isoformat()
    assert brief["selection"]["until"] == until.isoformat()
    assert brief["trend"]["length"] == "24 months"
    _check_trend(loaded, brief, "chittagong", since, until)
    assert (brief["trend"]["all"]["period"], brief["trend"]["all"]["previous"]) == (6, 3)
    _check_timing(brief, _rows(loaded, "chittagong", since, until))
    text = tmp_path / "brief.txt"
    assert main(["--db", loaded.url, "brief", "--place", "Chittagong", "--format", "text",
                 "--out", str(text)]) == 0  # fmt: skip
    words = text.read_text(encoding="utf-8")
    assert "- 6 in the last 24 months, 3 in the 24 months before (3 more)." in words
    assert ("By kind: actual attacks 2 (1 before), attempted attacks 4 (1 before), "
            "suspicious approaches 0 (1 before).") in words  # fmt: skip
    # ceil(0.8 x 6) = 5 of 01:15, 02:15, 03:15, 04:15, 05:15, 08:15
    assert "Between 01:15 and 05:15 local time: holds 5 of 6 with a known local time" in words
    from incident_db.brief.html import render_html  # matplotlib: only where a page is drawn

    page = render_html(brief)
    assert "6 in the last 24 months, 3 in the 24 months before (3 more)." in page
    assert "Between 01:15 and 05:15 local time: holds 5 of 6 with a known local time" in page
    assert f"{since.isoformat()} to {until.isoformat()} (the last 24 months)" in page


def test_the_new_modus_operandi_figures_equal_independent_sql(loaded: Loaded) -> None:
    """Perpetrator numbers, what helped and source shares for Chittagong, whole archive."""
    with loaded.engine.connect() as connection:
        brief = make_brief(connection, Selection(place="Chittagong"))
    with sqlite3.connect(loaded.path) as connection:
        base = "FROM incident WHERE merged_into IS NULL AND place_key = 'chittagong'"
        sizes = dict(connection.execute(
            "SELECT CASE WHEN COALESCE(perpetrators_max, perpetrators_min) IS NULL THEN 'unknown' "
            "WHEN COALESCE(perpetrators_max, perpetrators_min) = 0 THEN '0' "
            "WHEN COALESCE(perpetrators_max, perpetrators_min) <= 2 THEN '1-2' "
            "WHEN COALESCE(perpetrators_max, perpetrators_min) <= 5 THEN '3-5' "
            f"WHEN COALESCE(perpetrators_max, perpetrators_min) <= 10 THEN '6-10' ELSE '11+' END, "
            f"COUNT(*) {base} GROUP BY 1").fetchall())  # fmt: skip
        failed = f"SELECT id {base} AND outcome IN ('attempted', 'foiled-by-crew')"
        tagged = (
            "SELECT value, COUNT(DISTINCT incident_id) FROM incident_tag "  # noqa: S608 - fixed text
            f"WHERE facet = 'actions_taken' AND incident_id IN ({failed}) GROUP BY value"
        )
        actions = dict(connection.execute(tagged).fetchall())
        failed_count = connection.execute(f"SELECT COUNT(*) FROM ({failed})").fetchone()[0]  # noqa: S608 - fixed text
        confirmed, external, total = connection.execute(
            "SELECT SUM(verification_status = 'confirmed'), "
            f"SUM(verification_status <> 'confirmed' AND origin = 'external'), COUNT(*) {base}"
        ).fetchone()
    assert {k: v for k, v in brief["perpetrator_numbers"].items() if v} == sizes
    helped = brief["what_helped"]["failed"]
    assert helped["counts"] == actions
    assert helped["incidents"] == failed_count > 0
    shares = brief["source_shares"]
    assert (shares["confirmed"], shares["external_unverified"]) == (confirmed, external)
    assert shares["confirmed_share"] == round(confirmed / total, 3)
