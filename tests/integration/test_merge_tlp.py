"""A merge never lets a stricter incident's provenance out at a weaker level (SQLite, PostgreSQL).

A merge moves the absorbed incident's provenance rows (batch id and line)
to the incident kept, and those go out with it in every export. So the kept
incident takes the stricter of the two levels, the history and audit log
say so, and an export leaves out provenance rows whose original incident is
above the reader's clearance whatever the levels become later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from incident_db import history
from incident_db.cli import main
from incident_db.db import open_database
from incident_db.exports import exported_incidents, iter_incidents
from incident_db.ingest import ingest_batch
from incident_db.members import store
from incident_db.models import Incident, IncidentChange, core_table
from tests.unit.incident_db.factories import REVIEWER, batch, record

TRUSTED = frozenset({REVIEWER.token})
KEEP, RED = f"{1:032x}", f"{2:032x}"
KEEP_BATCH, RED_BATCH = "a1" * 16, "b2" * 16
EDITOR = "editor@example.org"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    ingest_batch(made, batch([record(1)], batch_id=KEEP_BATCH), TRUSTED)
    # the second report of the same robbery, in another batch: line 2 of RED_BATCH
    ingest_batch(made, batch([record(2)], batch_id=RED_BATCH), TRUSTED)
    _set(made, KEEP, "green")
    _set(made, RED, "red")
    yield made
    made.dispose()


@pytest.fixture
def incident_db(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _set(engine: Engine, ident: str, level: str) -> None:
    with Session(engine) as session:
        history.set_tlp(session, ident, level, actor=EDITOR, reason="the source asked")
        session.commit()


def _levels(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, tlp FROM incident")).all())


def _changes(engine: Engine, ident: str) -> list[IncidentChange]:
    with Session(engine) as session:
        return list(reversed(history.history(session, ident)))


def _green_exports(
    engine: Engine, database_url: str, run: Callable[..., Any], incidents: int
) -> list[str]:
    """Everything a GREEN reader gets: the command's STIX, CSV and GeoJSON, and what TAXII
    pages are built from; the STIX bundle holds ``incidents`` incident objects."""
    texts = []
    for form in ("stix", "csv", "geojson"):
        code, out, err = run("--db", database_url, "export", "--format", form,
                             "--clearance", "green")  # fmt: skip
        assert code == 0, err
        texts.append(out)
    objects = json.loads(texts[0])["objects"]
    assert sum(o["type"] == "incident" for o in objects) == incidents
    table = core_table(Incident)
    with engine.connect() as connection:
        # the TAXII server fetches its own rows and has them completed here; even rows it
        # should not have asked for must not carry the RED report's batch and line
        rows = list(connection.execute(select(table).order_by(table.c.id)))
        built = exported_incidents(connection, rows, clearance="green")
        texts.append(json.dumps([e.sources for e in built], default=str))
        streamed = list(iter_incidents(connection, clearance="green"))
        texts.append(json.dumps([[e.values(), e.sources, e.links] for e in streamed], default=str))
    return texts


def test_merging_red_into_green_makes_the_kept_incident_red(
    engine: Engine, database_url: str, incident_db: Callable[..., Any]
) -> None:
    with Session(engine) as session:
        history.merge(session, RED, KEEP, "one robbery, two reports", actor=EDITOR)
        session.commit()
    assert _levels(engine) == {KEEP: "red", RED: "red"}
    (merged,) = _changes(engine, RED)[-1:]
    assert merged.action == "merge"
    assert json.loads(merged.after)["kept_tlp"] == {"before": "green", "after": "red"}
    *_, raised = _changes(engine, KEEP)
    assert (raised.action, json.loads(raised.before), json.loads(raised.after)) == (
        "tlp", {"tlp": "green"}, {"tlp": "red"}
    )  # fmt: skip
    assert raised.reason == f"merged with {RED} (TLP:RED)"
    with Session(engine) as session:
        newest = store.audit_events(session, limit=1)[0]
    assert (newest.action, newest.subject) == ("incident.tlp", KEEP)
    assert f"merged with {RED} (TLP:RED)" in newest.detail
    for exported in _green_exports(engine, database_url, incident_db, incidents=0):
        assert RED_BATCH not in exported
        assert RED not in exported
        assert KEEP not in exported


def test_the_command_merges_to_the_stricter_level_and_says_so(
    engine: Engine, database_url: str, incident_db: Callable[..., Any]
) -> None:
    code, out, err = incident_db("--db", database_url, "merge", KEEP, RED)
    assert code == 0, err
    assert f"{KEEP} is now TLP:RED (was TLP:GREEN)" in out
    assert _levels(engine) == {KEEP: "red", RED: "red"}
    for exported in _green_exports(engine, database_url, incident_db, incidents=0):
        assert RED_BATCH not in exported
        assert RED not in exported
        assert KEEP not in exported


def test_a_weaker_incident_merged_into_a_stricter_one_changes_no_level(
    engine: Engine, incident_db: Callable[..., Any], database_url: str
) -> None:
    code, out, err = incident_db("--db", database_url, "merge", RED, KEEP)
    assert code == 0, err
    assert "now TLP" not in out
    assert _levels(engine) == {KEEP: "green", RED: "red"}


def test_a_merged_incident_made_stricter_later_takes_its_provenance_back_out(
    engine: Engine, database_url: str, incident_db: Callable[..., Any]
) -> None:
    """Defence in depth: the export checks each provenance row's original incident."""
    _set(engine, RED, "green")
    with Session(engine) as session:
        history.merge(session, RED, KEEP, "one robbery, two reports", actor=EDITOR)
        session.commit()
    assert _levels(engine) == {KEEP: "green", RED: "green"}
    with engine.connect() as connection:
        (before,) = list(iter_incidents(connection, clearance="green"))
        kept_version = connection.scalar(select(Incident.version_at).where(Incident.id == KEEP))
    assert sorted(s["source"] for s in before.sources) == sorted([KEEP_BATCH, RED_BATCH])
    _set(engine, RED, "red")  # allowed on a merged incident: its own record stays
    with engine.connect() as connection:
        # the kept incident exports something new: partners must be told (added_after)
        later = connection.scalar(select(Incident.version_at).where(Incident.id == KEEP))
    assert later > kept_version
    exports = _green_exports(engine, database_url, incident_db, incidents=1)
    assert all(KEEP_BATCH in exported for exported in exports)
    for exported in exports:
        assert RED_BATCH not in exported
        assert RED not in exported
    with engine.connect() as connection:
        (after,) = list(iter_incidents(connection, clearance="amber"))
    assert [s["source"] for s in after.sources] == [KEEP_BATCH]
