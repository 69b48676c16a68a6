"""The reviewer sync API under ``/reviewer-sync/v1``, apart from the anonymous intake.

Reviewers' transfer machines log in with an Ed25519 challenge signed by a
per-reviewer *sync key* (no password: the database holds public keys only,
so a stolen copy lets nobody in), then fetch inbox bundles, acknowledge
them and upload replies bundles. Sessions last ten minutes.

Guessing a signature is hopeless, so throttling is about volume, not
secrets: each challenge is used once and lives a minute, at most ten are
outstanding per account name and a thousand in all, and JSON bodies are
small. There is deliberately no lockout after failed logins: it would let
anyone who knows a reviewer's label keep that reviewer out. Failures are
counted for the operator (``portal accounts list``). Every refusal, for a
wrong key, an unknown account or a spent challenge, is the same 401 after
the same work.

With ``PORTAL_SYNC=separate`` (the default) these routes exist only in the
``sync`` application (``portal serve --role sync``), which deploy puts behind
its own client-authorised onion service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from crypto.keys import KeyKind, SigningKeyPair, parse_public_key, verify_signature
from portal.inbox import SyncError, acknowledge, export_inbox, import_replies, load_signing_key
from portal.models import ReviewerAccount, SyncChallenge, SyncSession

PREFIX = "/reviewer-sync/v1"
LOGIN_CONTEXT = b"cso-portal sync login v1\n"
CHALLENGE_LIFETIME = timedelta(minutes=1)
SESSION_LIFETIME = timedelta(minutes=10)
MAX_OUTSTANDING_CHALLENGES = 1000
MAX_CHALLENGES_PER_ACCOUNT = 10
MAX_JSON_BYTES = 4096
#: verified against when the account does not exist, so that the answer takes as long
_DECOY_KEY = SigningKeyPair.generate().token.key

sync = Blueprint("sync", __name__, url_prefix=PREFIX)


class ApiError(HTTPException):
    """An API refusal; the app's error handler sends ``{"error": message}``."""

    portal_message = True  # the message is written to be shown

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _portal() -> dict[str, Any]:
    extensions: dict[str, Any] = current_app.extensions["portal"]
    return extensions


def _now() -> datetime:
    # Naive UTC: SQLite's DateTime drops the zone, so both databases compare alike.
    return datetime.now(UTC).replace(tzinfo=None)


def login_message(label: str, challenge: bytes) -> bytes:
    """What a transfer machine signs with its sync key to log in as ``label``."""
    return LOGIN_CONTEXT + label.encode("utf-8") + b"\n" + challenge


def _json_body() -> dict[str, Any]:
    if request.content_length is None or request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, f"the body must be a JSON object of at most {MAX_JSON_BYTES} bytes")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


@sync.post("/login/challenge")
def challenge() -> Response:
    """Issue a one-time challenge; the same answer whether or not the account exists."""
    label = _json_body().get("account")
    if not isinstance(label, str) or not 0 < len(label) <= 64:
        raise ApiError(400, "account must be a label of 1 to 64 characters")
    value = secrets.token_bytes(32)
    with _portal()["sessions"].begin() as session:
        session.execute(delete(SyncChallenge).where(SyncChallenge.expires_at <= _now()))
        outstanding = session.scalar(select(func.count()).select_from(SyncChallenge))
        mine = session.scalar(
            select(func.count())
            .select_from(SyncChallenge)
            .where(SyncChallenge.account_label == label)
        )
        if outstanding >= MAX_OUTSTANDING_CHALLENGES or mine >= MAX_CHALLENGES_PER_ACCOUNT:
            raise ApiError(429, "too many logins are under way; try again in a minute")
        session.add(
            SyncChallenge(
                id=value.hex(), account_label=label, expires_at=_now() + CHALLENGE_LIFETIME
            )
        )
    return jsonify({"challenge": value.hex(), "expires_in": CHALLENGE_LIFETIME.seconds})


def _signature(value: Any) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4))
    except (binascii.Error, ValueError):
        return b""
    return raw


