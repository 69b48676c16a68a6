"""The port and anchorage guide and the voyage brief, through Flask's test client.

The place page must say what ``incident-db brief`` says: its figures are
compared with the command's JSON for the same place and period, and spot
checked against plain SQL on the same file (Python's own sqlite3, not the
brief's code). The voyage brief is checked for its ranking rule, its
refusal of unknown names, its PDF (pages counted and read with pikepdf)
and its audit lines, on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pikepdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from incident_db.brief import wording
from incident_db.cli import main
from incident_db.db import open_database
from incident_db.feeds import import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from tests.conftest import ROOT
from tests.integration.test_members_web import ORIGIN, audit_actions, signed_in
from tests.unit.incident_db.factories import REVIEWER, batch, record

DATA = ROOT.parent / "shared" / "data" / "crime-at-sea" / "pirate_attacks.csv"
TODAY = dt.datetime.now(dt.UTC).date()
#: a place name as a record may carry it (records refuse control characters) ...
HOSTILE = '<script>alert("x")</script>$\\frac{1}{0}$'
#: ... and as a member may type it
TYPED = HOSTILE + " \x1b[31m"
# reviewer incidents at Chittagong, as in test_brief_figures_sql.py: (days ago, type, category,
# outcome); six in the last 24 months, three in the 24 months before
RECENT = (
    (3, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (40, "boarded", "piracy-or-armed-robbery", None),
    (41, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (200, "boarded", "piracy-or-armed-robbery", None),
    (600, "attempted-boarding", "piracy-or-armed-robbery", "attempted"),
    (800, "boarded", "piracy-or-armed-robbery", None),
    (1000, "attempted-boarding", "piracy-or-armed-robbery", "foiled-by-crew"),
    (100, "fired-upon", "piracy-or-armed-robbery", None),
    (900, None, "suspicious-approach", None),
)


def _day(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


def make_app(database_url: str) -> Flask:
    config = WebConfig(database_url=database_url, secret_key=secrets.token_bytes(32),
                       origin=ORIGIN, rp_id="localhost", testing=True)  # fmt: skip
    return create_app(config)


def page_text(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.get_data(as_text=True)


def by_id(page: str, element_id: str) -> str:
    """The text inside the element with ``element_id`` (tags dropped, entities decoded)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(p|ul|table)>', page, re.DOTALL)
    assert found, element_id
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def list_items(page: str, element_id: str) -> list[str]:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</ul>', page, re.DOTALL)
    assert found, element_id
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1))]


# --- the real feed, and the brief's command, on one SQLite file ----------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, Path]]:
    """The Crime at Sea file and the recent reviewer incidents, imported once."""
    if not DATA.is_file():
        pytest.fail(f"the Crime at Sea data is not at {DATA} (see its README)")
    path = tmp_path_factory.mktemp("places") / "incidents.sqlite3"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    import_feed(engine, DATA, load_mapping("crime-at-sea"))
    records = [
        record(n, occurred_local=f"{_day(days)}T0{n}:15", incident_type=kind, category=category,
               outcome=outcome)
        for n, (days, kind, category, outcome) in enumerate(RECENT, start=1)
    ]  # fmt: skip
    ingest_batch(engine, batch(records), {REVIEWER.token})
    yield engine, url, path
    engine.dispose()


@pytest.fixture
def reader(loaded: tuple[Engine, str, Path]) -> Iterator[FlaskClient]:
    engine, url, _ = loaded
    app = make_app(url)
    yield signed_in(app, engine, f"reader-{secrets.token_hex(4)}@example.org", "member")
    app.extensions["incident_db"]["engine"].dispose()


def cli_brief(url: str, tmp_path: Path, *options: str) -> dict[str, Any]:
    out = tmp_path / f"brief-{secrets.token_hex(4)}.json"
    assert main(["--db", url, "brief", "--place", "Chittagong", *options, "--format", "json",
                 "--out", str(out)]) == 0  # fmt: skip
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def check_page_against(page: str, brief: dict[str, Any]) -> None:
    """Every sentence and count the place page shows equals the command's figures."""
    assert by_id(page, "subtitle") == wording.subtitle(brief)
    assert list_items(page, "trend") == wording.trend_lines(brief)
    assert by_id(page, "clock-window") == wording.clock_line(brief)
    assert by_id(page, "days") == wording.days_line(brief)
    assert by_id(page, "sources") == wording.sources_line(brief)
    days = dict(re.findall(r'data-day="([a-z]+)">(\d+)<', page))
    assert {d: int(n) for d, n in days.items()} == brief["by_weekday"]
    hours = {h: int(n) for h, n in re.findall(r'data-hour="(\w+)">(\d+)<', page)}
    assert hours == {h: n for h, n in brief["by_hour"].items() if n}


