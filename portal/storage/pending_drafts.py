"""Drafts: opening one, finding it again, and marking it stored.

A draft is opened by ``/submit/begin`` once it has spent its proof of work,
and only while unfinished drafts and the bytes their uploads hold are under
the portal's caps (``pending.py`` says which). It is stored, once, by
``/submit/finish``, which marks it here and takes its uploads' records.
"""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.storage import pending
from portal.storage.blobs import BlobStore
from portal.storage.pending import (
    EXPIRED,
    FIRST_BYTE_SECONDS,
    FULL,
    STORED_ALREADY,
    UNKNOWN_DRAFT,
    DraftState,
    ExpiredError,
    FinishedError,
    FullError,
    Limits,
    UnknownError,
    UploadState,
)
from portal.storage.runtime import Draft, PendingUpload


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
            _check_room(session, limits, day, pending.seconds_now(now))
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
    now = pending.seconds_now(now)
    draft_id = secrets.token_hex(16)
    with pending.writing(sessions) as session:
        _check_room(session, limits, day, now)
        session.add(
            Draft(
                key=pending.key_of(draft_id),
                expires_on=pending.expiry(day),
                lapses_at=now + FIRST_BYTE_SECONDS,
            )
        )
    return draft_id, pending.expiry(day)


def draft_row(session: Session, draft_id: str, day: date, now: int) -> Draft:
    """Draft ``draft_id``'s record; :class:`UnknownError` or :class:`ExpiredError` if unusable."""
    row = session.get(Draft, pending.key_of(draft_id)) if pending.is_id(draft_id) else None
    if row is None:
        raise UnknownError(UNKNOWN_DRAFT)
    if row.expires_on <= day:
        raise ExpiredError(EXPIRED)
    if pending.has_lapsed(row, now):
        raise ExpiredError.lapsed()
    return row


def find_draft(
    sessions: sessionmaker[Session], draft_id: str, day: date, now: int | None = None
) -> DraftState:
    """The draft ``draft_id``; :class:`UnknownError` or :class:`ExpiredError` if unusable."""
    with sessions() as session:
        row = draft_row(session, draft_id, day, pending.seconds_now(now))
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
    with pending.writing(sessions) as session:
        marked = session.execute(
            update(Draft)
            .where(Draft.key == draft.key, Draft.receipt.is_(None))
            .values(receipt=receipt, stored_parts=parts, lapses_at=None)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise FinishedError(STORED_ALREADY)  # rolls back
        rows = session.scalars(select(PendingUpload).where(PendingUpload.draft == draft.key)).all()
        states = [pending.upload_state(row, store) for row in rows]
        session.execute(delete(PendingUpload).where(PendingUpload.draft == draft.key))
    return states
