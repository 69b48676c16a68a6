"""The reporter's inbox at ``/followup``: come back with the receipt, read, answer.

The reporter types the receipt. With JavaScript, the browser derives the
lookup token and the reporter's private key (crypto/SPEC.md §14), sends only
the locator and the token, receives the reviewers' replies still encrypted
and opens them itself; its own messages are sealed to the reviewers before
upload, like a report, and carry a proof of work. Without JavaScript the
server derives both from the typed receipt in memory, opens the replies only
to render this one page, and forgets the receipt, the key and the messages
when the response is sent; messages sent this way are encrypted on arrival.

Routes:

* ``GET /followup``: the receipt form;
* ``POST /followup``: no JavaScript, the typed receipt; the conversation page;
* ``POST /followup/lookup``: JavaScript, locator and token; JSON;
* ``POST /followup/send``: JavaScript, an encrypted message and attachments;
* ``POST /followup/send-plain``: no JavaScript, a message and attachments.

A report is found by its receipt index (``receipts.py``): one argon2id
computation and one indexed query, the same work for a right, a wrong and
an unknown receipt, however many reports anyone filed under the locator.
Every route that finds a report draws on the global lookup budget first,
and only after every cheap check on the request has passed (CSRF, form
shape, receipt syntax, message size, every attachment's scrub or envelope
check), so junk spends nothing. A message sent without JavaScript draws on
a follow-up budget of its own before the lookup, and gives it back if the
lookup refuses it (busy, wrong receipt, full conversation).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from crypto import _base64url as base64url
from crypto.envelope import open_bytes
from crypto.errors import CryptoError, KeyFormatError
from crypto.keys import EncryptionKeyPair
from crypto.manifest import MAX_ATTACHMENTS, AttachmentEntry, manifest_json
from crypto.receipt import Receipt, derive
from portal.storage.models import PartKind, Reply, Submission
from portal.storage.receipts import (
    BadReceiptError,
    parse_browser_receipt,
    receipt_index,
    verify_lookup_token,
)
from portal.web import budget, pow
from portal.web.intake_checks import (
    PROOF_REFUSED,
    RefusedError,
    budget_unless_refused,
    checked_proof,
    current_directory,
    portal_extensions,
    proof_held,
    require_budget,
    settle_proof,
)
from portal.web.intake_store import (
    check_all,
    envelope_part,
    finish_all,
    seal_and_store,
    store_submission,
    undo_submission,
)
from portal.web.plain_attachments import plain_attachments, scrub_attachments

followup = Blueprint("followup", __name__)

FOLLOWUP_SCHEMA = "cso-followup/v1"
REPLY_SCHEMA = "cso-reply/v1"
MAX_MESSAGE_CHARS = 20_000
#: follow-up messages one conversation may hold: enough for any real
#: exchange, and a bound on what one receipt holder can pile up
MAX_FOLLOWUPS = 200
NOT_FOUND = _l(
    "No report matches this receipt. Check the 24 digits and try again; "
    "a receipt is never stored, so nobody can look it up for you."
)
BUSY_LOOKUP = _l(
    "Too many receipts are being checked right now. Please try again in a few minutes."
)
BUSY_FOLLOWUP = _l(
    "Too many messages are arriving without JavaScript right now. Nothing was stored. "
    "Please try again in a few minutes, or turn JavaScript on."
)


def find_report(session: Session, locator: str, token: bytes) -> Submission | None:
    """The report whose receipt gives ``locator`` and ``token``.

    The index query returns one row at most, however many reports share the
    receipt (only whoever holds it can file them), so the work is fixed.
    Commit ``session`` afterwards: a report filed before the index gets it.
    """
    index = receipt_index(locator, token)
    found = session.scalars(
        select(Submission)
        .where(Submission.receipt_index == index, Submission.thread_id.is_(None))
        .order_by(Submission.received_on, Submission.id)
        .limit(1)
    ).first()
    legacy = _find_unindexed(session, locator, token)
    if legacy is not None:
        legacy.receipt_index, legacy.receipt_hash = index, ""
    return found or legacy


def _find_unindexed(session: Session, locator: str, token: bytes) -> Submission | None:
    """A report filed before the receipt index (migration 0005), by its own hash.

    Every such report under the locator is checked, with no early exit. No
    one can add to them, since every report filed since has an index: their
    number is what the database held at the upgrade, and it only falls, as
    each is found (and indexed) or purged. A new portal has none.
    """
    unindexed = session.scalars(
        select(Submission).where(
            Submission.receipt_locator == locator,
            Submission.thread_id.is_(None),
            Submission.receipt_index.is_(None),
        )
    ).all()
    found = None
    for candidate in unindexed:
        if verify_lookup_token(candidate.receipt_hash, token) and found is None:
            found = candidate
    return found


@dataclass(frozen=True)
class Conversation:
    """What the reporter may see of their report: status, replies, own messages' days."""

    report: Submission
    replies: list[Reply]
    sent_on: list[str]


