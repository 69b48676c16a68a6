"""What one partner request may cost the TAXII server, and what the audit log keeps of it.

The server of ``test_taxii.py`` (a real gunicorn on SQLite and PostgreSQL,
linked incidents at every level) is asked for oversized pages, for filters
that match nothing, and for objects by id. The work a request does is
counted in the database, not timed: the statements it sends (and, on
SQLite, how the database runs them: no full scan of ``incident`` for a
lookup by id) and how many incidents a page reads before it answers.
"""

# ruff: noqa: F811  (``served``, a fixture of test_taxii.py, is a test argument)
from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from sqlalchemy import Connection, Engine, event, text

from incident_db.db import downgrade, upgrade
from incident_db.exports.stix import NAMESPACE
from incident_db.stix_ids import incident_uuid, located_at_uuid
from incident_db.web.taxii import COLLECTION_ID
from incident_db.web.taxii_objects import SCAN_PER_OBJECT, find_object, walk_objects
from incident_db.web.taxii_protocol import MAX_LIMIT, Filters, TaxiiError, parse_limit
from tests.integration.test_taxii import (  # noqa: F401  (served is a fixture)
    LEVELS,
    TAXII,
    collection_of,
    everything,
    incident_id,
    pulls,
    served,
    stix_id,
)

NAVY = "amber+strict"


def _get(served: dict[str, Any], path: str, name: str = "Navy", **params: str) -> requests.Response:
    url = f"{served['url']}/taxii2/api/collections/{COLLECTION_ID}/{path}"
    return requests.get(url, params=params, auth=(name, served["tokens"][name]),
                        headers={"Accept": TAXII}, timeout=30)  # fmt: skip


def _filters(**given: Any) -> Filters:
    plain = {"added_after": None, "limit": MAX_LIMIT, "after": None, "types": None, "ids": None,
             "versions": None, "spec_versions": None}  # fmt: skip
    return Filters(**(plain | given))


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent on ``engine`` meanwhile, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _on_incident(sent: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(s, p) for s, p in sent if re.search(r"\bFROM incident\b(?!_)", s)]


def _full_scans(engine: Engine, sent: list[tuple[str, Any]]) -> list[str]:
    """On SQLite, the statements the database runs by reading all of ``incident``."""
    if engine.dialect.name != "sqlite":
        return []
    found = []
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        for statement, parameters in sent:
            plan = raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            if any(re.search(r"\bSCAN incident\b(?!_)", str(step[-1])) for step in plan):
                found.append(statement)
    return found


def _run(engine: Engine, work: Callable[[Connection], Any]) -> tuple[Any, list[tuple[str, Any]]]:
    with engine.connect() as connection, _statements(engine) as sent:
        return work(connection), sent


# -- H1: limit ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["0000015000", "000001000000", "00001", "1001", "0", "0000",
                                 "+5", "-1", " 5", "5 ", "5\n", "1e3", "0x10", "5.0", "",
                                 "\u0665", "\uff15", "\u0661\u0660", "9" * 30])  # fmt: skip
def test_a_malformed_limit_is_refused(raw: str) -> None:
    with pytest.raises(TaxiiError) as refused:
        parse_limit(raw)
    assert refused.value.status == 400


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("0010", 10), ("1000", MAX_LIMIT)])
def test_a_limit_is_read_whole(raw: str, value: int) -> None:
    assert parse_limit(raw) == value


def test_a_padded_limit_gets_no_larger_page(served: dict[str, Any]) -> None:
    for raw in ("0000015000", "000001000000", "0000000002"):
        for path in ("objects/", "manifest/"):
            answer = _get(served, path, limit=raw)
            assert answer.status_code == 400, (raw, path, answer.text[:80])
            assert answer.json()["http_status"] == "400"
    page = _get(served, "objects/", limit="0002").json()
    assert len(page["objects"]) == 2
    assert page["more"] is True


# -- H2: filters that match nothing, and a cap on the work of one page -----------------


