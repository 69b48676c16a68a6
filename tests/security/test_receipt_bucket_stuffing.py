"""Issue 12, finding 3: stuffing one receipt bucket to make its lookups expensive.

The browser chooses the locator it files a report under. An attacker who
files hundreds of reports under one locator must not make a lookup in that
bucket cost more argon2id work than a lookup anywhere else: otherwise each
lookup grows with the bucket, the intake saturates, and the real reporters
in that bucket are locked out. Every route that finds a report by its
receipt is replayed; every argon2id computation the process runs during the
request is counted, whichever function asks for it.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import argon2.low_level
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from crypto.envelope import seal_bytes
from crypto.receipt import Receipt, ReceiptKeys, derive
from portal.storage import receipts
from portal.storage.models import InboxEntry, Submission
from tests.conftest import DemoPortal
from tests.integration.test_intake import csrf_token, proof

STUFFED = "0000"
EMPTY = "5000"
REPORTS = 200
ROUTES = ["/followup", "/followup/lookup", "/followup/send", "/followup/send-plain"]
_ARGON2_CALLS = frozenset({"argon2_hash", "argon2_verify", "argon2_ctx", "argon2_verify_ctx"})


class _CountingArgon2:
    """argon2-cffi's C bindings, unchanged, with every argon2 computation counted."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.real, name)
        if name not in _ARGON2_CALLS:
            return value

        def counted(*args: Any) -> Any:
            self.calls += 1
            return value(*args)

        return counted


@pytest.fixture
def argon2_work(monkeypatch: pytest.MonkeyPatch) -> _CountingArgon2:
    counter = _CountingArgon2(argon2.low_level.lib)
    monkeypatch.setattr(argon2.low_level, "lib", counter)
    return counter


@cache
def _keys(receipt: Receipt) -> ReceiptKeys:
    return derive(receipt)  # PBKDF2 is slow: derive each receipt of this file once


def _receipt(locator: str, tail: str) -> Receipt:
    return Receipt(locator + tail)


REAL = _receipt(STUFFED, "31415926535897932384")  # the honest reporter in the stuffed bucket
WRONG = _receipt(STUFFED, "27182818284590452353")  # a mistyped or guessed receipt there
UNKNOWN = _receipt(EMPTY, "27182818284590452353")  # the same digits in an empty bucket
ATTACKER = [_receipt(STUFFED, f"{n:020d}") for n in range(1, 5)]  # the attacker's own


def _envelope(demo: DemoPortal, data: bytes) -> io.BytesIO:
    return io.BytesIO(seal_bytes(data, [demo.identity(0).public, demo.identity(1).public]))


