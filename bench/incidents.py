"""The incident database with a million synthetic incidents, on SQLite and PostgreSQL.

    python -m bench.incidents [--incidents 1000000] [--batch 50000] [--repeat 5]
                               [--postgres auto|none|URL]
    python -m bench.incidents --smoke     # 3,000 incidents in batches of 1,500

For each database: ingests signed reviewer batches (signature, parsing,
duplicate checks, writing, corroboration) and prints records per second,
next to a baseline measured in the same run: the same rows written raw
through the driver (executemany on SQLite, COPY on PostgreSQL) with no
checks at all. Then times a brief for the busiest anchorage and for a
30 nm circle around it, the figures (JSON) and the HTML page with its
charts, against hand-written SQL that computes the same counts; baseline
and brief runs alternate and the ratio (raw time / brief time; 1.0 means as
fast as raw SQL) is the median of the pairs. ``--postgres auto`` starts a
throw-away server from Debian's binaries, as the tests do, and fails if it
cannot; ``--postgres none`` leaves PostgreSQL out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import Engine, create_engine, text

from bench._incidents_data import Generator
from bench._incidents_sql import raw_counts
from bench.envelope import paired
from crypto.batch import read_batch, sign_batch
from crypto.keys import SigningKeyPair
from incident_db.brief import Selection, make_brief
from incident_db.db import open_database
from incident_db.ingest import _parse_all, ingest_batch
from incident_db.models import Incident, IncidentTag, Provenance
from incident_db.places import place_key
from incident_db.store import (
    Source,
    When,
    content_sha256,
    incident_row,
    provenance_row,
    tag_rows,
    write,
)

RADIUS_NM = 30.0


def make_batches(count: int, size: int, signer: SigningKeyPair) -> list[bytes]:
    """``count`` incidents as signed batches of ``size`` (made before any timing)."""
    generator = Generator()
    batches = []
    for start in range(0, count, size):
        records = [generator.record() for _ in range(min(size, count - start))]
        batches.append(sign_batch(records, signer, batch_id=secrets.token_hex(16),
                                  created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
    return batches


def raw_rows(data: bytes, signer: SigningKeyPair) -> tuple[list[Any], list[Any], list[Any]]:
    """The rows a batch becomes, built outside the timing, for the raw-insert baseline."""
    batch = read_batch(data, {signer.token})
    records = _parse_all(batch.records)
    now = dt.datetime(2026, 11, 21)
    source = Source("reviewer-batch", batch.batch_id, "0" * 64, signer.token.fingerprint)
    incidents = [
        incident_row(r, When.of_record(r), origin="reviewer", digest=content_sha256(r.to_json()),
                     signer_fingerprint=source.signer_fingerprint, added_at=now)
        for r in records
    ]  # fmt: skip
    tags = [tag for r in records for tag in tag_rows(r)]
    provenance = [provenance_row(source, r.id, line, now) for (line, _), r in
                  zip(batch.records, records, strict=True)]  # fmt: skip
    return incidents, tags, provenance


def bench_ingest(
    url: str, scratch_url: str, batches: list[bytes], signer: SigningKeyPair, total: int
) -> None:
    """Ingest every batch; compare the first two with raw inserts of the same rows."""
    engine = open_database(url)
    trusted = {signer.token}
    times = []
    for data in batches:
        start = time.perf_counter()
        ingest_batch(engine, data, trusted)
        times.append(time.perf_counter() - start)
    engine.dispose()
    sample = batches[:2]
    sampled = sum(times[: len(sample)])
    scratch = open_database(scratch_url)
    raw = 0.0
    count = 0
    for data in sample:
        incidents, tags, provenance = raw_rows(data, signer)
        count += len(incidents)
        start = time.perf_counter()
        with scratch.begin() as connection:
            write(connection, Incident, incidents)
            write(connection, IncidentTag, tags)
            write(connection, Provenance, provenance)
        raw += time.perf_counter() - start
    scratch.dispose()
    print(f"  ingest: {total:,} records in {sum(times):.0f} s: {total / sum(times):,.0f} records/s "
          f"(target 20,000); first and last batch {len(batches[0]) / 1e6:.0f} MB each: "
          f"{times[0]:.1f} s, {times[-1]:.1f} s")  # fmt: skip
    print(f"  raw driver inserts of the first {count:,} rows' data: {count / raw:,.0f} records/s; "
          f"ingest of the same batches {count / sampled:,.0f} records/s; ratio "
          f"{raw / sampled:.2f}")  # fmt: skip


def busiest_place(engine: Engine) -> tuple[str, float, float]:
    """The place key with most incidents, and the average position of its incidents."""
    with engine.connect() as connection:
        key, lat, lon = connection.execute(text(
            "SELECT place_key, AVG(latitude), AVG(longitude) FROM incident "
            "GROUP BY place_key ORDER BY COUNT(*) DESC LIMIT 1")).one()  # fmt: skip
    return key, lat, lon


def bench_briefs(url: str, repeat: int) -> None:
    """Time place and circle briefs against raw SQL computing the same counts."""
    from incident_db.brief.html import render_html

    engine = open_database(url)
    key, lat, lon = busiest_place(engine)
    cases = {
        "place": (Selection(place=key), "place_key = :key", {"key": key}),
        f"{RADIUS_NM:g} nm circle": (
            Selection(near=(lat, lon), radius_nm=RADIUS_NM), "circle",
            {"lat": lat, "lon": lon, "radius": RADIUS_NM, "band": RADIUS_NM / 60 * 1.001},
        ),
    }  # fmt: skip
    start = time.perf_counter()
    with engine.connect() as connection:
        figures = make_brief(connection, cases["place"][0])
    render_html(figures)  # the first page pays for importing matplotlib
    cold = time.perf_counter() - start
    for name, (selection, where, params) in cases.items():
        with engine.connect() as connection:

            def raw(where: str = where, params: dict[str, Any] = params) -> object:
                return raw_counts(connection, where, params)

            def figures_only(selection: Selection = selection) -> object:
                return make_brief(connection, selection)

            def page(selection: Selection = selection) -> object:
                return render_html(make_brief(connection, selection))

            counted = make_brief(connection, selection)["incidents"]
            assert raw()["incidents"] == counted, "the baseline counts other rows"  # type: ignore[index]
            base, taken, ratio = paired(repeat, raw, figures_only)
            _, page_time, page_ratio = paired(repeat, raw, page)
        print(f"  brief, {name} ({counted:,} incidents): figures {taken:.3f} s, HTML page "
              f"{page_time:.3f} s; raw SQL for the same counts {base:.3f} s; ratio "
              f"{ratio:.2f} (figures), {page_ratio:.2f} (page)")  # fmt: skip
    print(f"  first HTML brief of the process (imports matplotlib): {cold:.2f} s")
    engine.dispose()


@contextlib.contextmanager
def databases(kind: str, postgres: str, folder: str) -> Iterator[tuple[str, str] | None]:
    """The (database, scratch database) URLs for one kind, or None to skip it."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/incidents.sqlite3", f"sqlite:///{folder}/scratch.sqlite3"
        return
    if postgres == "none":
        yield None
        return
    if postgres != "auto":
        yield _fresh(postgres, "bench_incidents"), _fresh(postgres, "bench_scratch")
        return
    from tests.postgres import postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except RuntimeError as error:  # asked for and missing is a failure; --postgres none skips
        raise SystemExit(f"incidents: FAILED: no PostgreSQL server ({error})") from None
    try:
        yield _fresh(url, "bench_incidents"), _fresh(url, "bench_scratch")
    finally:
        server.__exit__(None, None, None)


