"""Storing a submission whole or not at all: its blobs first, then its row.

Every intake path ends here. The parts' ciphertext is committed to blobs
(``portal/storage/blobs.py``), then one row records the submission, under a
random 128-bit id with only the day of arrival. A request holds the blob
guard from before its first blob is committed until its row is (see
``portal/storage/blob_locks.py``), so the reconcile never takes its blobs
for orphans; whatever is surely not stored is removed again. A disk that
fills on the way answers 507.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import g
from flask_babel import gettext
from sqlalchemy import select, text
from werkzeug.datastructures import FileStorage

from crypto.envelope import Sealer
from portal.storage.disk import is_disk_full
from portal.storage.models import InboxEntry, Part, PartKind, Submission
from portal.web.faults import StorageFullError
from portal.web.intake_checks import RefusedError, portal_extensions
from portal.web.uploads import EnvelopeUpload, UploadRefusedError

#: a committed blob: what it carries, its name, its size and its SHA-256
StoredPart = tuple[PartKind, str, int, str]


def hold_blob_guard() -> None:
    """Keep the reconcile away from this request's blobs until its row is committed.

    Taken before the first blob is committed; :func:`store_submission`
    releases it (see ``portal/storage/blob_locks.py``).
    """
    if g.get("blob_guard") is None:
        g.blob_guard = portal_extensions()["blobs"].guard()


def release_blob_guard() -> None:
    """Let the reconcile run again; safe to repeat."""
    guard = g.pop("blob_guard", None)
    if guard is not None:
        guard.release()


def store_submission(
    parts: Sequence[StoredPart],
    *,
    locator: str = "",
    index: str | None = None,
    thread_id: str | None = None,
) -> Submission:
    """Record committed blobs as one submission; remove them all if it is surely not stored.

    A report has a receipt locator and index (:func:`receipt_index`); a
    follow-up message has neither, only the id of the report it follows.
    A commit that fails may still have been made (the connection dropped as
    it was acknowledged): the row is then looked for, and if it is there the
    submission counts as stored. If that cannot be told either, the blobs
    stay for the reconcile (``portal/storage/reconcile.py``) to remove if no
    row names them, and the error goes on (503).
    """
    hold_blob_guard()
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
    committing = False
    try:
        with portal_extensions()["sessions"].begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Sequence values are taken at insert but become visible at
                # commit; serialising inserts keeps the two orders equal, so an
                # export's cursor never passes a submission still committing.
                session.execute(text("LOCK TABLE inbox_entry IN SHARE ROW EXCLUSIVE MODE"))
            session.add(submission)
            session.flush()
            committing = True  # what fails from here on may have been committed
    except BaseException:
        stored = _is_stored(submission.id) if committing else False
        if stored:
            return submission
        if stored is False:
            _discard(parts)
        raise
    finally:
        release_blob_guard()
    return submission


def _is_stored(submission_id: str) -> bool | None:
    """Whether the submission's row exists; None if the database cannot say."""
    try:
        with portal_extensions()["sessions"]() as session:
            return session.get(Submission, submission_id) is not None
    except Exception:
        return None


def stored_before(index: str, digests: Sequence[str]) -> int | None:
    """How many parts this very report has if it is stored already, else None.

    A request that stored a report and then failed before answering (a
    worker killed, a connection dropped) must not store it again when sent
    a second time: the same receipt and the same ciphertext, part for part,
    mean the same report.
    """
    with portal_extensions()["sessions"]() as session:
        candidates = session.scalars(
            select(Submission).where(
                Submission.receipt_index == index, Submission.thread_id.is_(None)
            )
        )
        for submission in candidates:
            if [part.sha256 for part in submission.parts] == list(digests):
                return len(digests)
    return None


def undo_submission(submission: Submission) -> None:
    """Remove a submission this request stored, its rows and then its blobs.

    For a request that finds, after committing, that another one stored the
    same report (a resumable draft finished twice, a no-JavaScript form taken
    over, a proof of work spent by another send): one copy is kept.
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
        raise RefusedError(error.sentence()) from None


def finish_all(
    uploads: Sequence[tuple[PartKind, EnvelopeUpload]],
) -> list[StoredPart]:
    """Commit every uploaded envelope, or none of them.

    Holds the blob guard from before the first commit; :func:`store_submission`
    releases it. A disk that fills as the blobs are committed answers 507.
    """
    check_all(uploads)
    hold_blob_guard()
    done: list[StoredPart] = []
    try:
        for kind, upload in uploads:
            done.append((kind, upload.finish(), upload.size, upload.sha256))
    except BaseException as error:
        _discard(done)
        for _, upload in uploads:
            upload.discard()
        release_blob_guard()
        if isinstance(error, UploadRefusedError):
            raise RefusedError(error.sentence()) from None
        if is_disk_full(error):
            raise StorageFullError() from None
        raise
    return done


def envelope_part(storage: FileStorage) -> EnvelopeUpload:
    """The checked envelope sink behind an uploaded part, or 400 if it was not a file."""
    stream = storage.stream
    if not isinstance(stream, EnvelopeUpload):
        raise RefusedError(gettext("Nothing was stored: the upload was not sent as a file."))
    return stream


def seal_and_store(
    parts: Sequence[tuple[PartKind, bytes]],
    recipients: Sequence[bytes],
    **where: Any,
) -> Submission:
    """Encrypt each part into a blob, then record the submission; all or nothing."""
    hold_blob_guard()
    done: list[StoredPart] = []
    try:
        for kind, plaintext in parts:
            with portal_extensions()["blobs"].writer() as pending:
                Sealer(recipients).seal_stream(io.BytesIO(plaintext), pending)
            done.append((kind, pending.name, pending.size, pending.sha256))
    except BaseException as error:
        _discard(done)
        release_blob_guard()
        if is_disk_full(error):
            raise StorageFullError() from None
        raise
    return store_submission(done, **where)