def test_filters_that_match_nothing_read_no_incident(served: dict[str, Any]) -> None:
    engine = served["engine"]
    nothing = (_filters(spec_versions=frozenset({"2.0"})),
               _filters(types=frozenset({"indicator", "malware"})),
               _filters(ids=frozenset({f"indicator--{uuid.uuid4()}"})))  # fmt: skip
    for filters in nothing:
        found, sent = _run(engine, lambda c, f=filters: list(walk_objects(c, NAVY, f, 2)))
        assert found == []
        assert sent == [], "answered without asking the database"
    for query in ({"match[spec_version]": "2.0"}, {"match[type]": "indicator"}):
        assert _get(served, "manifest/", limit="1", **query).json() == {}
    # a version no incident has: one indexed query, nothing built
    far = __import__("datetime").datetime(2001, 1, 1)
    found, sent = _run(engine, lambda c: list(walk_objects(c, NAVY, _filters(
        versions=frozenset({far}), types=frozenset({"incident"})), 2)))  # fmt: skip
    assert found == []
    (query,) = _on_incident(sent)
    assert "version_at <" in query[0]
    assert _full_scans(engine, [query]) == []


def test_a_version_filter_gives_exactly_the_objects_of_that_version(
    served: dict[str, Any],
) -> None:
    navy = collection_of(served, "Navy")
    every = everything(navy, 50)
    version = next(o["modified"] for o in every if o["type"] == "incident")
    expected = sorted(o["id"] for o in every if o.get("modified", o["created"]) == version)
    got = everything(navy, 7, version=version)
    assert sorted(o["id"] for o in got) == expected
    assert everything(navy, 7, version=version[:-4] + "999Z") == [] or version.endswith("999Z")


def _cursor_incident(next_value: str) -> str:
    raw = base64.urlsafe_b64decode(next_value + "=" * (-len(next_value) % 4))
    return str(json.loads(raw)[1])


def test_a_page_reads_a_bounded_number_of_incidents(served: dict[str, Any]) -> None:
    engine = served["engine"]
    with engine.begin() as connection:  # no incident has a location: match[type]=location is empty
        connection.execute(text("UPDATE incident SET latitude = NULL, longitude = NULL"))
        order = [row[0] for row in connection.execute(text(
            "SELECT id FROM incident WHERE merged_into IS NULL AND tlp <> 'red' "
            "ORDER BY version_at, id"))]  # fmt: skip
    assert len(order) > SCAN_PER_OBJECT
    first = _get(served, "objects/", limit="1", **{"match[type]": "location"}).json()
    # one incident per object asked for (limit 1) times SCAN_PER_OBJECT, then an answer
    assert first["more"] is True
    assert "objects" not in first or first["objects"] == []
    assert _cursor_incident(first["next"]) == order[SCAN_PER_OBJECT - 1]
    # one incident gets its position back: paging finds exactly its location
    last = order[-2]
    with engine.begin() as connection:
        connection.execute(text("UPDATE incident SET latitude = 1.5, longitude = 103.8 "
                                "WHERE id = :id"), {"id": last})  # fmt: skip
    for kind, per_page in (("location", 1), ("location", 2), ("relationship", 1)):
        found, pages, after = [], 0, None
        while True:
            params = {
                "limit": str(per_page),
                "match[type]": kind,
                **({"next": after} if after else {}),
            }
            page = _get(served, "objects/", **params).json()
            pages += 1
            found += page.get("objects", [])
            if not page.get("more"):
                break
            after = page["next"]
        if kind == "location":
            assert pages <= len(order) // (SCAN_PER_OBJECT * per_page) + 2
            assert [o["id"] for o in found] == [f"location--{incident_uuid(last)}"]
        else:
            assert f"relationship--{located_at_uuid(last)}" in {o["id"] for o in found}
            whole = [o for o in everything(collection_of(served, "Navy"), 1000)
                     if o["type"] == "relationship"]  # fmt: skip
            assert sorted(o["id"] for o in found) == sorted(o["id"] for o in whole)


# -- M1: one object by its id ----------------------------------------------------------


