"""Partners' feeds on a million incidents: TAXII 2.1 pages and a full MISP feed export.

    python -m bench.partner_feeds [--incidents 1000000] [--pages 40] [--misp all|none|N]
                                [--postgres auto|none|URL]
    python -m bench.partner_feeds --smoke   # 10,000 incidents, SQLite only

For each database: loads the synthetic incidents of bench/incidents.py
(through bench/incident_db_web.py's loader) with their TLP levels spread
as a real database might hold them (CLEAR 30 %, GREEN 30 %, AMBER 25 %,
AMBER+STRICT 10 %, RED 5 %) and each with its own version time, adds an
AMBER partner with ``incident_db.partners.add``, starts ``incident-db
serve`` (gunicorn, 2 workers) and then:

* **TAXII.** Times ``--pages`` requests for pages of 1,000 objects
  (``GET …/objects/?added_after=…&limit=1000``, bearer credential), half
  from moments spread over the database's history and half following the
  ``next`` of the page before, target p95 <= 500 ms. Each page is checked:
  1,000 objects unless it is the last, every object marked with exactly one
  TLP 2.0 marking the partner's clearance allows. The baseline, in this
  process and the same run, fetches the same incidents with hand-written
  SQL (the keyset query, their tags and provenance) and builds the same
  kinds of STIX objects (incident, location, located-at) as plain dicts,
  then JSON, with no checks: what any server must at least do.
* **MISP.** Exports the whole feed the partner may receive
  (``write_misp_feed`` over ``iter_incidents``, PyMISP building every
  event) into a fresh directory, and beside it the baseline: the same rows
  by hand-written SQL written as minimal event files, a manifest and
  hashes. It prints events per second and the ratio. ``--misp N`` stops
  both after N events (the full export of a million takes a while).

It prints each figure with its baseline and ratio and exits non-zero on any
error, any page that is wrong, or (at full size) a missed TAXII target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from bench._serve import Server
from bench.incident_db_web import load, p95, served
from bench.incidents import databases
from incident_db import partners, tlp
from incident_db.db import open_database
from incident_db.exports import iter_incidents
from incident_db.exports.misp import write_misp_feed
from incident_db.web.taxii import API_ROOT, COLLECTION_ID

TARGET = 0.500  # seconds: TAXII page of 1,000 objects, p95
PAGE = 1000
CLEARANCE = "amber"
#: the share of each level, per hundred incidents
SPREAD = (("clear", 30), ("green", 30), ("amber", 25), ("amber+strict", 10), ("red", 5))
LEVEL_OF = [level for level, share in SPREAD for _ in range(share)]
#: the first version time; each incident's is a little later than the one before
EPOCH = dt.datetime(2020, 1, 1)
NAMESPACE = uuid.UUID("0b7f6a52-52c4-4c0e-9d7e-51e3c4b7a2d1")


def shape(row: dict[str, Any], n: int) -> None:
    """Spread the levels and give each incident its own version time (37 s apart)."""
    row["tlp"] = LEVEL_OF[(n * 37) % 100]
    row["version_at"] = EPOCH + dt.timedelta(seconds=37 * n, milliseconds=n % 1000)


def add_partner(engine: Engine) -> str:
    """An AMBER partner's credential."""
    with Session(engine) as session:
        token = partners.add(session, "bench-navy", CLEARANCE, actor="cli")
        session.commit()
    return token


def moments(engine: Engine, count: int) -> list[dt.datetime]:
    """``count`` version times spread evenly over the database's history."""
    with engine.connect() as connection:
        first, last = connection.execute(
            text("SELECT MIN(version_at), MAX(version_at) FROM incident")
        ).one()
    first, last = (v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)
                   for v in (first, last))  # fmt: skip
    # stop well before the end, so that every page from them is a full one
    span = (last - first) * 0.9
    return [first + span * (i / max(1, count - 1)) for i in range(count)]


