"""Resumable sending for links that drop: the form token, begin and finish.

A browser that has sealed a report and its attachments sends them in three
steps, so that a satellite link that drops for minutes, or a reset
connection, costs only the bytes in flight:

* ``POST /submit/begin`` (form token, proof of work, ``parts``, ``total``)
  draws on the global begin budget, holds the proof while it opens a draft
  (``pending.py``), then spends it → 201 ``{"draft", "expires"}``. ``parts`` and ``total``
  are checked against the limits, and nothing is reserved: only bytes that
  arrive count against the pending space. After this nothing can expire
  during a long upload but the draft itself, at the start (00:00 UTC) of
  its ``expires`` day, one or two days later; unless no byte of it arrives
  within 30 minutes, when it lapses (``pending.FIRST_BYTE_SECONDS``).
* Each envelope goes up by tus (``tus.py``) into an upload of the draft.
* ``POST /submit/finish`` (form token, draft, receipt fields, the report's
  upload id and the attachments' in order) stores every part as one
  submission, or none, once all are whole and well-formed envelopes for the
  current reviewers; asked again with the same receipt it gives the same
  answer and stores nothing more, so a browser that lost the answer may ask.
  Finishes of one draft run one at a time, each holding every upload of
  the draft; uploads it does not name are thrown away.

``GET /form-token`` gives a fresh form token, so that a page whose token
expired renews it in place (app.py answers such a failure on these routes
with ``"renew_token": true``). Every answer is JSON, errors included
(``{"error": "..."}``): 400 malformed or refused, 404 unknown, 409 a part
not yet whole or a draft stored with another receipt, 410 expired or
lapsed, 413 over a report's limits, 423 an upload still being written or
the draft being stored (ask again), 429 too many unfinished drafts or no
pending space left (with ``Retry-After``), or the begin budget spent, 503
no key directory.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from contextlib import ExitStack, suppress
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import generate_csrf  # type: ignore[import-untyped]
from werkzeug.exceptions import HTTPException

from crypto.manifest import MAX_ATTACHMENTS
from portal.config import MIB, Config
from portal.storage import pending, pending_cleanup, pending_drafts, pending_locks, pending_uploads
from portal.storage.blobs import BlobStore
from portal.storage.disk import is_disk_full, open_quietly
from portal.storage.models import PartKind, Submission
from portal.storage.receipts import BadReceiptError, parse_browser_receipt, receipt_index
from portal.web.faults import StorageFullError
from portal.web.intake_checks import (
    budget_unless_refused,
    checked_proof,
    current_directory,
    portal_extensions,
    proof_held,
    settle_proof,
)
from portal.web.intake_store import (
    hold_blob_guard,
    release_blob_guard,
    store_submission,
    stored_before,
    undo_submission,
)
from portal.web.pow import SpentError
from portal.web.uploads import UploadRefusedError, check_stored_envelope

drafts = Blueprint("drafts", __name__)

#: how long a request waits for an older one to let go of an upload (then 423)
LOCK_WAIT = 3.0
#: seconds a browser refused for want of room is asked to wait (``Retry-After``)
RETRY_AFTER = 60
#: the global budget every draft opened draws on (``budget.py``), shared by everyone
BEGIN_BUDGET = "begin"
STILL_ARRIVING = _l(
    "Nothing was stored yet: a part of this report is still arriving. Ask again in a moment."
)
BUSY_BEGIN = _l(
    "Many reports are being started right now, so the portal asks everyone to wait a"
    " little. Nothing was stored: please try again in a few minutes."
)
NUMBER = re.compile(r"[0-9]{1,16}")
_RECEIPT_LABEL = b"cso-portal finished draft v1\n"

_STATUS = {
    pending.UnknownError: 404,
    pending.ExpiredError: 410,
    pending.FinishedError: 409,
    pending.OverLimitError: 413,
    pending.FullError: 429,
    pending.LockedError: 423,
}


class Refusal(HTTPException):
    """An answer other than success, in words for the reporter (sent as JSON by app.py).

    Used here and by ``tus.py``.
    """

    portal_message = True

    def __init__(self, code: int, message: Any) -> None:
        super().__init__(description=str(message))
        self.code = code


def pending_refusal(error: pending.PendingError) -> tuple[Response, int]:
    """A refusal from ``pending.py`` as a JSON answer with its status, in the request's language.

    A full portal (429) says when to ask again: room comes as other reports
    finish, so a browser asks every :data:`RETRY_AFTER` seconds.
    """
    # storage's messages are English, marked for the catalogs (``pending.N_``):
    # translated here, then filled in; one made here is in the right language already
    answer = jsonify({"error": _(str(error.message), **error.values)})
    if isinstance(error, pending.FullError):
        answer.headers["Retry-After"] = str(RETRY_AFTER)
    return answer, _STATUS.get(type(error), 400)


drafts.register_error_handler(pending.PendingError, pending_refusal)


def portal_config() -> Config:
    """The portal's settings."""
    settings: Config = portal_extensions()["config"]
    return settings


