"""The members' web service on SQLite and a real PostgreSQL, through Flask's test client.

Passkeys are made by a small software authenticator (``SoftAuthenticator``:
ES256, "none" attestation), so the server's real WebAuthn checks run; the
browser test (test_members_passkey_browser.py) does the same with Chromium's
virtual authenticator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from incident_db.db import open_database
from incident_db.errors import ConfigError
from incident_db.members import store
from incident_db.web.app import create_app
from incident_db.web.ceremony import sign_count_advances
from incident_db.web.config import WebConfig, load_web_config
from incident_db.web.sessions import COOKIE

ORIGIN = "http://localhost"
#: the views anyone may reach; every other one needs a member
PUBLIC = {
    "static",
    "auth.sign_in",
    "auth.sign_in_options",
    "auth.sign_in_verify",
    "auth.join",
    "auth.join_options",
    "auth.join_verify",
    "auth.recover_page",
    "auth.recover",
}
#: partners' platforms sign in with their own credential on every request (TAXII.md)
PARTNER_ONLY = {
    f"taxii.{name}"
    for name in ("discovery", "api_root", "collections", "collection", "objects", "one_object",
                 "versions", "manifest", "elsewhere")
}  # fmt: skip
HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """A passkey in software: ES256, "none" attestation, a counter we can rewind."""

    def __init__(self, rp_id: str = "localhost", origin: str = ORIGIN) -> None:
        self.rp_id, self.origin = rp_id, origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(16)
        self.counter = 0
        self.user_id = b""

    def _client_data(self, kind: str, challenge: str) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data).encode()

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + self.counter.to_bytes(4, "big") + attested

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """navigator.credentials.create(), answered as passkey.js sends it."""
        self.user_id = unb64(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
        auth_data = self._auth_data(0x45, attested + cose)  # user present, verified; attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(self._client_data("webauthn.create", options["challenge"])),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], counter: int | None = None) -> dict[str, Any]:
        """navigator.credentials.get(); the counter goes up by one unless given."""
        self.counter = self.counter + 1 if counter is None else counter
        auth_data = self._auth_data(0x05)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_id),
            },
            "clientExtensionResults": {},
        }


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


@pytest.fixture
def app(engine: Engine, database_url: str) -> Iterator[Flask]:
    config = WebConfig(
        database_url=database_url,
        secret_key=secrets.token_bytes(32),
        origin=ORIGIN,
        rp_id="localhost",
        testing=True,
    )
    made = create_app(config)
    yield made
    made.extensions["incident_db"]["engine"].dispose()


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """The token a page's <meta name="csrf-token"> carries for this client."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, page
    return found.group(1)


def invite(engine: Engine, handle: str, role: str, **options: Any) -> str:
    with Session(engine) as session:
        token = store.invite(session, handle, role, actor="cli", **options)
        session.commit()
    return token


def signed_in(app: Flask, engine: Engine, handle: str, role: str) -> FlaskClient:
    """A client with a session of a new member (made without a passkey, as a recovery would)."""
    token = invite(engine, handle, role)
    with Session(engine) as session:
        member = store.consume_invitation(session, token)
        cookie = store.start_session(session, member)
        session.commit()
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, domain="localhost")
    return client


def post_json(client: FlaskClient, path: str, body: Any, token: str) -> Any:
    return client.post(path, json=body, headers={"X-CSRFToken": token})


