"""TLP 2.0 in the members' service, through Flask's test client, on SQLite and PostgreSQL.

Editors change an incident's level with a reason (members may not); every
page that lists incidents shows each one's label; the map filters by level
without JavaScript and in the JSON its script reads; and TLP:RED is in no
download: its id and a canary from its narrative are looked for in the
bytes of every CSV, GeoJSON, STIX and PDF file a member can take.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from incident_db import history, tlp
from incident_db.db import open_database
from incident_db.ingest import ingest_batch
from incident_db.models import Incident, IncidentChange
from incident_db.places import place_key
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from tests.conftest import ROOT
from tests.integration.test_members_places import pdf_pages_text
from tests.integration.test_members_web import (
    ORIGIN,
    audit_actions,
    csrf_token,
    signed_in,
)
from tests.unit.incident_db.factories import REVIEWER, batch, record

TODAY = dt.datetime.now(dt.UTC).date()
CANARY = "canary-7c1e-red-narrative"
RED, STRICT, AMBER, GREEN = (f"{n:032x}" for n in (1, 2, 3, 4))
LEVELS = {RED: "red", STRICT: "amber+strict", AMBER: "amber", GREEN: "green"}
LEVEL_IDS = {level: ident for ident, level in LEVELS.items()}
PLACE = "Chittagong Anchorage 'B', Bangladesh"  # the factories' place
CSS = ROOT / "incident_db" / "web" / "static" / "css"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    records = []
    for number, days in ((1, 5), (2, 15), (3, 25), (4, 35)):
        day = TODAY - dt.timedelta(days=days)
        changes = {"narrative": CANARY} if number == 1 else {}
        records.append(record(number, occurred_local=f"{day.isoformat()}T02:30", **changes))
    ingest_batch(made, batch(records), {REVIEWER.token})
    with Session(made) as session:
        history.link(session, STRICT, RED, "corroborates", "same night", actor="cli")
        for ident, level in LEVELS.items():
            if level != "amber":
                history.set_tlp(session, ident, level, actor="cli", reason="test levels")
        session.commit()
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


@pytest.fixture
def editor(app: Flask, engine: Engine) -> FlaskClient:
    return signed_in(app, engine, "editor@example.org", "editor")


def label(level: str) -> str:
    """The label as every page must write it."""
    css = "tlp-" + level.replace("+", "-")
    return f'<span class="tlp {css}" translate="no">{tlp.LABELS[level]}</span>'


def level_of(engine: Engine, ident: str) -> str:
    with engine.connect() as connection:
        return connection.execute(select(Incident.tlp).where(Incident.id == ident)).scalar_one()


def test_an_editor_changes_the_level_with_a_reason(editor: FlaskClient, engine: Engine) -> None:
    page = editor.get(f"/incidents/{AMBER}").get_data(as_text=True)
    assert 'action="/incidents/' + AMBER + '/tlp"' in page
    token = csrf_token(editor, f"/incidents/{AMBER}")
    response = editor.post(f"/incidents/{AMBER}/tlp", data={
        "csrf_token": token, "level": "amber+strict", "reason": "the owner asked"})  # fmt: skip
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Level set to TLP:AMBER+STRICT." in body
    assert label("amber+strict") in body
    assert level_of(engine, AMBER) == "amber+strict"
    with Session(engine) as session:
        change = session.scalars(
            select(IncidentChange).where(IncidentChange.incident_id == AMBER)
        ).one()
    assert (change.action, change.actor, change.reason) == ("tlp", "editor@example.org",
                                                            "the owner asked")  # fmt: skip
    assert json.loads(change.before) == {"tlp": "amber"}
    assert json.loads(change.after) == {"tlp": "amber+strict"}
    assert ("editor@example.org", "incident.tlp", {
        "before": {"tlp": "amber"}, "after": {"tlp": "amber+strict"},
        "reason": "the owner asked"}) in audit_actions(engine)  # fmt: skip


@pytest.mark.parametrize(
    ("form", "status"),
    [({"level": "red", "reason": ""}, 400), ({"level": "red", "reason": "   "}, 400),
     ({"level": "<b>purple</b>", "reason": "why"}, 400),
     ({"level": "red" * 5000, "reason": "x"}, 400),
     ({"level": "amber", "reason": "already"}, 400), ({"reason": "no level"}, 400)],
)  # fmt: skip
def test_a_change_without_a_reason_or_a_good_level_is_refused(
    editor: FlaskClient, engine: Engine, form: dict[str, str], status: int
) -> None:
    token = csrf_token(editor, f"/incidents/{AMBER}")
    response = editor.post(f"/incidents/{AMBER}/tlp", data={"csrf_token": token, **form})
    assert response.status_code == status
    assert "<b>purple" not in response.get_data(as_text=True)
    assert level_of(engine, AMBER) == "amber"
    assert not [
        a for actor, a, _ in audit_actions(engine) if a == "incident.tlp" and actor != "cli"
    ]


def test_a_member_may_not_change_the_level(member: FlaskClient, editor: FlaskClient,
                                           engine: Engine) -> None:  # fmt: skip
    page = member.get(f"/incidents/{AMBER}").get_data(as_text=True)
    assert "/tlp" not in page
    assert label("amber") in page
    token = csrf_token(member, f"/incidents/{AMBER}")
    response = member.post(f"/incidents/{AMBER}/tlp", data={
        "csrf_token": token, "level": "clear", "reason": "I would like to share it"})  # fmt: skip
    assert response.status_code == 403
    # and an editor without the form's token is refused too
    response = editor.post(f"/incidents/{AMBER}/tlp", data={"level": "clear", "reason": "x"})
    assert response.status_code == 400
    assert level_of(engine, AMBER) == "amber"


def _voyage_pdf(client: FlaskClient) -> Any:
    response = client.get("/voyage.pdf?calls=Chittagong")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    return response


def _inflated(body: bytes, tmp_path: Path) -> bytes:
    """Every stream of a PDF, decompressed, and the file itself: what a reader could find."""
    path = tmp_path / f"{secrets.token_hex(4)}.pdf"
    path.write_bytes(body)
    parts = [body]
    with pikepdf.open(path) as document:
        for obj in document.objects:
            if isinstance(obj, pikepdf.Stream):
                parts.append(obj.read_bytes())
    return b"\n".join(parts)


def test_red_is_in_no_download(member: FlaskClient, engine: Engine, tmp_path: Path) -> None:
    downloads = {}
    for kind in ("csv", "geojson", "stix"):
        response = member.get(f"/export.{kind}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["X-TLP-Red-Left-Out"] == "1"
        downloads[kind] = response.get_data()
    pdf = _voyage_pdf(member)
    assert pdf.headers["X-TLP-Red-Left-Out"] == "1"
    downloads["pdf"] = _inflated(pdf.data, tmp_path)
    for kind, body in downloads.items():
        assert RED.encode() not in body, kind
        assert CANARY.encode() not in body, kind
    # the others are there, AMBER+STRICT included: members are the receiving organisation
    for kind in ("csv", "geojson", "stix"):
        for ident in (STRICT, AMBER, GREEN):
            assert ident.encode() in downloads[kind] or kind == "stix", (kind, ident)
    features = json.loads(downloads["geojson"])["features"]
    assert {f["id"]: f["properties"]["tlp"] for f in features} == {
        STRICT: "amber+strict", AMBER: "amber", GREEN: "green"}  # fmt: skip
    stix = json.loads(downloads["stix"])
    incidents = [o for o in stix["objects"] if o["type"] == "incident"]
    assert len(incidents) == 3
    # every object is marked, none RED (the bundle carries the five definitions themselves)
    marked = [o for o in stix["objects"] if o["type"] != "marking-definition"]
    assert all(tlp.STIX_MARKINGS["red"] not in o.get("object_marking_refs", []) for o in marked)
    assert {i["object_marking_refs"][0] for i in incidents} == {
        tlp.STIX_MARKINGS[level] for level in ("amber+strict", "amber", "green")}  # fmt: skip
    pages = pdf_pages_text(pdf.data, tmp_path)
    assert "1 TLP:RED incident left out" in pages[1]
    for level in ("amber+strict", "amber", "green"):
        assert tlp.LABELS[level] in pages[1]
    assert "here TLP:AMBER+STRICT" in pages[0]
    audited = [d for _, a, d in audit_actions(engine) if a.startswith("export.")]
    assert {d.get("tlp_red_left_out") for d in audited} == {1}


def test_the_download_page_says_what_is_left_out(member: FlaskClient) -> None:
    page = member.get("/map").get_data(as_text=True)
    text = re.sub(r"\s+", " ", page)
    assert "TLP:RED never leaves this service: downloads leave it out (1 of the incidents" in text
    assert "TLP:AMBER+STRICT incidents are in the downloads because you are a member" in text
    narrowed = re.sub(r"\s+", " ", member.get("/map?tlp=green").get_data(as_text=True))
    assert "(0 of the incidents this filter selects are TLP:RED" in narrowed


def test_the_label_is_on_every_page_that_lists_incidents(member: FlaskClient) -> None:
    key = place_key(PLACE)
    pages = {
        "map": member.get("/map").get_data(as_text=True),
        "place": member.get(f"/places/{key}").get_data(as_text=True),
        "voyage": member.get("/voyage?calls=Chittagong").get_data(as_text=True),
    }
    for name, page in pages.items():
        for level in LEVELS.values():
            assert label(level) in page, (name, level)
        # the RED row is not printed, and the paper says so
        assert "tlp-red-row" in page, name
        assert "TLP:RED incidents are not printed." in page, name
    for ident, level in LEVELS.items():
        page = member.get(f"/incidents/{ident}").get_data(as_text=True)
        assert f"Sharing limit: {label(level)}" in page
        assert ("TLP:RED incidents are not printed." in page) is (level == "red")
    # a row of the map's list carries the label of its own incident
    rows = re.findall(r'<tr class="map-item[^"]*" data-id="([0-9a-f]{32})">\s*<td>.*?</td>\s*'
                      r'<td>(<span class="tlp [^"]+" translate="no">[^<]+</span>)',
                      pages["map"], re.S)  # fmt: skip
    assert dict(rows) == {ident: label(level) for ident, level in LEVELS.items()}


def test_a_red_marker_on_an_inline_map_is_not_printed(member: FlaskClient) -> None:
    """Place and voyage pages draw their maps on the server: on screen a member sees the
    RED incident's marker as any other; print.css hides it, and the paper says so."""
    pages = {
        "place": member.get(f"/places/{place_key(PLACE)}").get_data(as_text=True),
        "voyage": member.get("/voyage?calls=Chittagong").get_data(as_text=True),
    }
    for name, page in pages.items():
        found = re.findall(r'<g class="([^"]*)" data-count="1" data-id="([0-9a-f]{32})">', page)
        assert {ident: classes for classes, ident in found} == {
            RED: "marker tlp-red-marker", STRICT: "marker", AMBER: "marker", GREEN: "marker"
        }, name  # fmt: skip
        text = re.sub(r"<[^>]+>", "", re.sub(r"\s+", " ", page))
        assert "1 TLP:RED position is left off the printed map" in text, name
    # the map page: its server-drawn markers, and those map.js draws from points.json
    page = member.get("/map?since=2000-01-01").get_data(as_text=True)
    found = re.findall(r'<g class="([^"]*)" data-count="1" data-id="([0-9a-f]{32})">', page)
    marked = {ident: classes for classes, ident in found}
    assert marked[RED] == "marker tlp-red-marker"
    assert all(classes == "marker" for ident, classes in marked.items() if ident != RED)
    for level, red in (("red", True), ("green", False)):
        query = f"since=2000-01-01&tlp={level}&bbox=91.6,22.1,91.8,22.3"
        points = member.get(f"/map/points.json?{query}").json
        assert points is not None
        assert [(p["id"], p["red"]) for p in points["points"]] == [(LEVEL_IDS[level], red)]
    printed = (CSS / "print.css").read_text(encoding="utf-8")
    assert re.search(r"\.tlp-red-marker \{ display: none !important; \}", printed)
    # the screen's sheet leaves it alone: members see every marker on screen
    assert "tlp-red-marker" not in (CSS / "members.css").read_text(encoding="utf-8")


