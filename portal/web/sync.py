"""The reviewer sync API under ``/reviewer-sync/v1``, apart from the anonymous intake.

Reviewers' transfer machines log in with an Ed25519 challenge signed by a
per-reviewer *sync key* (no password: the database holds public keys only,
so a stolen copy lets nobody in), then fetch inbox bundles, acknowledge
them and upload replies bundles. Sessions last ten minutes.

Guessing a signature is hopeless, so throttling is about volume, not
secrets, and nothing an unauthenticated client sends is stored until it
logs in. Challenges are stateless: the label, a random nonce and an expiry
a minute ahead, under an HMAC keyed from the portal's secret, so that
asking for any number of them fills nothing and crowds nobody out. A
challenge is recorded only when a login with it succeeds, by its SHA-256,
which makes it single-use; the record is kept until the end of the day on
which it expires (the database holds days, never times of day). There is
deliberately no lockout after failed logins: it would let anyone who knows
a reviewer's label keep that reviewer out. Failures are counted for the
operator (``portal accounts list``). Every refusal, for a wrong key, an
unknown account or a spent challenge, is the same 401, and a wrong key costs
the same work whether or not the account exists: the same reads, the same
signature check (against a decoy key), and the same writes in one
transaction. An account that is not a label enrolment could have made
(``ACCOUNT_LABEL``) is a malformed request, a 400 before the database sees
it: JSON can carry NUL and lone surrogates, which PostgreSQL refuses.

The OpenAPI document beside this module (``sync-openapi.json``) lists every
status these routes, the fault handlers in ``app.py`` and gunicorn in front
can give; tests/reliability/test_contract.py holds the two together with
schemathesis.

With ``PORTAL_SYNC=separate`` (the default) these routes exist only in the
``sync`` application (``portal serve --role sync``), which deploy puts behind
its own client-authorised onion service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from crypto.keys import KeyKind, SigningKeyPair, parse_public_key, verify_signature
from portal.storage.inbox import (
    SyncError,
    acknowledge,
    directory_text,
    export_inbox,
    import_replies,
    load_signing_key,
)
from portal.storage.models import ACCOUNT_LABEL, ReviewerAccount, SyncChallenge, SyncSession

PREFIX = "/reviewer-sync/v1"
LOGIN_CONTEXT = b"cso-portal sync login v1\n"
CHALLENGE_CONTEXT = b"cso-portal sync challenge v1\n"
CHALLENGE_LIFETIME = timedelta(minutes=1)
SESSION_LIFETIME = timedelta(minutes=10)
MAX_JSON_BYTES = 4096
#: the largest cursor the API takes (``since``, ``cursor``): the largest inbox sequence
#: number the database can hold (a 32-bit INTEGER); PostgreSQL refuses to compare the
#: column with anything larger
MAX_CURSOR = 2**31 - 1
#: a challenge: nonce, expiry (seconds since the epoch, big-endian), HMAC-SHA256 tag
_NONCE_BYTES, _EXPIRY_BYTES, _TAG_BYTES = 16, 8, 32
CHALLENGE_BYTES = _NONCE_BYTES + _EXPIRY_BYTES + _TAG_BYTES
#: verified against when the account does not exist, so that the answer takes as long
_DECOY_TOKEN = str(SigningKeyPair.generate().token)

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


def _label_bytes(label: Any) -> bytes:
    """The account label as bytes; 400 unless it is a label enrolment could have made.

    Checked before anything reaches the database: JSON can carry NUL and lone
    surrogates, which PostgreSQL refuses in text and UTF-8 cannot encode.
    """
    if not isinstance(label, str) or not ACCOUNT_LABEL.fullmatch(label):
        raise ApiError(
            400, "account must be a label of 1 to 64 letters, digits, dots, dashes or underscores"
        )
    return label.encode("ascii")


def _challenge_tag(label: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 binding nonce and expiry to the label, under a key of its own."""
    key = hmac.new(_portal()["config"].secret_key, CHALLENGE_CONTEXT, hashlib.sha256).digest()
    message = len(label).to_bytes(2, "big") + label + body
    return hmac.new(key, message, hashlib.sha256).digest()


def issue_challenge(label: bytes, now: datetime) -> bytes:
    """A challenge for ``label`` that expires a minute after ``now``; nothing is stored."""
    expires = int((now + CHALLENGE_LIFETIME).replace(tzinfo=UTC).timestamp())
    body = secrets.token_bytes(_NONCE_BYTES) + expires.to_bytes(_EXPIRY_BYTES, "big")
    return body + _challenge_tag(label, body)


def _challenge_expiry(label: bytes, challenge: bytes, now: datetime) -> datetime | None:
    """When ``challenge`` expires, if this portal issued it for ``label`` and it is still valid."""
    if len(challenge) != CHALLENGE_BYTES:
        return None
    body, tag = challenge[:-_TAG_BYTES], challenge[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _challenge_tag(label, body)):
        return None
    seconds = int.from_bytes(body[_NONCE_BYTES:], "big")
    expires = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return expires if now < expires else None


def _day_after(moment: datetime) -> datetime:
    """Midnight after ``moment``: a spent record may go then, and says nothing finer."""
    return datetime.combine(moment.date() + timedelta(days=1), time_of_day.min)


