"""The reviewer sync API: challenge login, throttling, sessions, bundles, and its OpenAPI."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from crypto.bundle import BundleWriter, open_bundle
from crypto.envelope import seal_bytes
from crypto.keys import EncryptionKeyPair, SigningKeyPair
from portal.storage.inbox import SyncError, import_replies, load_signing_key
from portal.storage.models import ReviewerAccount, SyncChallenge, SyncSession
from portal.web.sync import login_message
from tests.conftest import ROOT, SIGNING_KEY, SYNC_KEY, DemoPortal, b64

OPENAPI = ROOT / "portal" / "web" / "sync-openapi.json"


def login(client: FlaskClient, key: SigningKeyPair = SYNC_KEY, label: str = "alice") -> Any:
    challenge = client.post("/reviewer-sync/v1/login/challenge", json={"account": label})
    value = challenge.get_json()["challenge"]
    signature = key.sign(login_message(label, bytes.fromhex(value)))
    return client.post(
        "/reviewer-sync/v1/login",
        json={"account": label, "challenge": value, "signature": b64(signature)},
    )


def bearer(client: FlaskClient) -> dict[str, str]:
    response = login(client)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_login_with_the_sync_key(sync_app: Flask) -> None:
    client = sync_app.test_client()
    response = login(client)
    assert response.status_code == 200
    assert response.get_json()["expires_in"] == 600
    with sync_app.extensions["portal"]["sessions"]() as session:
        stored = session.scalars(select(SyncSession)).one()
    token = response.get_json()["token"]
    assert token not in stored.token_hash  # only a hash of the token is kept


def test_wrong_key_unknown_account_and_replayed_challenge_get_one_answer(sync_app: Flask) -> None:
    client = sync_app.test_client()
    wrong = login(client, key=SigningKeyPair.generate())
    unknown = login(client, label="mallory")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == {"error": "login refused"}
    value = client.post("/reviewer-sync/v1/login/challenge", json={"account": "alice"})
    challenge = value.get_json()["challenge"]
    body = {
        "account": "alice",
        "challenge": challenge,
        "signature": b64(SYNC_KEY.sign(login_message("alice", bytes.fromhex(challenge)))),
    }
    assert client.post("/reviewer-sync/v1/login", json=body).status_code == 200
    assert client.post("/reviewer-sync/v1/login", json=body).status_code == 401  # used up


def test_challenge_for_another_account_does_not_log_in(sync_app: Flask) -> None:
    client = sync_app.test_client()
    challenge = client.post("/reviewer-sync/v1/login/challenge", json={"account": "bob"})
    value = challenge.get_json()["challenge"]
    signature = b64(SYNC_KEY.sign(login_message("alice", bytes.fromhex(value))))
    response = client.post(
        "/reviewer-sync/v1/login",
        json={"account": "alice", "challenge": value, "signature": signature},
    )
    assert response.status_code == 401


def test_failed_logins_are_counted_but_lock_nobody_out(sync_app: Flask) -> None:
    client = sync_app.test_client()
    for _ in range(8):
        assert login(client, key=SigningKeyPair.generate()).status_code == 401
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(ReviewerAccount.failures)).one() == 8
    assert login(client).status_code == 200  # whoever knows the label cannot keep alice out
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(ReviewerAccount.failures)).one() == 0


def test_challenges_store_nothing_until_used_and_then_only_a_day(sync_app: Flask) -> None:
    client = sync_app.test_client()
    spec = json.loads(OPENAPI.read_text())
    documented = spec["paths"]["/login/challenge"]["post"]["responses"]["200"]["content"]
    pattern = documented["application/json"]["schema"]["properties"]["challenge"]["pattern"]
    for label in ("alice", "bob", "x" * 64):
        answer = client.post("/reviewer-sync/v1/login/challenge", json={"account": label})
        assert answer.status_code == 200
        assert re.fullmatch(pattern, answer.get_json()["challenge"])
        assert answer.get_json()["expires_in"] == 60
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(SyncChallenge)).all() == []
    assert login(client).status_code == 200
    with sync_app.extensions["portal"]["sessions"]() as session:
        spent = session.scalars(select(SyncChallenge)).one()
    assert spent.expires_at.time() == time.min  # midnight: a day, not a time of day
    assert spent.expires_at > datetime.now(UTC).replace(tzinfo=None)


def test_a_failed_login_stores_nothing_and_leaves_its_challenge_to_log_in_once(
    sync_app: Flask,
) -> None:
    client = sync_app.test_client()
    value = client.post("/reviewer-sync/v1/login/challenge", json={"account": "alice"})
    challenge = value.get_json()["challenge"]
    bad = {"account": "alice", "challenge": challenge, "signature": b64(b"x" * 64)}
    assert client.post("/reviewer-sync/v1/login", json=bad).status_code == 401
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(SyncChallenge)).all() == []
    good = dict(bad, signature=b64(SYNC_KEY.sign(login_message("alice", bytes.fromhex(challenge)))))
    assert client.post("/reviewer-sync/v1/login", json=good).status_code == 200
    assert client.post("/reviewer-sync/v1/login", json=good).status_code == 401


def test_large_json_bodies_are_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    body = {"account": "alice", "padding": "x" * 10_000}
    response = client.post("/reviewer-sync/v1/login/challenge", json=body)
    assert response.status_code == 413


def test_expired_and_missing_sessions_are_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    assert client.get("/reviewer-sync/v1/inbox").status_code == 401
    headers = bearer(client)
    with sync_app.extensions["portal"]["sessions"].begin() as session:
        session.execute(
            update(SyncSession).values(expires_at=datetime.now(UTC).replace(tzinfo=None))
        )
    response = client.get("/reviewer-sync/v1/inbox", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]


def test_logout_ends_the_session(sync_app: Flask) -> None:
    client = sync_app.test_client()
    headers = bearer(client)
    assert client.post("/reviewer-sync/v1/logout", headers=headers).status_code == 200
    assert client.get("/reviewer-sync/v1/inbox", headers=headers).status_code == 401


def test_empty_inbox_is_a_valid_signed_bundle(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    client = sync_app.test_client()
    with client.get("/reviewer-sync/v1/inbox", headers=bearer(client)) as response:
        assert response.status_code == 200
        assert response.headers["X-Cursor-From"] == response.headers["X-Cursor-To"] == "0"
        (tmp_path / "inbox").write_bytes(response.data)
    bundle = open_bundle(tmp_path / "inbox", {load_signing_key(demo.data_dir).token})
    assert bundle.items == ()
    assert bundle.kind == "inbox"


@pytest.mark.parametrize(
    ("query", "status"),
    [("?since=abc", 400), ("?since=-1", 400), ("?since=0", 200),
     ("?since=2147483647", 200), ("?since=2147483648", 400), ("?since=" + "9" * 5000, 400)],
)  # fmt: skip
def test_inbox_cursor_is_checked(sync_app: Flask, query: str, status: int) -> None:
    client = sync_app.test_client()
    with client.get(f"/reviewer-sync/v1/inbox{query}", headers=bearer(client)) as response:
        assert response.status_code == status


def test_ack_beyond_the_newest_submission_is_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    headers = bearer(client)
    response = client.post("/reviewer-sync/v1/inbox/ack", json={"cursor": 5}, headers=headers)
    assert response.status_code == 409  # well formed, but ahead of the portal's inbox
    for bad in (True, -1, 2**31, 10**20, "1", 0.5, 1e300):
        answer = client.post("/reviewer-sync/v1/inbox/ack", json={"cursor": bad}, headers=headers)
        assert answer.status_code == 400
    for good in (0, 0.0):  # JSON Schema's "integer" takes 0.0 too
        answer = client.post("/reviewer-sync/v1/inbox/ack", json={"cursor": good}, headers=headers)
        assert answer.status_code == 200


@pytest.mark.parametrize(
    "account",
    ["\ud800", "a\ud800b", "a\x00b", "", "x" * 65, " alice", "alice\n", "ålice", 5, None],
)
@pytest.mark.parametrize("path", ["/login/challenge", "/login"])
def test_an_account_that_is_not_a_label_is_refused_before_the_database(
    sync_app: Flask, path: str, account: Any
) -> None:
    """NUL and lone surrogates once gave 500s (PostgreSQL refuses NUL; UTF-8 cannot encode
    a surrogate): any account that enrolment could not have made is a 400, and stores nothing."""
    client = sync_app.test_client()
    body = {"account": account, "challenge": "0" * 112, "signature": b64(b"x" * 64)}
    response = client.post(f"/reviewer-sync/v1{path}", json=body)
    assert response.status_code == 400
    assert "letters, digits" in response.get_json()["error"]
    with sync_app.extensions["portal"]["sessions"]() as session:
        assert session.scalars(select(SyncChallenge)).all() == []
        assert session.scalars(select(ReviewerAccount.failures)).one() == 0
    assert login(client).status_code == 200  # and the database is still fine


def test_a_method_the_api_does_not_take_is_405_with_allow(sync_app: Flask) -> None:
    response = sync_app.test_client().delete("/reviewer-sync/v1/inbox")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert response.get_json() == {"error": "That is not how this page is used."}


def _bundle_with_payload(signer: SigningKeyPair, payload: dict[str, Any]) -> bytes:
    """A correctly signed bundle around any manifest payload (crypto/SPEC.md section 15)."""
    from crypto.bundle import END, MAGIC, SCHEMA, SIGNING_CONTEXT

    payload_bytes = json.dumps(payload, separators=(",", ":")).encode()
    manifest = json.dumps(
        {"schema": SCHEMA, "signer": str(signer.token), "payload": b64(payload_bytes),
         "signature": b64(signer.sign(SIGNING_CONTEXT + payload_bytes))},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    return MAGIC + manifest + len(manifest).to_bytes(8, "big") + END


@pytest.mark.parametrize(
    ("kind", "status"),
    [([], 400), ({}, 400), (None, 400), (1, 400), ("outbox", 400), ("replies", 200)],
)
def test_a_signed_replies_bundle_of_no_known_kind_is_refused(
    sync_app: Flask, kind: Any, status: int
) -> None:
    """A signed manifest whose kind is not a string once raised TypeError (a 500)."""
    client = sync_app.test_client()
    payload = {"schema": "cso-bundle-payload/v1", "kind": kind, "bundle_id": "1" * 32,
               "created_at": "2026-01-01T00:00:00Z", "items": [], "acknowledges": []}  # fmt: skip
    response = client.post(
        "/reviewer-sync/v1/replies",
        data=_bundle_with_payload(SIGNING_KEY, payload),
        headers=bearer(client),
    )
    assert response.status_code == status, response.get_json()
    if status == 400:
        assert "nothing was imported" in response.get_json()["error"]


def _replies_bundle(signer: SigningKeyPair, submission: str = "0" * 32) -> bytes:
    out = io.BytesIO()
    writer = BundleWriter(out, signer, "replies", {"acknowledges": []})
    envelope = seal_bytes(b'{"message": "hello"}', [EncryptionKeyPair.generate().public])
    writer.add({"type": "reply", "reply_id": "1" * 32, "submission": submission,
                "status": None}, envelope)  # fmt: skip
    writer.finish()
    return out.getvalue()


def test_replies_signed_by_someone_else_are_refused(sync_app: Flask) -> None:
    client = sync_app.test_client()
    response = client.post(
        "/reviewer-sync/v1/replies",
        data=_replies_bundle(SigningKeyPair.generate()),
        headers=bearer(client),
    )
    assert response.status_code == 400
    assert "nothing was imported" in response.get_json()["error"]


def test_replies_for_unknown_submissions_are_counted_not_stored(sync_app: Flask) -> None:
    client = sync_app.test_client()
    response = client.post(
        "/reviewer-sync/v1/replies", data=_replies_bundle(SIGNING_KEY), headers=bearer(client)
    )
    assert response.status_code == 200
    assert response.get_json()["unknown"] == 1
    assert response.get_json()["imported"] == 0


def test_truncated_replies_bundle_imports_nothing(sync_app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "replies"
    path.write_bytes(_replies_bundle(SIGNING_KEY)[:-20])
    portal = sync_app.extensions["portal"]
    with pytest.raises(SyncError, match="truncated"):
        import_replies(portal["sessions"], portal["blobs"], path)
    assert list(portal["blobs"].root.iterdir()) == []


def test_intake_does_not_serve_the_sync_api_unless_configured(
    make_app: Callable[..., Flask],
) -> None:
    separate, same = make_app(), make_app(PORTAL_SYNC="same")
    path = "/reviewer-sync/v1/login/challenge"
    assert separate.test_client().post(path, json={"account": "a"}).status_code == 404
    assert same.test_client().post(path, json={"account": "a"}).status_code == 200


def _flask_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule).removeprefix("/reviewer-sync/v1")


def test_openapi_describes_exactly_the_routes(sync_app: Flask) -> None:
    spec = json.loads(OPENAPI.read_text())
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (_flask_path(rule.rule), method)
        for rule in sync_app.url_map.iter_rules()
        if rule.endpoint.startswith("sync.")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert documented == served
    assert spec["servers"] == [{"url": "/reviewer-sync/v1"}]


def _stored_submissions(app: Flask, sizes: list[int]) -> None:
    """Submissions whose parts are blobs of the given sizes (the export never decrypts)."""
    from portal.storage.models import InboxEntry, Part, PartKind, Submission

    portal = app.extensions["portal"]
    with portal["sessions"].begin() as session:
        for size in sizes:
            with portal["blobs"].writer() as pending:
                pending.write(os.urandom(size))
            session.add(
                Submission(
                    id=os.urandom(16).hex(), received_on=datetime.now(UTC).date(),
                    receipt_locator="0000", receipt_hash="x", inbox=InboxEntry(),
                    parts=[Part(position=0, kind=PartKind.REPORT, blob=pending.name,
                                size=size, sha256=pending.sha256)],
                )
            )  # fmt: skip


def test_export_is_capped_in_bytes_and_carries_on(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    from portal.storage.inbox import export_inbox

    _stored_submissions(sync_app, [4000, 4000, 4000])
    portal = sync_app.extensions["portal"]
    signer = load_signing_key(demo.data_dir)
    with (tmp_path / "a").open("wb") as out:
        first = export_inbox(portal["sessions"], portal["blobs"], signer, out, 0, max_bytes=9000)
    with (tmp_path / "b").open("wb") as out:
        rest = export_inbox(portal["sessions"], portal["blobs"], signer, out, first.cursor_to)
    assert (first.submissions, first.cursor_to, rest.submissions, rest.cursor_to) == (2, 2, 1, 3)


def test_export_refuses_a_blob_changed_since_it_arrived(
    sync_app: Flask, demo: DemoPortal, tmp_path: Path
) -> None:
    """crypto/SPEC.md §15.4: what leaves is what arrived."""
    from portal.storage.inbox import export_inbox

    _stored_submissions(sync_app, [2000])
    portal = sync_app.extensions["portal"]
    (blob,) = list(portal["blobs"].root.iterdir())
    blob.write_bytes(os.urandom(2000))
    with (tmp_path / "a").open("wb") as out, pytest.raises(SyncError, match="changed"):
        export_inbox(portal["sessions"], portal["blobs"], load_signing_key(demo.data_dir), out, 0)


@pytest.mark.parametrize(
    ("ranges", "expected"), [([[1, 3]], 0), ([[0, 1], [1, 3]], 3), ([[0, 1], [2, 3]], 1)]
)
def test_acknowledgements_never_skip_a_bundle(
    sync_app: Flask, tmp_path: Path, ranges: list[list[int]], expected: int
) -> None:
    _stored_submissions(sync_app, [100, 100, 100])
    path = tmp_path / "replies"
    with path.open("wb") as out:
        BundleWriter(out, SIGNING_KEY, "replies", {"acknowledges": ranges}).finish()
    portal = sync_app.extensions["portal"]
    assert import_replies(portal["sessions"], portal["blobs"], path).acknowledged_cursor == expected