def _fresh(server: str, name: str) -> str:
    """Create an empty database ``name`` on ``server`` (dropping an old one)."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def timed(what: str, action: Callable[[], Any]) -> Any:
    """Run ``action``, print how long it took, return its result."""
    start = time.perf_counter()
    result = action()
    print(f"{what}: {time.perf_counter() - start:.0f} s")
    return result


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default="auto", help="auto, none, or a server URL")
    parser.add_argument("--smoke", action="store_true",
                        help="3,000 incidents in batches of 1,500, 2 pairs")  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.incidents, args.batch, args.repeat = 3_000, 1_500, 2
    signer = SigningKeyPair.generate()
    batches = timed(f"made {args.incidents:,} synthetic incidents in signed batches",
                    lambda: make_batches(args.incidents, args.batch, signer))  # fmt: skip
    print(f"busiest anchorage key: {place_key(Generator().place_name(0))!r}")
    with tempfile.TemporaryDirectory(prefix="bench-incident-db-") as folder:
        for kind in ("sqlite", "postgresql"):
            with databases(kind, args.postgres, folder) as urls:
                if urls is None:
                    continue
                print(f"{kind}:")
                bench_ingest(urls[0], urls[1], batches, signer, args.incidents)
                bench_briefs(urls[0], args.repeat)
            if kind == "sqlite":
                size = os.path.getsize(f"{folder}/incidents.sqlite3") / 1e9
                print(f"  database file: {size:.1f} GB")


if __name__ == "__main__":
    main()
