"""The TAXII 2.1 server of ``incident-db serve``, read by taxii2-client, on SQLite and PostgreSQL.

A real gunicorn serves a database of incidents at every TLP level, linked
to each other; partners are added with ``incident_db.partners`` and changed
with the ``incident-db partners`` command while the server runs. What a
partner receives is checked against plain SQL counts, and a GREEN partner
is asked for an AMBER (or stricter) object by every endpoint and filter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from taxii2client.v21 import Collection, Server, as_pages

from incident_db import partners, tlp
from incident_db.db import open_database
from incident_db.exports.stix import NAMESPACE
from incident_db.ingest import ingest_batch
from incident_db.web.taxii import COLLECTION_ID
from tests.integration.portal_server import free_port, stop_server, wait_until_listening
from tests.unit.incident_db.factories import REVIEWER, batch, record

TAXII = "application/taxii+json;version=2.1"
#: the level of each incident, by record number: every level, several times
LEVELS = ("clear", "green", "amber", "amber+strict", "red", "green", "amber", "clear", "red",
          "green", "amber", "clear")  # fmt: skip
#: position of every incident: the same anchorage, so the corroboration links them all
SINCE = "2000-01-01T00:00:00.000Z"


def incident_id(number: int) -> str:
    return f"{number:032x}"


def stix_id(number: int) -> str:
    """The STIX id of incident ``number`` (a UUIDv5 of its id, incident_db/STIX.md)."""
    return f"incident--{uuid.uuid5(NAMESPACE, incident_id(number))}"


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A database of linked incidents at every level, two partners, and the service."""
    engine = open_database(database_url)
    records = [record(n, occurred_local=f"2024-03-{n:02d}T02:30") for n in range(1, 13)]
    ingest_batch(engine, batch(records), {REVIEWER.token})
    with engine.begin() as connection:
        for number, level in enumerate(LEVELS, start=1):
            connection.execute(text("UPDATE incident SET tlp = :level WHERE id = :id"),
                               {"level": level, "id": incident_id(number)})  # fmt: skip
        links = connection.execute(text("SELECT count(*) FROM incident_link")).scalar()
    assert links, "the sample must hold links between incidents"
    with Session(engine) as session:
        pairs = (("Coast Guard", "green"), ("Navy", "amber+strict"))
        tokens = {name: partners.add(session, name, level, actor="cli") for name, level in pairs}
        session.commit()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    log = tmp_path / "serve.log"
    with (tmp_path / "serve.out").open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "incident_db", "--db", database_url, "serve", "--port",
             str(port), "--workers", "1"],
            cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            yield {"url": f"http://localhost:{port}", "tokens": tokens, "engine": engine,
                   "database_url": database_url, "cwd": tmp_path}  # fmt: skip
        finally:
            stop_server(process)
            engine.dispose()


def collection_of(served: dict[str, Any], name: str) -> Collection:
    server = Server(f"{served['url']}/taxii2/", user=name, password=served["tokens"][name])
    assert server.title
    (root,) = server.api_roots
    assert root.versions == [TAXII]
    (collection,) = root.collections
    assert collection.id == COLLECTION_ID
    assert (collection.can_read, collection.can_write) == (True, False)
    return collection


def everything(collection: Collection, per_request: int, **filters: Any) -> list[dict[str, Any]]:
    """Every object, a page at a time, as taxii2-client pages them."""
    found = []
    for envelope in as_pages(collection.get_objects, per_request=per_request, **filters):
        assert len(envelope.get("objects", [])) <= per_request
        found.extend(envelope.get("objects", []))
    return found


def sql_count(engine: Engine, clearance: str) -> int:
    """How many live incidents ``clearance`` allows, in plain SQL."""
    levels = ", ".join(f"'{level}'" for level in tlp.LEVELS[: tlp.RANK[clearance] + 1])
    query = (
        f"SELECT count(*) FROM incident WHERE merged_into IS NULL "  # noqa: S608 - constants
        f"AND tlp IN ({levels}) AND tlp <> 'red'"
    )
    with engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


def markings_of(objects: list[dict[str, Any]]) -> set[str]:
    levels = {marking: level for level, marking in tlp.STIX_MARKINGS.items()}
    return {levels[ref] for obj in objects for ref in obj.get("object_marking_refs", [])}


def pulls(engine: Engine, name: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT subject, detail FROM audit_event WHERE actor = :actor "
                 "AND action = 'taxii.pull' ORDER BY id"), {"actor": f"partner:{name}"},
        ).all()  # fmt: skip
    return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize(("name", "clearance"), [("Coast Guard", "green"),
                                                 ("Navy", "amber+strict")])  # fmt: skip
