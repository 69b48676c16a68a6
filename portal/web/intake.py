"""The anonymous intake: the report form and the two ways to send it.

* ``POST /submit``: the browser has encrypted the report and every attachment
  (crypto/SPEC.md §11); the server checks and stores ciphertext only.
* ``POST /submit-plain``: JavaScript is off. The server builds the same report
  JSON in memory, strips photo metadata in memory, encrypts every part to the
  reviewers at once and keeps only ciphertext. It answers ``303`` to
  ``/received``, which shows the receipt once (``form_keys.py``); anything
  the reporter can put right draws the form again, filled (``form_page.py``).
  Its routes are in ``plain_intake.py``, which builds on this module (never
  the other way round) and adds them to this blueprint; ``app.py`` imports
  it before the blueprint is registered.

Either way a submission is stored whole or not at all, under a random 128-bit
id, with only the day of arrival. Nothing about the sender is read or kept.
"""

from __future__ import annotations

import io
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, HTTPException, ServiceUnavailable, TooManyRequests

from crypto.envelope import Sealer
from crypto.errors import ManifestError
from crypto.manifest import MAX_ATTACHMENTS, AttachmentEntry, check_name, entry_for
from portal.storage.models import InboxEntry, Part, PartKind, Submission
from portal.storage.receipts import BadReceiptError, parse_browser_receipt, receipt_index
from portal.web import budget, pow
from portal.web.fields import BY_NAME, message, plain_attachment_limits, size_text
from portal.web.form_page import report_page
from portal.web.report import InvalidReportError, check_value
from portal.web.request import MemoryUpload, PortalRequest
from portal.web.reviewers import CurrentDirectory, NoDirectoryError
from portal.web.scrub import ScrubError, scrub
from portal.web.uploads import EnvelopeUpload, UploadRefusedError

intake = Blueprint("intake", __name__)
#: a committed blob: what it carries, its name, its size and its SHA-256
StoredPart = tuple[PartKind, str, int, str]


class RefusedError(BadRequest):
    """A 400 whose description is written for the reporter."""

    portal_message = True


class BusyError(TooManyRequests):
    """A 429: a global budget is spent; the description is written for the reporter."""

    portal_message = True


def portal_extensions() -> dict[str, Any]:
    """What create_app set up: config, sessions, blob store, key directory cache."""
    extensions: dict[str, Any] = current_app.extensions["portal"]
    return extensions


def current_directory() -> CurrentDirectory:
    """The verified key directory now in force, or 503 (logged) when there is none."""
    cache = portal_extensions()["directory"]
    try:
        if cache is None:
            raise NoDirectoryError("no organisation key is configured")
        return cache.current()  # type: ignore[no-any-return]
    except NoDirectoryError as error:
        current_app.logger.error("cannot accept reports: %s", error)
        raise ServiceUnavailable() from None


@intake.get("/")
def form() -> Response:
    """The report form: step 1 picks the category, step 2 (``?category=…``) asks about it.

    Works with and without JavaScript; see ``portal/web/form_page.py``.
    """
    category = request.args.get("category")
    if category is None:
        return report_page(portal_extensions(), step="category")
    try:
        check_value(BY_NAME["category"], [category])
    except InvalidReportError as problem:  # unknown or missing: step 1 again, saying why
        lead = "Please choose the kind of incident from the list."
        return report_page(
            portal_extensions(), step="category", problems=[problem], lead=lead, status=400
        )
    return report_page(portal_extensions(), step="details", category=category)


@intake.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for one on every visit; an empty answer costs no bandwidth."""
    return Response(status=204)


@intake.get("/keys/directory.json")
def key_directory() -> Response:
    """The signed key directory, exactly as the organisation signed it."""
    raw = current_directory().raw
    return Response(raw, mimetype="application/json")


@intake.get("/pow")
def proof_of_work() -> Response:
    """A fresh anti-spam puzzle for a submission or a follow-up message."""
    purpose = request.args.get("for", "")
    if purpose not in pow.PURPOSES:
        raise RefusedError("Ask for a puzzle for 'submit' or 'followup'.")
    with portal_extensions()["runtime"].sessions() as session:
        puzzle = pow.issue(session, portal_extensions()["config"], purpose)
    return jsonify({"puzzle": puzzle, "bits": pow.puzzle_bits(puzzle)})


def require_proof(purpose: str) -> None:
    """Spend the request's proof of work for ``purpose``, or refuse with 400."""
    try:
        proof = request.form.get("proof", "")
        runtime = portal_extensions()["runtime"].sessions
        pow.spend(runtime, portal_extensions()["config"], purpose, proof)
    except pow.ProofError:
        raise RefusedError(
            "Nothing was stored: the anti-spam check was missing, expired, already used, "
            "or too easy for the traffic the portal has now. Please send again."
        ) from None


