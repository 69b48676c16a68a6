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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import ClientDisconnected

from crypto.header import MAX_STANZAS, header_length
from portal.config import MIB, Config
from portal.storage import pending
from portal.storage.blobs import BlobStore, day_start_ns
from portal.web.intake import current_directory
from portal.web.resumable import (
    LOCK_WAIT,
    NUMBER,
    Refusal,
    http_date,
    lock_folder,
    pending_refusal,
    places,
    portal_config,
)
from portal.web.uploads import HeaderCheck, UploadRefusedError, envelope_length_is_possible

tus = Blueprint("tus", __name__)
tus.register_error_handler(pending.PendingError, pending_refusal)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,expiration,termination,checksum"
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
#: bytes read at a time: what a dropped connection can lose of what reached the server
PIECE = 8192
#: a PATCH fsyncs what it has stored at least this often (seconds), and at its end
SYNC_EVERY = 1.0
MAX_METADATA = 4096
_METADATA_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,64}")  # printable, no space or comma


class Empty(Response):
    """An answer with no body, and so no ``Content-Type`` (it would describe nothing)."""

    default_mimetype = None


class _TooLongError(Exception):
    """A PATCH brought more bytes than the upload has room for."""


class _NoRoomError(Exception):
    """No room for the next piece: the PATCH stops. Holds the offset and the refusal."""


class _GoneError(Exception):
    """The upload's record vanished while its PATCH was writing."""


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


def _header_number(name: str) -> int:
    raw = request.headers.get(name, "")
    if not NUMBER.fullmatch(raw):
        raise Refusal(400, f"{name} must be a whole number of bytes.")
    return int(raw)


def _draft_in_metadata() -> str:
    """The draft id in ``Upload-Metadata``; every other key is ignored and never kept."""
    raw = request.headers.get("Upload-Metadata", "")
    if len(raw) > MAX_METADATA:
        raise Refusal(400, "Upload-Metadata is too long.")
    values: dict[str, bytes] = {}
    for pair in raw.split(",") if raw.strip() else []:
        fields = pair.strip().split(" ")
        if not _METADATA_KEY.fullmatch(fields[0]) or len(fields) > 2 or fields[0] in values:
            raise Refusal(400, "Upload-Metadata is malformed.")
        try:
            values[fields[0]] = base64.b64decode(fields[1], validate=True) if fields[1:] else b""
        except (binascii.Error, ValueError):
            raise Refusal(400, "Upload-Metadata values must be base64.") from None
    draft = values.get("draft", b"").decode("ascii", errors="replace")
    if not pending.is_id(draft):
        raise Refusal(400, "Upload-Metadata must name the draft that /submit/begin opened.")
    return draft


@tus.post("/uploads", provide_automatic_options=False)
def create() -> Response:
    """Make an upload of ``Upload-Length`` bytes in the draft ``Upload-Metadata`` names."""
    config = portal_config()
    if "Upload-Defer-Length" in request.headers:
        raise Refusal(400, "Say the upload's length (Upload-Length): it is known in advance.")
    length = _header_number("Upload-Length")
    if length > config.max_upload_bytes:
        most = config.max_upload_bytes // MIB
        raise Refusal(413, f"This upload is larger than this portal accepts ({most} MiB).")
    if request.content_length:
        raise Refusal(400, "Send the upload's bytes with PATCH; creating it takes none.")
    draft_id = _draft_in_metadata()
    if not envelope_length_is_possible(length, len(current_directory().recipients)):
        raise Refusal(
            400, "No envelope for the current reviewers is this long: reload the page, send again."
        )
    sessions, store, day = places()
    pending.expire(sessions, store, day, lock_folder())
    draft = pending.find_draft(sessions, draft_id, day)
    limits = pending.Limits.of(config)
    with pending.draft_lock(lock_folder(), draft.key, LOCK_WAIT):  # never while it is stored
        upload_id, expires = pending.add_upload(sessions, store, limits, draft_id, length, day)
    response = Empty(status=201)
    response.headers["Location"] = f"/uploads/{upload_id}"
    response.headers["Upload-Expires"] = http_date(expires)
    return response


@tus.route("/uploads/<upload_id>", methods=["HEAD"], provide_automatic_options=False)
def offset(upload_id: str) -> Response:
    """How many bytes of the upload are stored (also while a PATCH is still arriving)."""
    sessions, store, day = places()
    state = pending.find_upload(sessions, store, upload_id, day)
    try:
        stored = state.offset()
    except pending.UnknownError:
        pending.drop_if_free(sessions, store, state)  # a record whose file is gone
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
    state = pending.find_upload(sessions, store, upload_id, day)
    with pending.locked(state.path, LOCK_WAIT):
        pending.drop(sessions, store, state)
    return Empty(status=204)


