"""Incident history and record versions on SQLite and PostgreSQL (incident_db.history, versions).

The database itself must refuse to rewrite history, so the triggers are
tried with plain SQL through the application's own connection.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crypto.batch import sign_batch
from incident_db import history
from incident_db.db import open_database
from incident_db.errors import IngestError
from incident_db.feeds import import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from incident_db.members import store
from incident_db.models import Incident, IncidentChange, IncidentLink, IncidentTag, Provenance
from tests.unit.incident_db.factories import REVIEWER, WHEN, batch, record, snapshot
from tests.unit.incident_db.test_feeds import HEADER, ROWS

TRUSTED = frozenset({REVIEWER.token})
ONE, TWO = f"{1:032x}", f"{2:032x}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


def later(record_list: list[dict[str, Any]], hours: int, batch_id: str | None = None) -> bytes:
    """A batch signed ``hours`` after the factories' default batch time."""
    return sign_batch(record_list, REVIEWER, batch_id=batch_id or secrets.token_hex(16),
                      created_at=WHEN + dt.timedelta(hours=hours))  # fmt: skip


def _changes(engine: Engine, incident_id: str) -> list[IncidentChange]:
    with Session(engine) as session:
        return history.history(session, incident_id)


def _one_change(engine: Engine) -> int:
    ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    with Session(engine) as session:
        change = history.add_note(session, ONE, "first note", actor="editor@example.org")
        session.commit()
        return change.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE incident_change SET reason = 'rewritten'",
        "DELETE FROM incident_change",
        "INSERT INTO incident_change (id, incident_id, at, actor, action, before, after, reason) "
        "VALUES (:id, :incident, :at, 'x', 'note', '{}', '{}', 'forged') "
        "ON CONFLICT (id) DO UPDATE SET reason = 'forged'",
    ],
)
def test_history_rows_cannot_be_rewritten(engine: Engine, statement: str) -> None:
    ident = _one_change(engine)
    before = snapshot(engine)
    params = {"id": ident, "incident": ONE, "at": dt.datetime(2026, 1, 1)}
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement), params)
    assert snapshot(engine) == before


def test_replace_and_truncate_are_refused_too(engine: Engine) -> None:
    ident = _one_change(engine)
    before = snapshot(engine)
    if engine.dialect.name == "sqlite":
        # REPLACE deletes the old row without a DELETE trigger: the INSERT guard catches it
        statement = (
            "INSERT OR REPLACE INTO incident_change "
            "(id, incident_id, at, actor, action, before, after, reason) "
            "VALUES (:id, :incident, :at, 'x', 'note', '{}', '{}', 'forged')"
        )
    else:
        statement = "TRUNCATE incident_change"
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement), {"id": ident, "incident": ONE, "at": WHEN})
    assert snapshot(engine) == before
    with engine.begin() as connection:  # a new row still goes in
        connection.execute(
            text("INSERT INTO incident_change (incident_id, at, actor, action, before, after, "
                 "reason) VALUES (:incident, :at, 'x', 'note', '{}', '{}', 'fine')"),
            {"incident": ONE, "at": WHEN},
        )  # fmt: skip
    assert len(_changes(engine, ONE)) == 2


def test_each_edit_writes_history_and_audit(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    actor = "editor@example.org"
    with Session(engine) as session:
        history.change_verification(session, ONE, "unverified", "only one source", actor=actor)
        history.change_grade(session, ONE, "c3", "source not known before", actor=actor)
        history.link(session, ONE, TWO, "corroborates", "same anchorage, same night", actor=actor)
        history.unlink(session, ONE, TWO, "corroborates", "different ships after all", actor=actor)
        session.commit()
        incident = session.get(Incident, ONE)
        assert (incident.verification_status, incident.grade) == ("unverified", "C3")
        relations = session.scalars(select(IncidentLink.relation)).all()
        assert relations == ["possible-duplicate"]  # found at ingest; the editor's link is gone
        audited = [(e.actor, e.action, e.subject) for e in store.audit_events(session)]
    assert audited == [
        (actor, "incident.unlink", ONE),
        (actor, "incident.link", ONE),
        (actor, "incident.grade", ONE),
        (actor, "incident.verification", ONE),
    ]
    changes = _changes(engine, ONE)
    assert [c.action for c in changes] == ["unlink", "link", "grade", "verification"]
    assert json.loads(changes[2].before) == {"grade": "B2"}
    assert json.loads(changes[2].after) == {"grade": "C3"}
    assert changes[3].reason == "only one source"
    # the removed link is kept in the history, not silently gone
    assert json.loads(changes[0].before)["links"][0]["other_id"] == TWO


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: history.change_grade(s, ONE, "B2", "same", actor="e"), "already graded"),
        (lambda s: history.change_grade(s, ONE, "G7", "bad", actor="e"), "Admiralty grade"),
        (lambda s: history.change_grade(s, ONE, "A1", "  ", actor="e"), "reason is required"),
        (lambda s: history.change_verification(s, ONE, "unverified", "", actor="e"), "reason"),
        (lambda s: history.change_verification(s, ONE, "probable", "x", actor="e"), "must be"),
        (lambda s: history.add_note(s, ONE, "x" * 4001, actor="e"), "longer than"),
        (lambda s: history.add_note(s, ONE, "bell\x07", actor="e"), "control characters"),
        (lambda s: history.merge(s, ONE, ONE, "same", actor="e"), "itself"),
        (lambda s: history.merge(s, ONE, "f" * 32, "gone", actor="e"), "no incident"),
        (lambda s: history.link(s, ONE, TWO, "merged-into", "x", actor="e"), "a link is one"),
        (lambda s: history.unlink(s, ONE, TWO, "corroborates", "x", actor="e"), "has no"),
    ],
)
def test_refused_edits_change_nothing(engine: Engine, edit: Any, message: str) -> None:
    ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    before = snapshot(engine)
    with Session(engine) as session, pytest.raises(history.HistoryError, match=message):
        edit(session)
    assert snapshot(engine) == before


