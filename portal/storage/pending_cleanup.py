"""Removing what resumable sending left: expired and lapsed uploads, orphan files.

Three callers: every new draft or upload (:func:`expire`), the portal's
start (:func:`tidy`, which also finds partial files no record names once the
runtime store was lost) and the daily purge (:func:`purge_files`, which
cannot see the runtime store and goes by the day in each file's name).
"""

from __future__ import annotations

import fcntl
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from portal.storage import pending, pending_locks, pending_uploads
from portal.storage.blobs import BlobStore
from portal.storage.pending import LockedError, PendingError, UnknownError
from portal.storage.runtime import Draft, PendingUpload

_FILE = re.compile(r"([0-9]{8})-[0-9a-f]{32}")
_LOCK_FILE = re.compile(r"([0-9a-f]{64})(\.[0-9])?")


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
    now = pending.seconds_now(now)
    with sessions() as session:
        lapsed = select(Draft.key).where(pending.lapsed_clause(now))
        rows = session.scalars(
            select(PendingUpload).where(
                or_(PendingUpload.expires_on <= day, PendingUpload.draft.in_(lapsed))
            )
        )
        states = [pending.upload_state(row, store) for row in rows]
    removed = sum(pending_uploads.drop_if_free(sessions, store, state) for state in states)
    with sessions.begin() as session:
        session.execute(
            delete(Draft).where(
                or_(Draft.expires_on <= day, pending.lapsed_clause(now)),
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
            if pending_locks.same_file(path, fd):
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
        known = {
            row.file: pending.upload_state(row, store)
            for row in session.scalars(select(PendingUpload))
        }
    for name in names:
        if name not in known and _remove_if_free(store, store.partial / name):
            removed += 1
    for state in known.values():
        try:
            with pending_locks.locked(state.path, wait=0) as fd:
                pending_uploads.settle(sessions, state, os.fstat(fd).st_size)
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
        with pending_locks.locked(path, wait=0):
            store.drop_partial(path, spare=False)
    except (LockedError, UnknownError):
        return False
    return True