def _listed(client: FlaskClient, query: str) -> set[str]:
    page = client.get(f"/map?{query}")
    assert page.status_code == 200
    return set(re.findall(r'<tr class="map-item[^"]*" data-id="([0-9a-f]{32})">', page.text))


def test_the_map_filters_by_level(member: FlaskClient) -> None:
    assert _listed(member, "") == set(LEVELS)
    assert _listed(member, "tlp=red") == {RED}
    assert _listed(member, "tlp=amber&tlp=TLP:AMBER%2BSTRICT") == {AMBER, STRICT}
    assert _listed(member, "tlp=clear") == set()
    page = member.get("/map?tlp=green").get_data(as_text=True)
    assert '<input type="checkbox" name="tlp" value="green" checked>' in page
    assert 'data-query="since=' in page
    assert "tlp=green" in re.search(r'data-query="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    # what map.js asks for: the same filter, server-side
    points = member.get("/map/points.json?tlp=red&bbox=80,10,100,30").get_json()
    assert [p["id"] for p in points["points"]] == [RED]
    points = member.get("/map/points.json?tlp=green&tlp=clear&bbox=80,10,100,30").get_json()
    assert [p["id"] for p in points["points"]] == [GREEN]
    # the exports take the filter too, RED still left out
    assert member.get("/export.csv?tlp=red").get_data(as_text=True).count("\n") == 1
    for bad in ("purple", "<script>", "red" * 30, "\x1b[31m"):
        response = member.get("/map", query_string={"tlp": bad})
        assert response.status_code == 400
        assert "<script>" not in response.get_data(as_text=True)
    many = "&".join(["tlp=red"] * 21)
    assert member.get(f"/map?{many}").status_code == 400


def test_the_colours_are_firsts_on_black() -> None:
    members = (CSS / "members.css").read_text(encoding="utf-8")
    for level, colour in tlp.COLOURS.items():
        css = "tlp-" + level.replace("+", "-")
        assert re.search(rf"\.{re.escape(css)} \{{ color: {colour}; \}}", members), level
    rule = re.search(r"\.tlp \{([^}]*)\}", members)
    assert rule is not None
    assert f"background: {tlp.BACKGROUND};" in rule.group(1)
    assert "white-space: nowrap" in rule.group(1)
    assert re.search(r"\.print-only \{ display: none; \}", members)
    printed = (CSS / "print.css").read_text(encoding="utf-8")
    assert re.search(r"\.tlp-red-row \{ display: none !important; \}", printed)
    assert re.search(r"\.print-only \{ display: block !important; \}", printed)