@sync.post("/login/challenge")
def challenge() -> Response:
    """Issue a one-time challenge; the same answer whether or not the account exists."""
    label = _label_bytes(_json_body().get("account"))
    value = issue_challenge(label, _now())
    return jsonify(
        {"challenge": value.hex(), "expires_in": int(CHALLENGE_LIFETIME.total_seconds())}
    )


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
    label_bytes = _label_bytes(label)  # a malformed label is a malformed request: 400
    refused = ApiError(401, "login refused")  # one answer for every failed login
    if not isinstance(value, str) or len(value) != 2 * CHALLENGE_BYTES:
        raise refused
    try:
        challenge_bytes = bytes.fromhex(value)
    except ValueError:
        raise refused from None
    expires = _challenge_expiry(label_bytes, challenge_bytes, _now())
    if expires is None:
        raise refused
    token = _spend_and_check(str(label), challenge_bytes, expires, body.get("signature"))
    if token is None:
        raise refused
    return jsonify({"token": token, "expires_in": int(SESSION_LIFETIME.total_seconds())})


def _spend_and_check(label: str, challenge: bytes, expires: datetime, signature: Any) -> str | None:
    """Spend the challenge if the signature is good: a bearer token, or None.

    A refusal stores nothing: the spent record is written in a savepoint
    and rolled back, so that anyone may fail to log in as often as they
    like without adding a row. One transaction does the same reads and
    writes whether the account exists or not, so a refusal takes as long
    either way: the spent record and its rollback, the account lookup, a
    signature check (against a decoy key for an unknown label) and the
    failure count, an update of every account's row (a handful) that adds
    one only to the label's own.
    """
    now = _now()
    try:
        with _portal()["sessions"].begin() as session:
            session.execute(delete(SyncChallenge).where(SyncChallenge.expires_at <= now))
            digest = hashlib.sha256(challenge).hexdigest()
            spend = session.begin_nested()
            session.add(
                SyncChallenge(id=digest, account_label=label, expires_at=_day_after(expires))
            )
            session.flush()  # a replay stops here: the digest is the primary key
            account = session.scalar(select(ReviewerAccount).where(ReviewerAccount.label == label))
            key = parse_public_key(account.sync_key if account else _DECOY_TOKEN, KeyKind.SIGNING)
            good = verify_signature(key.key, login_message(label, challenge), _signature(signature))
            if account is None or not good:
                spend.rollback()
                session.execute(
                    update(ReviewerAccount).values(
                        failures=ReviewerAccount.failures
                        + case((ReviewerAccount.label == label, 1), else_=0)
                    )
                )  # shown to the operator; never locks anyone out
                return None
            spend.commit()
            account.failures = 0
            token = secrets.token_urlsafe(32)
            session.execute(delete(SyncSession).where(SyncSession.expires_at <= now))
            session.add(
                SyncSession(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    account_id=account.id,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
            return token
    except IntegrityError:
        return None  # spent already, perhaps by a concurrent login with the same challenge


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


def _cursor_arg(name: str, default: int) -> int:
    """The query parameter ``name`` as a cursor, or ``default`` when it is absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15 or int(raw) > MAX_CURSOR:
        raise ApiError(400, f"{name} must be a cursor (a whole number up to {MAX_CURSOR})")
    return int(raw)


@sync.get("/inbox")
def inbox() -> Response:
    """An inbox bundle of the submissions after ``since`` (default: the last acknowledged).

    It also carries the team updates after ``team_since`` (default: the team
    cursor the reviewer's last replies bundle acknowledged) and the key directory.
    """
    portal = _portal()
    with portal["sessions"]() as session:
        account = _account(session)
        since, team_since = account.acknowledged_cursor, account.team_cursor
    since = _cursor_arg("since", since)
    team_since = _cursor_arg("team_since", team_since)
    config = portal["config"]
    spool = tempfile.TemporaryFile(dir=config.data_dir)
    try:
        result = export_inbox(
            portal["sessions"], portal["blobs"], load_signing_key(config.data_dir), spool, since,
            team_since=team_since, directory=directory_text(config.directory_file),
        )  # fmt: skip
    except SyncError as error:
        spool.close()
        raise ApiError(500, str(error)) from None
    spool.seek(0)
    response = send_file(spool, mimetype="application/octet-stream", download_name="inbox.bundle")
    response.headers["X-Bundle-Id"] = result.bundle_id
    response.headers["X-Cursor-From"] = str(result.cursor_from)
    response.headers["X-Cursor-To"] = str(result.cursor_to)
    response.headers["X-Team-Cursor-From"] = str(result.team_from)
    response.headers["X-Team-Cursor-To"] = str(result.team_to)
    response.headers["Cache-Control"] = "no-store"
    return response


@sync.post("/inbox/ack")
def ack() -> Response:
    """Record that the reviewer imported everything up to ``cursor``."""
    cursor = _json_body().get("cursor")
    if isinstance(cursor, float) and cursor.is_integer():
        cursor = int(cursor)  # JSON has one kind of number: 433.0 is the integer 433
    if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor <= MAX_CURSOR:
        raise ApiError(400, f"cursor must be a whole number from 0 to {MAX_CURSOR}")
    with _portal()["sessions"].begin() as session:
        account = _account(session)
        try:
            mark = acknowledge(session, account, cursor)
        except SyncError as error:
            # well formed, but ahead of this portal's inbox: a conflict with its state
            raise ApiError(409, str(error)) from None
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
            "team_imported": result.team_imported,
            "team_already": result.team_already,
            "team_cursor": result.team_cursor,
        }
    )