def test_the_place_page_says_what_the_cli_brief_says(
    loaded: tuple[Engine, str, Path], reader: FlaskClient, tmp_path: Path
) -> None:
    _, url, path = loaded
    page = page_text(reader, "/places/chittagong")
    brief = cli_brief(url, tmp_path)
    check_page_against(page, brief)
    # and the same figures by plain SQL: six in the last 24 months, three in the 24 before
    since = dt.date(TODAY.year - 2, TODAY.month, TODAY.day) + dt.timedelta(days=1)
    with sqlite3.connect(path) as connection:
        ids = [row[0] for row in connection.execute(
            "SELECT id FROM incident WHERE merged_into IS NULL AND place_key = 'chittagong' "
            "AND local_date BETWEEN ? AND ?", (since.isoformat(), TODAY.isoformat()))]  # fmt: skip
    assert len(ids) == 6
    assert list_items(page, "trend")[0] == (
        "6 in the last 24 months, 3 in the 24 months before (3 more).")  # fmt: skip
    assert by_id(page, "clock-window").startswith(
        "Between 01:15 and 05:15 local time: holds 5 of 6 with a known local time")  # fmt: skip
    assert f"{since.isoformat()} to {TODAY.isoformat()} (the last 24 months)" in page
    listed = re.findall(r'href="/incidents/([0-9a-f-]+)"', page)
    assert sorted(listed) == sorted(ids)
    # what helped: the crew actions of the failed attempts, from the tags
    with sqlite3.connect(path) as connection:
        failed = connection.execute(
            "SELECT COUNT(*) FROM incident WHERE merged_into IS NULL AND place_key = 'chittagong' "
            "AND local_date BETWEEN ? AND ? AND outcome IN ('attempted', 'foiled-by-crew')",
            (since.isoformat(), TODAY.isoformat())).fetchone()[0]  # fmt: skip
    assert failed == 3
    assert f"of 3 that say, {failed} failed in all" in by_id(page, "helped")


def test_the_period_form_gives_the_cli_figures_for_those_dates(
    loaded: tuple[Engine, str, Path], reader: FlaskClient, tmp_path: Path
) -> None:
    _, url, path = loaded
    page = page_text(reader, "/places/chittagong?since=2009-01-01&until=2020-12-31")
    brief = cli_brief(url, tmp_path, "--since", "2009-01-01", "--until", "2020-12-31")
    check_page_against(page, brief)
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute(
            "SELECT COUNT(*) FROM incident WHERE merged_into IS NULL AND place_key = 'chittagong' "
            "AND local_date BETWEEN '2009-01-01' AND '2020-12-31'").fetchone()  # fmt: skip
    assert brief["incidents"] == count > 50
    assert f"· {count} incidents ·" in by_id(page, "subtitle")
    assert "and " in page
    assert "earlier ones, counted above but not listed" in page
    whole = page_text(reader, "/places/chittagong?archive=1")
    check_page_against(whole, cli_brief(url, tmp_path, "--whole-archive"))
    assert list_items(whole, "trend")[0].startswith("No trend: the brief covers the whole archive")
    wrong = page_text(reader, "/places/chittagong?since=2020-13-01", 400)
    assert "The first date must be a day written YYYY-MM-DD." in wrong
    backwards = page_text(reader, "/places/chittagong?since=2021-01-01&until=2020-01-01", 400)
    assert "The first date is after the last one." in backwards


