"""MISP feeds under TLP 2.0: the directory as MISP reads it, checked by PyMISP.

Every event file is loaded back with PyMISP's own ``MISPEvent.load_file``;
``hashes.csv`` is recomputed here with hashlib from the loaded attributes,
as MISP's feed cache computes it. Levels are set with plain SQL in the
setup; everything under test goes through ``incident_db.exports`` and the
``incident-db export`` command.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent
from pymisp.abstract import resources_path
from sqlalchemy import Engine, func, select, update

from incident_db import tlp
from incident_db.cli import main
from incident_db.db import open_database
from incident_db.demo import build_demo
from incident_db.exports import iter_incidents
from incident_db.exports.misp import (
    DISTRIBUTION,
    ORGANISATION,
    TAXONOMY,
    TAXONOMY_FILE,
    FeedDirectoryError,
    event_uuid,
    machinetag,
    write_misp_feed,
)
from incident_db.ingest import ingest_batch
from incident_db.models import Incident
from tests.conftest import ROOT
from tests.unit.incident_db.factories import REVIEWER, batch, record

TRUSTED = frozenset({REVIEWER.token})
SHARED = ROOT.parent / "shared"
#: record number → its level
LEVELS = {1: "green", 2: "amber", 3: "clear", 4: "red", 5: "amber+strict"}
#: words only one record's narrative holds, to find it in any file's bytes
CANARY = {level: f"canary-{level.replace('+', '-')}-7f3a" for level in LEVELS.values()}
DESCRIBE_TYPES = json.loads(Path(resources_path, "describeTypes.json").read_text())["result"]


def _hex(number: int) -> str:
    return f"{number:032x}"


def _records() -> list[dict[str, Any]]:
    where = {
        1: {"lat": 10.5, "lon": 100.5, "decimals": 1},
        2: {"lat": 20.25, "lon": 110.25, "decimals": 2},
        3: {"lat": 30.0, "lon": 120.0, "decimals": 0},
        4: {"lat": 40.125, "lon": 130.125, "decimals": 3},
    }
    out = []
    for number, level in LEVELS.items():
        changes: dict[str, Any] = {
            "position": where.get(number),
            "occurred_local": f"2024-0{number}-01T0{number}:30",
            "narrative": f"Robbers boarded; {CANARY[level]} was the watchword.",
        }
        out.append(record(number, **changes))
    return out


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    ingest_batch(made, batch(_records()), TRUSTED)
    with made.begin() as connection:
        for number, level in LEVELS.items():
            connection.execute(
                update(Incident).where(Incident.id == _hex(number)).values(tlp=level)
            )
    yield made
    made.dispose()


def _export(engine: Engine, out: Path, clearance: str, *, read_at: str = tlp.EXPORT_MAX) -> int:
    """write_misp_feed for ``clearance``, fed incidents read at ``read_at``."""
    with engine.connect() as connection:
        return write_misp_feed(iter_incidents(connection, clearance=read_at), out,
                               clearance=clearance)  # fmt: skip


@dataclass(frozen=True)
class Feed:
    """A feed directory as PyMISP reads it."""

    manifest: dict[str, Any]
    events: dict[str, MISPEvent]
    hashes: list[tuple[str, str]]


def _load(directory: Path) -> Feed:
    """Load the manifest and every event it names with PyMISP; no other file may be there."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    names = {p.name for p in directory.iterdir()}
    assert names == {"manifest.json", "hashes.csv"} | {f"{u}.json" for u in manifest}
    events = {}
    for uuid_, meta in manifest.items():
        event = MISPEvent()
        event.load_file(directory / f"{uuid_}.json")
        assert event.uuid == uuid_
        assert event.info == meta["info"]
        assert event.date.isoformat() == meta["date"]
        assert int(event.timestamp.timestamp()) == int(meta["timestamp"])
        assert meta["Orgc"]["uuid"] == event.Orgc.uuid == ORGANISATION["uuid"]
        assert sorted(t["name"] for t in meta["Tag"]) == sorted(t.name for t in event.tags)
        events[uuid_] = event
    with (directory / "hashes.csv").open(newline="") as handle:
        hashes = [(row[0], row[1]) for row in csv.reader(handle)]
    return Feed(manifest, events, hashes)


def _values(event: MISPEvent) -> list[str]:
    """Every attribute value of an event, its objects' included."""
    attributes = list(event.attributes) + [a for o in event.objects for a in o.attributes]
    return [str(a.value) for a in attributes]