def places() -> tuple[Any, BlobStore, date]:
    """The runtime store's sessions, the blob store, and today (UTC)."""
    extensions = portal_extensions()
    return extensions["runtime"].sessions, extensions["blobs"], pending.today()


def lock_folder() -> Path:
    """Where the drafts' lock files are: beside the runtime store, on tmpfs."""
    folder: Path = portal_extensions()["runtime"].locks
    return folder


def http_date(day: date) -> str:
    """``day``'s start as an HTTP date (RFC 9110): expiry is a day, never a time of day."""
    return format_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC), usegmt=True)


# --- begin and finish ----------------------------------------------------------------


@drafts.get("/form-token")
def form_token() -> Response:
    """A fresh form token, so that a page whose token expired can renew it in place."""
    return jsonify({"csrf_token": generate_csrf()})


def _form_count(name: str, high: int, too_many: str) -> int:
    raw = request.form.get(name, "")
    if not NUMBER.fullmatch(raw) or int(raw) < 1:
        raise Refusal(
            400, _("Nothing was stored: say how many parts are coming and their total size.")
        )
    if int(raw) > high:
        raise Refusal(400, too_many)
    return int(raw)


@drafts.post("/submit/begin")
def begin() -> tuple[Response, int]:
    """Spend the proof of work on a new draft for ``parts`` envelopes of ``total`` bytes.

    The proof is held while the draft opens and spent once it has: of
    begins racing with one proof only one opens a draft, and one that fails
    leaves the proof good for the retry.
    """
    current_directory()
    limits = pending.Limits.of(portal_config())
    attachments = limits.max_parts - 1
    too_many = ngettext(
        "Nothing was stored: at most %(num)s attachment.",
        "Nothing was stored: at most %(num)s attachments.",
        attachments,
    )
    _form_count("parts", limits.max_parts, too_many)
    _form_count(  # checked early, never reserved: only bytes stored count (pending.py)
        "total", limits.max_total, _too_large(limits.max_total)
    )
    sessions, store, day = places()
    pending_cleanup.expire(sessions, store, day, lock_folder())
    if not pending_drafts.has_room(sessions, limits, day):  # before the proof is spent
        raise pending.FullError(pending.FULL)
    per_hour = portal_config().begins_per_hour
    # a bad proof, or one another send holds, costs no budget; a draft that
    # fails to open gives the proof back
    with budget_unless_refused(BEGIN_BUDGET, per_hour, BUSY_BEGIN):
        with proof_held(checked_proof("submit")) as held:
            draft_id, expires = pending_drafts.open_draft(sessions, limits, day)
    with suppress(SpentError):  # only if the hold lapsed meanwhile: the draft costs nothing
        settle_proof(held)
    return jsonify({"draft": draft_id, "expires": expires.isoformat()}), 201


def _receipt_key(locator: str, token: bytes) -> str:
    """What a stored draft keeps of its receipt: enough to know a repeat, nothing to use."""
    return hashlib.sha256(_RECEIPT_LABEL + locator.encode("ascii") + token).hexdigest()


def _finished(draft: pending.DraftState, receipt: str) -> tuple[Response, int]:
    """The answer to a finish of a draft already stored: the same one, if the receipt is."""
    if draft.receipt is None or not hmac.compare_digest(draft.receipt, receipt):
        raise pending.FinishedError(_("This report has been stored already, with another receipt."))
    return jsonify({"stored": True, "parts": draft.stored_parts}), 200


def _named_uploads() -> list[str]:
    """The upload ids the finish names: the report's first, then the attachments' in order."""
    reports = request.form.getlist("report")
    attachments = request.form.getlist("attachment")
    if len(reports) != 1:
        raise Refusal(400, _("Nothing was stored: a submission has exactly one encrypted report."))
    if len(attachments) > min(portal_config().max_attachments, MAX_ATTACHMENTS):
        raise Refusal(400, _("Nothing was stored: too many attachments."))
    named = reports + attachments
    if not all(pending.is_id(i) for i in named) or len(set(named)) != len(named):
        raise Refusal(400, _("Nothing was stored: the upload ids are malformed or repeated."))
    return named


