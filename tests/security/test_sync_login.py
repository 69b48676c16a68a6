"""Attacks on the sync API's login (finding 9): crowding out, timing, replay, label swap.

Whoever can reach the sync API may know a reviewer's label. They must not be
able to keep that reviewer out by asking for challenges, learn whether a
label is enrolled from how long a refusal takes, or reuse a challenge.
"""

from __future__ import annotations

import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crypto.keys import SigningKeyPair
from portal.storage.models import Base, ReviewerAccount
from portal.web import sync as sync_module
from portal.web.sync import login_message
from tests.conftest import SYNC_KEY, b64

CHALLENGE = "/reviewer-sync/v1/login/challenge"
LOGIN = "/reviewer-sync/v1/login"


def _challenge(client: FlaskClient, label: str) -> str:
    response = client.post(CHALLENGE, json={"account": label})
    assert response.status_code == 200, response.get_json()
    value: str = response.get_json()["challenge"]
    return value


def _login(
    client: FlaskClient, label: str, value: str, key: SigningKeyPair = SYNC_KEY, signed_as: str = ""
) -> Any:
    signature = key.sign(login_message(signed_as or label, bytes.fromhex(value)))
    return client.post(
        LOGIN, json={"account": label, "challenge": value, "signature": b64(signature)}
    )


def test_flooding_challenge_requests_does_not_keep_the_reviewer_out(sync_app: Flask) -> None:
    client = sync_app.test_client()
    for i in range(2000):
        label = "alice" if i % 10 == 0 else f"guess-{secrets.token_hex(6)}"
        assert client.post(CHALLENGE, json={"account": label}).status_code == 200
    response = _login(client, "alice", _challenge(client, "alice"))
    assert response.status_code == 200, response.get_json()


def _failed_login_seconds(client: FlaskClient, label: str, wrong: SigningKeyPair) -> float:
    value = _challenge(client, label)
    started = time.perf_counter()
    response = _login(client, label, value, key=wrong)
    elapsed = time.perf_counter() - started
    assert response.status_code == 401
    return elapsed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_failed_logins_do_not_tell_enrolled_labels_from_unknown_ones(sync_app: Flask) -> None:
    client = sync_app.test_client()
    wrong = SigningKeyPair.generate()
    for _ in range(20):  # warm up caches and the database file on both paths
        _failed_login_seconds(client, "alice", wrong)
        _failed_login_seconds(client, "mallory", wrong)
    enrolled: list[float] = []
    unknown: list[float] = []
    for _ in range(200):  # alternate, so drift on a shared machine hits both alike
        enrolled.append(_failed_login_seconds(client, "alice", wrong))
        unknown.append(_failed_login_seconds(client, "mallory", wrong))
    ratio = statistics.median(enrolled) / statistics.median(unknown)
    assert 1 / 1.25 <= ratio <= 1.25, f"enrolled/unknown median time ratio {ratio:.2f}"


def test_replaying_a_challenge_that_logged_in_is_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    value = _challenge(client, "alice")
    assert _login(client, "alice", value).status_code == 200
    replay = _login(client, "alice", value)
    assert replay.status_code == 401
    assert replay.get_json() == {"error": "login refused"}


def test_a_challenge_that_failed_to_log_in_still_logs_in_only_once(sync_app: Flask) -> None:
    client = sync_app.test_client()
    value = _challenge(client, "alice")
    assert _login(client, "alice", value, key=SigningKeyPair.generate()).status_code == 401
    assert _login(client, "alice", value).status_code == 200  # a failure spends nothing
    assert _login(client, "alice", value).status_code == 401


def _row_counts(app: Flask) -> dict[str, int]:
    with app.extensions["portal"]["sessions"]() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def test_failing_logins_by_the_hundred_leave_no_row_in_the_database(sync_app: Flask) -> None:
    client = sync_app.test_client()
    wrong = SigningKeyPair.generate()
    before = _row_counts(sync_app)
    for i in range(600):
        label = "alice" if i % 2 else f"guess-{secrets.token_hex(6)}"
        assert _login(client, label, _challenge(client, label), key=wrong).status_code == 401
    assert _row_counts(sync_app) == before
    with sync_app.extensions["portal"]["sessions"]() as session:  # still shown to the operator
        assert session.scalar(select(ReviewerAccount.failures)) == 300


def test_a_challenge_issued_for_one_label_does_not_log_in_as_another(sync_app: Flask) -> None:
    client = sync_app.test_client()
    value = _challenge(client, "bob")
    response = _login(client, "alice", value)  # alice's key, signed for alice
    assert response.status_code == 401
    assert _login(client, "alice", _challenge(client, "alice")).status_code == 200


def test_a_tampered_challenge_is_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    raw = bytearray(bytes.fromhex(_challenge(client, "alice")))
    for index in (0, len(raw) // 2, len(raw) - 1):
        changed = bytearray(raw)
        changed[index] ^= 1
        assert _login(client, "alice", changed.hex()).status_code == 401


def test_a_challenge_used_after_its_minute_is_refused(
    sync_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sync_app.test_client()
    value = _challenge(client, "alice")
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=61)
    monkeypatch.setattr(sync_module, "_now", lambda: later)  # the clock, not the code under test
    assert _login(client, "alice", value).status_code == 401
