"""The incident database on SQLite and a real PostgreSQL: ingest, refusals, links, exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import stix2
from sqlalchemy import Engine, func, select

from incident_db.corroboration import Window, link_close_incidents, located, merge, relink_all
from incident_db.db import open_database
from incident_db.errors import IngestError, MergeError
from incident_db.exports import iter_incidents
from incident_db.exports.geojson import write_geojson
from incident_db.exports.stix import CORE_EXTENSION, MARITIME_EXTENSION, write_stix
from incident_db.exports.table import write_csv
from incident_db.ingest import ingest_batch
from incident_db.models import Incident, IncidentLink, IncidentTag, Provenance, ReviewerBatch
from incident_db.tlp import EXPORT_MAX
from tests.unit.incident_db.factories import REVIEWER, STRANGER, batch, record, snapshot

TRUSTED = frozenset({REVIEWER.token})


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_batch_is_stored_with_its_provenance(engine: Engine) -> None:
    data = batch([record(1), record(2, place="Lagos Anchorage", position=None)], batch_id="a" * 32)
    report = ingest_batch(engine, data, TRUSTED)
    assert (report.records, report.added, report.already_present) == (2, 2, 0)
    assert report.signer_fingerprint == REVIEWER.token.fingerprint
    with engine.connect() as connection:
        row = connection.execute(select(Incident.__table__).where(Incident.id == f"{1:032x}")).one()
        origin = connection.execute(select(Provenance.__table__)).all()
        tags = connection.execute(select(IncidentTag.__table__)).all()
    assert (row.origin, row.verification_status, row.grade) == ("reviewer", "confirmed", "B2")
    assert row.signer_fingerprint == REVIEWER.token.fingerprint
    assert (row.local_time, row.utc_offset_minutes) == ("02:30", 360)
    assert row.occurred_utc.isoformat() == "2024-02-29T20:30:00"
    assert (row.place_key, row.crew_tied_up, row.crew_killed) == ("chittagong", 1, None)
    assert sorted((p.source, p.row) for p in origin) == [("a" * 32, 2), ("a" * 32, 3)]
    assert len(tags) == 2 * 6  # weapons 1, boarding points 1, stolen 1, actions 2, reported 1


def test_the_same_batch_twice_changes_nothing(engine: Engine) -> None:
    data = batch([record(1), record(2)])
    ingest_batch(engine, data, TRUSTED)
    before = snapshot(engine)
    again = ingest_batch(engine, data, TRUSTED)
    assert again.batch_seen_before
    assert again.added == 0
    assert snapshot(engine) == before


def test_a_record_sent_again_in_a_new_batch_is_not_added_twice(engine: Engine) -> None:
    ingest_batch(engine, batch([record(1)]), TRUSTED)
    report = ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    assert (report.added, report.already_present) == (1, 1)
    assert _count(engine, Incident) == 2
    assert _count(engine, ReviewerBatch) == 2


def _bad_batches() -> dict[str, tuple[bytes, str]]:
    good = batch([record(10), record(11)])
    lines = good.splitlines(keepends=True)
    return {
        "bad signature": (
            b"".join([lines[0], lines[1].replace(b'"B2"', b'"A1"'), *lines[2:]]),
            r"^batch refused: line 4: signature does not verify$",
        ),
        "unknown reviewer": (
            batch([record(10)], signer=STRANGER),
            r"^batch refused: line 1: signer [0-9 ]{35} is not in the trusted reviewers file$",
        ),
        "wrong schema": (
            batch([record(10), record(11, schema="cso-incident/v0")]),
            r"^batch refused: line 3: schema: must be 'cso-incident/v1'$",
        ),
        "identity field": (
            batch([record(10, identity_vessel="MV Example")]),
            r"^batch refused: line 2: identity_vessel: refused",
        ),
        "truncated": (good[: len(good) // 2], r"^batch refused: line \d: "),
        "duplicate in the batch": (
            batch([record(10), record(11), record(10)]),
            r"^batch refused: line 4: incident 0+a repeats line 2$",
        ),
        "duplicate of a stored incident": (
            batch([record(12), record(1, narrative="A different story.")]),
            r"^batch refused: line 3: incident 0+1 is already in the database with different",
        ),
        "reused batch id": (
            batch([record(13)], batch_id="c" * 32),
            r"^batch refused: line 1: batch c{32} was ingested before with different content$",
        ),
    }


@pytest.mark.parametrize("case", sorted(_bad_batches()))
def test_bad_batches_are_refused_whole_and_change_nothing(engine: Engine, case: str) -> None:
    ingest_batch(engine, batch([record(1), record(2)], batch_id="c" * 32), TRUSTED)
    before = snapshot(engine)
    data, message = _bad_batches()[case]
    with pytest.raises(IngestError, match=message):
        ingest_batch(engine, data, TRUSTED)
    assert snapshot(engine) == before


def test_a_failure_while_writing_leaves_nothing_behind(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(engine)

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("incident_db.ingest.link_close_incidents", broken)
    with pytest.raises(RuntimeError):
        ingest_batch(engine, batch([record(1), record(2)]), TRUSTED)
    assert snapshot(engine) == before


def _at(number: int, lat: float, lon: float, when: str, **changes: Any) -> dict[str, Any]:
    position = {"lat": lat, "lon": lon, "decimals": 3}
    return record(number, position=position, occurred_local=when, **changes)


def test_close_incidents_are_linked_as_possible_duplicates(engine: Engine) -> None:
    records = [
        _at(1, 22.200, 91.700, "2024-03-01T02:30"),
        _at(2, 22.240, 91.720, "2024-03-01T20:00"),  # 2.7 nm, 17.5 h: linked
        _at(3, 22.200, 91.700, "2024-03-02T03:00"),  # 24.5 h after 1, 7 h after 2
        _at(4, 22.400, 91.700, "2024-03-01T02:30"),  # 12 nm away: not linked
        _at(5, 22.200, 91.700, "2024-03-01T02:30", utc_offset="-10:00"),  # 16 h later in UTC
    ]
    report = ingest_batch(engine, batch(records), TRUSTED)
    with engine.connect() as connection:
        pairs = {
            (int(r.incident_id, 16), int(r.other_id, 16))
            for r in connection.execute(select(IncidentLink.__table__))
        }
    assert pairs == {(1, 2), (2, 3), (1, 5), (2, 5), (3, 5)}
    assert report.links_found == 5
    with engine.begin() as connection:  # within 12 h only 2–3 (7 h), 2–5 (1.5 h), 3–5 (8.5 h)
        assert relink_all(connection, Window(hours=12, nm=5)) == (5, 3)


def test_links_across_batches_and_feeds(engine: Engine) -> None:
    ingest_batch(engine, batch([_at(1, 22.2, 91.7, "2024-03-01T02:30")]), TRUSTED)
    report = ingest_batch(engine, batch([_at(2, 22.21, 91.7, "2024-03-01T03:30")]), TRUSTED)
    assert report.links_found == 1
    with engine.begin() as connection:  # linking the same pair again adds nothing
        rows = connection.execute(select(Incident.__table__)).mappings().all()
        assert link_close_incidents(connection, located(rows), Window()) == 0


def test_merge_keeps_the_provenance_of_both(engine: Engine) -> None:
    keep, absorb, third = f"{1:032x}", f"{2:032x}", f"{3:032x}"
    ingest_batch(engine, batch([record(1), record(2)], batch_id="a" * 32), TRUSTED)
    ingest_batch(engine, batch([record(3)], batch_id="b" * 32), TRUSTED)
    with engine.begin() as connection:
        assert merge(connection, keep, absorb).moved == 1
        assert merge(connection, keep, third).moved == 1
    with engine.connect() as connection:
        origin = connection.execute(select(Provenance.__table__)).all()
        merged = dict(connection.execute(select(Incident.id, Incident.merged_into)).all())
    assert sorted((p.incident_id, p.original_id, p.source, p.row) for p in origin) == [
        (keep, keep, "a" * 32, 2),
        (keep, absorb, "a" * 32, 3),
        (keep, third, "b" * 32, 2),
    ]
    assert merged == {keep: None, absorb: keep, third: keep}
    with engine.connect() as connection:
        exported = list(iter_incidents(connection))
    assert [e.row.id for e in exported] == [keep]
    assert len(exported[0].sources) == 3
    with engine.begin() as connection, pytest.raises(MergeError, match="already merged"):
        merge(connection, absorb, keep)
    with engine.begin() as connection, pytest.raises(MergeError, match="no incident"):
        merge(connection, keep, "f" * 32)
    with engine.begin() as connection, pytest.raises(MergeError, match="itself"):
        merge(connection, keep, keep)


def _exports(engine: Engine) -> dict[str, str]:
    out = {}
    for name, writer in (("csv", write_csv), ("geojson", write_geojson)):
        buffer = io.StringIO()
        with engine.connect() as connection:
            writer(iter_incidents(connection), buffer)
        out[name] = buffer.getvalue()
    buffer = io.StringIO()
    with engine.connect() as connection:
        write_stix(iter_incidents(connection), buffer, EXPORT_MAX)
    out["stix"] = buffer.getvalue()
    return out


def _sample(engine: Engine) -> None:
    records = [
        record(1, narrative='=HYPERLINK("x") robbers took paint'),
        record(
            2,
            position=None,
            place="Lagos Anchorage",
            category="stowaways",
            stowaways={"count": 2, "hiding_place": "rudder-trunk"},
        ),
        _at(
            3,
            22.201,
            91.701,
            "2024-03-01T03:00",
            links=[{"relation": "duplicate-of", "id": f"{1:032x}"}],
        ),
        record(4, category="cyber-incident", cyber={"systems": ["gnss"], "vector": "gnss-jamming"}),
    ]
    ingest_batch(engine, batch(records), TRUSTED)


def test_exports_in_three_formats(engine: Engine) -> None:
    _sample(engine)
    exports = _exports(engine)
    rows = list(csv.DictReader(io.StringIO(exports["csv"])))
    assert [r["id"][-1] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["narrative"].startswith("'=")  # a spreadsheet shows it, never runs it
    assert rows[0]["weapons"] == "knives-or-machetes"
    assert rows[0]["sources"].startswith("reviewer-batch:")

    collection = json.loads(exports["geojson"])
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection
    features = {f["id"][-1]: f for f in collection["features"]}
    assert features["1"]["geometry"] == {"type": "Point", "coordinates": [91.7, 22.2]}
    assert features["2"]["geometry"] is None  # RFC 7946 §3.2: an unlocated feature
    assert features["2"]["properties"]["stowaway_hiding_place"] == "rudder-trunk"

    parsed = stix2.parse(exports["stix"], allow_custom=False)
    by_type: dict[str, list[Any]] = {}
    for obj in parsed.objects:
        by_type.setdefault(obj.type, []).append(obj)
    assert len(by_type["incident"]) == 4
    assert len(by_type["location"]) == 3
    assert {r.relationship_type for r in by_type["relationship"]} >= {"located-at",
                                                                       "duplicate-of"}  # fmt: skip
    definition = next(o for o in by_type["extension-definition"])
    assert definition.id == MARITIME_EXTENSION
    incident = next(i for i in by_type["incident"] if "position only" not in i.name)
    core = incident.extensions[CORE_EXTENSION]
    assert core["determination"] == "successful-attempt"
    assert core["investigation_status"] == "closed"
    maritime = incident.extensions[MARITIME_EXTENSION]
    assert maritime["admiralty_grade"] == "B2"
    assert maritime["crew"] == {"threatened": 1, "tied_up": 1}
    assert _exports(engine)["stix"] == exports["stix"]  # the same database, the same bytes


def test_exports_of_an_empty_database(engine: Engine) -> None:
    exports = _exports(engine)
    assert exports["csv"].count("\n") == 1  # the header alone
    assert json.loads(exports["geojson"])["features"] == []
    assert [o.type for o in stix2.parse(exports["stix"]).objects] == [
        *["marking-definition"] * 5,
        "identity",
        "extension-definition",
    ]