def test_a_partner_pages_through_all_its_clearance_allows(
    served: dict[str, Any], name: str, clearance: str
) -> None:
    collection = collection_of(served, name)
    paged = everything(collection, 4, added_after=SINCE)
    whole = collection.get_objects()["objects"]
    ids = [obj["id"] for obj in paged]
    assert len(ids) == len(set(ids)), "an object came twice"
    assert sorted(ids) == sorted(obj["id"] for obj in whole), "paging lost or added objects"
    incidents = [obj for obj in paged if obj["type"] == "incident"]
    assert len(incidents) == sql_count(served["engine"], clearance) > 0
    assert len([o for o in paged if o["type"] == "location"]) == len(incidents)
    assert markings_of(paged) <= set(tlp.allowed_levels(clearance))
    assert {o["id"] for o in paged if o["type"] == "marking-definition"} == set(
        tlp.STIX_MARKINGS.values()
    )
    # the manifest lists the same objects, each at its version
    manifest = [r for page in as_pages(collection.get_manifest, per_request=5)
                for r in page.get("objects", [])]  # fmt: skip
    assert sorted(r["id"] for r in manifest) == sorted(ids)
    versions = {o["id"]: o.get("modified", o["created"]) for o in paged}
    assert all(r["version"] == versions[r["id"]] for r in manifest)
    # added_after takes a page's X-TAXII-Date-Added-Last: nothing after the last page
    response = requests.get(collection.url + "objects/", auth=(name, served["tokens"][name]),
                            headers={"Accept": TAXII}, timeout=10)  # fmt: skip
    last = response.headers["X-TAXII-Date-Added-Last"]
    assert response.headers["Content-Type"] == TAXII
    assert collection.get_objects(added_after=last) == {}
    assert pulls(served["engine"], name), "pulls are audited"


def test_a_green_partner_never_receives_an_amber_object(served: dict[str, Any]) -> None:
    navy = everything(collection_of(served, "Navy"), 50)
    green = collection_of(served, "Coast Guard")
    seen = everything(green, 3)
    seen_ids = {obj["id"] for obj in seen}
    assert markings_of(seen) <= {"clear", "green"}
    stricter = {stix_id(n) for n, level in enumerate(LEVELS, 1) if level not in ("clear", "green")}
    for obj in seen:
        assert obj["id"] not in stricter
        assert obj.get("target_ref") not in stricter, "a relationship names a stricter incident"
        assert obj.get("source_ref") not in stricter
    hidden = sorted({obj["id"] for obj in navy} - seen_ids)
    # what the Navy sees beyond GREEN: AMBER incidents, their locations and links to them
    assert {obj["type"] for obj in navy if obj["id"] in hidden} == {"incident", "location",
                                                                    "relationship"}  # fmt: skip
    reds = [stix_id(n) for n, level in enumerate(LEVELS, 1) if level == "red"]
    assert not {obj["id"] for obj in navy} & set(reds), "RED left the service"
    for object_id in [*hidden[:12], *reds]:
        for ask in (green.get_object, green.object_versions):
            with pytest.raises(requests.HTTPError) as refused:
                ask(object_id)
            assert refused.value.response.status_code == 404
            assert refused.value.response.headers["Content-Type"] == TAXII
        assert green.get_objects(id=object_id) == {}
        assert green.get_manifest(id=object_id) == {}
        assert green.get_objects(id=object_id, version="all", type="incident") == {}
    amber = stix_id(LEVELS.index("amber") + 1)
    mixed = green.get_objects(id=[amber, *sorted(seen_ids)[:3]])["objects"]
    assert sorted(obj["id"] for obj in mixed) == sorted(seen_ids)[:3]


def test_one_object_its_versions_and_the_filters(served: dict[str, Any]) -> None:
    green = collection_of(served, "Coast Guard")
    mine = stix_id(LEVELS.index("green") + 1)
    (found,) = green.get_object(mine)["objects"]
    assert found["id"] == mine
    assert green.object_versions(mine) == {"more": False, "versions": [found["modified"]]}
    for version in ("last", "first", "all", found["modified"]):
        assert green.get_object(mine, version=version)["objects"] == [found]
    assert green.get_object(mine, version="2001-01-01T00:00:00.000Z") == {}
    only = green.get_objects(type="location")["objects"]
    assert only
    assert {obj["type"] for obj in only} == {"location"}
    common = green.get_objects(type=["identity", "extension-definition"])["objects"]
    assert len(common) == 2


