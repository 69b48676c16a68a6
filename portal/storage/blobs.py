"""Ciphertext blobs on disk, written atomically, dated to the day.

A blob is written to a temporary file in the blob directory, flushed and
fsync'd, then renamed into place, and the directory is fsync'd: a stored blob
is never partial, and a failed upload leaves no file behind. Blob names are
random, so they say nothing about order or volume.

File times would otherwise date every arrival to the nanosecond
(SECURITY.md "Metadata handling"), so:

* a blob's modification and access times are set to the start of its UTC day
  before it is renamed into place, and blobs are read without touching the
  access time;
* after every change the blob directory's own times are set to the start of
  the day;
* the kernel sets a blob's change time when it is stored, and nothing can
  set it back; so every blob of the day is stamped again, and all of them
  then share the change time of that restamp. One restamp is a pass over the
  whole day, so it is not run after every commit, which would make a flood
  of attachments cost quadratic time: a commit asks for one within
  ``RESTAMP_AFTER`` seconds, and every commit meanwhile joins it. Until it
  runs, each blob stored since the last restamp keeps its own change time;
* a blob's file is not created when the upload starts but taken from a pool
  of empty *spare* files made beforehand, at start and by the daily purge,
  so that its birth time and inode number are those of the spare. An upload
  that is not kept gives its spare back, emptied, so refused requests cannot
  use the pool up; and when stored blobs have brought it below
  ``LOW_SPARES``, the coalesced restamp refills it (its birth time is then
  that of a restamp, which the change times show anyway).

Resumable uploads (``portal/storage/pending.py``) keep their ciphertext, while it
is still arriving, in *partial* files in a directory beside the blobs (same
file system). A partial file is taken from the same spare pool, its times
are days like a blob's and it joins every restamp; when its submission is
stored it becomes a blob by a second hard link (:meth:`BlobStore.adopt`),
so the blob keeps the spare's birth time, and the partial name is then
unlinked.

Crashes (``portal/storage/reconcile.py``) are told apart from work in
progress by locks, not by guessing from file times (``blob_locks.py``); a
blob being written is a locked ``.incoming-*`` file (``blob_writer.py``);
the spare pool is ``blob_spares.py``, and the helpers for dates, quiet reads
and fsync are in ``disk.py``.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import threading
import time
import weakref
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from portal.storage import blob_locks, blob_spares
from portal.storage.blob_locks import TEMP_PREFIX, BlobGuard
from portal.storage.blob_writer import PendingBlob
from portal.storage.disk import day_start_ns, open_quietly, sync_directory

#: empty files made ahead of time; enough for a busy day of full-size reports
SPARE_FILES = 256
#: below this many the restamp after a commit refills the pool (SECURITY.md "Blob file times")
LOW_SPARES = 64
#: seconds a stored blob may keep a change time of its own before the restamp
#: (SECURITY.md "Blob file times"); a restamp costs one pass over the day's blobs
RESTAMP_AFTER = 30.0


def _is_blob_name(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


class BlobStore:
    """A directory of write-once ciphertext files named by random ids."""

    def __init__(self, root: Path, *, restamp_after: float = RESTAMP_AFTER) -> None:
        self.root = root
        #: the spare files, beside the blobs (same file system, so a rename takes one)
        self.spares = root.with_name(f".{root.name}-spares")
        #: resumable uploads still arriving (``portal/storage/pending.py``), beside the blobs too
        self.partial = root.with_name(f".{root.name}-partial")
        self.restamp_after = restamp_after
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # days with a blob stored since their last restamp, and the timer that will do it
        self._pending_days: set[int] = set()
        self._timer: threading.Timer | None = None
        self._pending_lock = threading.Lock()
        _STORES.add(self)
        atexit.register(_flush_if_alive, weakref.ref(self))

    def path(self, name: str) -> Path:
        """Where blob ``name`` lives; refuses names that are not ours."""
        if not _is_blob_name(name):
            raise ValueError("not a blob name")
        return self.root / name

    def open(self, name: str) -> BinaryIO:
        """Open blob ``name`` for reading without recording when it was read."""
        return open_quietly(self.path(name))

    def read(self, name: str) -> bytes:
        """Blob ``name``'s bytes, read as :meth:`open` does."""
        with self.open(name) as source:
            return source.read()

    def begin(self) -> PendingBlob:
        """Start a new blob; it appears only when :meth:`PendingBlob.commit` is called."""
        return PendingBlob(self)

    @contextmanager
    def writer(self) -> Iterator[PendingBlob]:
        """Yield a pending blob; it is committed if the block succeeds, else removed."""
        pending = self.begin()
        try:
            yield pending
            pending.commit()
        except BaseException:
            pending.abort()
            raise

    def delete(self, name: str) -> None:
        """Unlink a blob (retention, or undoing a failed submission)."""
        self.path(name).unlink(missing_ok=True)
        self.stamp_directories()

    def tidy(self, stale_after: timedelta) -> int:
        """Start-up and daily care: clean leftovers, re-stamp every blob, refill the spares.

        Returns how many leftover temporary files were removed.
        """
        removed = self.clean_incomplete(stale_after)
        self.restamp()
        self.refill_spares()
        return removed

    def clean_incomplete(self, stale_after: timedelta, *, dry_run: bool = False) -> int:
        """Remove temporary files left by dead writers; return how many (would go).

        A temporary file is a leftover when no process holds its lock (a
        writer holds it from before the file takes its name until after it
        is renamed or given back) and nothing has been written to it for
        ``stale_after``. With ``dry_run`` nothing is removed.
        """
        cutoff = time.time_ns() - int(stale_after.total_seconds() * 10**9)
        removed = 0
        # fresh files are made among the spares before they take their name here
        leftovers = [*self.root.glob(f"{TEMP_PREFIX}*"), *self.spares.glob(f"{TEMP_PREFIX}*")]
        for leftover in leftovers:
            if blob_locks.remove_if_abandoned(leftover, cutoff, dry_run=dry_run):
                removed += 1
        if removed and not dry_run:
            self.stamp_directories()
            sync_directory(self.root)
        return removed

    def blob_names(self) -> set[str]:
        """The names of every stored blob (temporary files and other names left out)."""
        with os.scandir(self.root) as entries:
            return {e.name for e in entries if _is_blob_name(e.name)}

    def restamp(self, days: Collection[int] | None = None) -> None:
        """Set each blob's times to its day again, so all share the change time of now.

        After commits only the days they stored blobs on need it (``days``,
        as :func:`day_start_ns` gives them): other days were stamped after
        their last write. Start-up and the daily purge do every day, so that
        a past day keeps no trace of when its last blob arrived. Blobs are
        visited in name order, which is random, not arrival order.
        """
        with os.scandir(self.root) as entries:
            blobs = sorted((e for e in entries if _is_blob_name(e.name)), key=lambda e: e.name)
        for entry in blobs + self._partial_entries():
            try:
                day = day_start_ns(entry.stat(follow_symlinks=False).st_mtime_ns)
                if days is not None and day not in days:
                    continue
                os.utime(entry.path, ns=(day, day), follow_symlinks=False)
            except FileNotFoundError:
                continue  # purged meanwhile
        self.stamp_directories()

    def _partial_entries(self) -> list[os.DirEntry[str]]:
        """The partial upload files, in name order (expiry day, then random), for a restamp."""
        try:
            with os.scandir(self.partial) as entries:
                return sorted(
                    (e for e in entries if e.is_file(follow_symlinks=False)), key=lambda e: e.name
                )
        except FileNotFoundError:
            return []

    def restamp_soon(self, day: int) -> None:
        """Ask for ``day``'s blobs to be restamped within ``restamp_after`` seconds.

        Every request made before the restamp runs joins it, so a restamp
        (a pass over the day) runs at most once per interval in each
        process, however many blobs arrive: the cost is bounded in time,
        not multiplied by the number of commits. The timer is a daemon
        thread of this process (see :func:`_forget_timers` for a fork).
        """
        with self._pending_lock:
            self._pending_days.add(day)
            if self._timer is not None:
                return
            timer = threading.Timer(self.restamp_after, _flush_if_alive, [weakref.ref(self)])
            timer.daemon = True
            self._timer = timer
        timer.start()

    def flush(self) -> None:
        """Run the restamp that commits asked for now, if any (the timer, tests, exit).

        Commits are what use spares up, so this is also where a low pool is
        refilled: in one batch, at the moment of a restamp, whose time the
        blobs' change times already show, rather than at any one upload.
        """
        with self._pending_lock:
            days, self._pending_days = self._pending_days, set()
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if days:
            self.restamp(days)
            if self.spare_count() < LOW_SPARES:
                self.refill_spares()

    def stamp_directories(self) -> None:
        """Set the blob, spare and partial directories' times to the start of today."""
        today = day_start_ns(time.time_ns())
        for directory in (self.root, self.spares, self.partial):
            try:
                os.utime(directory, ns=(today, today))
            except FileNotFoundError:
                continue

    def spare_count(self) -> int:
        """How many spare files are left (``blob_spares.py``)."""
        return blob_spares.count(self.spares)

    def refill_spares(self, count: int = SPARE_FILES) -> None:
        """Make empty spare files until there are ``count``, dated to the start of today."""
        blob_spares.refill(self.spares, count)
        self.stamp_directories()
        sync_directory(self.spares)

    def claim_file(self, temp: Path) -> tuple[int, bool]:
        """Open a new temporary file at ``temp``, locked; and whether it is a spare.

        See :func:`blob_spares.claim <portal.storage.blob_spares.claim>`.
        """
        return blob_spares.claim(self.spares, temp)

    def guard(self) -> BlobGuard:
        """A shared lock that keeps the reconcile away until :meth:`BlobGuard.release`.

        Taken before the first blob of a submission is committed and released
        once its row is committed (or its blobs removed): while any is held,
        :meth:`exclusive` waits, so a blob between the two steps is never taken
        for an orphan.
        """
        return BlobGuard(self.root, fcntl.LOCK_SH)

    def exclusive(self, wait: float) -> AbstractContextManager[bool]:
        """Hold the blob directory's lock alone for the block; yields False if not had in time.

        See :func:`blob_locks.exclusive <portal.storage.blob_locks.exclusive>`.
        """
        return blob_locks.exclusive(self.root, wait)

    def give_back(self, temp: Path) -> None:
        """Return the spare claimed at ``temp`` to the pool, emptied and dated to the day."""
        blob_spares.give_back(self.spares, temp)
        self.stamp_directories()

    def claim_partial(self, name: str) -> bool:
        """Make the empty partial file ``name``, dated to today; True if it is a spare.

        Its birth time is then a spare's (or, when the pool is empty, now).
        Moving the spare and dating it set its change time to now, so a
        restamp is asked for, as after a commit: within ``restamp_after``
        seconds the file shares the change time of the day's restamp.
        """
        self.partial.mkdir(mode=0o700, exist_ok=True)
        fd, spare = self.claim_file(self.partial / name)
        today = day_start_ns(time.time_ns())
        try:
            os.utime(fd, ns=(today, today))
        finally:
            os.close(fd)
        sync_directory(self.partial)
        self.stamp_directories()
        self.restamp_soon(today)
        return spare

    def adopt(self, partial: Path) -> str:
        """Store the finished partial file as a new blob and return its name.

        The blob is a second hard link to the same file, dated to the day,
        fsync'd, with the directory fsync'd: the partial name stays until the
        caller drops it, so that a submission that cannot be recorded loses
        nothing that was uploaded (its blobs are deleted, the partial files
        are still there). The change time is restamped like any blob's.
        """
        name = secrets.token_hex(16)
        today = day_start_ns(time.time_ns())
        fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.utime(fd, ns=(today, today))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(partial, self.path(name), follow_symlinks=False)
        self.stamp_directories()
        sync_directory(self.root)
        self.restamp_soon(today)
        return name

    def drop_partial(self, partial: Path, *, spare: bool) -> None:
        """Remove a partial file. A spare that no blob shares goes back to the pool, emptied.

        A file that is also a blob (adopted) is only unlinked here, never
        emptied; a fresh file (the pool was empty when it was made) is
        unlinked, as :meth:`PendingBlob.abort` does, since its birth time is
        the upload's.
        """
        try:
            shared = os.lstat(partial).st_nlink > 1
        except FileNotFoundError:
            return
        if spare and not shared:
            try:
                self.give_back(partial)
                return
            except OSError:
                pass  # cannot go back: it must not stay either
        partial.unlink(missing_ok=True)
        self.stamp_directories()


#: every store in this process, for :func:`_forget_timers`
_STORES: weakref.WeakSet[BlobStore] = weakref.WeakSet()


def _forget_timers() -> None:
    """In a forked child: the parent's timers and lock holders do not exist here."""
    for store in _STORES:
        store._pending_lock = threading.Lock()
        store._timer = None


os.register_at_fork(after_in_child=_forget_timers)


def _flush_if_alive(store: weakref.ref[BlobStore]) -> None:
    """The timer's work, and at interpreter exit a restamp still waiting for its timer."""
    alive = store()
    if alive is None:
        return
    try:
        alive.flush()
    except FileNotFoundError:
        return  # the blob directory itself is gone: nothing left to date
