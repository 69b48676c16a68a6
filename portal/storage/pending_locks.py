"""The locks of resumable sending, all ``flock``, so that a crashed worker holds none.

A request that changes a partial file holds that file's lock (:func:`locked`);
a finish holds its draft's lock (:func:`draft_lock`), which creating an
upload also takes, and then every upload's (:func:`lock_all`); a PATCH holds
one of a few slots of its draft (:func:`patch_slot`). A draft's locks are
empty files, named after its key, in the runtime directory.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from portal.storage.pending import (
    BUSY_DRAFT,
    LOCKED,
    PATCHES_PER_DRAFT,
    UNKNOWN,
    LockedError,
    UnknownError,
    UploadState,
)

_NO_ATIME = getattr(os, "O_NOATIME", 0)


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


def same_file(path: Path, fd: int) -> bool:
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
        if not same_file(path, fd):  # removed (or given back to the pool) meanwhile
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
            if same_file(path, fd):
                yield
                return
        finally:
            os.close(fd)
        # ``pending_cleanup.expire`` removed it while this request waited: make it again


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
