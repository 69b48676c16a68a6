"""Drafts and partial uploads: the bookkeeping behind resumable sending.

A browser on a satellite link sends a report in steps (``resumable.py``):
``/submit/begin`` spends its proof of work and opens a *draft*; each sealed
envelope then arrives by tus into a *partial upload*, in as many pieces and
over as many connections as the link needs; ``/submit/finish`` stores all
of them as one submission, or none. This module keeps the books.

* Records of drafts and uploads live in the volatile runtime store
  (``runtime.py``), each with the UTC *day* it expires. Their ids are
  128-bit capabilities; the store keeps only a hash of each.
* Bytes are ciphertext only, in partial files in a directory beside the
  blobs (``BlobStore.partial``), taken from the spare pool and dated to the
  day like blobs (``blobs.py``). A partial file's name begins with its
  expiry day, so that the daily purge, which cannot see the runtime store
  (it runs in a sandbox of its own), knows when the file may go.
* Bounds. A draft has at most ``max_parts`` uploads (and
  :data:`SPARE_UPLOADS` more, made again by a browser that never got the
  answer to its first try; past that, such empty uploads are thrown away),
  and its uploads hold at most ``max_total`` bytes together. Unfinished
  drafts are at most ``pending_drafts``; their partial files hold at most
  ``pending_bytes`` between them. Only bytes *stored* count, never bytes
  declared: a PATCH is granted room as its bytes arrive (:func:`grant`, at
  most :data:`GRANT` ahead of them), so that declaring a large upload and
  sending nothing holds nothing. When there is no room, the PATCH is
  refused (429) and what arrived stays; the browser tries again later.
* Lapse: a draft that has received no byte :data:`FIRST_BYTE_SECONDS` after
  it began lapses and is removed, so that drafts nothing is sent to cannot
  hold ``pending_drafts`` for days. That moment is the one time the store
  holds for a draft, and only until its first byte arrives.
* Expiry: a draft and its uploads expire at the start of the second UTC day
  after the day it began, 24 to 48 hours later. Expired or lapsed uploads,
  and partial files that no record names (the runtime store was lost in a
  restart), are removed when the portal starts (:func:`tidy`), whenever an
  upload or draft is made (:func:`expire`) and by the daily purge
  (:func:`purge_files`).
* Locks, all ``flock``, so that a crashed worker holds none:
  whichever request changes a partial file holds its lock (:func:`locked`);
  a finish holds its draft's lock (:func:`draft_lock`), which creating an
  upload also takes, and then every upload's; a PATCH holds one of
  :data:`PATCHES_PER_DRAFT` slots of its draft (:func:`patch_slot`). The
  drafts' lock files are empty files in the runtime directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from crypto.manifest import MAX_ATTACHMENTS
from portal.config import MIB, Config
from portal.storage.blobs import BlobStore
from portal.storage.runtime import Draft, PendingUpload

#: a draft expires at the start of this many UTC days after the day it began
LIFETIME_DAYS = 2
#: a draft that has received no byte this many seconds after it began lapses
FIRST_BYTE_SECONDS = 30 * 60
#: uploads a draft may make beyond its parts: ones made again because the answer
#: to the first try was lost (never named at finish, they hold nothing)
SPARE_UPLOADS = 2
#: the most room a PATCH is granted beyond the bytes it has stored; it asks for
#: more as they arrive, so a slow PATCH never holds much that it has not sent
GRANT = 4 * MIB
#: PATCHes to one draft's uploads at once; another one waits briefly, then 423
PATCHES_PER_DRAFT = 2
_ID = re.compile(r"[0-9a-f]{32}")
_FILE = re.compile(r"([0-9]{8})-[0-9a-f]{32}")
_LOCK_FILE = re.compile(r"([0-9a-f]{64})(\.[0-9])?")
_KEY_LABEL = b"cso-portal pending v1\n"
_NO_ATIME = getattr(os, "O_NOATIME", 0)


class PendingError(Exception):
    """A draft or upload cannot be used as asked; the message is safe to show."""


class UnknownError(PendingError):
    """No such draft or upload: never made, removed, or stored already."""


class ExpiredError(PendingError):
    """The draft or upload has expired, or lapsed before its first byte."""


class FinishedError(PendingError):
    """The draft has been stored already."""


class OverLimitError(PendingError):
    """An upload would take a draft past its own limits."""


class FullError(PendingError):
    """Unfinished uploads already hold all the room the portal gives them."""


class LockedError(PendingError):
    """Another request is using the upload, or the draft."""


UNKNOWN = "The portal does not know this upload: it was removed or has expired."
EXPIRED = (
    "This upload has expired: unfinished uploads are kept until the start of the second"
    " day (UTC) after they began. Nothing was stored."
)
LAPSED = (
    f"Nothing arrived for this report within {FIRST_BYTE_SECONDS // 60} minutes of its"
    " start, so the portal let it go. Nothing was stored: please send it again."
)
FULL = (
    "The portal is holding as many unfinished reports as it can right now. Nothing was"
    " stored. Room is made as other reports finish, and at the latest as unfinished ones"
    " expire (within two days): please try again later."
)
NO_SPACE = (
    "The portal has no room just now for more unfinished uploads. What has arrived is"
    " kept, and sending can go on from there once there is room: as other reports finish,"
    " and at the latest as unfinished ones expire (within two days)."
)
_TOO_LARGE = "The report and its attachments together are larger than this portal accepts ({} MiB)."
LOCKED = "An earlier request is still sending to this upload; ask for its offset and resume."
BUSY_DRAFT = "Other parts of this report are being sent or stored right now; ask again in a moment."


@dataclass(frozen=True)
class Limits:
    """How much one draft, and all of them together, may hold."""

    max_parts: int
    max_total: int
    pending_bytes: int
    pending_drafts: int

    @classmethod
    def of(cls, config: Config) -> Limits:
        """The limits ``config`` sets: a report and its attachments, and the global caps."""
        return cls(
            max_parts=min(config.max_attachments, MAX_ATTACHMENTS) + 1,
            max_total=config.max_upload_bytes,
            pending_bytes=config.pending_bytes,
            pending_drafts=config.pending_drafts,
        )


@dataclass(frozen=True)
class DraftState:
    """A draft as recorded: its key, expiry day and, once stored, its receipt hash."""

    key: str
    expires_on: date
    receipt: str | None
    stored_parts: int | None


@dataclass(frozen=True)
class UploadState:
    """An upload as recorded, with the path of its partial file."""

    key: str
    draft: str
    path: Path
    length: int
    expires_on: date
    spare: bool
    header_checked: bool
    checksum_from: int | None

    def offset(self) -> int:
        """Bytes stored and acknowledged: the file's size, less an unproven checksummed PATCH.

        Raises :class:`UnknownError` if the file is gone.
        """
        try:
            size = os.stat(self.path, follow_symlinks=False).st_size
        except FileNotFoundError:
            raise UnknownError(UNKNOWN) from None
        return size if self.checksum_from is None else min(size, self.checksum_from)


def today() -> date:
    """The current UTC day."""
    return datetime.now(UTC).date()


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def expiry(began: date) -> date:
    """The day at whose start a draft begun on ``began`` expires."""
    return began + timedelta(days=LIFETIME_DAYS)


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of a draft or upload id (32 lower-case hex digits)."""
    return _ID.fullmatch(text) is not None