def _file_report(client: FlaskClient, demo: DemoPortal, receipt: Receipt) -> None:
    """File a report the way any browser (or script) can: through the real /submit."""
    token = _keys(receipt).lookup_token.hex()
    fields = {"receipt_locator": receipt.locator, "receipt_token": token}
    data = {"csrf_token": csrf_token(client), "proof": proof(client, "submit"), **fields,
            "report": (_envelope(demo, b'{"schema": "cso-report/v1"}'), "report")}  # fmt: skip
    response = client.post("/submit", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.data


def _stuff(app: Flask, client: FlaskClient, demo: DemoPortal) -> None:
    """200 reports under one locator, as 200 posts to /submit would leave them.

    The attacker files a few reports of their own through /submit, then each
    row is copied, column for column, under a fresh id: exactly what filing
    it again with the same receipt stores, without paying the hashing 200 times.
    """
    for receipt in ATTACKER:
        _file_report(client, demo, receipt)
    table = Submission.__table__
    with app.extensions["portal"]["sessions"].begin() as session:
        rows = session.execute(select(table).where(table.c.receipt_locator == STUFFED)).all()
        assert len(rows) == len(ATTACKER)
        for copy in range(REPORTS - len(ATTACKER)):
            values = dict(rows[copy % len(rows)]._mapping)
            values["id"] = secrets.token_hex(16)
            session.execute(insert(table).values(values))
            session.add(InboxEntry(submission_id=values["id"]))
    with app.extensions["portal"]["sessions"]() as session:
        stored = session.scalars(select(Submission).where(Submission.receipt_locator == STUFFED))
        assert len(stored.all()) == REPORTS


@dataclass(frozen=True)
class Answer:
    """What a lookup route answered, and the argon2id work it took."""

    status: int
    body: str
    checks: int


def _comparable(body: bytes) -> str:
    """A page with its CSRF token blanked: the token is fresh each second, not an answer."""
    return re.sub(r'name="csrf_token" value="[^"]*"', "", body.decode())


def _asker(
    route: str, client: FlaskClient, demo: DemoPortal, work: _CountingArgon2
) -> Callable[[Receipt], Answer]:
    """A function that looks ``receipt`` up through ``route`` and counts the work."""

    def ask(receipt: Receipt) -> Answer:
        keys = _keys(receipt)
        data: dict[str, Any] = {"csrf_token": csrf_token(client)}
        if route == "/followup":
            data["receipt"] = str(receipt)
        else:
            data["receipt_locator"] = receipt.locator
            data["receipt_token"] = keys.lookup_token.hex()
        if route == "/followup/send":
            data["proof"] = proof(client, "followup")
            data["message"] = (_envelope(demo, b'{"schema": "cso-followup/v1"}'), "message")
        if route == "/followup/send-plain":
            data["message"] = "is anyone reading this?"
        before = work.calls
        response = client.post(route, data=data, content_type="multipart/form-data")
        return Answer(response.status_code, _comparable(response.data), work.calls - before)

    return ask


@pytest.mark.parametrize("route", ROUTES)
def test_stuffing_a_bucket_does_not_raise_the_work_of_a_lookup_in_it(
    route: str,
    make_app: Callable[..., Flask],
    demo: DemoPortal,
    argon2_work: _CountingArgon2,
) -> None:
    app = make_app(PORTAL_LOOKUPS_PER_HOUR="100000")
    client = app.test_client()
    _stuff(app, client, demo)
    _file_report(client, demo, REAL)
    ask = _asker(route, client, demo, argon2_work)
    empty_bucket = ask(UNKNOWN)
    assert empty_bucket.status == 404
    wrong = ask(WRONG)
    assert wrong.checks == empty_bucket.checks, (wrong.checks, empty_bucket.checks)
    real = ask(REAL)
    assert real.status == 200
    assert real.checks == empty_bucket.checks
    for receipt in ATTACKER[:2]:  # 50 reports each under the very same receipt
        own = ask(receipt)
        assert own.status == 200
        assert own.checks == empty_bucket.checks


@pytest.mark.parametrize("route", ["/followup", "/followup/lookup"])
def test_a_wrong_receipt_in_a_stuffed_bucket_is_told_nothing_an_unknown_one_is_not(
    route: str,
    make_app: Callable[..., Flask],
    demo: DemoPortal,
    argon2_work: _CountingArgon2,
) -> None:
    app = make_app(PORTAL_LOOKUPS_PER_HOUR="100000")
    client = app.test_client()
    _stuff(app, client, demo)
    _file_report(client, demo, REAL)
    ask = _asker(route, client, demo, argon2_work)
    unknown, wrong = ask(UNKNOWN), ask(WRONG)
    assert unknown.status == wrong.status == 404
    assert unknown.body == wrong.body
    assert unknown.checks == wrong.checks


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_that_finds_a_report_draws_on_the_lookup_budget_first(
    route: str,
    make_app: Callable[..., Flask],
    demo: DemoPortal,
    argon2_work: _CountingArgon2,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(PORTAL_LOOKUPS_PER_HOUR="4")  # one lookup, then the bucket is empty
    client = app.test_client()
    _file_report(client, demo, REAL)
    ask = _asker(route, client, demo, argon2_work)
    assert ask(REAL).status == 200
    derived: list[object] = []
    monkeypatch.setattr("portal.web.followup.derive", lambda *a: derived.append(a) or derive(*a))
    refused = ask(REAL)
    assert refused.status == 429
    assert "Too many receipts" in refused.body
    assert refused.checks == 0  # refused before any argon2id
    assert derived == []  # and before any PBKDF2


def test_a_stored_hash_that_names_its_own_cost_is_never_computed(
    argon2_work: _CountingArgon2,
) -> None:
    """A report row from before 0005 whose hash names other argon2 parameters.

    argon2-cffi verifies with whatever memory and passes a hash names, so a
    planted row (a forged backup, a tampered database) could make each lookup
    under its locator cost gigabytes. Such a hash never matches and is never
    computed, not even for the token it was made from.
    """
    token = secrets.token_bytes(32)
    server = {"time_cost": receipts.TIME_COST, "memory_cost": receipts.MEMORY_KIB,
              "parallelism": receipts.PARALLELISM}  # fmt: skip
    foreign = [
        {**server, "time_cost": receipts.TIME_COST + 4},
        {**server, "memory_cost": receipts.MEMORY_KIB * 2},
        {**server, "parallelism": 2},
        {**server, "hash_len": 64},
        {**server, "salt_len": 8},
        {**server, "type": argon2.low_level.Type.I},
    ]
    for parameters in foreign:
        planted = PasswordHasher(**parameters).hash(token)
        before = argon2_work.calls
        assert not receipts.verify_lookup_token(planted, token), parameters
        assert argon2_work.calls == before, parameters
    genuine = PasswordHasher(**server).hash(token)
    assert receipts.verify_lookup_token(genuine, token)  # the server's own still match
