"""tus 1.0.0 for resumable uploads of envelopes (https://tus.io/protocols/resumable-upload).

The subset the portal speaks: core, creation, expiration, termination and
checksum (sha1, sha256). ``POST /uploads`` with ``Upload-Length`` and
``Upload-Metadata: draft <base64>`` makes an upload in a draft that
``/submit/begin`` opened (``resumable.py``); ``PATCH /uploads/<id>``
appends from ``Upload-Offset``; ``HEAD`` says how many bytes are stored;
``DELETE`` throws the upload away; ``OPTIONS /uploads`` says what the server
does. Upload ids are 128-bit capabilities, so these routes take no form
token. Other metadata keys are ignored and never kept.

Every answer carries ``Tus-Resumable``; answers without a body carry no
``Content-Type``; errors are JSON. Status codes besides success: 400
malformed, or refused (junk first bytes end the upload), 404 unknown, 405 a
method tus does not use here (``OPTIONS`` is asked of ``/uploads`` only),
409 offset mismatch, 410 expired or lapsed, 412 not tus 1.0.0, 413 over a
limit, 415 a PATCH of another type, 423 an older PATCH still holds the
upload, or two PATCHes already send to the draft, or it is being stored
(ask HEAD, resume), 429 the pending space is full (what arrived is kept;
``Retry-After`` says when to ask again), 460 checksum mismatch, 503 no key
directory.

A PATCH stores as it reads, in pieces, so that a HEAD meanwhile sees the
bytes arrive, and a connection that drops keeps what arrived before it
(without ``Upload-Checksum``; with one, a PATCH is kept whole or not at
all). So that no PATCH holds a thread for long, the portal ends one, keeping
what came, when no whole piece (8 KiB) has arrived for
``PORTAL_UPLOAD_IDLE_SECONDS``, when fewer than ``PORTAL_UPLOAD_MIN_RATE``
bytes a second arrived over the last twice that, after
``PORTAL_UPLOAD_PATCH_SECONDS`` in all, or when its upload expires. A body
that ends short any of these ways is answered 204 with the offset stored,
as tus allows: a sender still there goes on from it. At most two PATCHes
send to one draft's uploads at once. The first bytes are checked as an
envelope header for the current reviewers the moment they arrive
(``uploads.py``).

This module has the routes; ``tus_headers.py`` reads and writes the
protocol's headers, ``tus_patch.py`` writes a PATCH body into its partial
file and ``upload_pace.py`` ends a body that comes too slowly.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack

from flask import Blueprint, Response, request
from flask_babel import gettext as _

from portal.config import MIB
from portal.storage import pending, pending_cleanup, pending_drafts, pending_locks, pending_uploads
from portal.storage.disk import day_start_ns
from portal.web import tus_headers, tus_patch
from portal.web.intake_checks import current_directory
from portal.web.resumable import (
    LOCK_WAIT,
    Refusal,
    http_date,
    lock_folder,
    pending_refusal,
    places,
    portal_config,
)
from portal.web.tus_headers import CHECKSUMS, TUS_EXTENSIONS, TUS_VERSION, Empty
from portal.web.uploads import envelope_length_is_possible

tus = Blueprint("tus", __name__)
tus.register_error_handler(pending.PendingError, pending_refusal)


@tus.before_request
def _speaks_tus() -> None:
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Refusal(412, "This portal speaks tus 1.0.0: send Tus-Resumable: 1.0.0.")


@tus.after_request
def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if response.status_code == 412:
        response.headers["Tus-Version"] = TUS_VERSION
    return response


@tus.route("/uploads", methods=["OPTIONS"], provide_automatic_options=False)
def capabilities() -> Response:
    """What this tus server does."""
    return Empty(
        status=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(portal_config().max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


@tus.post("/uploads", provide_automatic_options=False)
def create() -> Response:
    """Make an upload of ``Upload-Length`` bytes in the draft ``Upload-Metadata`` names."""
    config = portal_config()
    if "Upload-Defer-Length" in request.headers:
        raise Refusal(400, "Say the upload's length (Upload-Length): it is known in advance.")
    length = tus_headers.header_number("Upload-Length")
    if length > config.max_upload_bytes:
        most = config.max_upload_bytes // MIB
        raise Refusal(
            413, _("This upload is larger than this portal accepts (%(size)s MiB).", size=most)
        )
    if request.content_length:
        raise Refusal(400, "Send the upload's bytes with PATCH; creating it takes none.")
    draft_id = tus_headers.draft_in_metadata()
    if not envelope_length_is_possible(length, len(current_directory().recipients)):
        raise Refusal(
            400,
            _("No envelope for the current reviewers is this long: reload the page, send again."),
        )
    sessions, store, day = places()
    pending_cleanup.expire(sessions, store, day, lock_folder())
    draft = pending_drafts.find_draft(sessions, draft_id, day)
    limits = pending.Limits.of(config)
    with pending_locks.draft_lock(lock_folder(), draft.key, LOCK_WAIT):  # never while it is stored
        upload_id, expires = pending_uploads.add_upload(
            sessions, store, limits, draft_id, length, day
        )
    response = Empty(status=201)
    response.headers["Location"] = f"/uploads/{upload_id}"
    response.headers["Upload-Expires"] = http_date(expires)
    return response


@tus.route("/uploads/<upload_id>", methods=["HEAD"], provide_automatic_options=False)
def offset(upload_id: str) -> Response:
    """How many bytes of the upload are stored (also while a PATCH is still arriving)."""
    sessions, store, day = places()
    state = pending_uploads.find_upload(sessions, store, upload_id, day)
    try:
        stored = state.offset()
    except pending.UnknownError:
        pending_uploads.drop_if_free(sessions, store, state)  # a record whose file is gone
        raise
    headers = {
        "Upload-Offset": str(stored),
        "Upload-Length": str(state.length),
        "Upload-Expires": http_date(state.expires_on),
        "Cache-Control": "no-store",
    }
    return Empty(status=200, headers=headers)


@tus.route("/uploads/<upload_id>", methods=["DELETE"], provide_automatic_options=False)
def terminate(upload_id: str) -> Response:
    """Throw the upload away (termination)."""
    sessions, store, day = places()
    state = pending_uploads.find_upload(sessions, store, upload_id, day)
    with pending_locks.locked(state.path, LOCK_WAIT):
        pending_uploads.drop(sessions, store, state)
    return Empty(status=204)


@tus.route("/uploads/<upload_id>", methods=["PATCH"], provide_automatic_options=False)
def append(upload_id: str) -> Response:
    """Store the body at ``Upload-Offset``, as it arrives."""
    if request.mimetype != "application/offset+octet-stream":
        raise Refusal(415, "Send the bytes as application/offset+octet-stream.")
    start = tus_headers.header_number("Upload-Offset")
    checksum = tus_headers.expected_checksum()
    sessions, store, day = places()
    state = pending_uploads.find_upload(sessions, store, upload_id, day)
    with ExitStack() as held:
        held.enter_context(pending_locks.patch_slot(lock_folder(), state.draft, LOCK_WAIT))
        fd = held.enter_context(pending_locks.locked(state.path, LOCK_WAIT))
        state = pending_uploads.find_upload(sessions, store, upload_id, day)  # as it is now
        stored = tus_patch.recover(sessions, state, fd)
        if start != stored:
            raise Refusal(
                409,
                _(
                    "The portal holds %(stored)s bytes of this upload: send from there.",
                    stored=stored,
                ),
            )
        declared = request.content_length
        if declared is not None and start + declared > state.length:
            raise Refusal(413, "This would make the upload longer than its Upload-Length.")
        room = tus_patch.Room(sessions, state, start, need=0 if declared == 0 else 1)
        try:
            end = tus_patch.receive(sessions, store, state, fd, start, checksum, room)
        finally:
            today = day_start_ns(time.time_ns())
            os.utime(fd, ns=(today, today))  # written to just now: back to the day
            store.restamp_soon(today)
            room.settle(os.fstat(fd).st_size)
    return Empty(status=204, headers={
        "Upload-Offset": str(end), "Upload-Expires": http_date(state.expires_on)})  # fmt: skip
