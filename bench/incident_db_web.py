"""The members' service on a million incidents: place page, map viewport, voyage brief.

    python -m bench.incident_db_web [--incidents 1000000] [--requests 40]
                                    [--postgres auto|none|URL]
    python -m bench.incident_db_web --smoke   # 20,000 incidents (1,000 mapped), SQLite only

For each database: loads the synthetic incidents of bench/incidents.py
(its seeded generator, dated to end today so that the pages' default
24-month period holds a realistic share), starts ``incident-db serve``
(gunicorn, 2 workers), makes a member and a session directly with
``incident_db.members.store`` and sends the cookie, then times, one request
after another:

* the place page of the busiest anchorage (``/places/<key>``), target p95 300 ms;
* a map viewport holding 5,000 points (``/map/points.json?bbox=…``),
  target p95 200 ms;
* a voyage brief for 6 port calls (``/voyage?calls=…``), target 2 s (p95).

Beside each, hand-written SQL fetching the same content, timed in the same
run in this process (no HTTP): the place's brief counts
(bench/_incidents_sql.py) and its incidents; the viewport's points as
JSON; the counts of the six places. It prints p50, p95, the baseline's
p95, their ratio and the target, and exits non-zero on any error, any
route that does not answer 200 (named), or, at full size, any missed
target (``--smoke`` is too small for the targets to mean anything).

The incidents are written straight into the tables (store.write, as the
ingest's last step does), skipping signatures and corroboration:
bench/incidents.py measures those; this one measures reading.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from bench._incidents_data import DAYS, START, Generator
from bench._incidents_sql import raw_counts
from bench._serve import Server, free_port, serve
from bench.incidents import databases
from crypto.keys import SigningKeyPair
from incident_db.db import open_database
from incident_db.members import store as members
from incident_db.models import Incident, IncidentTag, Provenance
from incident_db.record import IncidentRecord, parse_record
from incident_db.store import (
    Source,
    When,
    content_sha256,
    incident_row,
    provenance_row,
    tag_rows,
    write,
)

LOAD_BATCH = 50_000
VIEWPORT_POINTS = 5_000
VOYAGE_CALLS = 6
#: seconds: (place page p95, map viewport p95, voyage brief p95)
TARGETS = {"place page": 0.300, "map viewport": 0.200, "voyage brief": 2.0}


@dataclass(frozen=True)
class Case:
    """One page to time: its path, and the hand-written SQL that fetches the same content."""

    name: str
    path: str
    baseline: Callable[[], object]
    #: what is wrong with the page's answer, or None (compared with the baseline's content)
    check: Callable[[bytes], str | None] = lambda _body: None


def shifted(record: dict[str, Any], days: int) -> dict[str, Any]:
    """``record`` moved ``days`` later, so that the generated 25 years end today."""
    local = dt.datetime.fromisoformat(record["occurred_local"]) + dt.timedelta(days=days)
    record["occurred_local"] = local.strftime("%Y-%m-%dT%H:%M")
    return record


def parsed(generator: Generator, days: int) -> Iterator[IncidentRecord]:
    """The generator's records, parsed as the ingest parses them, moved ``days`` later.

    Every generated record carries the same long narrative, and checking it
    character by character is most of the cost of parsing: it is checked
    once, with the first record, and put back on each record after.
    """
    first = shifted(generator.record(), days)
    narrative = parse_record(first).narrative
    yield parse_record(first)
    while True:
        record = shifted(generator.record(), days)
        del record["narrative"]
        yield replace(parse_record(record), narrative=narrative)


@contextmanager
def bulk(engine: Engine) -> Iterator[Connection]:
    """One connection for the whole load; on SQLite without a journal or fsync.

    A benchmark's own database is thrown away if the load fails, so it skips
    what makes a real database survive a crash; the pages are timed afterwards
    on ordinary connections.
    """
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA synchronous = OFF")
            connection.exec_driver_sql("PRAGMA journal_mode = OFF")
            connection.commit()
        try:
            yield connection
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA journal_mode = DELETE")
                connection.exec_driver_sql("PRAGMA synchronous = FULL")
                connection.commit()


def load(
    engine: Engine,
    count: int,
    today: dt.date,
    shape: Callable[[dict[str, Any], int], None] | None = None,
) -> None:
    """Write ``count`` generated incidents, with their tags and provenance rows.

    They go through ``store.write``, the column set the ingest writes, so the
    derived columns (``kind``) and the map's spatial index (the R*Tree's
    trigger, or the GiST index) are filled as they are for real incidents.
    ``shape(row, n)``, when given, changes the ``n``-th incident's row first
    (bench/incident_db.py spreads the TLP levels and version times).
    """
    days = (today - (START + dt.timedelta(days=DAYS))).days
    records = parsed(Generator(), days)
    signer = SigningKeyPair.generate().token.fingerprint  # the columns take a real one's length
    source = Source("reviewer-batch", "bench-incident-db-web", "0" * 64, signer)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with bulk(engine) as connection:
        for start in range(0, count, LOAD_BATCH):
            batch = [next(records) for _ in range(min(LOAD_BATCH, count - start))]
            incidents = [
                incident_row(r, When.of_record(r), origin="reviewer",
                             digest=content_sha256(r.to_json()),
                             signer_fingerprint=source.signer_fingerprint, added_at=now)
                for r in batch
            ]  # fmt: skip
            if shape is not None:
                for n, row in enumerate(incidents, start):
                    shape(row, n)
            tags = [tag for r in batch for tag in tag_rows(r)]
            provenance = [provenance_row(source, r.id, start + n + 1, now)
                          for n, r in enumerate(batch)]  # fmt: skip
            with connection.begin():  # COPY uses the driver's cursor: begun here, not by it
                write(connection, Incident, incidents)
                write(connection, IncidentTag, tags)
                write(connection, Provenance, provenance)
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()


def signed_in_cookie(engine: Engine) -> str:
    """A member's session cookie, made the way a sign-in makes it (no browser, no passkey)."""
    with Session(engine) as session:
        token = members.invite(session, "bench@example.org", "member", actor="cli")
        member = members.consume_invitation(session, token)
        cookie = members.start_session(session, member)
        session.commit()
    return cookie