def test_search_folds_names_as_the_brief_does(
    loaded: tuple[Engine, str, Path], reader: FlaskClient
) -> None:
    _, _, path = loaded
    with sqlite3.connect(path) as connection:
        (on_record,) = connection.execute(
            "SELECT COUNT(*) FROM incident WHERE merged_into IS NULL AND place_key = 'chittagong'"
        ).fetchone()
    for spelling in ("Chattogram", "Chittagong 'B' Anchorage, Bangladesh", "CHITTAGONG roads"):
        page = page_text(reader, "/places?q=" + quote(spelling))
        first = re.search(r'<ul class="places" id="results">\s*<li><a href="([^"]+)">', page)
        assert first, spelling
        assert first.group(1) == "/places/chittagong", spelling
        counts = re.search(r'data-key="chittagong" data-recent="(\d+)" data-on-record="(\d+)"',
                           page)  # fmt: skip
        assert counts
        assert (int(counts.group(1)), int(counts.group(2))) == (6, on_record)
    # a slip of the keyboard: nothing matches, and the similar names are offered
    slip = page_text(reader, "/places?q=Chitagong")
    assert "No place matches “Chitagong”." in slip
    assert 'href="/places/chittagong"' in by_id(slip, "suggestions") or re.search(
        r'id="suggestions".*?href="/places/chittagong"', slip, re.DOTALL)  # fmt: skip
    # a folded name finds its page; an unknown one is a 404 with suggestions
    assert "holds 5 of 6" in page_text(reader, "/places/Chattogram")
    missing = page_text(reader, "/places/chitagong", 404)
    assert re.search(r'id="suggestions".*?href="/places/chittagong"', missing, re.DOTALL)
    hostile = page_text(reader, "/places?q=" + quote(TYPED))
    assert "<script>alert" not in hostile
    assert "\x1b" not in hostile
    assert "&lt;script&gt;" in hostile


# --- the voyage brief, on SQLite and PostgreSQL --------------------------------------

# (place, days ago, incident type, category): scores over the last 12 months are
# Alpha 3 + 2 = 5, Belmar 2 + 2 + 1 = 5 (its last incident more recent: ranks first),
# Corvo 1 (a suspicious approach; the actual attack 500 days ago is too old)
VOYAGE = (
    ("Alphaport Anchorage, Testland", 30, "boarded", "piracy-or-armed-robbery"),
    ("Alphaport", 90, "attempted-boarding", "piracy-or-armed-robbery"),
    ("Belmar Roads", 5, "attempted-boarding", "piracy-or-armed-robbery"),
    ("Belmar Roads", 50, "fired-upon", "piracy-or-armed-robbery"),
    ("Belmar Roads", 60, None, "suspicious-approach"),
    ("Corvo Harbour", 10, "suspicious-approach", "suspicious-approach"),
    ("Corvo Harbour", 500, "boarded", "piracy-or-armed-robbery"),
    (HOSTILE, 20, "boarded", "piracy-or-armed-robbery"),
)


@pytest.fixture
def voyage_db(database_url: str) -> Iterator[tuple[Engine, Flask]]:
    engine = open_database(database_url)
    records = [
        record(1000 + n, place=place, occurred_local=f"{_day(days)}T2{n % 4}:05",
               incident_type=kind, category=category, outcome=None)
        for n, (place, days, kind, category) in enumerate(VOYAGE)
    ]  # fmt: skip
    ingest_batch(engine, batch(records), {REVIEWER.token})
    app = make_app(database_url)
    yield engine, app
    app.extensions["incident_db"]["engine"].dispose()
    engine.dispose()


def pdf_pages_text(body: bytes, tmp_path: Path) -> list[str]:
    """The words drawn on each page of a PDF, read from its content streams."""
    path = tmp_path / f"{secrets.token_hex(4)}.pdf"
    path.write_bytes(body)
    texts = []
    with pikepdf.open(path) as document:
        for page in document.pages:
            words = []
            for operands, operator in pikepdf.parse_content_stream(page):
                if str(operator) == "Tj":
                    words.append(bytes(operands[0]).decode("latin-1"))
                elif str(operator) == "TJ":
                    words.append("".join(bytes(x).decode("latin-1") for x in operands[0]
                                         if isinstance(x, pikepdf.String)))  # fmt: skip
            texts.append(" ".join(words))
    return texts


