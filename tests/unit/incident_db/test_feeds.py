"""Feed import through the crime-at-sea mapping, on a small file with the real file's quirks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from incident_db.db import open_database
from incident_db.errors import FeedError
from incident_db.feeds import import_feed, read_feed, repair_mojibake
from incident_db.mapping import load_mapping
from incident_db.models import Incident, IncidentTag, Provenance

HEADER = (
    "date,time,longitude,latitude,attack_type,location_description,nearest_country,"
    "eez_country,shore_distance,shore_longitude,shore_latitude,attack_description,"
    "vessel_name,vessel_type,vessel_status,data_source\n"
)
ROWS = [
    # NA nulls everywhere; Boarding (not Boarded); no time
    '1993-01-26,"NA",13.25,-8.8,Boarding,"Luanda, Angola",AGO,AGO,0.5,13.2,-8.8,"NA",'
    'Mv Bodrog,"NA",Anchored,mappingpiracy\n',
    # a local time, a multi-line quoted description, Boarded
    '2015-01-10,05:00,104.1666666,1.0816666,Boarded,"Tanjung Uban Anchorage, Indonesia",IDN,'
    'IDN,5.1,104.2,1.1,"10.01.2015: 0500 LT: Posn: 01:04.8N – 104:10.9E.\n'
    "Three armed robbers boarded an anchored LPG tanker and entered the engine room.\n"
    'Alarm raised and crew mustered. Nothing stolen.",SECRET SHIP ONE,LPG Tanker,steaming,imb\n',
    # a UTC time; Steaming in another case; an unmapped vessel type falls to "other"
    "2015-01-14,21:30 UTC,1.35,3.4,Hijacked,Around 157nm S of Lome,TGO,TGO,157,1.2,6.1,"
    '"They stole the cargo.",SECRET SHIP TWO,Pipe Layer,Steaming,imb\n',
    # rejected: a time that is not a time
    '2019-05-01,18:85 UTC,3.2,6.3,Attempted,Lagos,NGA,NGA,1,3,6,"NA","NA","NA","NA",imb\n',
    # rejected: latitude out of range
    '2019-05-02,"NA",3.2,96.3,Attempted,Lagos,NGA,NGA,1,3,6,"NA","NA","NA","NA",imb\n',
    # rejected: a vessel status the mapping does not know
    '2019-05-03,"NA",3.2,6.3,Attempted,Lagos,NGA,NGA,1,3,6,"NA","NA","NA",Flying,imb\n',
    # an exact duplicate of the first row: imported as its own incident, then linked
    '1993-01-26,"NA",13.25,-8.8,Boarding,"Luanda, Angola",AGO,AGO,0.5,13.2,-8.8,"NA",'
    'Mv Bodrog,"NA",Anchored,mappingpiracy\n',
]


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "pirate_attacks.csv"
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    return path


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'incidents.sqlite3'}")


def test_every_row_is_accounted_for(feed: Path, engine: Engine) -> None:
    report = import_feed(engine, feed, load_mapping("crime-at-sea"))
    assert report.rows == 7
    assert report.added == 4
    assert [(r.row, r.line) for r in report.rejected] == [(4, 7), (5, 8), (6, 9)]
    reasons = [r.reason for r in report.rejected]
    assert reasons[0] == "time: '18:85 UTC' is not HH:MM"
    assert reasons[1] == "latitude: '96.3' is out of range"
    assert reasons[2] == "vessel_status: no mapping for 'Flying'"
    assert report.links_found == 1  # the duplicate row and its twin


def test_importing_again_adds_nothing(feed: Path, engine: Engine) -> None:
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    again = import_feed(engine, feed, load_mapping("crime-at-sea"))
    assert (again.added, again.already_present, len(again.rejected)) == (0, 4, 3)
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from incident")).scalar_one() == 4


def test_rows_are_normalised_into_the_taxonomy(feed: Path, engine: Engine) -> None:
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    with engine.connect() as connection:
        rows = {r.place: r for r in connection.execute(select(Incident.__table__))}
        tags = {(t.facet, t.value) for t in connection.execute(select(IncidentTag.__table__))}
        sources = {p.source for p in connection.execute(select(Provenance.__table__))}
    luanda, uban, lome = (rows["Luanda, Angola"], rows["Tanjung Uban Anchorage, Indonesia"],
                          rows["Around 157nm S of Lome"])  # fmt: skip
    assert luanda.incident_type == "boarded"  # from "Boarding"
    assert luanda.local_date.isoformat() == "1993-01-26"
    assert luanda.local_time is None
    assert luanda.occurred_utc is None
    assert (uban.local_time, uban.occurred_utc) == ("05:00", None)  # bare times are local
    assert uban.vessel_type == "lpg-tanker"
    assert uban.vessel_status == "underway"
    assert uban.narrative.count("\n") == 2  # the multi-line description, whole
    assert (uban.perpetrators_min, uban.perpetrators_max) == (3, 3)
    assert uban.outcome == "foiled-by-crew"
    assert {
        ("boarding_points", "engine-room"),
        ("stolen", "nothing"),
        ("actions_taken", "alarm-raised"),
        ("actions_taken", "crew-mustered"),
    } <= tags
    assert lome.occurred_utc.isoformat() == "2015-01-14T21:30:00"  # "21:30 UTC"
    assert lome.local_time is None
    assert lome.vessel_type == "other"
    assert lome.incident_type == "hijacked"
    assert lome.outcome == "successful-items-stolen-or-control-taken"
    for row in rows.values():
        assert (row.origin, row.verification_status, row.grade) == ("external", "unverified", None)
    assert sources == {"crime-at-sea/mappingpiracy", "crime-at-sea/imb"}


def test_no_vessel_name_reaches_the_database(feed: Path, engine: Engine, tmp_path: Path) -> None:
    import_feed(engine, feed, load_mapping("crime-at-sea"))
    engine.dispose()
    raw = (tmp_path / "incidents.sqlite3").read_bytes()
    for name in (b"SECRET SHIP", b"Bodrog"):
        assert name not in raw


def test_a_column_neither_mapped_nor_ignored_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "grown.csv"
    path.write_text(HEADER.replace("data_source", "data_source,imo_number") + "")
    with pytest.raises(FeedError, match="column 'imo_number' is neither mapped nor ignored"):
        read_feed(path, load_mapping("crime-at-sea"))


def test_a_missing_column_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(HEADER.replace(",data_source", ""))
    with pytest.raises(FeedError, match="no column 'data_source'"):
        read_feed(path, load_mapping("crime-at-sea"))


def test_a_row_with_the_wrong_number_of_fields_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(HEADER + "2019-05-01,NA,3.2\n")
    count, rows, rejected = read_feed(path, load_mapping("crime-at-sea"))
    assert (count, rows) == (1, [])
    assert rejected[0].reason == "3 fields, the header has 16"


def test_doubly_encoded_text_is_repaired() -> None:
    # the apostrophe U+2019, encoded as UTF-8 and decoded as Windows-1252 twice
    twice = "\u2019".encode().decode("cp1252").encode().decode("cp1252")
    assert repair_mojibake(f"stole ship{twice}s stores") == "stole ship\u2019s stores"
    assert repair_mojibake("Café in Lomé") == "Café in Lomé"
