"""TLP 2.0 in the incident library, on SQLite and PostgreSQL.

Defaults by source (a reviewer batch AMBER, a feed CLEAR, and the same for
rows already stored when migration 0008 runs), an editor's change with its
reason in the history and the audit log, ``version_at`` growing with every
change, and the export stream that never yields TLP:RED.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from crypto.batch import sign_batch
from incident_db import history, tlp
from incident_db.db import downgrade, open_database, upgrade
from incident_db.exports import EXPORT_FIELDS, exported_incidents, iter_incidents
from incident_db.exports.geojson import write_geojson
from incident_db.exports.table import write_csv
from incident_db.feeds import import_feed
from incident_db.ingest import ingest_batch
from incident_db.mapping import load_mapping
from incident_db.members import store
from incident_db.models import Incident, IncidentChange, core_table
from tests.unit.incident_db.factories import REVIEWER, WHEN, batch, record
from tests.unit.incident_db.test_feeds import HEADER, ROWS

TRUSTED = frozenset({REVIEWER.token})
ONE, TWO, THREE = (f"{n:032x}" for n in (1, 2, 3))
EDITOR = "editor@example.org"
CANARY = "canary-red-7f3a narrative that must never leave"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


def _feed(engine: Engine, tmp_path: Path) -> str:
    """Import one crime-at-sea row; its incident id."""
    feed = tmp_path / "pirate_attacks.csv"
    feed.write_text(HEADER + ROWS[1], encoding="utf-8")
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    with engine.connect() as connection:
        query = select(Incident.id).where(Incident.origin == "external")
        return connection.execute(query).scalar_one()


def _levels(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, tlp FROM incident")).all())


def _version(engine: Engine, ident: str) -> dt.datetime:
    with engine.connect() as connection:
        query = select(Incident.version_at).where(Incident.id == ident)
        return connection.execute(query).scalar_one()


def _set(
    engine: Engine, ident: str, level: str, reason: str = "a partner asked", **kw: Any
) -> None:
    with Session(engine) as session:
        history.set_tlp(session, ident, level, actor=EDITOR, reason=reason, **kw)
        session.commit()


def test_defaults_by_source(engine: Engine, tmp_path: Path) -> None:
    ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    feed_id = _feed(engine, tmp_path)
    assert _levels(engine) == {ONE: "amber", TWO: "amber", feed_id: "clear"}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, added_at, version_at FROM incident")).all()
    assert all(added == version for _, added, version in rows)


def test_an_existing_database_upgraded_from_0007_gets_the_defaults(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    feed_id = _feed(engine, tmp_path)
    _set(engine, ONE, "red")
    engine.dispose()
    downgrade(database_url, "0007")
    upgrade(database_url)
    # back to the defaults of the source: the level column was dropped with 0008
    assert _levels(engine) == {ONE: "amber", feed_id: "clear"}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT added_at, version_at FROM incident")).all()
    assert rows
    assert all(added == version for added, version in rows)


def test_an_editor_changes_the_level_with_a_reason(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    before = _version(engine, ONE)
    _set(engine, ONE, "TLP:AMBER+STRICT", reason="names a crew member's home port")
    assert _levels(engine) == {ONE: "amber+strict"}
    with Session(engine) as session:
        change = session.scalars(select(IncidentChange)).one()
        events = [(e.actor, e.action, e.subject, e.details) for e in store.audit_events(session)]
    assert (change.action, change.actor, change.incident_id) == ("tlp", EDITOR, ONE)
    assert json.loads(change.before) == {"tlp": "amber"}
    assert json.loads(change.after) == {"tlp": "amber+strict"}
    assert change.reason == "names a crew member's home port"
    assert (EDITOR, "incident.tlp", ONE, {
        "before": {"tlp": "amber"}, "after": {"tlp": "amber+strict"},
        "reason": "names a crew member's home port"}) in events  # fmt: skip
    assert _version(engine, ONE) > before


@pytest.mark.parametrize(
    ("level", "reason", "refusal"),
    [("red", "", "reason is required"), ("red", "  \n ", "reason is required"),
     ("purple", "why", "unknown TLP level"), ("TLP:WHITE+", "why", "unknown TLP level"),
     ("amber", "why", "already TLP:AMBER"), ("red", "a\x1b[31m", "control characters")],
)  # fmt: skip
def test_a_change_without_a_reason_or_a_level_is_refused(
    engine: Engine, level: str, reason: str, refusal: str
) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    with Session(engine) as session:
        with pytest.raises(history.HistoryError, match=refusal):
            history.set_tlp(session, ONE, level, actor=EDITOR, reason=reason)
        session.rollback()
        assert session.scalars(select(IncidentChange)).all() == []
    assert _levels(engine) == {ONE: "amber"}


def test_version_at_grows_with_every_change(engine: Engine) -> None:
    """Each change moves ``version_at`` on, even when the clock shows the same moment."""
    ingest_batch(engine, batch([record(1), record(2, occurred_local="2024-05-01T10:00")]),
                 TRUSTED)  # fmt: skip
    same = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)  # every change "at" one moment
    seen = {ONE: [_version(engine, ONE)], TWO: [_version(engine, TWO)]}

    def step(change: Any, *args: Any, moved: tuple[str, ...] = (ONE,), **kw: str) -> None:
        with Session(engine) as session:
            change(session, *args, actor=EDITOR, now=same, **kw)
            session.commit()
        for ident in moved:
            seen[ident].append(_version(engine, ident))

    step(history.set_tlp, ONE, "green", reason="public soon")
    step(history.change_grade, ONE, "C3", "two sources")
    step(history.change_verification, ONE, "unverified", "doubts")
    step(history.add_note, ONE, "called the agent")
    step(history.set_tlp, ONE, "clear", moved=(ONE,), reason="now public")
    step(history.link, ONE, TWO, "corroborates", "same boat", moved=(ONE, TWO))
    step(history.unlink, ONE, TWO, "corroborates", "not the same", moved=(ONE, TWO))
    step(history.merge, TWO, ONE, "same incident", moved=(ONE, TWO))
    for ident, versions in seen.items():
        assert all(a < b for a, b in itertools.pairwise(versions)), (ident, versions)
    assert len(seen[ONE]) == 9
    assert seen[ONE][-1] >= same.replace(tzinfo=None)


def test_a_new_record_version_keeps_the_level_and_moves_version_at(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    _set(engine, ONE, "red", reason="the owner asked")
    before = _version(engine, ONE)
    newer = sign_batch([record(1, narrative="corrected by the reviewer")], REVIEWER,
                       batch_id=secrets.token_hex(16),
                       created_at=WHEN + dt.timedelta(hours=2))  # fmt: skip
    report = ingest_batch(engine, newer, TRUSTED, now=dt.datetime.now(dt.UTC))
    assert report.updated == 1
    assert _levels(engine) == {ONE: "red"}
    assert _version(engine, ONE) > before
    with engine.connect() as connection:
        changes = connection.execute(
            select(IncidentChange.action, IncidentChange.after).order_by(IncidentChange.id)
        ).all()
    assert [action for action, _ in changes] == ["tlp", "record-version"]
    # the version's history row names the fields that changed, not the version time or level
    assert set(json.loads(changes[1].after)) == {"narrative"}


def _written(engine: Engine, writer: Any, **kw: Any) -> str:
    out = io.StringIO()
    with engine.connect() as connection:
        writer(iter_incidents(connection, **kw), out)
    return out.getvalue()


def test_the_export_stream_never_yields_red(engine: Engine, tmp_path: Path) -> None:
    records = [record(1, narrative=CANARY), record(2), record(3, occurred_local="2024-03-01T03:00")]
    ingest_batch(engine, batch(records), TRUSTED)
    feed_id = _feed(engine, tmp_path)
    with Session(engine) as session:
        history.link(session, TWO, ONE, "corroborates", "same night", actor=EDITOR)
        session.commit()
    _set(engine, ONE, "red")
    _set(engine, THREE, "amber+strict")
    with engine.connect() as connection:
        for clearance, expected in [
            (tlp.EXPORT_MAX, {TWO, THREE, feed_id}),
            ("red", {TWO, THREE, feed_id}),  # no clearance admits RED, not even "red"
            ("amber", {TWO, feed_id}),
            ("clear", {feed_id}),
            ("nonsense", set()),
        ]:
            got = list(iter_incidents(connection, clearance=clearance))
            assert {i.row.id for i in got} == expected, clearance
            assert all(tlp.allows(clearance, i.values()["tlp"]) for i in got)
            for incident in got:  # not even a link names the RED incident
                assert all(link["other"] != ONE for link in incident.links), clearance
        # without a clearance, exported_incidents attaches every link and names its level
        rows = connection.execute(
            select(core_table(Incident)).where(core_table(Incident).c.id == TWO)
        ).all()
        [two] = exported_incidents(connection, rows)
        assert [(k["other"], k["other_tlp"]) for k in two.links
                if k["relation"] == "corroborates"] == [(ONE, "red")]  # fmt: skip
    assert "tlp" in EXPORT_FIELDS
    table = _written(engine, write_csv)
    geojson = _written(engine, write_geojson)
    for body in (table, geojson):
        assert ONE not in body
        assert CANARY not in body
    read = {row["id"]: row["tlp"] for row in csv.DictReader(io.StringIO(table))}
    assert read == {TWO: "amber", THREE: "amber+strict", feed_id: "clear"}
    features = json.loads(geojson)["features"]
    assert {f["id"]: f["properties"]["tlp"] for f in features} == read


def test_a_file_in_a_later_batch_moves_version_at(engine: Engine, tmp_path: Path) -> None:
    """An incident already stored that gains a file from a later batch has changed."""
    from tests.integration.test_batch_attachments import JPEG, _forward

    ingest_batch(engine, batch([record(1)]), TRUSTED)
    before = _version(engine, ONE)
    directory = tmp_path / "files"
    data = _forward(directory, [(1, JPEG, "image/jpeg", "deck.jpg")], records=1)
    report = ingest_batch(engine, data, TRUSTED, attachments=directory)
    assert report.attachments_added == 1
    assert _version(engine, ONE) > before
    assert _levels(engine) == {ONE: "amber"}


def test_a_link_found_to_an_older_incident_and_a_plain_merge_move_its_version(
    engine: Engine,
) -> None:
    """A found link is exported with the incident holding it; partners must see it change.

    Ingest sorts a found pair by id, so the older incident ONE holds the link
    to the newer TWO; ``corroboration.merge`` (``incident-db merge``) changes
    what both export.
    """
    from incident_db import corroboration

    ingest_batch(engine, batch([record(1)]), TRUSTED)
    first = _version(engine, ONE)
    ingest_batch(engine, batch([record(2)]), TRUSTED)  # same time and place: a possible duplicate
    with engine.connect() as connection:
        holders = connection.execute(text("SELECT incident_id FROM incident_link")).scalars().all()
    assert holders == [ONE]
    linked = _version(engine, ONE)
    assert linked > first
    before_two = _version(engine, TWO)
    with engine.begin() as connection:
        corroboration.merge(connection, ONE, TWO)
    assert _version(engine, ONE) > linked
    assert _version(engine, TWO) > before_two


def test_a_level_change_moves_the_version_of_incidents_holding_links_to_it(
    engine: Engine,
) -> None:
    """ONE holds a link to TWO; the link is marked with the stricter end, so it changes too."""
    ingest_batch(engine, batch([record(1), record(2, occurred_local="2024-05-01T10:00")]),
                 TRUSTED)  # fmt: skip
    with Session(engine) as session:
        history.link(session, ONE, TWO, "corroborates", "same boat", actor=EDITOR)
        session.commit()
    before = _version(engine, ONE)
    _set(engine, TWO, "amber+strict", reason="the owner asked")
    assert _version(engine, ONE) > before