def stix_moment(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- the TAXII pages and their baseline -------------------------------------------------


def get(connection: http.client.HTTPConnection, path: str, token: str) -> tuple[int, bytes]:
    connection.request("GET", path, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"})  # fmt: skip
    response = connection.getresponse()
    return response.status, response.read()


def wrong_page(envelope: dict[str, Any]) -> str | None:
    """What is wrong with a page of objects for the AMBER partner, or None."""
    objects = envelope.get("objects", [])
    if envelope.get("more") and len(objects) != PAGE:
        return f"a page that is not the last holds {len(objects)} objects, not {PAGE}"
    allowed = {tlp.STIX_MARKINGS[level] for level in tlp.allowed_levels(CLEARANCE)}
    for obj in objects:
        if obj["type"] == "marking-definition":
            continue
        marks = obj.get("object_marking_refs", [])
        if len(marks) != 1 or marks[0] not in allowed:
            return f"{obj['id']} carries {marks}, not one marking AMBER allows"
    return None


BASE_ROWS = """
SELECT id, category, incident_type, local_date, local_time, latitude, longitude,
       position_decimals, place, narrative, verification_status, grade, tlp, version_at, added_at
FROM incident WHERE merged_into IS NULL AND tlp IN ({levels}) AND version_at > :after
ORDER BY version_at, id LIMIT :n
"""


def baseline_page(engine: Engine, after: dt.datetime, incidents: int) -> str:
    """Hand-written SQL and plain dicts for the incidents of one page: the floor."""
    levels = ", ".join(f"'{level}'" for level in tlp.allowed_levels(CLEARANCE))
    with engine.connect() as connection:
        rows = connection.execute(
            text(BASE_ROWS.format(levels=levels)), {"after": after, "n": incidents}
        ).all()
        ids = [r.id for r in rows]
        tags: dict[str, list[str]] = {}
        for incident_id, facet, value in _in(connection, "SELECT incident_id, facet, value "
                                             "FROM incident_tag WHERE incident_id IN", ids):  # fmt: skip
            tags.setdefault(incident_id, []).append(f"{facet}:{value}")
        sources: dict[str, list[str]] = {}
        for incident_id, source, line in _in(connection, "SELECT incident_id, source, row "
                                             "FROM provenance WHERE incident_id IN", ids):  # fmt: skip
            sources.setdefault(incident_id, []).append(f"{source} {line}")
    objects: list[dict[str, Any]] = []
    for r in rows:
        moment = r.version_at if isinstance(r.version_at, dt.datetime) else (
            dt.datetime.fromisoformat(r.version_at))  # fmt: skip
        marking = [tlp.STIX_MARKINGS[r.tlp]]
        stamp = stix_moment(moment)
        incident_id = f"incident--{uuid.uuid5(NAMESPACE, r.id)}"
        objects.append({"type": "incident", "spec_version": "2.1", "id": incident_id,
                        "created": stamp, "modified": stamp, "name": r.place or r.category,
                        "description": r.narrative, "labels": tags.get(r.id, []),
                        "external_references": sources.get(r.id, []),
                        "object_marking_refs": marking})  # fmt: skip
        if r.latitude is not None:
            location_id = f"location--{uuid.uuid5(NAMESPACE, 'l' + r.id)}"
            objects.append({"type": "location", "spec_version": "2.1", "id": location_id,
                            "created": stamp, "modified": stamp, "latitude": r.latitude,
                            "longitude": r.longitude, "object_marking_refs": marking})  # fmt: skip
            objects.append({"type": "relationship", "spec_version": "2.1",
                            "id": f"relationship--{uuid.uuid5(NAMESPACE, 'r' + r.id)}",
                            "created": stamp, "modified": stamp, "relationship_type": "located-at",
                            "source_ref": incident_id, "target_ref": location_id,
                            "object_marking_refs": marking})  # fmt: skip
    return json.dumps({"more": True, "objects": objects})


def _in(connection: Connection, query: str, ids: list[str]) -> Iterator[Any]:
    """Rows of ``query … IN (ids)``, the ids bound as parameters, 500 at a time."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join(f":p{i}" for i in range(len(chunk)))
        yield from connection.execute(
            text(f"{query} ({marks})"), {f"p{i}": v for i, v in enumerate(chunk)}
        )


def taxii(server: Server, engine: Engine, token: str, pages: int, enforce: bool) -> list[str]:
    """Time the TAXII pages and their baseline; print one line; return the failures."""
    objects_path = f"{API_ROOT}collections/{COLLECTION_ID}/objects/"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    starts = moments(engine, max(1, pages // 2))
    times: list[float] = []
    sizes: list[tuple[dt.datetime, int]] = []  # (added_after, incidents) for the baseline
    try:
        status, _ = get(connection, objects_path + "?limit=1", token)  # warm-up
        if status != 200:
            server.alive()
            return [f"taxii: GET {objects_path} answered {status}"]
        for moment in starts:
            query: dict[str, str] = {"added_after": stix_moment(moment), "limit": str(PAGE)}
            for _follow in range(2):
                path = objects_path + "?" + urlencode(query)
                begin = time.perf_counter()
                status, body = get(connection, path, token)
                times.append(time.perf_counter() - begin)
                if status != 200:
                    return [f"taxii: GET {path} answered {status}: {body[:200]!r}"]
                envelope = json.loads(body)
                if (wrong := wrong_page(envelope)) is not None:
                    return [f"taxii: {wrong}"]
                incidents = sum(1 for o in envelope["objects"] if o["type"] == "incident")
                sizes.append((moment, incidents))
                if not envelope.get("more"):
                    break
                query = {"limit": str(PAGE), "next": envelope["next"]}
    finally:
        connection.close()
    baseline_page(engine, starts[0], sizes[0][1])  # warm-up
    base = []
    for moment, incidents in sizes:
        begin = time.perf_counter()
        baseline_page(engine, moment, incidents)
        base.append(time.perf_counter() - begin)
    seen, floor = p95(times), p95(base)
    print(f"  TAXII page of {PAGE:,} objects ({len(times)} requests): p50 "
          f"{statistics.median(times) * 1e3:,.0f} ms, p95 {seen * 1e3:,.0f} ms; SQL baseline p95 "
          f"{floor * 1e3:,.0f} ms; ratio {seen / floor:.1f}; target p95 <= {TARGET * 1e3:,.0f} ms")  # fmt: skip
    if enforce and seen > TARGET:
        return [f"taxii: p95 {seen * 1e3:,.0f} ms is over {TARGET * 1e3:,.0f} ms"]
    return []


# ---- the MISP feed and its baseline ------------------------------------------------------


MISP_ROWS = """
SELECT id, category, incident_type, outcome, local_date, latitude, longitude, position_decimals,
       place, narrative, tlp, version_at
FROM incident WHERE merged_into IS NULL AND tlp IN ({levels}) ORDER BY id
"""


def limited(iterator: Iterator[Any], most: int | None) -> Iterator[Any]:
    for n, item in enumerate(iterator):
        if most is not None and n >= most:
            return
        yield item


def baseline_feed(engine: Engine, out: Path, most: int | None) -> int:
    """Hand-written SQL to minimal MISP event files, a manifest and hashes: the floor."""
    levels = ", ".join(f"'{level}'" for level in tlp.allowed_levels(CLEARANCE))
    out.mkdir()
    manifest: dict[str, Any] = {}
    hashes: list[str] = []
    count = 0
    with engine.connect() as connection:
        rows = connection.execution_options(stream_results=True, yield_per=2000).execute(
            text(MISP_ROWS.format(levels=levels))
        )
        for r in limited(iter(rows), most):
            event_uuid = str(uuid.uuid5(NAMESPACE, r.id))
            values = [v for v in (r.narrative, r.place, str(r.latitude), str(r.longitude)) if v]
            event = {"Event": {"uuid": event_uuid, "info": f"{r.category} {r.place}",
                               "date": str(r.local_date), "Tag": [{"name": tlp.MISP_TAGS[r.tlp]}],
                               "Attribute": [{"type": "text", "value": v} for v in values]}}  # fmt: skip
            (out / f"{event_uuid}.json").write_text(json.dumps(event), encoding="utf-8")
            manifest[event_uuid] = {"info": event["Event"]["info"], "Tag": event["Event"]["Tag"]}
            hashes.extend(f"{hashlib.md5(v.encode()).hexdigest()},{event_uuid}"  # noqa: S324
                          for v in values)  # fmt: skip
            count += 1
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (out / "hashes.csv").write_text("\n".join(hashes) + "\n", encoding="utf-8")
    return count


def misp(engine: Engine, folder: Path, most: int | None) -> list[str]:
    """Time the full feed export and its baseline; print one line; return the failures."""
    out, floor_out = folder / "misp-feed", folder / "misp-baseline"
    for place in (out, floor_out):
        shutil.rmtree(place, ignore_errors=True)
    begin = time.perf_counter()
    with engine.connect() as connection:
        events = write_misp_feed(
            limited(iter_incidents(connection, clearance=CLEARANCE), most), out,
            clearance=CLEARANCE,
        )  # fmt: skip
    spent = time.perf_counter() - begin
    begin = time.perf_counter()
    floor_events = baseline_feed(engine, floor_out, most)
    floor = time.perf_counter() - begin
    files = sum(1 for name in os.listdir(out) if name.endswith(".json")) - 1  # not the manifest
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    failures = []
    if events != floor_events or files != events or len(manifest) != events:
        failures.append(f"misp: {events} events, {files} event files, {len(manifest)} in the "
                        f"manifest; the SQL baseline found {floor_events}")  # fmt: skip
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"  MISP feed: {events:,} events ({size / 1e6:,.0f} MB) in {spent:,.1f} s, "
          f"{events / spent:,.0f} events/s; SQL baseline {floor:,.1f} s "
          f"({floor_events / floor:,.0f} events/s); ratio {spent / floor:.1f}")  # fmt: skip
    for place in (out, floor_out):
        shutil.rmtree(place, ignore_errors=True)
    return failures


# ---- the run -----------------------------------------------------------------------------


def run_one(kind: str, url: str, folder: Path, args: argparse.Namespace) -> list[str]:
    """Load, serve and measure one database; return its failures."""
    today = dt.datetime.now(dt.UTC).date()
    engine = open_database(url)
    try:
        begin = time.perf_counter()
        load(engine, args.incidents, today, shape)
        print(f"  loaded {args.incidents:,} incidents in {time.perf_counter() - begin:.0f} s")
        token = add_partner(engine)
        with served(url, folder, kind) as server:
            failures = taxii(server, engine, token, args.pages, enforce=not args.smoke)
        if args.misp != "none":
            most = None if args.misp == "all" else int(args.misp)
            failures += misp(engine, folder, most)
        return [f"{kind}: {f}" for f in failures]
    finally:
        engine.dispose()


def main() -> None:
    """Run the benchmark; exit non-zero on any error, wrong page or missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=40, help="timed TAXII pages")
    parser.add_argument("--misp", default="all", help="all, none, or at most N events")
    parser.add_argument("--postgres", default="auto", help="auto, none, or a server URL")
    parser.add_argument("--smoke", action="store_true",
                        help="10,000 incidents, SQLite only, 6 pages; errors fail, the target "
                        "applies at full size only")  # fmt: skip
    args = parser.parse_args()
    if args.misp not in ("all", "none") and not args.misp.isdigit():
        parser.error("--misp takes all, none or a number")
    if args.smoke:
        args.incidents, args.pages, args.postgres, args.misp = 10_000, 6, "none", "all"
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-partner-feeds-") as name:
        folder = Path(name)
        for kind in ("sqlite", "postgresql"):
            with databases(kind, args.postgres, name) as urls:
                if urls is None:
                    continue
                print(f"{kind}:")
                failures += run_one(kind, urls[0], folder, args)
    if failures:
        raise SystemExit("partner_feeds: FAILED:\n  " + "\n  ".join(failures))
    print("partner_feeds: every check passed" + ("" if args.smoke else " and the target met"))


if __name__ == "__main__":
    main()