def test_bad_requests_get_taxii_errors(served: dict[str, Any]) -> None:
    auth = ("Coast Guard", served["tokens"]["Coast Guard"])
    objects = f"{served['url']}/taxii2/api/collections/{COLLECTION_ID}/objects/"
    for query in ("limit=0", "limit=1001", "limit=99999999999999999999", "limit=ten",
                  "added_after=yesterday", "added_after=2024-13-01T00:00:00Z", "next=%00",
                  "next=bm9uc2Vuc2U", "match[version]=newest", "match[id]=<script>",
                  "match[type]=" + "a," * 200):  # fmt: skip
        answer = requests.get(f"{objects}?{query}", auth=auth, headers={"Accept": TAXII},
                              timeout=10)  # fmt: skip
        assert answer.status_code == 400, query
        assert answer.headers["Content-Type"] == TAXII
        assert answer.json()["http_status"] == "400"
    refused = requests.get(objects, auth=auth, headers={"Accept": "text/html"}, timeout=10)
    assert refused.status_code == 406
    assert refused.json()["title"]
    bundle = requests.get(objects + "?limit=2", auth=auth, timeout=10,
                          headers={"Accept": "application/stix+json;version=2.1"})  # fmt: skip
    assert bundle.headers["Content-Type"] == "application/stix+json;version=2.1"
    assert bundle.json()["type"] == "bundle"
    assert 'rel="next"' in bundle.headers["Link"]
    posted = requests.post(objects, auth=auth, json={"objects": []}, timeout=10,
                           headers={"Accept": TAXII, "Content-Type": TAXII})  # fmt: skip
    assert posted.status_code == 405
    assert "Set-Cookie" not in posted.headers
    other = objects.replace(COLLECTION_ID, str(uuid.uuid4()))
    assert requests.get(other, auth=auth, headers={"Accept": TAXII}, timeout=10).status_code == 404


def _cli(served: dict[str, Any], *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    done = subprocess.run(
        [sys.executable, "-m", "incident_db", "--db", served["database_url"], "partners", *args],
        cwd=served["cwd"], env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_wrong_rotated_and_removed_credentials_get_401_at_once(served: dict[str, Any]) -> None:
    discovery = f"{served['url']}/taxii2/"
    token = served["tokens"]["Coast Guard"]

    def status(**options: Any) -> int:
        answer = requests.get(discovery, headers={"Accept": TAXII, **options.pop("headers", {})},
                              timeout=10, **options)  # fmt: skip
        if answer.status_code == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Basic")
            assert answer.headers["Content-Type"] == TAXII
            assert "Set-Cookie" not in answer.headers
        return answer.status_code

    assert status(auth=("Coast Guard", token)) == 200
    assert status(headers={"Authorization": f"Bearer {token}"}) == 200
    assert status() == 401
    assert status(auth=("Coast Guard", token[:-1] + "x")) == 401
    assert status(auth=("Navy", token)) == 401, "the credential is the Coast Guard's"
    assert status(headers={"Authorization": f"Bearer {token}x"}) == 401
    assert status(headers={"Authorization": "Bearer " + "x" * 5000}) == 401

    rotated = next(line for line in _cli(served, "rotate", "Coast Guard").splitlines()
               if line.startswith(partners.TOKEN_PREFIX))  # fmt: skip
    assert status(auth=("Coast Guard", token)) == 401
    assert status(headers={"Authorization": f"Bearer {token}"}) == 401
    assert status(auth=("coast guard", rotated)) == 200
    _cli(served, "remove", "Coast Guard")
    assert status(auth=("Coast Guard", rotated)) == 401
    assert status(headers={"Authorization": f"Bearer {rotated}"}) == 401


def test_every_pull_is_in_the_audit_log(served: dict[str, Any]) -> None:
    engine = served["engine"]
    before = len(pulls(engine, "Navy"))
    collection = collection_of(served, "Navy")  # discovery, API root, collections
    got = everything(collection, 7)
    pages = -(-len(got) // 7)
    collection.get_object(got[-1]["id"])
    lines = pulls(engine, "Navy")[before:]
    assert len(lines) == 3 + pages + 1
    objects = [line for line in lines if line[0].endswith("/objects/")]
    assert len(objects) == pages
    counted = sum(int(detail.split('"count": ')[1].split(",")[0].rstrip("}")) for _, detail
                  in objects)  # fmt: skip
    assert counted == len(got)
    assert not pulls(engine, "Coast Guard")