def _checksum() -> tuple[str, bytes] | None:
    raw = request.headers.get("Upload-Checksum")
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise Refusal(400, "Upload-Checksum: this portal checks sha1 and sha256.")
    try:
        expected = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        expected = b""
    if len(expected) != CHECKSUMS[algorithm]().digest_size:
        raise Refusal(400, "Upload-Checksum is malformed.")
    return algorithm, expected


@tus.route("/uploads/<upload_id>", methods=["PATCH"], provide_automatic_options=False)
def append(upload_id: str) -> Response:
    """Store the body at ``Upload-Offset``, as it arrives."""
    if request.mimetype != "application/offset+octet-stream":
        raise Refusal(415, "Send the bytes as application/offset+octet-stream.")
    start = _header_number("Upload-Offset")
    checksum = _checksum()
    sessions, store, day = places()
    state = pending.find_upload(sessions, store, upload_id, day)
    with ExitStack() as held:
        held.enter_context(pending.patch_slot(lock_folder(), state.draft, LOCK_WAIT))
        fd = held.enter_context(pending.locked(state.path, LOCK_WAIT))
        state = pending.find_upload(sessions, store, upload_id, day)  # as it is now
        stored = _recover(sessions, state, fd)
        if start != stored:
            raise Refusal(409, f"The portal holds {stored} bytes of this upload: send from there.")
        declared = request.content_length
        if declared is not None and start + declared > state.length:
            raise Refusal(413, "This would make the upload longer than its Upload-Length.")
        room = _Room(sessions, state, start, need=0 if declared == 0 else 1)
        try:
            end = _receive(sessions, store, state, fd, start, checksum, room)
        finally:
            today = day_start_ns(time.time_ns())
            os.utime(fd, ns=(today, today))  # written to just now: back to the day
            store.restamp_soon(today)
            room.settle(os.fstat(fd).st_size)
    return Empty(status=204, headers={
        "Upload-Offset": str(end), "Upload-Expires": http_date(state.expires_on)})  # fmt: skip


class _Room:
    """The room a PATCH may fill, granted by ``pending.grant`` as its bytes arrive."""

    def __init__(self, sessions: Any, state: pending.UploadState, stored: int, need: int):
        self._sessions = sessions
        self._state = state
        self._limits = pending.Limits.of(portal_config())
        self.end = pending.grant(sessions, self._limits, state, stored, need)
        self._gone = False

    def renew(self, stored: int, need: int = 0) -> None:
        """``stored`` bytes are on disk: ask for room beyond, at least ``need`` bytes.

        Raises :class:`_GoneError` if the upload was forgotten, and
        :class:`_NoRoomError` if ``need`` bytes do not fit.
        """
        try:
            self.end = pending.grant(self._sessions, self._limits, self._state, stored, need)
        except pending.UnknownError:
            self._gone = True
            raise _GoneError from None
        except (pending.FullError, pending.OverLimitError) as refusal:
            raise _NoRoomError(stored, refusal) from None

    def settle(self, size: int) -> None:
        """The PATCH has ended: count only the bytes in the file."""
        if not self._gone:
            pending.settle(self._sessions, self._state, size)


def _recover(sessions: Any, state: pending.UploadState, fd: int) -> int:
    """Undo what a checksummed PATCH left if it never ended (a crash); the stored size."""
    if state.checksum_from is not None:
        os.ftruncate(fd, min(state.checksum_from, os.fstat(fd).st_size))
        os.fsync(fd)
        pending.set_checksum_from(sessions, state, None)
    return os.fstat(fd).st_size


def _receive(
    sessions: Any,
    store: BlobStore,
    state: pending.UploadState,
    fd: int,
    start: int,
    checksum: tuple[str, bytes] | None,
    room: _Room,
) -> int:
    """Append the request's body at ``start``; return the new offset, or refuse."""
    check = None
    if not state.header_checked:
        check = HeaderCheck(current_directory().recipients)
    digest = CHECKSUMS[checksum[0]]() if checksum else None
    if checksum:
        pending.set_checksum_from(sessions, state, start)
    refusal: pending.PendingError | None = None
    try:
        if check is not None:  # what earlier PATCHes stored of the header, checked again
            check.feed(os.pread(fd, min(start, header_length(MAX_STANZAS)), 0))
        pace = Pace.of(portal_config(), _expires_in(state.expires_on))
        received, whole = _copy_body(fd, start, state.length - start, check, digest, room, pace)
    except UploadRefusedError as error:  # junk, or not for these reviewers: the upload ends
        pending.drop(sessions, store, state)
        raise Refusal(400, f"Nothing was stored: {error}.") from None
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
        pending.set_checksum_from(sessions, state, None)
    if check is not None and check.accepted:
        pending.set_header_checked(sessions, state)
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
    pending.set_checksum_from(sessions, state, None)