def test_an_object_is_found_by_its_stored_id_without_reading_every_incident(
    served: dict[str, Any],
) -> None:
    engine = served["engine"]
    navy = everything(collection_of(served, "Navy"), 1000)
    links = [o for o in navy if o.get("relationship_type") in ("related-to", "duplicate-of")]
    assert links, "the sample must hold link relationships"
    mine = incident_id(LEVELS.index("amber") + 1)
    asked = {f"incident--{incident_uuid(mine)}": True, f"location--{incident_uuid(mine)}": True,
             f"relationship--{located_at_uuid(mine)}": True, f"incident--{uuid.uuid4()}": False,
             f"location--{uuid.uuid4()}": False}  # fmt: skip
    for object_id, exists in asked.items():
        found, sent = _run(engine, lambda c, o=object_id: find_object(c, NAVY, o))
        assert (found is not None and found[1]["id"] == object_id) == exists
        assert _full_scans(engine, sent) == [], object_id
        assert not [s for s, _ in sent if "incident_link.relation !=" in s], "no link scan"
    # a link's relationship: the link table is read, never all the incidents
    for object_id in (links[0]["id"], f"relationship--{uuid.uuid4()}"):
        found, sent = _run(engine, lambda c, o=object_id: find_object(c, NAVY, o))
        assert (found is not None) == (object_id == links[0]["id"])
        assert _full_scans(engine, sent) == [], object_id
        assert [s for s, _ in sent if "incident_link.relation !=" in s], "the link table is read"
    # every object the Navy pages through is found by its id, the same object
    for obj in navy:
        answer = _get(served, f"objects/{obj['id']}/")
        assert answer.status_code == 200, obj["id"]
        assert answer.json()["objects"] == [obj]
    red = stix_id(LEVELS.index("red") + 1)
    assert _get(served, f"objects/{red}/").status_code == 404


def test_the_migration_stores_the_ids_of_incidents_already_there(served: dict[str, Any]) -> None:
    engine, url = served["engine"], served["database_url"]
    engine.dispose()
    downgrade(url, "0007")
    upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, stix_uuid, stix_located_uuid FROM incident"))
        stored = rows.all()
    assert len(stored) == len(LEVELS)
    for ident, one, located in stored:
        assert one == str(uuid.uuid5(NAMESPACE, ident))
        assert located == str(uuid.uuid5(NAMESPACE, f"located-at {ident}"))
    with engine.connect() as connection:  # (the partners went with the downgrade)
        found = find_object(connection, NAVY, stix_id(1))
    assert found is not None
    assert found[1]["id"] == stix_id(1)


# -- L2: the audit log -----------------------------------------------------------------


def test_refused_and_padded_pulls_are_audited_as_parsed(served: dict[str, Any]) -> None:
    engine = served["engine"]
    before = len(pulls(engine, "Coast Guard"))
    hidden = stix_id(LEVELS.index("amber") + 1)
    assert _get(served, f"objects/{hidden}/", name="Coast Guard").status_code == 404
    assert _get(served, "objects/", name="Coast Guard", limit="bogus").status_code == 400
    green = stix_id(LEVELS.index("green") + 1)
    padded = _get(served, "objects/", name="Coast Guard", pad="A" * 1000,
                  **{"match[id]": f"{green},{hidden}", "limit": "0050"})  # fmt: skip
    assert [o["id"] for o in padded.json()["objects"]] == [green]
    url = f"{served['url']}/taxii2/api/collections/{COLLECTION_ID}/objects/"
    auth = ("Coast Guard", served["tokens"]["Coast Guard"])
    assert (
        requests.get(url, auth=auth, headers={"Accept": "text/html"}, timeout=30).status_code == 406
    )
    lines = [json.loads(detail) for _, detail in pulls(engine, "Coast Guard")[before:]]
    assert [(line["status"], line["count"]) for line in lines] == [(404, 0), (400, 0), (200, 1),
                                                                  (406, 0)]  # fmt: skip
    assert lines[0]["filters"] == {"limit": MAX_LIMIT, "next": False}
    assert lines[1]["parameters"] == {"count": 1, "first": ["limit"]}
    ids = {"count": 2, "first": sorted([green, hidden])}
    assert lines[2]["filters"] == {"limit": 50, "next": False, "unknown": ["pad"], "ids": ids}
    assert all(len(json.dumps(line)) < 600 for line in lines)
    assert not pulls(engine, "Navy")
