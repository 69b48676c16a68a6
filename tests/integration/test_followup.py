"""The reporter's inbox at /followup, through the app factory, on SQLite and PostgreSQL.

A report is sent without JavaScript (so the test learns its receipt from the
page), a reviewer's reply is stored as an import would store it, and the
reporter comes back both ways: the browser's JSON API and the no-JavaScript
pages. Then what a seized database and blob directory show.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crypto import _base64url as base64url
from crypto.envelope import open_bytes, seal_bytes
from crypto.receipt import Receipt, derive
from portal.storage import receipts
from portal.storage.models import Reply, Submission
from tests.conftest import DemoPortal
from tests.integration.portal_server import send_plain
from tests.integration.test_intake import (
    csrf_token,
    database_text,
    files_containing,
    proof,
    stored_state,
)

REPLY_CANARY = "CANARY-5d21-REPLY which berth were you at?"
ANSWER_CANARY = "CANARY-5d21-ANSWER berth 7, outer anchorage"


def send_report(client: FlaskClient) -> Receipt:
    """A no-JavaScript report; the receipt as the page shows it."""
    page = send_plain(client, {"category": "other", "narrative": "a skiff came"})
    assert page.status_code == 200, page.data
    shown = re.search(r'id="receipt">([0-9 ]+)<', page.data.decode())
    assert shown is not None
    return Receipt.parse(shown.group(1))


def add_reply(app: Flask, receipt: Receipt, text: str, status: str | None = None) -> None:
    """Store a reviewer's reply sealed to the reporter, as `portal import-replies` does."""
    portal = app.extensions["portal"]
    document = {"schema": "cso-reply/v1", "message": text, "written_on": "2026-11-21"}
    envelope = seal_bytes(json.dumps(document).encode(), [derive(receipt).reporter.public])
    with portal["blobs"].writer() as pending:
        pending.write(envelope)
    with portal["sessions"].begin() as session:
        report = session.scalars(
            select(Submission).where(Submission.receipt_locator == receipt.locator)
        ).one()
        session.add(
            Reply(reply_id=f"{len(text):032x}", submission_id=report.id, status=status,
                  blob=pending.name, size=len(envelope), received_on=datetime.now(UTC).date())
        )  # fmt: skip
        if status:
            report.status = status


def browser_fields(client: FlaskClient, receipt: Receipt) -> dict[str, str]:
    """What the follow-up page's script sends in place of the receipt."""
    return {
        "csrf_token": csrf_token(client),
        "receipt_locator": receipt.locator,
        "receipt_token": derive(receipt).lookup_token.hex(),
    }


def other_receipt(receipt: Receipt, same_locator: bool) -> Receipt:
    """A receipt that matches no report: in the same bucket, or in an empty one."""
    digits = receipt.digits
    if same_locator:
        return Receipt(digits[:4] + ("1" if digits[4] != "1" else "2") + digits[5:])
    locator = f"{(int(digits[:4]) + 5000) % 10000:04d}"
    return Receipt(locator + digits[4:])


def test_the_browser_reads_replies_it_alone_can_open(app: Flask, client: FlaskClient) -> None:
    receipt = send_report(client)
    add_reply(app, receipt, REPLY_CANARY, status="under-review")
    response = client.post("/followup/lookup", data=browser_fields(client, receipt))
    assert response.status_code == 200, response.data
    answer = response.get_json()
    assert answer["found"] is True
    assert answer["status"] == "under-review"
    assert answer["sent_on"] == []
    [reply] = answer["replies"]
    assert REPLY_CANARY.encode() not in response.data  # sealed: the server cannot read it
    envelope = base64url.decode(reply["envelope"])
    assert envelope is not None
    opened = json.loads(open_bytes(envelope, derive(receipt).reporter))
    assert opened["message"] == REPLY_CANARY


def test_without_javascript_the_server_opens_replies_for_this_page_only(
    app: Flask, client: FlaskClient
) -> None:
    receipt = send_report(client)
    page = client.post(
        "/followup", data={"csrf_token": csrf_token(client), "receipt": str(receipt)}
    )
    assert page.status_code == 200
    assert "No message yet" in page.data.decode()
    add_reply(app, receipt, REPLY_CANARY + " <b>bold?</b>", status="closed")
    typed = "-".join(str(receipt).split())  # dashes instead of spaces are fine too
    page = client.post("/followup", data={"csrf_token": csrf_token(client), "receipt": typed})
    text = page.data.decode()
    assert page.status_code == 200
    assert REPLY_CANARY + " &lt;b&gt;bold?&lt;/b&gt;" in text  # escaped, never markup
    assert 'id="report-status">closed<' in text
    assert page.headers["Cache-Control"] == "no-store"
    assert str(receipt) not in text  # never echoed back
    assert receipt.digits not in text


