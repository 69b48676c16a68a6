"""Incident history and record versions on SQLite and PostgreSQL (incident_db.history, versions).

The database itself must refuse to rewrite history, so the triggers are
tried with plain SQL through the application's own connection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from incident_db.versions import FREE_TEXT
from tests.unit.incident_db.factories import REVIEWER, STRANGER, WHEN, batch, record, snapshot
from tests.unit.incident_db.test_feeds import HEADER, ROWS

TRUSTED = frozenset({REVIEWER.token})
BOTH = frozenset({REVIEWER.token, STRANGER.token})
ONE, TWO = f"{1:032x}", f"{2:032x}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


def later(
    record_list: list[dict[str, Any]],
    hours: float,
    batch_id: str | None = None,
    signer: Any = REVIEWER,
    start: dt.datetime = WHEN,
) -> bytes:
    """A batch signed ``hours`` after ``start`` (the factories' default batch time)."""
    return sign_batch(record_list, signer, batch_id=batch_id or secrets.token_hex(16),
                      created_at=start + dt.timedelta(hours=hours))  # fmt: skip


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


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
    # only what changed; coded values whole, free text as its SHA-256
    assert sorted(old) == sorted(new) == ["narrative", "perpetrators_max", "tags"]
    assert (old["perpetrators_max"], new["perpetrators_max"]) == (record(1)["perpetrators_max"], 6)
    assert ["weapons", "knives-or-machetes"] in old["tags"]
    assert ["weapons", "guns"] in new["tags"]
    assert old["narrative"] == {"sha256": _sha256(record(1)["narrative"])}
    assert new["narrative"] == {"sha256": _sha256("Five robbers, not four.")}
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


def _standing(engine: Engine, ident: str) -> tuple[Any, ...]:
    query = select(Incident.verification_status, Incident.grade, Incident.narrative)
    with engine.connect() as connection:
        return tuple(connection.execute(query.where(Incident.id == ident)).one())


def test_an_editors_verification_and_grade_outlive_a_new_version(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    actor = "editor@example.org"
    with Session(engine) as session:
        history.change_verification(session, ONE, "unverified", "owner denies it", actor=actor)
        history.change_grade(session, ONE, "E5", "source unreliable", actor=actor)
        session.commit()
    regraded = {"status": "confirmed", "grade": "A1"}
    versions = [record(1, narrative="Corrected.", verification=regraded),
                record(2, narrative="Corrected too.", verification=regraded)]  # fmt: skip
    assert ingest_batch(engine, later(versions, hours=5), TRUSTED).updated == 2
    assert _standing(engine, ONE) == ("unverified", "E5", "Corrected.")
    # where no editor has decided, the record's own verification and grade apply
    assert _standing(engine, TWO) == ("confirmed", "A1", "Corrected too.")
    change = _changes(engine, ONE)[0]
    assert change.action == "record-version"
    assert sorted(json.loads(change.after)) == ["narrative"]
    assert "the record says verification confirmed, but an editor set unverified" in change.reason
    assert "the record says grade A1, but an editor set E5, which stays" in change.reason
    assert sorted(json.loads(_changes(engine, TWO)[0].after)) == ["grade", "narrative"]


def test_only_the_key_that_signed_a_record_may_replace_it(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1)]), BOTH)
    before = snapshot(engine)
    other = later([record(3), record(1, narrative="Rewritten by a colleague.")], hours=5,
                  signer=STRANGER)  # fmt: skip
    fingerprint = REVIEWER.token.fingerprint
    with pytest.raises(IngestError, match=rf"line 3: incident 0+1 was signed by another "
                       rf"reviewer key \({fingerprint}\)"):  # fmt: skip
        ingest_batch(engine, other, BOTH)
    assert snapshot(engine) == before  # the whole batch, record 3 too
    corrected = later([record(1, narrative="Corrected by its author.")], hours=6)
    assert ingest_batch(engine, corrected, BOTH).updated == 1
    assert _standing(engine, ONE)[2] == "Corrected by its author."


def test_a_batch_dated_ahead_of_its_ingest_cannot_lock_a_record(engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ingest_batch(engine, batch([record(1)]), TRUSTED)  # weeks old: still valid
    before = snapshot(engine)
    far = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(IngestError, match=r"line 1: it says it was made at 2999-01-01 00:00 UTC, "
                       r"more than 1 day after this ingest"):  # fmt: skip
        ingest_batch(engine, later([record(1, narrative="Locked.")], 0, start=far), TRUSTED)
    with pytest.raises(IngestError, match="more than 1 day after"):
        ingest_batch(engine, later([record(2)], 24 + 1 / 60, start=now), TRUSTED, now=now)
    assert snapshot(engine) == before
    # a clock a little ahead is tolerated, and the author's correction still goes in after it
    ingest_batch(engine, later([record(1, narrative="Ahead.")], 23, start=now), TRUSTED, now=now)
    fixed = later([record(1, narrative="Fixed.")], 23.5, start=now)
    assert ingest_batch(engine, fixed, TRUSTED, now=now).updated == 1
    assert _standing(engine, ONE)[2] == "Fixed."


def test_free_text_is_every_text_member_of_a_record() -> None:
    assert FREE_TEXT == {
        "place", "place_key", "narrative", "suspect_craft_description", "cyber_impact",
        "stowaway_embarkation_port", "stowaway_embarkation_berth", "stowaway_how_found",
    }  # fmt: skip


def test_a_correction_leaves_no_trace_of_the_words_it_removed(engine: Engine) -> None:
    named = "Master Zqxjkv Petrov, +1 555 0100"

    def texts(words: str) -> dict[str, Any]:
        return {
            "narrative": f"Boarded. {words}",
            "place": f"Berth of {words}",
            "suspect_craft": {"count": 1, "type": "skiff", "description": f"hull {words}"},
            "stowaways": {"count": 1, "embarkation_port": f"port {words}",
                          "embarkation_berth": f"berth {words}", "how_found": f"by {words}"},
            "cyber": {"impact": f"mail from {words}"},
        }  # fmt: skip

    ingest_batch(engine, later([record(1, **texts(named))], 1), TRUSTED)
    fixed = record(1, **texts("[name removed]"), perpetrators_max=7)
    assert ingest_batch(engine, later([fixed], 2), TRUSTED).updated == 1
    assert "Zqxjkv" not in repr(snapshot(engine))  # no table keeps it: history, audit, anywhere
    (change,) = _changes(engine, ONE)
    old, new = json.loads(change.before), json.loads(change.after)
    assert old["narrative"] == {"sha256": _sha256(f"Boarded. {named}")}
    assert old["place"] == {"sha256": _sha256(f"Berth of {named}")}
    assert (old["perpetrators_max"], new["perpetrators_max"]) == (5, 7)
    assert sorted(old) == [
        "cyber_impact", "narrative", "perpetrators_max", "place", "stowaway_embarkation_berth",
        "stowaway_embarkation_port", "stowaway_how_found", "suspect_craft_description",
    ]  # fmt: skip