def _check_hashes(feed: Feed) -> None:
    """hashes.csv lists the md5 of every attribute value of every event, and nothing else."""
    expected = Counter(
        (hashlib.md5(value.encode()).hexdigest(), uuid_)  # noqa: S324 (MISP's feed cache hash)
        for uuid_, event in feed.events.items()
        for value in _values(event)
    )
    assert Counter(feed.hashes) == expected
    assert all(len(h) == 32 and set(h) <= set("0123456789abcdef") for h, _ in feed.hashes)


def _level_tags(event: MISPEvent) -> list[str]:
    return [t.name for t in event.tags if t.name.startswith("tlp:")]


def _allowed_count(engine: Engine, clearance: str) -> int:
    with engine.connect() as connection:
        query = select(func.count()).where(
            Incident.merged_into.is_(None), Incident.tlp.in_(tlp.allowed_levels(clearance))
        )
        return int(connection.execute(query).scalar_one())


@pytest.mark.parametrize("clearance", tlp.PARTNER_LEVELS)
def test_pymisp_loads_the_feed_and_every_event_carries_its_level(
    engine: Engine, tmp_path: Path, clearance: str
) -> None:
    out = tmp_path / "feed"
    count = _export(engine, out, clearance)
    feed = _load(out)
    assert count == len(feed.events) == _allowed_count(engine, clearance)
    _check_hashes(feed)
    expected = {event_uuid(_hex(n)): level for n, level in LEVELS.items()}
    for uuid_, event in feed.events.items():
        level = expected[uuid_]
        assert tlp.allows(clearance, level)
        assert _level_tags(event) == [tlp.MISP_TAGS[level]]
        assert int(event.distribution) == DISTRIBUTION[level]
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


@pytest.mark.parametrize("clearance", tlp.PARTNER_LEVELS)
def test_nothing_above_the_clearance_and_never_red_in_any_file(
    engine: Engine, tmp_path: Path, clearance: str
) -> None:
    out = tmp_path / "feed"
    _export(engine, out, clearance)
    everything = b"".join(p.read_bytes() for p in sorted(out.iterdir()))
    for number, level in LEVELS.items():
        present = tlp.allows(clearance, level)
        assert (out / f"{event_uuid(_hex(number))}.json").exists() == present
        assert (event_uuid(_hex(number)).encode() in everything) == present
        assert (CANARY[level].encode() in everything) == present
    assert CANARY["red"].encode() not in everything
    if clearance == "green":
        assert b"tlp:amber" not in everything


def test_the_writer_checks_the_clearance_itself(engine: Engine, tmp_path: Path) -> None:
    """Fed every level (as if the query had not filtered), a GREEN feed still holds no more."""
    with engine.connect() as connection:
        everything = list(iter_incidents(connection, clearance=tlp.EXPORT_MAX))
        table = Incident.__table__
        red = connection.execute(select(table).where(table.c.tlp == "red")).one()
    assert len(everything) == 4  # the query never yields RED
    out = tmp_path / "feed"
    write_misp_feed([*everything, _as_exported(everything[0], red)], out, clearance="green")
    feed = _load(out)
    assert set(feed.events) == {event_uuid(_hex(1)), event_uuid(_hex(3))}
    for clearance in ("red", "secret", ""):
        with pytest.raises(FeedDirectoryError):
            write_misp_feed(everything, tmp_path / f"x{clearance}", clearance=clearance)
        assert not (tmp_path / f"x{clearance}").exists()


def _as_exported(template: Any, row: Any) -> Any:
    """An ExportedIncident for a row iter_incidents would never yield (a RED one)."""
    return type(template)(row)


