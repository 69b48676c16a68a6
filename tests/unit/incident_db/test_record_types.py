"""Members of the wrong JSON type in a signed record are refused, never a crash.

A list or an object cannot be looked up in a set: a check written as
``value not in SOME_SET`` raises TypeError for one, and a signed batch
carrying it stopped the ingest with a traceback instead of refusing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incident_db.db import open_database
from incident_db.errors import IngestError, RecordError
from incident_db.ingest import ingest_batch
from incident_db.record import parse_record
from tests.unit.incident_db.factories import REVIEWER, batch, record, snapshot

WRONG_TYPES: list[Any] = [[], {}, ["B2"], {"B2": 1}, 2, 2.5, True, None]


@pytest.mark.parametrize("grade", WRONG_TYPES)
def test_a_grade_that_is_not_text_is_refused(grade: Any) -> None:
    obj = record(1)
    obj["verification"] = {"status": "confirmed", "grade": grade}
    with pytest.raises(RecordError, match=r"^verification\.grade: "):
        parse_record(obj)


@pytest.mark.parametrize("relation", WRONG_TYPES)
def test_a_link_relation_that_is_not_text_is_refused(relation: Any) -> None:
    obj = record(1, links=[{"relation": relation, "id": f"{2:032x}"}])
    with pytest.raises(RecordError, match=r"^links: "):
        parse_record(obj)


@pytest.mark.parametrize("status", [[], {}, 1])
def test_a_verification_status_that_is_not_text_is_refused(status: Any) -> None:
    obj = record(1)
    obj["verification"] = {"status": status, "grade": "B2"}
    with pytest.raises(RecordError, match=r"^verification\.status: "):
        parse_record(obj)


def test_a_signed_batch_with_a_list_for_a_grade_is_refused_whole(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'incidents.sqlite3'}")
    try:
        ingest_batch(engine, batch([record(1)]), {REVIEWER.token})
        before = snapshot(engine)
        bad = record(2)
        bad["verification"] = {"status": "confirmed", "grade": []}
        with pytest.raises(IngestError, match=r"line 3: verification\.grade"):
            ingest_batch(engine, batch([record(3), bad]), {REVIEWER.token})
        assert snapshot(engine) == before
    finally:
        engine.dispose()
