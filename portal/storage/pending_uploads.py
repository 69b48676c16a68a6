"""Partial uploads: their records, the room they are granted, and removing them.

An upload belongs to a draft and is one sealed envelope arriving by tus
(``portal/web/tus.py``). Its record comes before its partial file, and room
is granted to a PATCH only as its bytes arrive (:func:`grant`), so that
declaring a large upload and sending nothing holds nothing.
"""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.config import MIB
from portal.storage import pending, pending_drafts, pending_locks
from portal.storage.blobs import BlobStore
from portal.storage.pending import (
    EXPIRED,
    GRANT,
    N_,
    NO_SPACE,
    SPARE_UPLOADS,
    STORED_ALREADY,
    UNKNOWN,
    DraftState,
    ExpiredError,
    FinishedError,
    FullError,
    Limits,
    LockedError,
    OverLimitError,
    UnknownError,
    UploadState,
)
from portal.storage.runtime import Draft, PendingUpload

#: filled with ``size``, whole MiB
_TOO_LARGE = N_(
    "The report and its attachments together are larger than this portal accepts (%(size)s MiB)."
)
#: filled with ``parts`` and ``attachments``
_TOO_MANY_PARTS = N_(
    "A report has at most %(parts)s parts: the report and %(attachments)s attachments."
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
        draft = pending_drafts.find_draft(sessions, draft_id, day, now)
        for state in uploads_of(sessions, store, draft).values():
            if _is_empty(state):
                drop_if_free(sessions, store, state)
        name, expires = _record_upload(sessions, limits, upload_id, draft_id, length, day, now)
    try:
        spare = store.claim_partial(name)
    except BaseException:
        with sessions.begin() as session:
            session.execute(
                delete(PendingUpload).where(PendingUpload.key == pending.key_of(upload_id))
            )
        raise
    if spare:
        _set(sessions, pending.key_of(upload_id), spare=True)
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
    with pending.writing(sessions) as session:
        draft = pending_drafts.draft_row(session, draft_id, day, pending.seconds_now(now))
        if draft.receipt is not None:
            raise FinishedError(STORED_ALREADY)
        if length > limits.max_total:
            raise OverLimitError(_TOO_LARGE, size=limits.max_total // MIB)
        count = session.scalar(
            select(func.count()).select_from(PendingUpload).where(PendingUpload.draft == draft.key)
        )
        if (count or 0) >= limits.max_parts + SPARE_UPLOADS:
            raise _NoMorePartsError(
                _TOO_MANY_PARTS, parts=limits.max_parts, attachments=limits.max_parts - 1
            )
        name = f"{draft.expires_on:%Y%m%d}-{secrets.token_hex(16)}"
        session.add(
            PendingUpload(
                key=pending.key_of(upload_id),
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
    now = pending.seconds_now(now)
    with sessions() as session:
        row = (
            session.get(PendingUpload, pending.key_of(upload_id))
            if pending.is_id(upload_id)
            else None
        )
        state = None if row is None else pending.upload_state(row, store)
        draft = None if row is None else session.get(Draft, row.draft)
        lapsed = draft is not None and pending.has_lapsed(draft, now)
    if state is None:
        raise UnknownError(UNKNOWN)
    if state.expires_on <= day or lapsed:
        drop_if_free(sessions, store, state)
        raise ExpiredError(EXPIRED) if state.expires_on <= day else ExpiredError.lapsed()
    return state


def uploads_of(
    sessions: sessionmaker[Session], store: BlobStore, draft: DraftState
) -> dict[str, UploadState]:
    """Every upload of ``draft``, by key."""
    with sessions() as session:
        rows = session.scalars(select(PendingUpload).where(PendingUpload.draft == draft.key))
        return {row.key: pending.upload_state(row, store) for row in rows}


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
    with pending.writing(sessions) as session:
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
            raise OverLimitError(_TOO_LARGE, size=limits.max_total // MIB)
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
        with pending_locks.locked(state.path, wait=0):
            drop(sessions, store, state)
    except LockedError:
        return False
    except UnknownError:  # the file is gone already: only the record is left
        with sessions.begin() as session:
            session.execute(delete(PendingUpload).where(PendingUpload.key == state.key))
    return True
