"""The locks that tell a crash of the blob store from work in progress.

A submission's blobs are committed to files first and its row to the
database after (``portal/web/intake_store.py``); a process killed in between
leaves orphan blobs, and one killed while an upload streamed in leaves a
temporary ``.incoming-*`` file. The reconcile (``reconcile.py``) removes
both, and must never take a live request's files for them. So it goes by
locks (``flock``, which the kernel drops when a process dies), never by
guessing from file times:

* a temporary ``.incoming-*`` file is locked by the process writing it from
  before it takes that name until after it is renamed into place or given
  back (:func:`lock_and_move`); one nobody holds was left by a dead process
  (:func:`remove_if_abandoned`);
* a request holds a :class:`BlobGuard` (a shared lock on the blob directory)
  from before its first blob is committed until its database row is
  committed, or the blobs are removed again; the reconcile takes the lock
  exclusively (:func:`exclusive`), so every blob it finds without a row
  then is an orphan of a crash.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: how a temporary file's name begins, in the blob directory and among the spares
TEMP_PREFIX = ".incoming-"


class BlobGuard:
    """A lock on the blob directory, shared or exclusive, held until released (or collected)."""

    def __init__(self, root: Path, mode: int) -> None:
        self._fd: int | None = os.open(root, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, mode)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Let go of the lock. Safe to repeat."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            self.release()


@contextmanager
def exclusive(root: Path, wait: float) -> Iterator[bool]:
    """Hold the lock on directory ``root`` alone for the block; yields False if not had in time.

    Polls for up to ``wait`` seconds rather than blocking, so that a store
    stuck on its database cannot hold a start-up up for ever.
    """
    fd = os.open(root, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)


def lock_and_move(spare: Path, temp: Path) -> int | None:
    """Lock the spare, date it now and move it to ``temp``; its descriptor, or None if taken."""
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.utime(fd)
        os.rename(spare, temp)
    except OSError:  # another writer has it, or took it meanwhile
        os.close(fd)
        return None
    return fd


def create_locked(fresh: Path, temp: Path) -> int:
    """Make the new file ``fresh``, lock it, move it to ``temp``; return its descriptor."""
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(fresh, temp)
    except BaseException:
        os.close(fd)
        fresh.unlink(missing_ok=True)
        raise
    return fd


def remove_if_abandoned(leftover: Path, cutoff_ns: int, *, dry_run: bool) -> bool:
    """Unlink ``leftover`` if no writer holds its lock and it is older than ``cutoff_ns``."""
    try:
        if leftover.lstat().st_mtime_ns >= cutoff_ns:
            return False
        fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # committed or given back meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer
        # still the same file under that name? (renamed and replaced meanwhile: leave it)
        same = os.fstat(fd)
        try:
            now = leftover.lstat()
        except FileNotFoundError:
            return False
        if (now.st_ino, now.st_dev) != (same.st_ino, same.st_dev):
            return False
        if not dry_run:
            leftover.unlink()
        return True
    finally:
        os.close(fd)
