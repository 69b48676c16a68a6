"""Writing a tus PATCH body into its partial file, as it arrives.

The route (``tus.py``) finds the upload and holds its locks; this module
undoes what a crashed checksummed PATCH left (:func:`recover`), asks for
room as bytes arrive (:class:`Room`), checks the envelope header the moment
its bytes come, and keeps a checksummed PATCH whole or not at all
(:func:`receive`). How long a body may take is :class:`Pace`'s business
(``upload_pace.py``).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from typing import Any

from flask import request
from werkzeug.exceptions import ClientDisconnected

from crypto.header import MAX_STANZAS, header_length
from portal.storage import pending, pending_uploads
from portal.storage.blobs import BlobStore
from portal.web.intake_checks import current_directory
from portal.web.resumable import Refusal, portal_config
from portal.web.tus_headers import CHECKSUMS
from portal.web.upload_pace import Pace
from portal.web.uploads import HeaderCheck, UploadRefusedError

#: bytes read at a time: what a dropped connection can lose of what reached the server
PIECE = 8192
#: a PATCH fsyncs what it has stored at least this often (seconds), and at its end
SYNC_EVERY = 1.0


class _TooLongError(Exception):
    """A PATCH brought more bytes than the upload has room for."""


class _NoRoomError(Exception):
    """No room for the next piece: the PATCH stops. Holds the offset and the refusal."""


class _GoneError(Exception):
    """The upload's record vanished while its PATCH was writing."""


class Room:
    """The room a PATCH may fill, granted by ``pending_uploads.grant`` as its bytes arrive."""

    def __init__(self, sessions: Any, state: pending.UploadState, stored: int, need: int):
        self._sessions = sessions
        self._state = state
        self._limits = pending.Limits.of(portal_config())
        self.end = pending_uploads.grant(sessions, self._limits, state, stored, need)
        self._gone = False

    def renew(self, stored: int, need: int = 0) -> None:
        """``stored`` bytes are on disk: ask for room beyond, at least ``need`` bytes.

        Raises :class:`_GoneError` if the upload was forgotten, and
        :class:`_NoRoomError` if ``need`` bytes do not fit.
        """
        try:
            self.end = pending_uploads.grant(
                self._sessions, self._limits, self._state, stored, need
            )
        except pending.UnknownError:
            self._gone = True
            raise _GoneError from None
        except (pending.FullError, pending.OverLimitError) as refusal:
            raise _NoRoomError(stored, refusal) from None

    def settle(self, size: int) -> None:
        """The PATCH has ended: count only the bytes in the file."""
        if not self._gone:
            pending_uploads.settle(self._sessions, self._state, size)


def recover(sessions: Any, state: pending.UploadState, fd: int) -> int:
    """Undo what a checksummed PATCH left if it never ended (a crash); the stored size."""
    if state.checksum_from is not None:
        os.ftruncate(fd, min(state.checksum_from, os.fstat(fd).st_size))
        os.fsync(fd)
        pending_uploads.set_checksum_from(sessions, state, None)
    return os.fstat(fd).st_size


def receive(
    sessions: Any,
    store: BlobStore,
    state: pending.UploadState,
    fd: int,
    start: int,
    checksum: tuple[str, bytes] | None,
    room: Room,
) -> int:
    """Append the request's body at ``start``; return the new offset, or refuse."""
    check = None
    if not state.header_checked:
        check = HeaderCheck(current_directory().recipients)
    digest = CHECKSUMS[checksum[0]]() if checksum else None
    if checksum:
        pending_uploads.set_checksum_from(sessions, state, start)
    refusal: pending.PendingError | None = None
    try:
        if check is not None:  # what earlier PATCHes stored of the header, checked again
            check.feed(os.pread(fd, min(start, header_length(MAX_STANZAS)), 0))
        pace = Pace.of(portal_config(), _expires_in(state.expires_on))
        received, whole = _copy_body(fd, start, state.length - start, check, digest, room, pace)
    except UploadRefusedError as error:  # junk, or not for these reviewers: the upload ends
        pending_uploads.drop(sessions, store, state)
        raise Refusal(400, error.sentence()) from None
    except _TooLongError:
        _truncate(sessions, state, fd, start)
        raise Refusal(413, "This would make the upload longer than its Upload-Length.") from None
    except _GoneError:  # forgotten meanwhile (stored or expired): no record names the file
        store.drop_partial(state.path, spare=state.spare)
        raise pending.UnknownError(pending.UNKNOWN) from None
    except _NoRoomError as stopped:
        received, whole, refusal = stopped.args[0] - start, False, stopped.args[1]
    if checksum and digest is not None and (not whole or digest.digest() != checksum[1]):
        _truncate(sessions, state, fd, start)
        if refusal is not None:
            raise refusal
        if whole:
            raise Refusal(460, "The bytes did not match Upload-Checksum: none of them were kept.")
        return start  # cut short: all or nothing, so nothing; the sender resumes from here
    os.fsync(fd)
    if checksum:
        pending_uploads.set_checksum_from(sessions, state, None)
    if check is not None and check.accepted:
        pending_uploads.set_header_checked(sessions, state)
    if refusal is not None:  # what came before is kept; HEAD says how much
        raise refusal
    # A body cut short (a reset, or a PATCH the portal ended) still gets 204 and the
    # offset stored: tus lets a server take less than was sent, and the sender, if it
    # is still there, goes on from that offset, as after any PATCH.
    return start + received


def _expires_in(day: date) -> float:
    """Seconds until the start of ``day`` (UTC), when the upload expires."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() - time.time()


def _truncate(sessions: Any, state: pending.UploadState, fd: int, start: int) -> None:
    """Throw away what this PATCH stored (all or nothing)."""
    os.ftruncate(fd, start)
    os.fsync(fd)
    pending_uploads.set_checksum_from(sessions, state, None)


def _copy_body(
    fd: int,
    start: int,
    length_left: int,
    check: HeaderCheck | None,
    digest: Any,
    room: Room,
    pace: Pace,
) -> tuple[int, bool]:
    """Write the body at ``start`` as it arrives; bytes written, and whether it came whole.

    Each piece is written before the next is read, and fsync'd at least
    every :data:`SYNC_EVERY` seconds, so a HEAD sees the offset grow and a
    dropped connection loses at most the piece in flight. At each fsync the
    upload's record must still exist (else :class:`_GoneError`: nothing more
    is written) and room is asked for beyond the bytes stored; a piece that
    does not fit ends the PATCH (:class:`_NoRoomError`).
    ``pace`` ends the reading of a body that is too slow or too long (see
    :class:`Pace`); what was stored stays, and the reporter's browser resumes.
    """
    received = 0
    synced = time.monotonic()
    with pace.watch(request.environ.get("gunicorn.socket")) as arrived:
        while True:
            try:
                piece = request.stream.read(PIECE)
            except (ClientDisconnected, OSError):
                return received, False  # a reset
            if not piece:
                break  # the end, or the watch ended the reading
            arrived(len(piece))
            if received + len(piece) > length_left:
                raise _TooLongError
            at = start + received
            if at + len(piece) > room.end:
                os.fsync(fd)
                synced = time.monotonic()
                room.renew(at, len(piece))
            if check is not None:  # only what is written: a header cut short is checked again
                check.feed(piece)
            _write_at(fd, piece, at)
            if digest is not None:
                digest.update(piece)
            received += len(piece)
            if time.monotonic() - synced >= SYNC_EVERY:
                os.fsync(fd)
                synced = time.monotonic()
                room.renew(start + received)
    declared = request.content_length
    return received, declared is None or received == declared


def _write_at(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