@drafts.post("/submit/finish")
def finish() -> tuple[Response, int]:
    """Store a draft's uploads as one submission, all or nothing; repeat-safe.

    One finish of a draft runs at a time (its draft lock, which creating an
    upload takes too), and only once it holds every upload of the draft,
    named or not, so that no PATCH writes to a file it stores or forgets.
    """
    directory = current_directory()
    try:
        locator, token = parse_browser_receipt(
            request.form.get("receipt_locator", ""), request.form.get("receipt_token", "")
        )
    except BadReceiptError:
        raise Refusal(400, _("Nothing was stored: the receipt fields are missing.")) from None
    keys = [pending.key_of(i) for i in _named_uploads()]
    receipt = _receipt_key(locator, token)
    sessions, store, day = places()
    draft_id = request.form.get("draft", "")
    draft = pending_drafts.find_draft(sessions, draft_id, day)
    if draft.receipt is not None:
        return _finished(draft, receipt)
    with pending_locks.draft_lock(lock_folder(), draft.key, LOCK_WAIT), ExitStack() as locks:
        draft = pending_drafts.find_draft(sessions, draft_id, day)  # again, now that it is ours
        if draft.receipt is not None:
            return _finished(draft, receipt)
        known = pending_uploads.uploads_of(sessions, store, draft)
        if any(key not in known for key in keys):
            raise Refusal(
                400, _("Nothing was stored: an upload named here is not part of this draft.")
            )
        try:
            held = {s.key for s in pending_locks.lock_all(locks, list(known.values()), LOCK_WAIT)}
        except pending.LockedError:
            raise pending.LockedError(STILL_ARRIVING) from None
        # as they are, now that nobody can write
        known = pending_uploads.uploads_of(sessions, store, draft)
        parts = [known[key] for key in keys if key in known and key in held]
        if len(parts) != len(keys):
            raise pending.UnknownError(pending.UNKNOWN)
        _require_whole(parts)
        checked = [_checked(sessions, store, part, directory.recipients, n) for n, part in
                   enumerate(parts)]  # fmt: skip
        index = receipt_index(locator, token)
        count = stored_before(index, [digest for _, digest in checked])
        stored = None
        if count is None:
            stored = _commit(store, parts, checked, locator, index)
            count = len(stored.parts)
        try:
            leftovers = pending_drafts.mark_stored(sessions, store, draft, receipt, count)
        except pending.FinishedError:  # marked by another request after all: undo ours
            if stored is not None:
                undo_submission(stored)
            raise
        for state in leftovers:  # the named ones are blobs now; the others are thrown away
            if state.key in held:
                store.drop_partial(state.path, spare=state.spare)
    return jsonify({"stored": True, "parts": count}), 200


def _require_whole(parts: list[pending.UploadState]) -> None:
    """409 unless every part has arrived whole (they stay, and can be resumed).

    Whole, they hold no more than a report may (``pending_uploads.grant`` saw to
    it); checked here again, as the bound a stored report keeps to.
    """
    most = portal_config().max_upload_bytes
    if sum(part.length for part in parts) > most:
        raise pending.OverLimitError(_too_large(most))
    for number, part in enumerate(parts):
        stored = part.offset()
        if stored != part.length or part.checksum_from is not None:
            values = {"number": number, "stored": stored, "length": part.length}
            text = (
                _(
                    "Nothing was stored yet: the report has not arrived whole (%(stored)s of"
                    " %(length)s bytes). Send the rest, then finish again.",
                    **values,
                )
                if number == 0
                else _(
                    "Nothing was stored yet: attachment %(number)s has not arrived whole"
                    " (%(stored)s of %(length)s bytes). Send the rest, then finish again.",
                    **values,
                )
            )
            raise Refusal(409, text)


def _too_large(most: int) -> str:
    """The refusal of a report larger, with its attachments, than ``most`` bytes."""
    return _(
        "Nothing was stored: the report and its attachments together are larger than"
        " this portal accepts (%(size)s MiB).",
        size=most // MIB,
    )


def _checked(
    sessions: Any,
    store: BlobStore,
    part: pending.UploadState,
    recipients: frozenset[bytes],
    number: int,
) -> tuple[int, str]:
    """The size and SHA-256 of a whole envelope as stored; a bad one ends its upload (400)."""
    try:
        with open_quietly(part.path) as source:
            return check_stored_envelope(source, recipients)
    except UploadRefusedError as error:
        pending_uploads.drop(sessions, store, part)
        reason = str(error)
        text = (
            _("Nothing was stored: the report: %(reason)s.", reason=reason)
            if number == 0
            else _(
                "Nothing was stored: attachment %(number)s: %(reason)s.",
                number=number,
                reason=reason,
            )
        )
        raise Refusal(400, text) from None


def _commit(
    store: BlobStore,
    parts: list[pending.UploadState],
    checked: list[tuple[int, str]],
    locator: str,
    index: str,
) -> Submission:
    """Make every part a blob and record the submission; on failure no blob stays.

    The blob guard is held from before the first blob until the row is
    committed (``store_submission`` releases it), so a reconcile never takes
    these blobs for orphans. A crash between the two leaves orphans (and
    the partial files, from which the finish can be asked again).
    """
    hold_blob_guard()
    done: list[tuple[PartKind, str, int, str]] = []
    try:
        for number, (part, (size, digest)) in enumerate(zip(parts, checked, strict=True)):
            kind = PartKind.REPORT if number == 0 else PartKind.ATTACHMENT
            done.append((kind, store.adopt(part.path), size, digest))
    except BaseException as error:
        for _, name, _, _ in done:
            store.delete(name)
        release_blob_guard()
        if is_disk_full(error):
            raise StorageFullError() from None
        raise
    # removes the blobs itself if it fails; the partial files are still there
    return store_submission(done, locator=locator, index=index)