def period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The pages' default period (24 months ending today), as the baselines select it."""
    from incident_db.brief import resolve_period

    since, until = resolve_period(None, None, today=today)
    return since, until


def busiest_places(
    engine: Engine, since: dt.date, until: dt.date, count: int
) -> list[tuple[str, str]]:
    """The ``count`` places with most incidents in the period: (place key, a name of it)."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT place_key, MIN(place) FROM incident WHERE merged_into IS NULL AND local_date "
            "BETWEEN :since AND :until GROUP BY place_key ORDER BY COUNT(*) DESC, place_key "
            "LIMIT :n"), {"since": since, "until": until, "n": count}).all()  # fmt: skip
    return [(r[0], r[1]) for r in rows]


def viewport(
    engine: Engine, since: dt.date, until: dt.date, points: int
) -> tuple[float, float, float, float]:
    """A box (west, south, east, north) over all latitudes holding ``points`` points."""
    with engine.connect() as connection:
        east = connection.execute(text(
            "SELECT longitude FROM incident WHERE merged_into IS NULL AND latitude IS NOT NULL "
            "AND local_date BETWEEN :since AND :until ORDER BY longitude LIMIT 1 OFFSET :n"),
            {"since": since, "until": until, "n": points - 1}).scalar()  # fmt: skip
    if east is None:
        raise SystemExit(f"incident_db_web: FAILED: fewer than {points:,} incidents to map")
    return (-180.0, -60.0, float(east), 60.0)


PLACE_SQL = "place_key = :key AND local_date BETWEEN :since AND :until"
LIST_SQL = (
    "SELECT id, local_date, local_time, incident_type, category, outcome, latitude, longitude, "
    "place, vessel_type, verification_status FROM incident WHERE merged_into IS NULL AND "
    "place_key = :key AND local_date BETWEEN :since AND :until "
    "ORDER BY local_date DESC, local_time DESC"
)
POINTS_SQL = (
    "SELECT id, latitude, longitude, kind, verification_status FROM incident "
    "WHERE merged_into IS NULL AND local_date BETWEEN :since AND :until "
    "AND latitude BETWEEN :south AND :north AND longitude BETWEEN :west AND :east"
)


def cases(engine: Engine, today: dt.date, points: int) -> list[Case]:
    """The three pages, each with its SQL baseline."""
    since, until = period(today)
    places = busiest_places(engine, since, until, VOYAGE_CALLS)
    keys = [key for key, _ in places]
    if len(keys) < VOYAGE_CALLS:
        raise SystemExit("incident_db_web: FAILED: fewer than 6 places hold incidents")
    west, south, east, north = viewport(engine, since, until, points)
    dates = {"since": since, "until": until}

    def place_sql(key: str = keys[0]) -> object:
        with engine.connect() as connection:
            counts = raw_counts(connection, PLACE_SQL, {"key": key, **dates})
            counts["list"] = connection.execute(text(LIST_SQL), {"key": key, **dates}).all()
        return counts

    def points_sql() -> object:
        box = {"west": west, "south": south, "east": east, "north": north, **dates}
        with engine.connect() as connection:
            rows = connection.execute(text(POINTS_SQL), box).all()
        return json.dumps([[r[0], r[1], r[2], r[3], r[4] == "confirmed"] for r in rows])

    def same_points(body: bytes) -> str | None:
        total = json.loads(body).get("total")
        expected = len(json.loads(str(points_sql())))
        return (
            None if total == expected else f"{total} points in the viewport, SQL finds {expected}"
        )

    def voyage_sql() -> object:
        return [place_sql(key) for key in keys]

    bbox = ",".join(f"{v:g}" for v in (west, south, east, north))
    calls = "\n".join(name for _, name in places)  # the form's textarea: one call a line
    return [
        Case("place page", f"/places/{quote(keys[0])}", place_sql),
        Case(
            "map viewport", f"/map/points.json?{urlencode({'bbox': bbox})}", points_sql, same_points
        ),
        Case("voyage brief", f"/voyage?{urlencode({'calls': calls})}", voyage_sql),
    ]


def p95(times: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def fetch(connection: http.client.HTTPConnection, path: str, cookie: str) -> tuple[int, bytes]:
    """GET ``path`` with the member's cookie; the status and the whole body."""
    connection.request("GET", path, headers={"Cookie": f"idb_session={cookie}"})
    response = connection.getresponse()
    return response.status, response.read()


