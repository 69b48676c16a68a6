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
"""

from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import threading
import time
import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

_TEMP_PREFIX = ".incoming-"
#: empty files made ahead of time; enough for a busy day of full-size reports
SPARE_FILES = 256
#: below this many the restamp after a commit refills the pool (SECURITY.md "Blob file times")
LOW_SPARES = 64
_DAY_NS = 86_400 * 10**9
_NO_ATIME = getattr(os, "O_NOATIME", 0)  # Linux; elsewhere reads update the access time
#: seconds a stored blob may keep a change time of its own before the restamp
#: (SECURITY.md "Blob file times"); a restamp costs one pass over the day's blobs
RESTAMP_AFTER = 30.0


def day_start_ns(moment_ns: int) -> int:
    """The start of the UTC day holding ``moment_ns`` (nanoseconds since the epoch)."""
    return moment_ns - moment_ns % _DAY_NS


def open_quietly(path: Path) -> BinaryIO:
    """Open ``path`` for reading without setting its access time to the time of the read."""
    try:
        fd = os.open(path, os.O_RDONLY | _NO_ATIME)
    except PermissionError:  # O_NOATIME needs the file's owner; someone else may read
        fd = os.open(path, os.O_RDONLY)
    return os.fdopen(fd, "rb")


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

    def clean_incomplete(self, stale_after: timedelta) -> int:
        """Remove temporary files nobody has written to for ``stale_after``; return how many.

        An upload in progress writes to its file as its bytes arrive, so its
        modification time stays recent; one that has not moved for longer
        than a form stays valid was left by a crash or a dropped connection.
        """
        cutoff = time.time_ns() - int(stale_after.total_seconds() * 10**9)
        removed = 0
        for leftover in self.root.glob(f"{_TEMP_PREFIX}*"):
            try:
                if leftover.lstat().st_mtime_ns >= cutoff:
                    continue
                leftover.unlink()
            except FileNotFoundError:
                continue  # committed or aborted meanwhile
            removed += 1
        if removed:
            self.stamp_directories()
            sync_directory(self.root)
        return removed

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
        """How many spare files are left."""
        try:
            return len(os.listdir(self.spares))
        except FileNotFoundError:
            return 0

    def refill_spares(self, count: int = SPARE_FILES) -> None:
        """Make empty spare files until there are ``count``, dated to the start of today."""
        self.spares.mkdir(mode=0o700, exist_ok=True)
        today = day_start_ns(time.time_ns())
        for _ in range(count - len(os.listdir(self.spares))):
            fd = os.open(
                self.spares / secrets.token_hex(16), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
            )
            try:
                os.utime(fd, ns=(today, today))
            finally:
                os.close(fd)
        self.stamp_directories()
        sync_directory(self.spares)

    def claim_file(self, temp: Path) -> tuple[int, bool]:
        """Open a new temporary file at ``temp``: a spare moved there, or a fresh file.

        Returns the open descriptor and whether the file is a spare. A spare
        is picked at random, so inode numbers do not follow arrival. Its
        modification time is set to now before it moves, so that a clean-up
        never takes a starting upload for a stale one. Of two processes after
        the same spare, only one rename succeeds.
        """
        try:
            names = os.listdir(self.spares)
        except FileNotFoundError:
            names = []
        while names:
            spare = self.spares / names.pop(secrets.randbelow(len(names)))
            try:
                fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            try:
                os.utime(fd)
                os.rename(spare, temp)
            except OSError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)  # spares are empty; this makes sure of it
            return fd, True
        # none left: a fresh file, whose birth time is now (SECURITY.md says so)
        return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), False

    def give_back(self, temp: Path) -> None:
        """Return the spare claimed at ``temp`` to the pool, emptied and dated to the day.

        Its birth time is still the spare's, so the pool loses nothing by an
        upload that was not kept. It goes back under a new random name.
        """
        today = day_start_ns(time.time_ns())
        os.truncate(temp, 0)
        os.utime(temp, ns=(today, today))
        os.rename(temp, self.spares / secrets.token_hex(16))
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


def sync_directory(path: Path) -> None:
    """fsync a directory, so that files created, renamed or unlinked in it stay so."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingBlob:
    """A blob being written: a private temporary file until committed."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.name = secrets.token_hex(16)
        self._temp = store.root / f"{_TEMP_PREFIX}{self.name}"
        fd, self._spare = store.claim_file(self._temp)
        self.stream: BinaryIO = os.fdopen(fd, "wb")
        self._ended = False  # committed or aborted: the temporary file is no longer ours
        self.size = 0
        # crypto/SPEC.md §15.4: the hash is taken as the bytes arrive and later
        # signed in inbox bundles, so no reviewer can swap another's payload.
        self._digest = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ciphertext."""
        self.size += len(data)
        self._digest.update(data)
        return self.stream.write(data)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""
        return self._digest.hexdigest()

    def commit(self) -> str:
        """Date to the day, flush, fsync and rename into place; return the blob name."""
        self.stream.flush()
        today = day_start_ns(time.time_ns())
        os.utime(self.stream.fileno(), ns=(today, today))
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self._temp, self.store.path(self.name))
        self._ended = True
        self.store.stamp_directories()
        sync_directory(self.store.root)
        self.store.restamp_soon(today)
        return self.name

    def abort(self) -> None:
        """Throw the partial blob away; a spare goes back to the pool. Safe to repeat.

        A fresh file (the pool was empty) is unlinked instead: its birth time
        is this upload's arrival, which no later blob should carry.
        """
        if self._ended:
            return
        self._ended = True
        with suppress(OSError):  # a full disk: the bytes are being thrown away anyway
            self.stream.close()  # its buffer is written now, and emptied below
        if self._spare:
            try:
                self.store.give_back(self._temp)
                return
            except OSError:
                pass  # gone, or cannot go back: it must not stay here either
        try:
            self._temp.unlink()
        except FileNotFoundError:
            return
        self.store.stamp_directories()
