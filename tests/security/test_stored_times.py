"""Issue 12, finding 5 (the database): a seized portal dates nothing finer than a day.

An adversary who seizes the data directory (or the PostgreSQL database) and
also watched a ship's satellite link must not be able to match a stored
submission to the moment it was sent. After real traffic through the real
portal (reports with and without JavaScript, receipt lookups, a follow-up
message, proofs of work), every table and column of the main database is
walked: no value in it may be a time finer than a day. Blob files' own
times are tests/security/test_blob_times.py's concern.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, Float, Integer, MetaData, Numeric, Table, inspect, select

from crypto.envelope import seal_bytes
from crypto.receipt import Receipt
from tests.conftest import DemoPortal
from tests.integration.test_followup import browser_fields, send_report
from tests.integration.test_intake import csrf_token, proof

DAY = 86_400
NEAR = 2 * DAY  # a time within two days of the test is a time of the test's traffic
TIME_NAME = re.compile(r"(_at|_time|time_|expires|updated|created|stamp|last_)", re.I)
TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DIGITS = re.compile(r"\d{10,13}")


def _traffic(client: FlaskClient, demo: DemoPortal) -> None:
    """Reports both ways, lookups right and wrong, a follow-up message: each with its work."""
    recipients = [demo.identity(0).public, demo.identity(1).public]
    for _ in range(3):
        data = {
            "csrf_token": csrf_token(client),
            "proof": proof(client),
            "receipt_locator": "0042",
            "receipt_token": "cd" * 32,
            "report": (io.BytesIO(seal_bytes(b"{}", recipients)), "report"),
        }
        answer = client.post("/submit", data=data, content_type="multipart/form-data")
        assert answer.status_code == 200, answer.data
    receipts = [send_report(client) for _ in range(2)]
    for receipt in receipts:
        assert (
            client.post("/followup/lookup", data=browser_fields(client, receipt)).status_code == 200
        )
        page = client.post(
            "/followup", data={"csrf_token": csrf_token(client), "receipt": str(receipt)}
        )
        assert page.status_code == 200
    unknown = Receipt("9" * 24)
    assert client.post("/followup/lookup", data=browser_fields(client, unknown)).status_code == 404
    message = {
        **browser_fields(client, receipts[0]),
        "proof": proof(client, "followup"),
        "message": (io.BytesIO(seal_bytes(b"{}", recipients)), "message"),
    }
    answer = client.post("/followup/send", data=message, content_type="multipart/form-data")
    assert answer.status_code == 200, answer.data


def _numbers_in(value: Any) -> Iterable[int]:
    """Every number a value could hold a time in: itself, or digit runs in its text."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [int(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("latin-1")
    if isinstance(value, str):
        return [int(run) for run in DIGITS.findall(value)]
    return []


def _finding(now: float, where: str, value: Any) -> str | None:
    """Why ``value`` dates something finer than a day, or None."""
    if isinstance(value, datetime):
        return None if value.time() == time_of_day(0) else f"{where}: {value}"
    if isinstance(value, time_of_day):
        return f"{where}: a time of day {value}"
    if isinstance(value, date):
        return None
    if isinstance(value, str) and TIME_TEXT.search(value):
        return f"{where}: a time written as text"
    for number in _numbers_in(value):
        for scale in (1, 1000):  # seconds or milliseconds since the epoch
            if abs(number / scale - now) <= NEAR and (number / scale) % DAY:
                return f"{where}: {number} is a moment of the last two days"
    return None


def _time_findings(engine: Engine, now: float) -> list[str]:
    """Walk every table and column of the database; list what dates finer than a day."""
    findings: list[str] = []
    with engine.connect() as connection:
        for name in inspect(connection).get_table_names():
            table = Table(name, MetaData(), autoload_with=connection)
            rows = connection.execute(select(table)).all()
            for column in table.columns:
                where = f"{name}.{column.name}"
                values = [row._mapping[column.name] for row in rows]
                numeric = isinstance(column.type, Integer | Float | Numeric)
                if numeric and TIME_NAME.search(column.name):
                    if any(v is not None and v % DAY for v in values):
                        findings.append(f"{where}: a clock reading as a number")
                findings += [f for v in values if (f := _finding(now, where, v)) is not None]
    return findings


def _other_files(data_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Files in the data directory besides blob storage and the database: times and size.

    Blob storage (``blobs/`` and its helpers) is test_blob_times.py's; the
    database file's own times are a stated residual (SECURITY.md).
    """
    seen = {}
    for path in data_dir.rglob("*"):
        top = path.relative_to(data_dir).parts[0]
        if path.is_dir() or top.lstrip(".").startswith("blobs") or top.startswith("portal.sqlite3"):
            continue
        relative = path.relative_to(data_dir)
        info = path.stat()
        seen[str(relative)] = (info.st_mtime_ns, info.st_ctime_ns, info.st_size)
    return seen


def test_a_seized_database_dates_submissions_and_lookups_to_the_day_only(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(PORTAL_POW_BURST="2")  # past the burst, so load is counted too
    client = app.test_client()
    files_before = _other_files(demo.data_dir)

    _traffic(client, demo)

    findings = _time_findings(app.extensions["portal"]["engine"], time.time())
    assert findings == []
    # Nothing else in the data directory was written: anti-abuse state lives elsewhere.
    assert _other_files(demo.data_dir) == files_before