def require_budget(name: str, per_hour: int, message: str) -> None:
    """Draw on the global budget ``name``, or answer 429 with ``message``."""
    if not budget.take(portal_extensions()["runtime"].sessions, name, per_hour):
        raise BusyError(message)


@contextmanager
def budget_unless_refused(name: str, per_hour: int, message: str) -> Iterator[None]:
    """Draw on budget ``name`` for the block, and give the token back if it refuses.

    For a check that can only be made after drawing (is a follow-up's
    receipt right?): a request refused there (4xx) stores nothing, so it
    spends nothing. A server fault keeps the token; the work was done.
    """
    require_budget(name, per_hour, message)
    try:
        yield
    except HTTPException as error:
        if error.code is not None and error.code < 500:
            budget.give_back(portal_extensions()["runtime"].sessions, name, per_hour)
        raise


def store_submission(
    parts: Sequence[StoredPart],
    *,
    locator: str = "",
    index: str | None = None,
    thread_id: str | None = None,
) -> Submission:
    """Record committed blobs as one submission; remove them all if that fails.

    A report has a receipt locator and index (:func:`receipt_index`); a
    follow-up message has neither, only the id of the report it follows.
    """
    submission = Submission(
        id=secrets.token_hex(16),
        received_on=datetime.now(UTC).date(),  # the day only, never the time
        receipt_locator=locator,
        receipt_hash="",  # only reports filed before the index have one
        receipt_index=index,
        thread_id=thread_id,
        parts=[
            Part(position=i, kind=kind, blob=name, size=size, sha256=digest)
            for i, (kind, name, size, digest) in enumerate(parts)
        ],
        inbox=InboxEntry(),
    )
    try:
        with portal_extensions()["sessions"].begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Sequence values are taken at insert but become visible at
                # commit; serialising inserts keeps the two orders equal, so an
                # export's cursor never passes a submission still committing.
                session.execute(text("LOCK TABLE inbox_entry IN SHARE ROW EXCLUSIVE MODE"))
            session.add(submission)
    except BaseException:
        _discard(parts)
        raise
    return submission


def undo_submission(submission: Submission) -> None:
    """Remove a submission this request stored, its rows and then its blobs.

    For a request that finds, after committing, that another one stored the
    same report (a resumable draft finished twice, a no-JavaScript form taken
    over): one copy is kept.
    """
    with portal_extensions()["sessions"].begin() as session:
        row = session.get(Submission, submission.id)
        if row is not None:
            session.delete(row)
    for part in submission.parts:
        portal_extensions()["blobs"].delete(part.blob)


def _discard(parts: Sequence[StoredPart]) -> None:
    """Remove blobs already committed for a submission that is not kept."""
    for _, name, _, _ in parts:
        portal_extensions()["blobs"].delete(name)


def check_all(uploads: Sequence[tuple[PartKind, EnvelopeUpload]]) -> None:
    """Refuse the request (400) unless every part is a whole envelope; commit nothing."""
    try:
        for _, upload in uploads:
            upload.check()
    except UploadRefusedError as error:
        for _, upload in uploads:
            upload.discard()
        raise RefusedError(f"Nothing was stored: {error}.") from None


def finish_all(
    uploads: Sequence[tuple[PartKind, EnvelopeUpload]],
) -> list[StoredPart]:
    """Commit every uploaded envelope, or none of them."""
    check_all(uploads)
    done: list[StoredPart] = []
    try:
        for kind, upload in uploads:
            done.append((kind, upload.finish(), upload.size, upload.sha256))
    except UploadRefusedError as error:
        _discard(done)
        for _, upload in uploads:
            upload.discard()
        raise RefusedError(f"Nothing was stored: {error}.") from None
    return done


@intake.post("/submit")
def submit_encrypted() -> Response:
    """Store a submission the browser encrypted: the report and its attachments."""
    current_directory()
    require_proof("submit")
    try:
        locator, token = parse_browser_receipt(
            request.form.get("receipt_locator", ""), request.form.get("receipt_token", "")
        )
    except BadReceiptError:
        raise RefusedError("Nothing was stored: the receipt fields are missing.") from None
    reports = request.files.getlist("report")
    attachments = request.files.getlist("attachment")
    if len(reports) != 1:
        raise RefusedError("Nothing was stored: a submission has exactly one encrypted report.")
    if len(attachments) > min(portal_extensions()["config"].max_attachments, MAX_ATTACHMENTS):
        raise RefusedError("Nothing was stored: too many attachments.")
    uploads = [(PartKind.REPORT, envelope_part(reports[0]))]
    uploads += [(PartKind.ATTACHMENT, envelope_part(a)) for a in attachments]
    done = finish_all(uploads)
    submission = store_submission(done, locator=locator, index=receipt_index(locator, token))
    return jsonify({"stored": True, "parts": len(submission.parts)})