def key_of(capability: str) -> str:
    """What the runtime store keeps of an id: a hash, so that a copy of it opens nothing."""
    return hashlib.sha256(_KEY_LABEL + capability.encode("ascii")).hexdigest()


@contextmanager
def _writing(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that holds SQLite's write lock from its start: checks and writes are one."""
    with sessions.begin() as session:
        session.execute(text("BEGIN IMMEDIATE"))
        yield session


# --- drafts -------------------------------------------------------------------------


def _lapsed(now: int) -> ColumnElement[bool]:
    """SQL: the draft is unfinished and has lapsed before its first byte."""
    return Draft.receipt.is_(None) & (Draft.lapses_at <= now)


def _has_lapsed(draft: Draft, now: int) -> bool:
    return draft.receipt is None and draft.lapses_at is not None and draft.lapses_at <= now


def _open_totals(session: Session, day: date, now: int) -> tuple[int, int]:
    """How many unfinished drafts there are, and the bytes all partial uploads hold."""
    drafts = session.scalar(
        select(func.count())
        .select_from(Draft)
        .where(
            Draft.receipt.is_(None),
            Draft.expires_on > day,
            or_(Draft.lapses_at.is_(None), Draft.lapses_at > now),
        )
    )
    held = session.scalar(select(func.coalesce(func.sum(PendingUpload.held), 0)))
    return int(drafts or 0), int(held or 0)


def _check_room(session: Session, limits: Limits, day: date, now: int) -> None:
    drafts, held = _open_totals(session, day, now)
    if drafts >= limits.pending_drafts or held >= limits.pending_bytes:
        raise FullError(FULL)


def has_room(
    sessions: sessionmaker[Session], limits: Limits, day: date, now: int | None = None
) -> bool:
    """Whether a draft may open now (asked before a proof is spent)."""
    with sessions() as session:
        try:
            _check_room(session, limits, day, _now(now))
        except FullError:
            return False
    return True


def open_draft(
    sessions: sessionmaker[Session], limits: Limits, day: date, now: int | None = None
) -> tuple[str, date]:
    """Open a draft; return its id and expiry day.

    Nothing is reserved for it. Raises :class:`FullError` when there are as many
    unfinished drafts as the portal allows, or no byte of room at all.
    """
    now = _now(now)
    draft_id = secrets.token_hex(16)
    with _writing(sessions) as session:
        _check_room(session, limits, day, now)
        session.add(
            Draft(key=key_of(draft_id), expires_on=expiry(day), lapses_at=now + FIRST_BYTE_SECONDS)
        )
    return draft_id, expiry(day)


def _draft_row(session: Session, draft_id: str, day: date, now: int) -> Draft:
    row = session.get(Draft, key_of(draft_id)) if is_id(draft_id) else None
    if row is None:
        raise UnknownError("The portal does not know this draft: it was removed or has expired.")
    if row.expires_on <= day:
        raise ExpiredError(EXPIRED)
    if _has_lapsed(row, now):
        raise ExpiredError(LAPSED)
    return row


def find_draft(
    sessions: sessionmaker[Session], draft_id: str, day: date, now: int | None = None
) -> DraftState:
    """The draft ``draft_id``; :class:`UnknownError` or :class:`ExpiredError` if unusable."""
    with sessions() as session:
        row = _draft_row(session, draft_id, day, _now(now))
        return DraftState(row.key, row.expires_on, row.receipt, row.stored_parts)


def mark_stored(
    sessions: sessionmaker[Session],
    store: BlobStore,
    draft: DraftState,
    receipt: str,
    parts: int,
) -> list[UploadState]:
    """Record that ``draft`` was stored with ``receipt``; forget its uploads and return them.

    Only a draft not yet stored can be marked: if another request marked it
    first, nothing changes and :class:`FinishedError` is raised. The caller,
    holding every upload's lock, then removes their partial files (the
    stored ones are blobs by now).
    """
    with _writing(sessions) as session:
        marked = session.execute(
            update(Draft)
            .where(Draft.key == draft.key, Draft.receipt.is_(None))
            .values(receipt=receipt, stored_parts=parts, lapses_at=None)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise FinishedError("This report has been stored already.")  # rolls back
        rows = session.scalars(select(PendingUpload).where(PendingUpload.draft == draft.key)).all()
        states = [_state(row, store) for row in rows]
        session.execute(delete(PendingUpload).where(PendingUpload.draft == draft.key))
    return states


# --- uploads ------------------------------------------------------------------------


def _state(row: PendingUpload, store: BlobStore) -> UploadState:
    return UploadState(
        key=row.key,
        draft=row.draft,
        path=store.partial / row.file,
        length=row.length,
        expires_on=row.expires_on,
        spare=row.spare,
        header_checked=row.header_checked,
        checksum_from=row.checksum_from,
    )


class _NoMorePartsError(OverLimitError):
    """A draft has as many uploads as it may."""


def add_upload(
    sessions: sessionmaker[Session],
    store: BlobStore,
    limits: Limits,
    draft_id: str,
    length: int,
    day: date,
    now: int | None = None,
) -> tuple[str, date]:
    """Make an upload of ``length`` bytes in draft ``draft_id``; return its id and expiry day.

    Raises :class:`UnknownError`, :class:`ExpiredError` or :class:`FinishedError`
    for a draft that cannot take it, and :class:`OverLimitError` past the
    draft's own limits. It takes no room: its bytes will, as they arrive.
    A draft that has as many uploads as it may first throws away those that
    hold no byte and that no request is using: a browser makes an upload
    again only when the answer to its first try was lost, and it sends its
    parts one after the other, so it never uses such an upload. The record
    comes first and then the file, so that a start-up tidy never takes a
    new file for one whose record was lost.
    """
    upload_id = secrets.token_hex(16)
    try:
        name, expires = _record_upload(sessions, limits, upload_id, draft_id, length, day, now)
    except _NoMorePartsError:
        for state in uploads_of(sessions, store, find_draft(sessions, draft_id, day, now)).values():
            if _is_empty(state):
                drop_if_free(sessions, store, state)
        name, expires = _record_upload(sessions, limits, upload_id, draft_id, length, day, now)
    try:
        spare = store.claim_partial(name)
    except BaseException:
        with sessions.begin() as session:
            session.execute(delete(PendingUpload).where(PendingUpload.key == key_of(upload_id)))
        raise
    if spare:
        _set(sessions, key_of(upload_id), spare=True)
    return upload_id, expires


def _record_upload(
    sessions: sessionmaker[Session],
    limits: Limits,
    upload_id: str,
    draft_id: str,
    length: int,
    day: date,
    now: int | None,
) -> tuple[str, date]:
    """Record a new upload of the draft; the name its partial file is to have, its expiry."""
    with _writing(sessions) as session:
        draft = _draft_row(session, draft_id, day, _now(now))
        if draft.receipt is not None:
            raise FinishedError("This report has been stored already.")
        if length > limits.max_total:
            raise OverLimitError(_TOO_LARGE.format(limits.max_total // MIB))
        count = session.scalar(
            select(func.count()).select_from(PendingUpload).where(PendingUpload.draft == draft.key)
        )
        if (count or 0) >= limits.max_parts + SPARE_UPLOADS:
            raise _NoMorePartsError(
                f"A report has at most {limits.max_parts} parts: the report and"
                f" {limits.max_parts - 1} attachments."
            )
        name = f"{draft.expires_on:%Y%m%d}-{secrets.token_hex(16)}"
        session.add(
            PendingUpload(
                key=key_of(upload_id),
                draft=draft.key,
                file=name,
                length=length,
                expires_on=draft.expires_on,
                spare=False,
                header_checked=False,
                held=0,
            )
        )
        return name, draft.expires_on


def _is_empty(state: UploadState) -> bool:
    """Whether no byte of the upload has been stored (or its file is gone)."""
    try:
        return state.offset() == 0
    except UnknownError:
        return True


def find_upload(
    sessions: sessionmaker[Session],
    store: BlobStore,
    upload_id: str,
    day: date,
    now: int | None = None,
) -> UploadState:
    """The upload ``upload_id``; :class:`UnknownError` or :class:`ExpiredError` if unusable.

    An expired upload, or one of a lapsed draft, is removed on the way,
    unless a request is using it.
    """
    now = _now(now)
    with sessions() as session:
        row = session.get(PendingUpload, key_of(upload_id)) if is_id(upload_id) else None
        state = None if row is None else _state(row, store)
        draft = None if row is None else session.get(Draft, row.draft)
        lapsed = draft is not None and _has_lapsed(draft, now)
    if state is None:
        raise UnknownError(UNKNOWN)
    if state.expires_on <= day or lapsed:
        drop_if_free(sessions, store, state)
        raise ExpiredError(EXPIRED if state.expires_on <= day else LAPSED)
    return state


def uploads_of(
    sessions: sessionmaker[Session], store: BlobStore, draft: DraftState
) -> dict[str, UploadState]:
    """Every upload of ``draft``, by key."""
    with sessions() as session:
        rows = session.scalars(select(PendingUpload).where(PendingUpload.draft == draft.key))
        return {row.key: _state(row, store) for row in rows}


def _set(sessions: sessionmaker[Session], key: str, **values: object) -> None:
    with sessions.begin() as session:
        session.execute(update(PendingUpload).where(PendingUpload.key == key).values(**values))


def set_header_checked(sessions: sessionmaker[Session], state: UploadState) -> None:
    """Record that the upload's first bytes passed the envelope header check."""
    _set(sessions, state.key, header_checked=True)


def set_checksum_from(
    sessions: sessionmaker[Session], state: UploadState, offset: int | None
) -> None:
    """Record that a checksummed PATCH starts at ``offset`` (None: none is under way)."""
    _set(sessions, state.key, checksum_from=offset)


def grant(
    sessions: sessionmaker[Session],
    limits: Limits,
    state: UploadState,
    stored: int,
    need: int = 0,
) -> int:
    """Let a PATCH write on from ``stored`` (the file's size); return where it must stop.

    The upload is counted as holding the returned size: ``stored`` and up to
    :data:`GRANT` more, as far as its ``Upload-Length``, what its draft's
    other uploads hold (together at most ``max_total``) and the global
    pending space allow. A PATCH asks again as its bytes arrive. Stored
    bytes mean the draft will not lapse.

    Raises :class:`UnknownError` if the upload's record, or its draft, is
    gone (stored or removed meanwhile); :class:`OverLimitError` (the draft's
    bound) or :class:`FullError` (the global one) if fewer than ``need``
    bytes fit beyond ``stored``.
    """
    with _writing(sessions) as session:
        row = session.get(PendingUpload, state.key)
        draft = None if row is None else session.get(Draft, row.draft)
        if row is None or draft is None or draft.receipt is not None:
            raise UnknownError(UNKNOWN)
        everyone = session.scalar(select(func.coalesce(func.sum(PendingUpload.held), 0))) or 0
        in_draft = session.scalar(
            select(func.coalesce(func.sum(PendingUpload.held), 0)).where(
                PendingUpload.draft == row.draft
            )
        )
        draft_room = limits.max_total - ((in_draft or 0) - row.held)
        global_room = limits.pending_bytes - (everyone - row.held)
        end = max(stored, min(row.length, stored + GRANT, draft_room, global_room))
        row.held = end
        if stored > 0:
            draft.lapses_at = None
    if end < min(stored + need, state.length):
        if draft_room < stored + need:
            raise OverLimitError(_TOO_LARGE.format(limits.max_total // MIB))
        raise FullError(NO_SPACE)
    return end


def settle(sessions: sessionmaker[Session], state: UploadState, size: int) -> None:
    """A PATCH has ended: the upload holds the ``size`` bytes in its file, no more."""
    with sessions.begin() as session:
        session.execute(
            update(PendingUpload).where(PendingUpload.key == state.key).values(held=size)
        )
        if size > 0:
            session.execute(update(Draft).where(Draft.key == state.draft).values(lapses_at=None))


def drop(sessions: sessionmaker[Session], store: BlobStore, state: UploadState) -> None:
    """Forget an upload and remove its file; the caller holds its lock, or nobody can."""
    with sessions.begin() as session:
        session.execute(delete(PendingUpload).where(PendingUpload.key == state.key))
    store.drop_partial(state.path, spare=state.spare)


def drop_if_free(sessions: sessionmaker[Session], store: BlobStore, state: UploadState) -> bool:
    """:func:`drop` the upload unless a request is using it; whether it went."""
    try:
        with locked(state.path, wait=0):
            drop(sessions, store, state)
    except LockedError:
        return False
    except UnknownError:  # the file is gone already: only the record is left
        with sessions.begin() as session:
            session.execute(delete(PendingUpload).where(PendingUpload.key == state.key))
    return True


# --- locks --------------------------------------------------------------------------


def _flock(fd: int, wait: float, message: str) -> None:
    """Take ``fd``'s exclusive lock, waiting at most ``wait`` seconds; else :class:`LockedError`."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockedError(message) from None
            time.sleep(0.05)


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced)."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def locked(path: Path, wait: float) -> Iterator[int]:
    """Open a partial file and hold its lock, waiting at most ``wait`` seconds for it.

    Yields the descriptor (read and write, no access times). Raises
    :class:`LockedError` if another request keeps the lock longer, and
    :class:`UnknownError` if the file is, or meanwhile became, gone.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | _NO_ATIME)
    except FileNotFoundError:
        raise UnknownError(UNKNOWN) from None
    try:
        _flock(fd, wait, LOCKED)
        if not _same_file(path, fd):  # removed (or given back to the pool) meanwhile
            raise UnknownError(UNKNOWN)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _lock_file(path: Path, wait: float) -> Iterator[None]:
    """Hold the lock of the lock file ``path``, made if missing, waiting at most ``wait``."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            _flock(fd, max(0.0, deadline - time.monotonic()), BUSY_DRAFT)
            if _same_file(path, fd):
                yield
                return
        finally:
            os.close(fd)
        # :func:`expire` removed it while this request waited: make it again


@contextmanager
def draft_lock(folder: Path, draft: str, wait: float) -> Iterator[None]:
    """Hold draft ``draft``'s (its key's) lock: one finish at a time, and no upload made meanwhile.

    Raises :class:`LockedError` after ``wait`` seconds. Take it only for a
    draft known to exist, so that nobody can make lock files at will.
    """
    with _lock_file(folder / draft, wait):
        yield


@contextmanager
def patch_slot(folder: Path, draft: str, wait: float) -> Iterator[None]:
    """Hold one of the :data:`PATCHES_PER_DRAFT` PATCH slots of draft ``draft`` (its key).

    Raises :class:`LockedError` if none comes free within ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    with ExitStack() as stack:
        while not _took_a_slot(stack, folder, draft):
            if time.monotonic() >= deadline:
                raise LockedError(BUSY_DRAFT)
            time.sleep(0.05)
        yield


def _took_a_slot(stack: ExitStack, folder: Path, draft: str) -> bool:
    for slot in range(PATCHES_PER_DRAFT):
        try:
            stack.enter_context(_lock_file(folder / f"{draft}.{slot}", 0))
        except LockedError:
            continue
        return True
    return False


def lock_all(stack: ExitStack, states: list[UploadState], wait: float) -> list[UploadState]:
    """Take every upload's lock in ``stack``, all within ``wait`` seconds; those still there.

    In name order, so that two requests never wait for each other. Raises
    :class:`LockedError` if one stays in use (a PATCH still writing).
    """
    deadline = time.monotonic() + wait
    held = []
    for state in sorted(states, key=lambda s: s.path.name):
        try:
            stack.enter_context(locked(state.path, max(0.0, deadline - time.monotonic())))
        except UnknownError:
            continue  # its file is gone: removed meanwhile
        held.append(state)
    return held


# --- cleaning -----------------------------------------------------------------------


def expire(
    sessions: sessionmaker[Session],
    store: BlobStore,
    day: date,
    locks: Path | None = None,
    now: int | None = None,
) -> int:
    """Remove expired uploads, lapsed ones and drafts (except what a request is using).

    Returns how many uploads went. With ``locks``, the lock files of drafts
    that are gone go too.
    """
    now = _now(now)
    with sessions() as session:
        lapsed = select(Draft.key).where(_lapsed(now))
        rows = session.scalars(
            select(PendingUpload).where(
                or_(PendingUpload.expires_on <= day, PendingUpload.draft.in_(lapsed))
            )
        )
        states = [_state(row, store) for row in rows]
    removed = sum(drop_if_free(sessions, store, state) for state in states)
    with sessions.begin() as session:
        session.execute(
            delete(Draft).where(
                or_(Draft.expires_on <= day, _lapsed(now)),
                ~exists().where(PendingUpload.draft == Draft.key),
            )
        )
        live = set(session.scalars(select(Draft.key)))
    if locks is not None:
        _remove_lock_files(locks, live)
    return removed


def _remove_lock_files(folder: Path, live: set[str]) -> None:
    """Remove the lock files of drafts that are gone, unless a request holds one."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        match = _LOCK_FILE.fullmatch(name)
        if match is not None and match.group(1) in live:
            continue
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            path.unlink(missing_ok=True)  # not a file the portal makes
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(path, fd):
                path.unlink()
        except BlockingIOError:
            continue  # in use: the next clean-up takes it
        finally:
            os.close(fd)


def tidy(sessions: sessionmaker[Session], store: BlobStore, day: date) -> int:
    """Start-up care: expired and lapsed uploads, and partial files no record names.

    Returns how many went. The folder is listed before the records are read,
    and a record is made before its file, so a file made meanwhile is never
    taken for an orphan. What an upload that no request is using holds is
    counted again from its file (a worker that died mid-PATCH held more).
    """
    removed = expire(sessions, store, day)
    names = _partial_names(store)
    with sessions() as session:
        known = {row.file: _state(row, store) for row in session.scalars(select(PendingUpload))}
    for name in names:
        if name not in known and _remove_if_free(store, store.partial / name):
            removed += 1
    for state in known.values():
        try:
            with locked(state.path, wait=0) as fd:
                settle(sessions, state, os.fstat(fd).st_size)
        except PendingError:
            continue  # in use, or gone
    return removed


def purge_files(store: BlobStore, day: date) -> int:
    """The daily purge's part, without the runtime store: remove expired partial files.

    A file's expiry day is in its name; a name that is not ours goes too.
    Files a request is using are left for the next run.
    """
    removed = 0
    for name in _partial_names(store):
        match = _FILE.fullmatch(name)
        if match is not None and _day(match.group(1)) > day:
            continue
        if _remove_if_free(store, store.partial / name):
            removed += 1
    return removed


def _day(digits: str) -> date:
    try:
        return datetime.strptime(digits, "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return date.min  # not a day: remove it


def _partial_names(store: BlobStore) -> list[str]:
    try:
        return sorted(os.listdir(store.partial))
    except FileNotFoundError:
        return []


def _remove_if_free(store: BlobStore, path: Path) -> bool:
    """Unlink a partial file nobody is using (never emptied: it may be a blob too)."""
    if path.is_symlink():
        path.unlink(missing_ok=True)  # nothing the portal makes
        return True
    if not path.is_file():
        return False  # nor is this, but it is not for the portal to remove
    try:
        with locked(path, wait=0):
            store.drop_partial(path, spare=False)
    except (LockedError, UnknownError):
        return False
    return True