def _conversation(session: Session, report: Submission) -> Conversation:
    replies = [r for r in report.replies if r.blob is not None]
    sent = session.scalars(
        select(Submission.received_on)
        .where(Submission.thread_id == report.id)
        .order_by(Submission.received_on)
    ).all()
    return Conversation(report, replies, [day.isoformat() for day in sent])


def _spend_lookup() -> None:
    """Draw on the global lookup budget, after the cheap checks, before PBKDF2 or argon2id."""
    require_budget(budget.LOOKUP, portal_extensions()["config"].lookups_per_hour, BUSY_LOOKUP)


def _lookup(locator: str, token: bytes) -> Conversation | None:
    with portal_extensions()["sessions"].begin() as session:
        report = find_report(session, locator, token)
        return None if report is None else _conversation(session, report)


def _read_blob(name: str) -> bytes:
    blob: bytes = portal_extensions()["blobs"].read(name)  # the access time is not the lookup's
    return blob


def _receipt_page(error: Any = None) -> str:
    """The receipt form, with ``error`` (words, or a lazy translation) above it if any."""
    cache = portal_extensions()["directory"]
    key = str(cache.organisation) if cache is not None else ""
    text = None if error is None else str(error)
    return render_template("followup.html", error=text, organisation_key=key)


@followup.get("/followup")
def followup_form() -> str:
    """The receipt form; works with and without JavaScript."""
    return _receipt_page()


@followup.post("/followup")
def followup_plain() -> tuple[str, int] | str:
    """No JavaScript: derive from the typed receipt in memory and show the conversation."""
    try:
        receipt = Receipt.parse(request.form.get("receipt", ""))
    except KeyFormatError:
        message = _("A receipt is 24 digits (spaces between the groups are fine).")
        return _receipt_page(message), 400
    _spend_lookup()  # before PBKDF2: the server's own work is what the budget protects
    keys = derive(receipt)
    found = _lookup(receipt.locator, keys.lookup_token)
    if found is None:
        return _receipt_page(NOT_FOUND), 404
    messages = [_open_reply(reply, keys.reporter) for reply in found.replies]
    return render_template(
        "followup_thread.html",
        status=found.report.status,
        received_on=found.report.received_on.isoformat(),
        messages=messages,
        sent_on=found.sent_on,
        locator=receipt.locator,
        token=keys.lookup_token.hex(),
        max_attachments=min(portal_extensions()["config"].max_attachments, MAX_ATTACHMENTS),
        max_chars=MAX_MESSAGE_CHARS,
    )