def envelope_part(storage: FileStorage) -> EnvelopeUpload:
    """The checked envelope sink behind an uploaded part, or 400 if it was not a file."""
    stream = storage.stream
    if not isinstance(stream, EnvelopeUpload):
        raise RefusedError("Nothing was stored: the upload was not sent as a file.")
    return stream


@contextmanager
def plain_files() -> Iterator[tuple[list[FileStorage], list[InvalidReportError]]]:
    """The no-JavaScript form's files, held in memory and wiped when the view is done.

    With them come the problems found without reading them: too many files,
    a file dropped at the per-file limit, or files together over the total
    (``portal/web/request.py`` drops them as they arrive). Sending without JavaScript
    skips the proof of work, so each view draws on its global budget, but
    only once everything cheap to check has passed, the scrub of every
    attachment included: junk must not spend what honest senders need.
    """
    config = portal_extensions()["config"]
    files = [f for f in request.files.getlist("attachments") if f.filename]
    buffers = [f.stream for f in files if isinstance(f.stream, MemoryUpload)]
    problems = []
    try:
        count = min(config.max_attachments, MAX_ATTACHMENTS)
        if len(files) > count:
            problems.append(_attachment_problem("too_many_files", max_count=count))
        per_file, total, _ = plain_attachment_limits(
            config.max_upload_bytes, config.max_plain_upload_bytes
        )
        for index, storage in enumerate(files, start=1):
            if getattr(storage.stream, "overflowed", False):  # see portal/web/request.py
                limit = size_text(per_file)
                problems.append(_attachment_problem("file_too_large", index=index, limit=limit))
        pool = request.memory_pool if isinstance(request, PortalRequest) else None
        if pool is not None and pool.overflowed:
            problems.append(_attachment_problem("total_too_large", limit=size_text(total)))
        yield files, problems
    finally:
        for buffer in buffers:
            buffer.wipe()


@contextmanager
def plain_attachments() -> Iterator[list[FileStorage]]:
    """:func:`plain_files`, refusing the request (400) at the first problem."""
    with plain_files() as (files, problems):
        if problems:
            raise RefusedError(f"Nothing was stored. {problems[0]}.")
        yield files


def _attachment_problem(key: str, **values: Any) -> InvalidReportError:
    return InvalidReportError(message(key, **values), "attachments", key)


def scrub_files(
    files: Sequence[FileStorage],
) -> tuple[list[AttachmentEntry], list[bytes], list[InvalidReportError]]:
    """Clean each plaintext file in memory: manifest entries, cleaned bytes, problems.

    Cheap enough to run before any budget is drawn (``scrub.py`` bounds its
    work by the file's size), and a damaged photo is refused here, so junk
    attachments spend nothing. Every damaged file is named, not only the first.
    """
    entries, cleaned, problems = [], [], []
    for index, storage in enumerate(files, start=1):
        data = (
            bytes(storage.stream.getbuffer()) if isinstance(storage.stream, MemoryUpload) else b""
        )
        try:
            result = scrub(data, storage.mimetype or "application/octet-stream")
        except ScrubError:
            problems.append(_attachment_problem("damaged_image", index=index))
            continue
        name = _attachment_name(storage.filename, index)
        entries.append(entry_for(index, name, result.media_type, result.data, result.scrubbed))
        cleaned.append(result.data)
    return entries, cleaned, problems


def scrub_attachments(files: Sequence[FileStorage]) -> tuple[list[AttachmentEntry], list[bytes]]:
    """:func:`scrub_files`, refusing the request (400) at the first damaged file."""
    entries, cleaned, problems = scrub_files(files)
    if problems:
        raise RefusedError(f"Nothing was stored. {problems[0]}.")
    return entries, cleaned


def _attachment_name(filename: str | None, index: int) -> str:
    """The file's own name if it is a plain one (SPEC §11.1), else a neutral one."""
    candidate = unicodedata.normalize(
        "NFC", (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    )
    try:
        return check_name(candidate)
    except ManifestError:
        return f"attachment-{index}"


def seal_and_store(
    parts: Sequence[tuple[PartKind, bytes]],
    recipients: Sequence[bytes],
    **where: Any,
) -> Submission:
    """Encrypt each part into a blob, then record the submission; all or nothing."""
    done: list[StoredPart] = []
    try:
        for kind, plaintext in parts:
            with portal_extensions()["blobs"].writer() as pending:
                Sealer(recipients).seal_stream(io.BytesIO(plaintext), pending)
            done.append((kind, pending.name, pending.size, pending.sha256))
    except BaseException:
        _discard(done)
        raise
    return store_submission(done, **where)