def audit_actions(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    with Session(engine) as session:
        return [(e.actor, e.action, e.details) for e in store.audit_events(session)]


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """Every (endpoint, method, path) of the service, with a made-up token in the URL."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "x" * 20, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def test_only_the_sign_in_pages_are_public(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    marked = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "public", False) or endpoint == "static"
    }
    assert marked == PUBLIC | PARTNER_ONLY
    for endpoint, method, path in routes(app):
        if endpoint in PUBLIC:
            continue
        if endpoint in PARTNER_ONLY:
            # no member session opens them: without a partner's credential, 401 and a challenge
            response = client.open(path, method=method, data={"csrf_token": token})
            assert response.status_code in (401, 405), (method, path)
            if response.status_code == 401:
                assert "Basic" in response.headers["WWW-Authenticate"]
            assert "Location" not in response.headers
            continue
        response = client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 401, (method, path)
        page = response.get_data(as_text=True)
        assert 'data-verify="/sign-in/verify"' in page
        assert 'href="/recover"' in page
        assert "Location" not in response.headers


def test_public_pages_answer_without_a_member(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/sign-in").status_code == 200
    assert client.get("/recover").status_code == 200
    with client.get("/static/js/passkey.js") as script:
        assert script.status_code == 200
        assert "Content-Security-Policy" not in script.headers  # a document-only header
    assert client.get("/join/" + "x" * 20).status_code == 410  # unknown invitation


def test_members_and_editors_get_403_on_admin_routes(app: Flask, engine: Engine) -> None:
    invite(engine, "boss@example.org", "admin")
    for role in ("member", "editor"):
        client = signed_in(app, engine, f"{role}@example.org", role)
        token = csrf_token(client, "/")
        assert client.get("/").status_code == 200
        for endpoint, method, path in routes(app):
            if not endpoint.startswith("admin."):
                continue
            form = {"csrf_token": token, "handle": "boss@example.org", "role": "member"}
            response = client.open(path, method=method, data={**form, "confirm": "yes"})
            assert response.status_code == 403, (role, method, path)
    with Session(engine) as session:
        assert store.member_by_handle(session, "boss@example.org").role == "admin"


def test_every_post_refuses_a_missing_csrf_token(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    other = invite(engine, "other@example.org", "member")
    # TAXII is read-only and takes no form: its POST answers 401 or 405 (test_taxii.py)
    posts = [(e, p) for e, m, p in routes(app) if m == "POST" and e not in PARTNER_ONLY]
    assert len(posts) >= 12
    for endpoint, path in posts:
        path = path.replace("x" * 20, other)
        for response in (
            admin.post(path, data={"handle": "other@example.org", "role": "editor"}),
            admin.post(path, json={}),
        ):
            assert response.status_code == 400, (endpoint, path)
            assert "expired" in response.get_data(as_text=True)
    with Session(engine) as session:
        assert store.member_by_handle(session, "other@example.org").role == "member"
        store.invitation_member(session, other)  # still usable
    assert [a for _, a, _ in audit_actions(engine)] == ["member.invite", "member.invite"]


def test_a_removed_member_is_signed_out_at_once(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    member = signed_in(app, engine, "leaver@example.org", "member")
    assert member.get("/").status_code == 200
    form = {"csrf_token": csrf_token(admin, "/members"), "handle": "leaver@example.org"}
    assert admin.post("/members/remove", data=form).status_code == 400  # not confirmed
    assert member.get("/").status_code == 200
    response = admin.post("/members/remove", data={**form, "confirm": "yes"})
    assert response.status_code == 200
    assert "leaver@example.org was removed" in response.get_data(as_text=True)
    assert member.get("/").status_code == 401
    assert ("admin@example.org", "member.remove", {"role": "member"}) in audit_actions(engine)


def test_an_admin_invites_and_changes_roles(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    token = csrf_token(admin, "/members")
    page = admin.post(
        "/members/invite", data={"csrf_token": token, "handle": "new@example.org", "role": "editor"}
    ).get_data(as_text=True)
    link = re.search(r'<code id="invitation-link" class="link">([^<]+)</code>', page).group(1)
    assert link.startswith(ORIGIN + "/join/")
    assert app.test_client().get(link.removeprefix(ORIGIN)).status_code == 200
    response = admin.post(
        "/members/role", data={"csrf_token": token, "handle": "new@example.org", "role": "member"}
    )
    assert response.status_code == 200
    own = admin.post(
        "/members/role", data={"csrf_token": token, "handle": "admin@example.org", "role": "member"}
    )
    assert own.status_code == 400
    with Session(engine) as session:
        assert store.member_by_handle(session, "new@example.org").role == "member"
        assert store.member_by_handle(session, "admin@example.org").role == "admin"


def test_expired_and_used_invitations_are_refused(app: Flask, engine: Engine) -> None:
    past = datetime.now(UTC) - timedelta(days=8)
    expired = invite(engine, "late@example.org", "member", now=past)
    used = invite(engine, "early@example.org", "member")
    with Session(engine) as session:
        store.consume_invitation(session, used)
        session.commit()
    client = app.test_client()
    token = csrf_token(client)
    for link in (expired, used):
        assert client.get(f"/join/{link}").status_code == 410
        response = post_json(client, f"/join/{link}/options", {}, token)
        assert response.status_code == 400
        assert "expired" in response.get_json()["error"]


def test_joining_with_a_passkey_then_signing_in(app: Flask, engine: Engine) -> None:
    link = invite(engine, "cso@example.org", "editor")
    client = app.test_client()
    token = csrf_token(client, f"/join/{link}")
    # an answer made for another site is refused, and the link stays usable
    stranger = SoftAuthenticator(origin="http://localhost.evil.example")
    options = post_json(client, f"/join/{link}/options", {}, token).get_json()
    refused = post_json(client, f"/join/{link}/verify", stranger.create(options), token)
    assert refused.status_code == 400
    assert client.get(f"/join/{link}").status_code == 200

    key = SoftAuthenticator()
    options = post_json(client, f"/join/{link}/options", {}, token).get_json()
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["rp"]["id"] == "localhost"
    joined = post_json(client, f"/join/{link}/verify", key.create(options), token)
    assert joined.status_code == 200, joined.get_data(as_text=True)
    codes = joined.get_json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert f"{COOKIE}=" in joined.headers["Set-Cookie"]
    assert client.get("/").status_code == 200
    assert client.get(f"/join/{link}").status_code == 410  # used up

    # a second browser signs in with the passkey, no handle asked
    other = app.test_client()
    token = csrf_token(other)
    options = post_json(other, "/sign-in/options", {}, token).get_json()
    assert options.get("allowCredentials", []) == []
    answer = key.get(options)
    assert post_json(other, "/sign-in/verify", answer, token).status_code == 200
    assert other.get("/").status_code == 200
    # the same answer again: its challenge is gone
    again = post_json(other, "/sign-in/verify", answer, csrf_token(other))
    assert again.status_code == 400
    assert "expired" in again.get_json()["error"]

    actions = [(actor, action, detail) for actor, action, detail in audit_actions(engine)]
    assert ("cso@example.org", "sign-in", {"method": "passkey"}) in actions
    added = {"via": "invitation", "invited_by": "cli"}
    assert ("cso@example.org", "passkey.add", added) in actions


def joined(
    app: Flask, engine: Engine, handle: str, role: str
) -> tuple[FlaskClient, SoftAuthenticator, list[str]]:
    """A member who joined through the real pages: their browser, passkey and codes."""
    link = invite(engine, handle, role)
    client = app.test_client()
    token = csrf_token(client, f"/join/{link}")
    key = SoftAuthenticator()
    options = post_json(client, f"/join/{link}/options", {}, token).get_json()
    response = post_json(client, f"/join/{link}/verify", key.create(options), token)
    assert response.status_code == 200, response.get_data(as_text=True)
    return client, key, response.get_json()["recovery_codes"]


def sign_in_with(app: Flask, key: SoftAuthenticator, counter: int | None = None) -> Any:
    """A fresh browser signs in with ``key``; the response."""
    client = app.test_client()
    token = csrf_token(client)
    options = post_json(client, "/sign-in/options", {}, token).get_json()
    return post_json(client, "/sign-in/verify", key.get(options, counter), token)


def test_a_passkey_whose_counter_goes_back_is_disabled(app: Flask, engine: Engine) -> None:
    browser, key, codes = joined(app, engine, "cso@example.org", "member")
    assert sign_in_with(app, key, 5).status_code == 200
    refused = sign_in_with(app, key, 3)  # a copy of the key, behind the original
    assert refused.status_code == 400
    assert "disabled" in refused.get_json()["error"]
    assert browser.get("/").status_code == 401  # every session of the member ended
    # neither the copy jumping ahead nor the original may use it any more
    assert sign_in_with(app, key, 1000).status_code == 400
    assert sign_in_with(app, key, 6).status_code == 400
    suspected = [a for a in audit_actions(engine) if a[1] == "passkey.clone-suspected"]
    assert suspected == [
        ("system", "passkey.clone-suspected",
         {"stored_counter": 5, "reported_counter": 3, "sessions_ended": 2})
    ]  # fmt: skip
    # the member gets back in with a code, sees the passkey disabled, and removes it
    recovering = app.test_client()
    form = {"csrf_token": csrf_token(recovering, "/recover"), "handle": "cso@example.org"}
    page = recovering.post("/recover", data={**form, "code": codes[0]}).get_data(as_text=True)
    assert "disabled on" in page
    passkey_id = re.search(r'name="passkey" value="(\d+)"', page).group(1)
    form = {"csrf_token": csrf_token(recovering, "/passkeys"), "passkey": passkey_id}
    assert recovering.post("/passkeys/remove", data=form).status_code == 200
    assert "You have no passkey yet" in recovering.get("/passkeys").get_data(as_text=True)
    assert not sign_count_advances(7, 0)
    assert sign_count_advances(0, 0)


def test_recovery_codes_sign_in_once(app: Flask, engine: Engine) -> None:
    link = invite(engine, "cso@example.org", "member")
    with Session(engine) as session:
        member = store.consume_invitation(session, link)
        codes = store.new_recovery_codes(session, member)
        session.commit()
    client = app.test_client()
    form = {"csrf_token": csrf_token(client, "/recover"), "handle": "cso@example.org"}
    assert client.post("/recover", data={**form, "code": "AAAA-BBBB-CCCC-DDDD"}).status_code == 400
    response = client.post("/recover", data={**form, "code": codes[0].lower()})
    assert response.status_code == 200
    assert "Add a new passkey" in response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie
    assert client.get("/").status_code == 200
    again = app.test_client()
    form["csrf_token"] = csrf_token(again, "/recover")
    assert again.post("/recover", data={**form, "code": codes[0]}).status_code == 400
    assert ("cso@example.org", "sign-in", {"method": "recovery"}) in audit_actions(engine)


def test_sign_out_and_sign_out_everywhere(app: Flask, engine: Engine) -> None:
    phone = signed_in(app, engine, "cso@example.org", "member")
    with Session(engine) as session:
        member = store.member_by_handle(session, "cso@example.org")
        cookies = [store.start_session(session, member) for _ in range(2)]
        session.commit()
    laptop, tablet = app.test_client(), app.test_client()
    laptop.set_cookie(COOKIE, cookies[0], domain="localhost")
    tablet.set_cookie(COOKIE, cookies[1], domain="localhost")
    response = phone.post("/sign-out", data={"csrf_token": csrf_token(phone, "/")})
    assert response.status_code == 200
    assert f"{COOKIE}=;" in response.headers["Set-Cookie"]
    assert phone.get("/").status_code == 401
    assert laptop.get("/").status_code == 200
    laptop.post("/sign-out-everywhere", data={"csrf_token": csrf_token(laptop, "/")})
    assert laptop.get("/").status_code == 401
    assert tablet.get("/").status_code == 401
    actions = [action for _, action, _ in audit_actions(engine)]
    assert actions[:2] == ["sign-out-everywhere", "sign-out"]


def test_security_headers_and_policy(app: Flask, engine: Engine) -> None:
    client = signed_in(app, engine, "cso@example.org", "member")
    for path in ("/", "/sign-in", "/nowhere"):
        response = client.get(path)
        policy = dict(
            (part.split()[0], part.split()[1:])
            for part in response.headers["Content-Security-Policy"].split("; ")
        )
        assert policy["default-src"] == ["'none'"]
        for directive in ("script-src", "style-src", "connect-src", "img-src", "form-action"):
            assert policy[directive] == ["'self'"], directive
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        assert "unsafe" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Server" not in response.headers
        page = response.get_data(as_text=True)
        assert "<style" not in page
        assert " style=" not in page
        assert re.findall(r"<script[^>]*>", page) == [
            '<script type="module" src="/static/js/passkey.js"></script>'.removesuffix("</script>")
        ]
        assert "http://" not in page.replace(ORIGIN, "")
        assert "https://" not in page


def test_hostile_handles_are_shown_escaped(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    token = csrf_token(admin, "/members")
    response = admin.post(
        "/members/invite", data={"csrf_token": token, "handle": HOSTILE, "role": "member"}
    )
    assert response.status_code == 200
    for page in (response.get_data(as_text=True), admin.get("/audit").get_data(as_text=True)):
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;img" in page
    hostile = signed_in(app, engine, HOSTILE + "2", "member")
    page = hostile.get("/").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


def test_the_audit_log_is_paged_newest_first(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    with Session(engine) as session:
        for number in range(60):
            store.audit(session, "cli", "test.line", f"line {number}")
        session.commit()
    first = admin.get("/audit").get_data(as_text=True)
    assert first.index("line 59") < first.index("line 58")
    older = re.search(r'href="/audit\?before=(\d+)"', first).group(1)
    second = admin.get(f"/audit?before={older}").get_data(as_text=True)
    assert "line 9<" in second
    assert "line 59<" not in second
    assert "line 10<" not in second
    assert admin.get("/audit?before=abc").status_code == 400


def test_settings_refuse_what_would_be_unsafe(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    made = load_web_config({}, cwd=tmp_path, database_url=url, port=8123)
    assert made.origin == "http://localhost:8123"
    assert made.rp_id == "localhost"
    secret = tmp_path / "members-secret-key"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert load_web_config({}, cwd=tmp_path, database_url=url).secret_key == made.secret_key
    for environ in (
        {"INCIDENT_DB_ORIGIN": "http://members.example.org"},  # plain http off loopback
        {"INCIDENT_DB_ORIGIN": "https://members.example.org/path"},
        {"INCIDENT_DB_ORIGIN": "http://127.0.0.1:8100"},  # a passkey needs a name
        {"INCIDENT_DB_ORIGIN": "https://a.example.org", "INCIDENT_DB_RP_ID": "example.com"},
        {"INCIDENT_DB_SECRET_KEY": "00" * 32},
    ):
        with pytest.raises(ConfigError):
            load_web_config(environ, cwd=tmp_path, database_url=url)
    https = {"INCIDENT_DB_ORIGIN": "https://m.example.org", "INCIDENT_DB_RP_ID": "example.org"}
    assert load_web_config(https, cwd=tmp_path, database_url=url).https
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_web_config({}, cwd=tmp_path, database_url=url)


# -- findings of the outside review (issue 16), each reproduced first -------------------------


def test_a_challenge_is_answered_once_even_with_its_cookie_replayed(
    app: Flask, engine: Engine
) -> None:
    _, key, _ = joined(app, engine, "cso@example.org", "member")
    client = app.test_client()
    token = csrf_token(client)
    options = post_json(client, "/sign-in/options", {}, token).get_json()
    pending = client.get_cookie("idb_pre").value  # the cookie holding the challenge
    answer = key.get(options, counter=0)  # an authenticator that keeps no counter
    results = []
    for _ in range(3):
        replay = app.test_client()
        replay.set_cookie("idb_pre", pending, domain="localhost")
        response = post_json(replay, "/sign-in/verify", answer, token)
        results.append((response.status_code, replay.get_cookie(COOKIE) is not None))
    assert results == [(200, True), (400, False), (400, False)]
    assert [a for _, a, _ in audit_actions(engine)].count("sign-in") == 2  # joining, then once


def test_signing_in_and_out_starts_the_browser_cookie_afresh(app: Flask, engine: Engine) -> None:
    _, key, _ = joined(app, engine, "cso@example.org", "member")
    client = app.test_client()
    before = csrf_token(client)
    options = post_json(client, "/sign-in/options", {}, before).get_json()
    assert post_json(client, "/sign-in/verify", key.get(options), before).status_code == 200
    # the token of the signed-out page is no good once signed in
    form = {"csrf_token": before}
    assert client.post("/recovery-codes", data=form).status_code == 400
    during = csrf_token(client, "/")
    assert during != before
    assert client.post("/sign-out", data={"csrf_token": during}).status_code == 200
    assert csrf_token(client) != during


def test_an_admin_cannot_take_over_a_member_by_inviting_them_again(
    app: Flask, engine: Engine
) -> None:
    bob, _, _ = joined(app, engine, "bob@example.org", "admin")
    alice = signed_in(app, engine, "alice@example.org", "admin")
    token = csrf_token(alice, "/members")
    response = alice.post(
        "/members/invite", data={"csrf_token": token, "handle": "BOB@example.org", "role": "admin"}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "passkeys page" in page
    assert "/join/" not in page
    assert bob.get("/").status_code == 200  # his sessions and passkey stay
    with Session(engine) as session:
        bob_member = store.member_by_handle(session, "bob@example.org")
        assert len(store.passkeys_of(session, bob_member)) == 1
    # someone who has not signed up yet may get a new link, which names its maker
    first = alice.post(
        "/members/invite",
        data={"csrf_token": token, "handle": "carol@example.org", "role": "member"},
    )
    assert first.status_code == 200
    again = alice.post(
        "/members/invite",
        data={"csrf_token": token, "handle": "carol@example.org", "role": "member"},
    ).get_data(as_text=True)
    link = re.search(r"/join/([A-Za-z0-9_-]{20,})", again).group(1)
    carol = app.test_client()
    csrf = csrf_token(carol, f"/join/{link}")
    options = post_json(carol, f"/join/{link}/options", {}, csrf).get_json()
    response = post_json(carol, f"/join/{link}/verify", SoftAuthenticator().create(options), csrf)
    assert response.status_code == 200
    added = [
        d
        for actor, a, d in audit_actions(engine)
        if a == "passkey.add" and actor.startswith("carol")
    ]
    assert added == [{"via": "invitation", "invited_by": "alice@example.org"}]


def test_an_admin_cannot_invite_themselves(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "root@example.org", "admin")
    signed_in(app, engine, "other@example.org", "admin")
    token = csrf_token(admin, "/members")
    response = admin.post(
        "/members/invite",
        data={"csrf_token": token, "handle": "ROOT@example.org", "role": "member"},
    )
    assert response.status_code == 400
    assert "your own membership" in response.get_data(as_text=True)
    with Session(engine) as session:
        assert store.member_by_handle(session, "root@example.org").role == "admin"
    assert admin.get("/members").status_code == 200


def test_the_audit_page_shows_what_kind_of_actor_wrote_a_line(app: Flask, engine: Engine) -> None:
    admin = signed_in(app, engine, "admin@example.org", "admin")
    token = csrf_token(admin, "/members")
    refused = admin.post(
        "/members/invite", data={"csrf_token": token, "handle": "CLI", "role": "admin"}
    )
    assert refused.status_code == 400
    assert "kept for the audit log" in refused.get_data(as_text=True)
    page = admin.get("/audit").get_data(as_text=True)
    kinds = re.findall(
        r'<span class="actor">([^<]*)</span> <span class="actor-kind">\(([^<]*)\)', page
    )
    assert ("cli", "cli") in kinds
    assert ("admin@example.org", "member") not in kinds  # only cli wrote here so far
    assert all(kind == "cli" for actor, kind in kinds if actor == "cli")


def test_deeply_nested_json_is_refused_quietly(
    app: Flask, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    token = csrf_token(client)
    for body in (b"[" * 30000 + b"]" * 30000, b'{"a":' * 50 + b"1" + b"}" * 50):
        response = client.post(
            "/sign-in/verify",
            data=body,
            headers={"X-CSRFToken": token, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert "could not be read" in response.get_json()["error"]
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_a_member_removes_one_of_their_passkeys(app: Flask, engine: Engine) -> None:
    browser, key, _ = joined(app, engine, "cso@example.org", "member")
    page = browser.get("/passkeys").get_data(as_text=True)
    (only,) = re.findall(r'name="passkey" value="(\d+)"', page)
    token = csrf_token(browser, "/passkeys")
    last = browser.post("/passkeys/remove", data={"csrf_token": token, "passkey": only})
    assert last.status_code == 400
    assert "last working passkey" in last.get_data(as_text=True)
    second = SoftAuthenticator()
    options = post_json(browser, "/passkeys/options", {}, token).get_json()
    assert post_json(browser, "/passkeys/verify", second.create(options), token).status_code == 200
    stranger = signed_in(app, engine, "stranger@example.org", "admin")
    theirs = stranger.post(
        "/passkeys/remove", data={"csrf_token": csrf_token(stranger, "/passkeys"), "passkey": only}
    )
    assert theirs.status_code == 400  # not their passkey
    assert (
        browser.post("/passkeys/remove", data={"csrf_token": token, "passkey": only}).status_code
        == 200
    )
    assert sign_in_with(app, key).status_code == 400  # the removed one no longer signs in
    assert sign_in_with(app, second).status_code == 200
    assert ("cso@example.org", "passkey.remove") in [(a, b) for a, b, _ in audit_actions(engine)]