@pytest.mark.parametrize("same_locator", [True, False], ids=["wrong", "unknown"])
def test_a_wrong_receipt_and_an_unknown_one_get_the_same_answer(
    app: Flask, client: FlaskClient, same_locator: bool
) -> None:
    receipt = send_report(client)
    guess = other_receipt(receipt, same_locator)
    js = client.post("/followup/lookup", data=browser_fields(client, guess))
    assert js.status_code == 404
    assert js.get_json() == {
        "found": False,
        "error": "No report matches this receipt. Check the 24 digits and try again; "
        "a receipt is never stored, so nobody can look it up for you.",
    }
    page = client.post("/followup", data={"csrf_token": csrf_token(client), "receipt": str(guess)})
    assert page.status_code == 404
    assert "No report matches this receipt" in page.data.decode()


def test_wrong_and_unknown_receipts_cost_the_same_work_and_time(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt = send_report(client)
    checks: list[int] = []
    real_index = receipts.receipt_index

    def counted(locator: str, token: bytes) -> str:
        checks[-1] += 1
        return real_index(locator, token)

    monkeypatch.setattr("portal.web.followup.receipt_index", counted)
    monkeypatch.setattr("portal.web.followup.verify_lookup_token", None)  # no report predates 0005

    def ask(guess: Receipt) -> float:
        fields = browser_fields(client, guess)
        checks.append(0)
        start = time.perf_counter()
        response = client.post("/followup/lookup", data=fields)
        taken = time.perf_counter() - start
        assert response.status_code == 404
        return taken

    wrong = [ask(other_receipt(receipt, same_locator=True)) for _ in range(5)]
    unknown = [ask(other_receipt(receipt, same_locator=False)) for _ in range(5)]
    assert set(checks) == {1}  # one argon2id each: the receipt index
    ratio = statistics.median(wrong) / statistics.median(unknown)
    assert 0.5 < ratio < 2.0, (wrong, unknown)


def test_messages_are_sealed_for_the_reviewers_both_ways(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    started = time.time() - 1
    receipt = send_report(client)
    fields = browser_fields(client, receipt)
    page = client.post(
        "/followup/send-plain",
        data={**fields, "message": ANSWER_CANARY,
              "attachments": [(io.BytesIO(b"%PDF-1.4 notes"), "notes.pdf", "application/pdf")]},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert page.status_code == 200, page.data
    assert "Your message was sent" in page.data.decode()
    recipients = [demo.identity(0).public, demo.identity(1).public]
    document = {"schema": "cso-followup/v1", "encrypted_by": "browser",
                "message": "from the browser", "attachments": []}  # fmt: skip
    sealed = seal_bytes(json.dumps(document).encode(), recipients)
    response = client.post(
        "/followup/send",
        data={**browser_fields(client, receipt), "proof": proof(client, "followup"),
              "message": (io.BytesIO(sealed), "message")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 200, response.data
    assert response.get_json() == {"stored": True, "parts": 1}

    portal = app.extensions["portal"]
    with portal["sessions"]() as session:
        report = session.scalars(select(Submission).where(Submission.thread_id.is_(None))).one()
        messages = session.scalars(
            select(Submission).where(Submission.thread_id == report.id).order_by(Submission.id)
        ).all()
        parts = {m.id: [p.blob for p in m.parts] for m in messages}
        assert {(m.receipt_locator, m.receipt_hash) for m in messages} == {("", "")}
    opened = []
    for blobs in parts.values():
        first = open_bytes(portal["blobs"].path(blobs[0]).read_bytes(), demo.identity(1))
        opened.append(json.loads(first))
    plain = next(d for d in opened if d["encrypted_by"] == "server")
    assert plain["message"] == ANSWER_CANARY
    assert [a["name"] for a in plain["attachments"]] == ["notes.pdf"]
    assert any(d["message"] == "from the browser" for d in opened)
    assert files_containing(b"CANARY-5d21", [demo.data_dir, Path("/tmp")], started) == []

    lookup = client.post("/followup/lookup", data=browser_fields(client, receipt)).get_json()
    assert len(lookup["sent_on"]) == 2


def test_sending_needs_the_right_receipt_and_fresh_work(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    receipt = send_report(client)
    before = stored_state(app, demo)
    sealed = seal_bytes(b"{}", [demo.identity(0).public, demo.identity(1).public])

    def send(fields: dict[str, str], proof_text: str) -> int:
        data = {**fields, "proof": proof_text, "message": (io.BytesIO(sealed), "message")}
        return client.post(
            "/followup/send", data=data, content_type="multipart/form-data"
        ).status_code

    wrong = browser_fields(client, other_receipt(receipt, same_locator=True))
    assert send(wrong, proof(client, "followup")) == 404
    assert send(browser_fields(client, receipt), "") == 400
    assert send(browser_fields(client, receipt), proof(client, "submit")) == 400
    spent = proof(client, "followup")
    assert send(browser_fields(client, receipt), spent) == 200
    assert send(browser_fields(client, receipt), spent) == 400  # a replay
    _, _, blobs = stored_state(app, demo)
    assert len(blobs) == len(before[2]) + 1


def test_plain_messages_are_refused_with_a_reason(app: Flask, client: FlaskClient) -> None:
    receipt = send_report(client)
    for message, expected in (("   ", "empty"), ("x" * 20_001, "at most 20,000")):
        page = client.post(
            "/followup/send-plain",
            data={**browser_fields(client, receipt), "message": message},
            content_type="multipart/form-data",
        )
        assert page.status_code == 400
        assert expected in page.data.decode()
    bad = client.post(
        "/followup",
        data={"csrf_token": csrf_token(client), "receipt": "1234 5678"},
    )
    assert bad.status_code == 400
    assert "24 digits" in bad.data.decode()


def test_receipt_lookups_draw_on_a_global_budget(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(PORTAL_LOOKUPS_PER_HOUR="2")  # a burst of at most one
    client = app.test_client()
    receipt = send_report(client)
    assert client.post("/followup/lookup", data=browser_fields(client, receipt)).status_code == 200
    busy = client.post("/followup/lookup", data=browser_fields(client, receipt))
    assert busy.status_code == 429
    assert "Too many receipts" in busy.get_json()["error"]
    derived: list[Receipt] = []

    def counted(typed: Receipt) -> object:
        derived.append(typed)
        return derive(typed)

    monkeypatch.setattr("portal.web.followup.derive", counted)
    page = client.post(
        "/followup", data={"csrf_token": csrf_token(client), "receipt": str(receipt)}
    )
    assert page.status_code == 429
    assert derived == []  # refused before the server spends PBKDF2 on it


def test_a_seized_database_and_blob_directory_hold_no_receipt_and_no_message(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    receipt = send_report(client)
    add_reply(app, receipt, REPLY_CANARY)
    client.post(
        "/followup/send-plain",
        data={**browser_fields(client, receipt), "message": ANSWER_CANARY},
        content_type="multipart/form-data",
    )
    keys = derive(receipt)
    secrets_ = [receipt.digits.encode(), str(receipt).encode(), keys.lookup_token.hex().encode(),
                keys.lookup_token, str(keys.reporter.token).encode(), b"CANARY-5d21"]  # fmt: skip
    rows = database_text(app).encode()
    database_files = list(demo.data_dir.glob("*.sqlite3*"))
    for secret in secrets_:
        assert secret not in rows
        for path in [*database_files, *(demo.data_dir / "blobs").iterdir()]:
            assert secret not in path.read_bytes(), path
    # What is there: the public locator, and argon2id of the token at a real cost.
    with app.extensions["portal"]["sessions"]() as session:
        report = session.scalars(select(Submission).where(Submission.thread_id.is_(None))).one()
    assert report.receipt_locator == receipt.locator
    assert report.receipt_hash == ""
    # Testing a guess against it means PBKDF2 (600,000 rounds) and then argon2id.
    assert report.receipt_index == receipts.receipt_index(receipt.locator, keys.lookup_token)
    guess = other_receipt(receipt, same_locator=True)
    assert report.receipt_index != receipts.receipt_index(guess.locator, derive(guess).lookup_token)
    quick = derive(receipt, iterations=1).lookup_token  # a cheaper KDF does not get in
    assert report.receipt_index != receipts.receipt_index(receipt.locator, quick)
    assert report.receipt_index != hashlib.sha256(keys.lookup_token).hexdigest()


def test_a_report_filed_before_the_receipt_index_is_found_and_then_indexed(
    app: Flask, client: FlaskClient
) -> None:
    """A report from before migration 0005 has a per-report hash and no index."""
    receipt = send_report(client)
    token = derive(receipt).lookup_token
    with app.extensions["portal"]["sessions"].begin() as session:
        report = session.scalars(select(Submission)).one()
        report.receipt_index = None
        hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)  # the portal's
        report.receipt_hash = hasher.hash(token)
    wrong = browser_fields(client, other_receipt(receipt, same_locator=True))
    assert client.post("/followup/lookup", data=wrong).status_code == 404
    found = client.post("/followup/lookup", data=browser_fields(client, receipt))
    assert found.status_code == 200
    with app.extensions["portal"]["sessions"]() as session:
        report = session.scalars(select(Submission)).one()
    assert report.receipt_index == receipts.receipt_index(receipt.locator, token)
    assert report.receipt_hash == ""  # found once, it is looked up like any new report
    assert client.post("/followup/lookup", data=browser_fields(client, receipt)).status_code == 200