def test_merge_keeps_both_rows_and_their_history(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1), record(2)], batch_id="a" * 32), TRUSTED)
    with Session(engine) as session:
        history.merge(session, TWO, ONE, "one robbery, two reports", actor="editor@example.org")
        session.commit()
        rows = {i: m for i, m in session.execute(select(Incident.id, Incident.merged_into))}
        vouching = sorted(
            (i, o)
            for i, o in session.execute(select(Provenance.incident_id, Provenance.original_id))
        )
        with pytest.raises(history.HistoryError, match="merged into"):
            history.change_grade(session, TWO, "A1", "too late", actor="editor@example.org")
    assert rows == {ONE: None, TWO: ONE}
    assert vouching == [(ONE, ONE), (ONE, TWO)]
    (change,) = _changes(engine, TWO)
    assert (change.action, json.loads(change.after)["merged_into"]) == ("merge", ONE)


def test_a_new_version_of_a_record_updates_the_incident(engine: Engine) -> None:
    first = "a" * 32
    ingest_batch(engine, batch([record(1), record(2)], batch_id=first), TRUSTED)
    corrected = record(1, narrative="Five robbers, not four.", weapons=["guns"], perpetrators_max=6)
    second = "b" * 32
    report = ingest_batch(engine, later([corrected, record(2)], hours=5, batch_id=second), TRUSTED)
    assert (report.added, report.updated, report.already_present) == (0, 1, 1)
    with Session(engine) as session:
        incident = session.get(Incident, ONE)
        assert incident.narrative == "Five robbers, not four."
        assert incident.perpetrators_max == 6
        weapons = session.scalars(
            select(IncidentTag.value).where(IncidentTag.incident_id == ONE,
                                            IncidentTag.facet == "weapons")
        ).all()  # fmt: skip
        assert weapons == ["guns"]
        sources = sorted(
            (source, row)
            for source, row in session.execute(
                select(Provenance.source, Provenance.row).where(Provenance.original_id == ONE)
            )
        )
        assert sources == [(first, 2), (second, 2)]
        audited = [(e.actor, e.action) for e in store.audit_events(session)]
    assert audited == [(f"batch:{second}", "incident.record-version")]
    (change,) = _changes(engine, ONE)
    assert (change.action, change.actor) == ("record-version", f"batch:{second}")
    old, new = json.loads(change.before), json.loads(change.after)
    assert old["incident"]["narrative"] == record(1)["narrative"]
    assert ["weapons", "knives-or-machetes"] in old["tags"]
    assert new["incident"]["narrative"] == "Five robbers, not four."
    assert REVIEWER.token.fingerprint in change.reason
    # the same content again is a no-op
    before = snapshot(engine)
    again = ingest_batch(engine, later([corrected], hours=9), TRUSTED)
    assert (again.updated, again.already_present) == (0, 1)
    after = snapshot(engine)
    assert after["incident"] == before["incident"]
    assert after["incident_change"] == before["incident_change"]


def test_an_older_batch_cannot_bring_back_old_content(engine: Engine) -> None:
    ingest_batch(engine, later([record(1)], hours=5), TRUSTED)
    before = snapshot(engine)
    with pytest.raises(IngestError, match=r"line 2: incident 0+1 is already in the database"):
        ingest_batch(engine, later([record(1, narrative="Stale.")], hours=1), TRUSTED)
    assert snapshot(engine) == before


def test_a_tampered_version_is_refused_whole(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    before = snapshot(engine)
    good = later([record(2), record(1, narrative="Changed by the reviewer.")], hours=5)
    lines = good.splitlines(keepends=True)
    tampered = b"".join([*lines[:2], lines[2].replace(b"by the reviewer", b"by a forger"),
                         *lines[3:]])  # fmt: skip
    with pytest.raises(IngestError, match="signature does not verify"):
        ingest_batch(engine, tampered, TRUSTED)
    assert snapshot(engine) == before


def test_a_batch_cannot_replace_a_feed_row(engine: Engine, tmp_path: Path) -> None:
    feed = tmp_path / "pirate_attacks.csv"
    feed.write_text(HEADER + ROWS[1], encoding="utf-8")
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    with engine.connect() as connection:
        feed_id = connection.execute(select(Incident.id)).scalar_one()
    before = snapshot(engine)
    with pytest.raises(IngestError, match="came from an external feed"):
        ingest_batch(engine, later([record(1, id=feed_id)], hours=1), TRUSTED)
    assert snapshot(engine) == before
    # and the feed again changes nothing either
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    assert snapshot(engine)["incident"] == before["incident"]