def measure(
    server: Server, cookie: str, case: Case, requests: int, *, enforce: bool = True
) -> list[str]:
    """Time ``case`` and its baseline; print one line; return the failures (a missed
    target counts only when ``enforce``)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        status, body = fetch(connection, case.path, cookie)  # warm-up, and is the route there?
        if status != 200:
            server.alive()
            return [f"{case.name}: GET {case.path.split('?')[0]} answered {status}"
                    + (" (the route does not exist yet)" if status == 404 else "")]  # fmt: skip
        if (wrong := case.check(body)) is not None:
            return [f"{case.name}: {wrong}"]
        times, sizes = [], len(body)
        for _ in range(requests):
            start = time.perf_counter()
            status, body = fetch(connection, case.path, cookie)
            times.append(time.perf_counter() - start)
            if status != 200:
                return [f"{case.name}: GET {case.path} answered {status} during the run"]
    finally:
        connection.close()
    case.baseline()  # warm-up
    base = []
    for _ in range(requests):
        start = time.perf_counter()
        case.baseline()
        base.append(time.perf_counter() - start)
    target, seen = TARGETS[case.name], p95(times)
    print(f"  {case.name} ({sizes / 1e3:,.0f} kB): p50 {statistics.median(times) * 1e3:,.0f} ms, "
          f"p95 {seen * 1e3:,.0f} ms; SQL baseline p95 {p95(base) * 1e3:,.0f} ms; ratio "
          f"{seen / p95(base):.1f}; target p95 <= {target * 1e3:,.0f} ms"
          f"{'' if seen <= target else '  MISSED'}")  # fmt: skip
    # the targets are for the full size; the smoke size only proves the path works
    return (
        []
        if seen <= target or not enforce
        else [f"{case.name}: p95 {seen * 1e3:,.0f} ms > {target * 1e3:,.0f} ms"]
    )


@contextmanager
def served(url: str, folder: Path, kind: str) -> Iterator[Server]:
    """``incident-db serve`` over ``url`` on a free port (2 gunicorn workers)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    data = folder / f"{kind}-data"  # where serve keeps its secret key
    data.mkdir(mode=0o700)
    env |= {"INCIDENT_DB_URL": url, "INCIDENT_DB_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "incident_db", "serve", "--port", str(port),
               "--workers", "2"]  # fmt: skip
    with serve(command, port, folder / f"{kind}-serve.log", env) as server:
        yield server


def run_one(kind: str, url: str, folder: Path, args: argparse.Namespace) -> list[str]:
    """Load, serve and measure one database; return its failures."""
    today = dt.datetime.now(dt.UTC).date()
    engine = open_database(url)
    try:
        start = time.perf_counter()
        load(engine, args.incidents, today)
        print(f"  loaded {args.incidents:,} incidents in {time.perf_counter() - start:.0f} s")
        cookie = signed_in_cookie(engine)
        pages = cases(engine, today, args.points)
        failures = []
        with served(url, folder, kind) as server:
            for case in pages:
                failures += [
                    f"{kind}: {f}"
                    for f in measure(server, cookie, case, args.requests, enforce=not args.smoke)
                ]
        return failures
    finally:
        engine.dispose()


def main() -> None:
    """Run the benchmark; exit non-zero on any error, missing route or missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument(
        "--points", type=int, default=VIEWPORT_POINTS, help="points in the viewport"
    )
    parser.add_argument("--postgres", default="auto", help="auto, none, or a server URL")
    parser.add_argument("--smoke", action="store_true",
                        help="20,000 incidents (1,000 in the viewport), SQLite only, 6 requests "
                        "per page; errors fail, the targets apply at full size only")  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.incidents, args.requests, args.postgres, args.points = 20_000, 6, "none", 1_000
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-incident-db-web-") as name:
        folder = Path(name)
        for kind in ("sqlite", "postgresql"):
            with databases(kind, args.postgres, name) as urls:
                if urls is None:
                    continue
                print(f"{kind}:")
                failures += run_one(kind, urls[0], folder, args)
    if failures:
        raise SystemExit("incident_db_web: FAILED:\n  " + "\n  ".join(failures))
    print("incident_db_web: every target met")


if __name__ == "__main__":
    main()