def _open_reply(reply: Reply, key: EncryptionKeyPair) -> dict[str, str]:
    """A reply's text for display; one that does not open says so and nothing more."""
    day = reply.received_on.isoformat()
    try:
        document = json.loads(open_bytes(_read_blob(str(reply.blob)), key))
        if not isinstance(document, dict) or document.get("schema") != REPLY_SCHEMA:
            raise ValueError
        text = document.get("message")
        if not isinstance(text, str):
            raise ValueError
    except (CryptoError, OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {"day": day, "text": "", "unreadable": "yes"}
    return {"day": day, "text": text}


def _browser_receipt() -> tuple[str, bytes]:
    try:
        return parse_browser_receipt(
            request.form.get("receipt_locator", ""), request.form.get("receipt_token", "")
        )
    except BadReceiptError:
        raise RefusedError(_("The receipt fields are missing or malformed.")) from None


@followup.post("/followup/lookup")
def followup_lookup() -> tuple[Response, int] | Response:
    """JavaScript: the conversation for a locator and lookup token, replies still sealed."""
    locator, token = _browser_receipt()
    _spend_lookup()
    found = _lookup(locator, token)
    if found is None:
        return jsonify({"found": False, "error": str(NOT_FOUND)}), 404
    replies = [
        {
            "received_on": r.received_on.isoformat(),
            "envelope": base64url.encode(_read_blob(str(r.blob))),
        }
        for r in found.replies
    ]
    return jsonify(
        {
            "found": True,
            "status": found.report.status,
            "received_on": found.report.received_on.isoformat(),
            "replies": replies,
            "sent_on": found.sent_on,
        }
    )


def _thread_for_message(locator: str, token: bytes) -> Submission:
    """The report a new message belongs to, with room for one more message.

    Finding it is a lookup like any other, so it draws on the lookup budget.
    """
    _spend_lookup()
    with portal_extensions()["sessions"].begin() as session:
        report = find_report(session, locator, token)
        if report is None:
            raise NotFound()
        count = session.scalar(
            select(func.count()).select_from(Submission).where(Submission.thread_id == report.id)
        )
    if (count or 0) >= MAX_FOLLOWUPS:
        raise RefusedError(
            _(
                "Nothing was stored: this conversation holds as many messages as the portal "
                "keeps. Please send a new report instead."
            )
        )
    return report


@followup.post("/followup/send")
def followup_send() -> Response:
    """JavaScript: store an encrypted follow-up message and its attachments.

    As for a report (``intake.submit_encrypted``), the proof of work is
    checked first, held before the lookup and anything is written, and
    spent only once the message is stored: of sends racing with one proof
    only one stores anything, a send that failed on the portal's side can
    be sent again with the same proof, and a proof that stored a message is
    refused after that.
    """
    current_directory()
    locator, token = _browser_receipt()
    messages = request.files.getlist("message")
    attachments = request.files.getlist("attachment")
    if len(messages) != 1:
        raise RefusedError(_("Nothing was stored: a message is exactly one encrypted part."))
    if len(attachments) > min(portal_extensions()["config"].max_attachments, MAX_ATTACHMENTS):
        raise RefusedError(_("Nothing was stored: too many attachments."))
    uploads = [(PartKind.REPORT, envelope_part(messages[0]))]
    uploads += [(PartKind.ATTACHMENT, envelope_part(a)) for a in attachments]
    check_all(uploads)  # a truncated envelope spends neither the proof nor a lookup
    ticket = checked_proof("followup")
    with proof_held(ticket) as held:  # before the lookup: a loser of a race spends none
        report = _thread_for_message(locator, token)
        stored = store_submission(finish_all(uploads), thread_id=report.id)
    try:
        settle_proof(held)
    except pow.SpentError:  # held too long: another send took the proof over and spent it
        undo_submission(stored)
        raise RefusedError(PROOF_REFUSED) from None
    return jsonify({"stored": True, "parts": len(stored.parts)})


@followup.post("/followup/send-plain")
def followup_send_plain() -> str:
    """No JavaScript: encrypt a message and its attachments in memory, store ciphertext."""
    directory = current_directory()
    with plain_attachments() as files:
        locator, token = _browser_receipt()
        message = _message_text(request.form.get("message", ""))
        entries, cleaned = scrub_attachments(files)
        document = followup_document(message, entries, encrypted_by="server")
        # Everything cheap has passed. The follow-up budget comes first, so that
        # while it is spent no lookup is done for nothing; it is given back if
        # the lookup refuses (no lookups left, wrong receipt, full conversation).
        per_hour = portal_extensions()["config"].followups_per_hour
        with budget_unless_refused(budget.FOLLOWUP, per_hour, BUSY_FOLLOWUP):
            report = _thread_for_message(locator, token)
        parts = [(PartKind.REPORT, json.dumps(document, ensure_ascii=False).encode("utf-8"))]
        parts += [(PartKind.ATTACHMENT, data) for data in cleaned]
        seal_and_store(parts, directory.verified.recipient_keys, thread_id=report.id)
    return render_template("followup_sent.html", attachments=len(entries))


def _message_text(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    if not text:
        raise RefusedError(_("Nothing was stored: the message is empty."))
    if len(text) > MAX_MESSAGE_CHARS:
        raise RefusedError(
            _(
                "Nothing was stored: a message is at most %(count)s characters.",
                count=format_number(MAX_MESSAGE_CHARS),
            )
        )
    return text


def followup_document(
    message: str, attachments: Sequence[AttachmentEntry], *, encrypted_by: str
) -> dict[str, Any]:
    """The ``cso-followup/v1`` document the browser also builds (SPEC.md §14.4)."""
    return {
        "schema": FOLLOWUP_SCHEMA,
        "encrypted_by": encrypted_by,
        "message": message,
        "attachments": manifest_json(attachments),
    }