def test_positions_are_never_more_precise_than_the_incident(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "feed"
    _export(engine, out, "amber+strict")
    feed = _load(out)
    with engine.connect() as connection:
        rows = {event_uuid(r.id): r for r in connection.execute(select(Incident.__table__))}
    located = 0
    for uuid_, event in feed.events.items():
        row = rows[uuid_]
        places = [o for o in event.objects if o.name == "geolocation"]
        if row.latitude is None:
            assert places == []
            continue
        (place,) = places
        located += 1
        for relation, true in (("latitude", row.latitude), ("longitude", row.longitude)):
            (text,) = [str(a.value) for a in place.attributes if a.object_relation == relation]
            decimals = len(text.partition(".")[2])
            assert decimals <= row.position_decimals, (text, row.position_decimals)
            assert float(text) == round(true, row.position_decimals)
    assert located == 3


def test_objects_follow_their_templates_and_attributes_their_types(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "feed"
    _export(engine, out, "amber+strict")
    for event in _load(out).events.values():
        for attribute in event.attributes:
            assert attribute.type in DESCRIBE_TYPES["category_type_mappings"][attribute.category]
            assert attribute.to_ids is False
        for obj in event.objects:
            path = Path(resources_path, "misp-objects", "objects", obj.name, "definition.json")
            template = json.loads(path.read_text())
            assert obj.template_uuid == template["uuid"]
            for attribute in obj.attributes:
                defined = template["attributes"][attribute.object_relation]
                assert attribute.type == defined["misp-attribute"]
                if "values_list" in defined:
                    assert attribute.value in defined["values_list"]
            assert set(template.get("required", [])) <= {a.object_relation for a in obj.attributes}
        tags = {t.name for t in event.tags}
        assert 'misp-galaxy:sector="Maritime"' in tags
        assert 'admiralty-scale:source-reliability="b"' in tags
        assert 'admiralty-scale:information-credibility="2"' in tags
        ours = [t for t in tags if t.startswith(TAXONOMY + ":")]
        assert ours
        assert all(_in_taxonomy(t) for t in ours)


def _in_taxonomy(tag: str) -> bool:
    """Whether a ``cso-maritime:predicate="value"`` tag is one the shipped taxonomy defines."""
    predicate, _, value = tag.removeprefix(TAXONOMY + ":").partition("=")
    shipped = json.loads(TAXONOMY_FILE.read_text(encoding="utf-8"))
    entries = {v["predicate"]: {e["value"] for e in v["entry"]} for v in shipped["values"]}
    return value.strip('"') in entries.get(predicate, set())


def test_the_shipped_taxonomy_is_the_generated_one_and_well_formed() -> None:
    shipped = json.loads(TAXONOMY_FILE.read_text(encoding="utf-8"))
    assert shipped == machinetag()
    assert shipped["namespace"] == TAXONOMY
    assert isinstance(shipped["version"], int)
    predicates = {p["value"] for p in shipped["predicates"]}
    assert predicates == {v["predicate"] for v in shipped["values"]}
    assert all(p["expanded"] for p in shipped["predicates"])


def test_a_second_export_updates_in_place_and_drops_what_is_no_longer_allowed(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "feed"
    _export(engine, out, "amber+strict")
    first = _load(out)
    _export(engine, out, "green")  # the same directory, a lower clearance
    second = _load(out)
    assert set(second.events) == {event_uuid(_hex(1)), event_uuid(_hex(3))}
    assert not (out / f"{event_uuid(_hex(2))}.json").exists()  # the AMBER file is gone
    kept = event_uuid(_hex(1))
    assert second.events[kept].to_json() == first.events[kept].to_json()  # same uuids throughout


def test_an_interrupted_export_leaves_the_previous_feed_whole(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "feed"
    _export(engine, out, "amber+strict")
    before = (out / "manifest.json").read_bytes(), (out / "hashes.csv").read_bytes()

    def failing() -> Iterator[Any]:
        with engine.connect() as connection:
            for number, incident in enumerate(iter_incidents(connection), 1):
                if number == 3:
                    raise OSError("disk full")
                yield incident

    with pytest.raises(OSError, match="disk full"):
        write_misp_feed(failing(), out, clearance="clear")
    assert ((out / "manifest.json").read_bytes(), (out / "hashes.csv").read_bytes()) == before
    _check_hashes(_load(out))  # every file the manifest names is there, and nothing else


def test_links_planted_at_a_temporary_name_are_never_written_through(
    engine: Engine, tmp_path: Path
) -> None:
    """Someone who can write in the feed directory plants links where a temporary file
    would go (earlier versions named it after the process id) once the export has
    checked the directory: neither link is followed, the export completes."""
    out = tmp_path / "feed"
    out.mkdir()
    outside, beside = tmp_path / "outside.txt", tmp_path / "beside.txt"
    outside.write_text("not the exporter's\n")
    beside.write_text("not the exporter's either\n")
    green, clear = event_uuid(_hex(1)), event_uuid(_hex(3))
    planted = {
        out / f".cso-misp-{os.getpid()}-{green}.json": ("symlink", outside),
        out / f".cso-misp-{os.getpid()}-{clear}.json": ("hardlink", beside),
    }

    def planting() -> Iterator[Any]:
        with engine.connect() as connection:
            for number, incident in enumerate(iter_incidents(connection, clearance="green")):
                if number == 0:  # after the directory was checked and the lock taken
                    for path, (kind, target) in planted.items():
                        path.symlink_to(target) if kind == "symlink" else path.hardlink_to(target)
                yield incident

    assert write_misp_feed(planting(), out, clearance="green") == 2
    assert outside.read_text() == "not the exporter's\n"
    assert beside.read_text() == "not the exporter's either\n"
    for uuid_ in (green, clear):
        written = out / f"{uuid_}.json"
        assert stat.S_ISREG(written.lstat().st_mode)
        assert json.loads(written.read_bytes())["Event"]["uuid"] == uuid_
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert set(manifest) == {green, clear}


# The command ------------------------------------------------------------------


@pytest.fixture
def incident_db(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_command_writes_a_feed_for_a_clearance(
    engine: Engine, database_url: str, tmp_path: Path, incident_db: Callable[..., Any]
) -> None:
    out = tmp_path / "feed"
    code, printed, err = incident_db("--db", database_url, "export", "--format", "misp-feed",
                                     "--clearance", "TLP:GREEN", "--out", out)  # fmt: skip
    assert code == 0, err
    assert printed == f"2 events written to {out} (clearance TLP:GREEN)\n"
    assert set(_load(out).events) == {event_uuid(_hex(1)), event_uuid(_hex(3))}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--clearance", "red"), "RED never leaves the service"),
        (("--clearance", "TLP:RED"), "RED never leaves the service"),
        (("--clearance", "purple"), "unknown TLP level"),
        (("--clearance", "\x1b[31mamber"), "unknown TLP level"),
    ],
)
@pytest.mark.parametrize("kind", ["csv", "geojson", "stix", "misp-feed"])
def test_the_command_refuses_red_and_unknown_levels_in_one_line(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    incident_db: Callable[..., Any],
    kind: str,
    options: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "out"
    code, printed, err = incident_db("--db", database_url, "export", "--format", kind,
                                     *options, "--out", out)  # fmt: skip
    assert code != 0
    assert message in err
    assert err.count("\n") == 1
    assert "\x1b" not in err
    assert printed == ""
    assert not out.exists()


@pytest.mark.parametrize("kind", ["csv", "geojson", "stix", "misp-feed"])
def test_the_command_requires_a_clearance(
    database_url: str, tmp_path: Path, incident_db: Callable[..., Any], kind: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        incident_db("--db", database_url, "export", "--format", kind, "--out", out)
    assert stopped.value.code != 0
    assert not out.exists()


def test_the_command_refuses_a_foreign_directory_and_a_missing_out(
    engine: Engine, database_url: str, tmp_path: Path, incident_db: Callable[..., Any]
) -> None:
    db = ("--db", database_url, "export", "--format", "misp-feed", "--clearance", "amber")
    code, _, err = incident_db(*db)
    assert code != 0
    assert "needs --out DIR" in err
    assert err.count("\n") == 1

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    other_feed = tmp_path / "other-feed"  # another producer's MISP feed
    other_feed.mkdir()
    stranger = "6b1d0b0e-8d5e-4f0a-9a55-0c1f3b7a2d11"
    (other_feed / "manifest.json").write_text(json.dumps({stranger: {"Orgc": {"uuid": stranger}}}))
    (other_feed / f"{stranger}.json").write_text("{}")
    for directory in (foreign, other_feed):
        before = {p.name: p.read_bytes() for p in directory.iterdir()}
        code, printed, err = incident_db(*db, "--out", directory)
        assert code != 0
        assert printed == ""
        assert "not a MISP feed of this database" in err
        assert err.count("\n") == 1
        assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    code, _, err = incident_db(*db, "--out", foreign / "holiday.jpg")
    assert code != 0
    assert err.count("\n") == 1


# The crime-at-sea data --------------------------------------------------------


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database: the crime-at-sea feed read in place, and the reviewer batches."""
    if not (SHARED / "data" / "crime-at-sea" / "pirate_attacks.csv").is_file():
        pytest.fail("the crime-at-sea data is missing from ../shared/data/crime-at-sea/")
    return build_demo(tmp_path_factory.mktemp("misp-demo") / "demo", shared=SHARED)


def test_the_crime_at_sea_feed_loads_fully_in_pymisp(demo_url: str, tmp_path: Path) -> None:
    made = open_database(demo_url)
    try:
        out = tmp_path / "feed"
        count = _export(made, out, "amber+strict")
        assert count == _allowed_count(made, "amber+strict") > 7000
    finally:
        made.dispose()
    feed = _load(out)
    assert len(feed.events) == count
    _check_hashes(feed)
    made = open_database(demo_url)
    with made.connect() as connection:
        decimals = {event_uuid(i): d for i, d in connection.execute(
            select(Incident.id, Incident.position_decimals))}  # fmt: skip
    made.dispose()
    for uuid_, event in feed.events.items():
        for obj in event.objects:
            for attribute in obj.attributes:
                if attribute.object_relation in ("latitude", "longitude"):
                    places = len(str(attribute.value).partition(".")[2])
                    assert places <= decimals[uuid_]
    levels = Counter(tag for e in feed.events.values() for tag in _level_tags(e))
    assert sum(levels.values()) == count
    assert set(levels) <= {"tlp:clear", "tlp:amber"}
    assert os.listdir(out).count("manifest.json") == 1