@sync.post("/login")
def login() -> Response:
    """Exchange a signed challenge for a short-lived bearer token."""
    body = _json_body()
    label, value = body.get("account"), body.get("challenge")
    refused = ApiError(401, "login refused")  # one answer for every failure
    if not isinstance(label, str) or not isinstance(value, str) or len(value) != 64:
        raise refused
    try:
        challenge_bytes = bytes.fromhex(value)
    except ValueError:
        raise refused from None
    sessions = _portal()["sessions"]
    with sessions.begin() as session:
        # Spend the challenge first, in its own transaction: one use whatever
        # follows, and of two concurrent logins with it only one deletes it.
        spent = session.execute(
            delete(SyncChallenge).where(
                SyncChallenge.id == value,
                SyncChallenge.account_label == label,
                SyncChallenge.expires_at > _now(),
            )
        ).rowcount
    if spent != 1:
        raise refused
    token = None
    with sessions.begin() as session:
        account = session.scalar(select(ReviewerAccount).where(ReviewerAccount.label == label))
        key = parse_public_key(account.sync_key, KeyKind.SIGNING).key if account else _DECOY_KEY
        good = verify_signature(
            key, login_message(label, challenge_bytes), _signature(body.get("signature"))
        )
        if account is not None and good:
            account.failures = 0
            token = secrets.token_urlsafe(32)
            session.execute(delete(SyncSession).where(SyncSession.expires_at <= _now()))
            session.add(
                SyncSession(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    account_id=account.id,
                    expires_at=_now() + SESSION_LIFETIME,
                )
            )
        elif account is not None:
            account.failures += 1  # shown to the operator; never locks anyone out
    if token is None:
        raise refused
    return jsonify({"token": token, "expires_in": SESSION_LIFETIME.seconds})


def _account(session: Session) -> ReviewerAccount:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "log in first")
    digest = hashlib.sha256(header[len("Bearer ") :].encode()).hexdigest()
    found = session.get(SyncSession, digest)
    if found is None or found.expires_at <= _now():
        raise ApiError(401, "the session has expired; log in again")
    account = session.get(ReviewerAccount, found.account_id)
    if account is None:
        raise ApiError(401, "log in first")
    return account


@sync.post("/logout")
def logout() -> Response:
    """End the session now."""
    with _portal()["sessions"].begin() as session:
        _account(session)
        digest = hashlib.sha256(request.headers["Authorization"][7:].encode()).hexdigest()
        session.execute(delete(SyncSession).where(SyncSession.token_hash == digest))
    return jsonify({"logged_out": True})


@sync.get("/inbox")
def inbox() -> Response:
    """An inbox bundle of the submissions after ``since`` (default: the last acknowledged)."""
    portal = _portal()
    with portal["sessions"]() as session:
        since = _account(session).acknowledged_cursor
    raw = request.args.get("since")
    if raw is not None:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
            raise ApiError(400, "since must be a cursor (a whole number)")
        since = int(raw)
    spool = tempfile.TemporaryFile(dir=portal["config"].data_dir)
    try:
        result = export_inbox(
            portal["sessions"], portal["blobs"], load_signing_key(portal["config"].data_dir),
            spool, since,
        )  # fmt: skip
    except SyncError as error:
        spool.close()
        raise ApiError(500, str(error)) from None
    spool.seek(0)
    response = send_file(spool, mimetype="application/octet-stream", download_name="inbox.bundle")
    response.headers["X-Bundle-Id"] = result.bundle_id
    response.headers["X-Cursor-From"] = str(result.cursor_from)
    response.headers["X-Cursor-To"] = str(result.cursor_to)
    response.headers["Cache-Control"] = "no-store"
    return response


@sync.post("/inbox/ack")
def ack() -> Response:
    """Record that the reviewer imported everything up to ``cursor``."""
    cursor = _json_body().get("cursor")
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        raise ApiError(400, "cursor must be a whole number")
    with _portal()["sessions"].begin() as session:
        account = _account(session)
        try:
            mark = acknowledge(session, account, cursor)
        except SyncError as error:
            raise ApiError(400, str(error)) from None
    return jsonify({"acknowledged_cursor": mark})


@sync.post("/replies")
def replies() -> Response:
    """Import a replies bundle signed by the logged-in reviewer's signing key."""
    portal = _portal()
    with portal["sessions"]() as session:
        account = _account(session)
        session.expunge(account)
    with tempfile.NamedTemporaryFile(dir=portal["config"].data_dir, suffix=".bundle") as spool:
        while chunk := request.stream.read(1024 * 1024):
            spool.write(chunk)
        spool.flush()
        try:
            result = import_replies(
                portal["sessions"], portal["blobs"], Path(spool.name), only_from=account
            )
        except SyncError as error:
            raise ApiError(400, f"nothing was imported: {error}") from None
    return jsonify(
        {
            "imported": result.imported,
            "already": result.already,
            "unknown": result.unknown,
            "acknowledged_cursor": result.acknowledged_cursor,
        }
    )
