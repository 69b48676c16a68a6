"""The incident page and its editing forms, on SQLite and PostgreSQL, via Flask's test client."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from incident_db import history
from incident_db.db import open_database
from incident_db.ingest import ingest_batch
from incident_db.models import Incident
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from tests.integration.test_members_web import (
    HOSTILE,
    ORIGIN,
    audit_actions,
    csrf_token,
    signed_in,
)
from tests.unit.incident_db.factories import REVIEWER, batch, record, snapshot

TRUSTED = frozenset({REVIEWER.token})
ONE, TWO = f"{1:032x}", f"{2:032x}"
BATCH = "a" * 32
#: every editing form: path suffix and a valid form for it
EDITS = {
    "verification": {"level": "unverified", "reason": "single source"},
    "grade": {"grade": "C3", "reason": "source unknown"},
    "note": {"note": "asked the agent for the port log"},
    "merge": {"into": TWO, "reason": "one robbery, two reports"},
    "link": {"other": TWO, "relation": "corroborates", "reason": "same night"},
    "unlink": {"other": TWO, "relation": "possible-duplicate", "reason": "other ships"},
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
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
def stored(engine: Engine) -> Engine:
    long_word = "W" * 3000
    records = [record(1, narrative=f"{HOSTILE} {long_word}", place=HOSTILE[:150]), record(2)]
    ingest_batch(engine, batch(records, batch_id=BATCH), TRUSTED)
    return engine


def test_a_member_reads_everything_and_gets_no_forms(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "reader@example.org", "member")
    response = client.get(f"/incidents/{ONE}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert" in page
    for shown in ("Piracy", "Boarded", "Bulk carrier", "Knives", "Forecastle", "B2",
                  "confirmed", BATCH, REVIEWER.token.fingerprint, f"/incidents/{TWO}",
                  "possible duplicate"):  # fmt: skip
        assert shown.lower() in page.lower(), shown
    assert 'action="/incidents/' not in page
    assert client.get("/incidents/" + "f" * 32).status_code == 404
    assert client.get("/incidents/not-an-id").status_code == 404


def test_a_member_gets_403_on_every_edit(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "reader@example.org", "member")
    token = csrf_token(client, f"/incidents/{ONE}")
    before = snapshot(stored)
    for name, form in EDITS.items():
        response = client.post(f"/incidents/{ONE}/{name}", data={**form, "csrf_token": token})
        assert response.status_code == 403, name
    assert snapshot(stored) == before


def test_every_edit_refuses_a_missing_csrf_token(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    before = snapshot(stored)
    for name, form in EDITS.items():
        response = client.post(f"/incidents/{ONE}/{name}", data=form)
        assert response.status_code == 400, name
        assert "expired" in response.get_data(as_text=True)
    assert snapshot(stored) == before


def test_an_editors_change_shows_in_the_history_and_the_audit_log(
    app: Flask, stored: Engine
) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    page = client.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert f'action="/incidents/{ONE}/grade"' in page
    token = csrf_token(client, f"/incidents/{ONE}")
    reason = "Source not known to us <b>before</b>"
    response = client.post(
        f"/incidents/{ONE}/grade", data={"grade": "c3", "reason": reason, "csrf_token": token}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Grade set to C3." in page
    history_part = page[page.index("<h2>History</h2>") :]
    assert "Grade changed" in history_part
    assert "editor@example.org" in history_part
    assert "Source not known to us &lt;b&gt;before&lt;/b&gt;" in history_part
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", history_part)
    assert ("editor@example.org", "incident.grade") in [(a, b) for a, b, _ in audit_actions(stored)]
    with Session(stored) as session:
        assert session.get(Incident, ONE).grade == "C3"
        assert [c.action for c in history.history(session, ONE)] == ["grade"]


def test_a_refused_edit_says_why_and_changes_nothing(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{ONE}")
    before = snapshot(stored)
    for name, form in (("grade", {"grade": "C3", "reason": " "}),
                       ("grade", {"grade": "Z9", "reason": "x"}),
                       ("merge", {"into": ONE, "reason": "x"}),
                       ("link", {"other": "f" * 32, "relation": "corroborates", "reason": "x"}),
                       ("note", {"note": "x" * 5000})):  # fmt: skip
        response = client.post(f"/incidents/{ONE}/{name}", data={**form, "csrf_token": token})
        assert response.status_code == 400, name
        assert 'class="problem" role="alert"' in response.get_data(as_text=True)
    assert snapshot(stored) == before


def test_a_merge_from_the_page_keeps_both_incidents(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{TWO}")
    form = {"into": ONE, "reason": "same robbery", "csrf_token": token}
    response = client.post(f"/incidents/{TWO}/merge", data=form)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Merged into" in page
    assert f'href="/incidents/{ONE}"' in page
    assert f'action="/incidents/{TWO}/merge"' not in page  # merged: no second merge offered
    with Session(stored) as session:
        rows = {i: m for i, m in session.execute(select(Incident.id, Incident.merged_into))}
    assert rows == {ONE: None, TWO: ONE}
    kept = client.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert f'first stored as <a class="link" href="/incidents/{TWO}">' in kept
    assert ("editor@example.org", "incident.merge") in [(a, b) for a, b, _ in audit_actions(stored)]