def test_the_voyage_brief_ranks_the_calls_and_is_audited(
    voyage_db: tuple[Engine, Flask], tmp_path: Path
) -> None:
    engine, app = voyage_db
    client = signed_in(app, engine, "cso@example.org", "member")
    calls = "Corvo Harbour\nAlphaport\n\nBelmar Roads\nalphaport anchorage\n"
    page = page_text(client, "/voyage?calls=" + quote(calls))
    ranking = re.findall(r'<tr data-key="([^"]+)">.*?<td class="n score"[^>]*>(\d+)</td>', page,
                         re.DOTALL)  # fmt: skip
    assert ranking == [("belmar", "5"), ("alphaport", "5"), ("corvo", "1")]
    assert "Risk score: the incidents at the place in the last 12 months" in page
    # voyage order, the repeated Alphaport once; one page section per call
    assert re.findall(r'id="call-\d+-name">Call \d+: ([^<]+)<', page) == [
        "Corvo Harbour", "Alphaport", "Belmar Roads"]  # fmt: skip
    assert 'href="/voyage.pdf?calls=' in page
    assert "print.css" in page
    response = client.get("/voyage.pdf?calls=" + quote(calls))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    pages = pdf_pages_text(response.data, tmp_path)
    assert len(pages) == 1 + 3
    assert "Voyage brief: 3 ports of call" in pages[0]
    for text, name in zip(pages[1:], ["Corvo Harbour", "Alphaport",
                                      "Belmar Roads"], strict=True):  # fmt: skip
        assert "Call" in text
        assert name in text
    exports = [(a, d) for _, a, d in audit_actions(engine) if a == "export.voyage-brief"]
    assert exports == [
        (
            "export.voyage-brief",
            {"calls": ["corvo", "alphaport", "belmar"], "format": "pdf", "tlp_red_left_out": 0},
        ),
        (
            "export.voyage-brief",
            {"calls": ["corvo", "alphaport", "belmar"], "format": "print", "tlp_red_left_out": 0},
        ),
    ]


def test_hostile_place_names_stay_text(voyage_db: tuple[Engine, Flask], tmp_path: Path) -> None:
    engine, app = voyage_db
    client = signed_in(app, engine, "cso@example.org", "member")
    found = page_text(client, "/places?q=" + quote("script alert"))
    assert "<script>alert" not in found
    assert "&lt;script&gt;" in found
    key = re.search(r'href="(/places/[^"]*script[^"]*)"', found)
    assert key
    assert "&lt;script&gt;" in page_text(client, key.group(1))
    page = page_text(client, "/voyage?calls=" + quote(HOSTILE + "\nBelmar Roads"))
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page
    typed = page_text(client, "/voyage?calls=" + quote(TYPED), 400)  # "31m" is no place
    assert "<script>alert" not in typed
    assert "\x1b" not in typed
    response = client.get("/voyage.pdf?calls=" + quote(HOSTILE + "\nBelmar Roads"))
    assert response.status_code == 200
    pages = pdf_pages_text(response.data, tmp_path)
    assert len(pages) == 3
    assert '<script>alert("x")</script>$\\frac{1}{0}$' in pages[1]
    assert "\x1b" not in "".join(pages)


def test_unknown_calls_are_named_with_similar_places(voyage_db: tuple[Engine, Flask]) -> None:
    engine, app = voyage_db
    client = signed_in(app, engine, "cso@example.org", "member")
    page = page_text(client, "/voyage?calls=" + quote("Belmar Roads\nAlfaport\nZzyzx Qwv"), 400)
    assert "No incident is on record at “Alfaport”, “Zzyzx Qwv”." in html.unescape(page)
    unknown = re.search(r'id="unknown-calls">(.*?)</ul>', page, re.DOTALL).group(1)
    assert re.search(r"<strong>Alfaport</strong>:\s*similar names on record:\s*"
                     r'<a href="/places/alphaport">', unknown)  # fmt: skip
    assert "<strong>Zzyzx Qwv</strong>:" in unknown
    assert "no similar name on record" in unknown
    assert 'id="voyage-brief"' not in page
    assert client.get("/voyage.pdf?calls=" + quote("Alfaport")).status_code == 400
    too_many = "\n".join(f"Belmar Roads {n}" for n in range(13))
    assert "up to 12 ports of call, not 13" in page_text(
        client, "/voyage?calls=" + quote(too_many), 400)  # fmt: skip
    assert [a for _, a, _ in audit_actions(engine) if a.startswith("export")] == []


def test_places_and_voyage_need_a_member_and_only_answer_get(
    voyage_db: tuple[Engine, Flask],
) -> None:
    engine, app = voyage_db
    anonymous = app.test_client()
    paths = ("/places", "/places?q=belmar", "/places/belmar", "/voyage",
             "/voyage?calls=Belmar", "/voyage.pdf?calls=Belmar")  # fmt: skip
    for path in paths:
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "Belmar" not in response.get_data(as_text=True)
    member = signed_in(app, engine, "reader@example.org", "member")
    for path in paths:
        assert member.get(path).status_code == 200, path
        # nothing here changes anything: a POST is not a way in, token or not
        assert member.post(path, data={"calls": "Belmar"}).status_code in (400, 405), path
    assert [a for _, a, _ in audit_actions(engine) if a.startswith("export")] == [
        "export.voyage-brief", "export.voyage-brief"]  # fmt: skip