def _copy_body(
    fd: int,
    start: int,
    length_left: int,
    check: HeaderCheck | None,
    digest: Any,
    room: _Room,
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


# --- how long a PATCH may hold a thread ----------------------------------------------


@dataclass(frozen=True)
class Pace:
    """When the portal ends the reading of a PATCH body (what arrived is kept).

    A body ends when no piece has arrived for ``idle`` seconds (a dead
    link); when fewer than ``min_rate`` bytes a second arrived over the last
    ``window`` seconds (a trickle: one piece dripped just inside the idle
    limit is far below the rate); or ``longest`` seconds after it began (at
    most until its upload expires). A real link that is up, even a shared
    64 kbit/s one, moves far more than the rate; a PATCH it holds longer
    than ``longest`` is simply followed by the next one, from the offset the
    first one stored.
    """

    idle: float
    min_rate: int
    window: float
    longest: float

    @classmethod
    def of(cls, config: Config, expires_in: float) -> Pace:
        """The pace ``config`` sets, for an upload that expires in ``expires_in`` seconds."""
        return cls(
            idle=config.upload_idle_seconds,
            min_rate=config.upload_min_rate,
            window=2.0 * config.upload_idle_seconds,
            longest=max(0.0, min(float(config.upload_patch_seconds), expires_in)),
        )

    @contextmanager
    def watch(self, sock: object) -> Iterator[Callable[[int], None]]:
        """Under gunicorn, end the body's reading when it breaks the pace.

        Yields "this many bytes arrived". The test client's bodies are all
        there at once and have no socket: nothing is watched.
        """
        if not isinstance(sock, socket.socket):
            yield lambda _count: None
            return
        watch = _BodyWatch(sock, self)
        try:
            yield watch.arrived
        finally:
            watch.stop()


class _BodyWatch:
    """Ends the reading of a request body once it breaks its :class:`Pace`.

    A read of the body blocks inside gunicorn until a whole piece is there,
    however slowly its bytes come, so only another thread can end it: a
    timer that, once the pace is broken, shuts the socket for reading. The
    read then returns what had arrived (nothing is lost) and the body ends
    short. The timer wakes at the next moment the pace could be broken, and
    a few times per ``window`` while bytes flow.
    """

    def __init__(self, sock: socket.socket, pace: Pace) -> None:
        self._sock = sock
        self._pace = pace
        now = time.monotonic()
        self._started = now
        self._last = now
        self._total = 0
        #: (when, bytes so far), from the last arrival at or before the window's start
        self._arrivals: deque[tuple[float, int]] = deque([(now, 0)])
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = self._arm(self._wait(now) or 0.0)

    def arrived(self, count: int) -> None:
        """``count`` bytes of the body arrived now."""
        now = time.monotonic()
        with self._lock:
            self._total += count
            self._last = now
            self._arrivals.append((now, self._total))
            self._forget_before(now - self._pace.window)

    def _forget_before(self, horizon: float) -> None:
        while len(self._arrivals) > 1 and self._arrivals[1][0] <= horizon:
            self._arrivals.popleft()

    def _wait(self, now: float) -> float | None:
        """Seconds until the pace is next looked at, or None: it is broken now."""
        pace = self._pace
        ends = self._started + pace.longest
        stalls = self._last + pace.idle
        if now >= ends or now >= stalls:
            return None
        rate_check = self._started + pace.window
        if now >= rate_check:
            self._forget_before(now - pace.window)
            if self._total - self._arrivals[0][1] < pace.min_rate * pace.window:
                return None
            rate_check = now + pace.window / 4
        return min(ends, stalls, rate_check) - now

    def _arm(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, self._check)
        timer.daemon = True
        timer.start()
        return timer

    def _check(self) -> None:
        with self._lock:
            if self._stopped:
                return
            wait = self._wait(time.monotonic())
            if wait is not None:
                self._timer = self._arm(wait)
                return
            self._stopped = True
            with suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)

    def stop(self) -> None:
        """The body has been read (or given up on): never touch the socket again."""
        with self._lock:
            self._stopped = True
            self._timer.cancel()
