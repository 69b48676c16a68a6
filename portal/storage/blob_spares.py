"""The pool of empty *spare* files that every blob and partial upload is taken from.

A blob's file is not created when its upload starts but taken from a pool
of empty files made beforehand (at start, by the daily purge, and by a
restamp once the pool runs low), so that its birth time and inode number
are those of the spare, not of the arrival (SECURITY.md "Blob file times").
The pool is a directory beside the blobs, on the same file system, so a
rename takes a spare. A spare is picked at random, so inode numbers do not
follow arrival either; one that is not kept goes back emptied.

The functions here know only the pool's directory; the blob store
(``blobs.py``) dates its directories after each change.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from portal.storage import blob_locks
from portal.storage.blob_locks import TEMP_PREFIX
from portal.storage.disk import day_start_ns, is_disk_full


def count(spares: Path) -> int:
    """How many spare files are in ``spares``."""
    try:
        return len(os.listdir(spares))
    except FileNotFoundError:
        return 0


def refill(spares: Path, wanted: int) -> None:
    """Make empty spare files until there are ``wanted``, dated to the start of today.

    A full disk stops the refill early, quietly: the pool is refilled by a
    later restamp or purge, and an upload with no spare gets a fresh file.
    The caller dates and fsyncs the directory.
    """
    spares.mkdir(mode=0o700, exist_ok=True)
    today = day_start_ns(time.time_ns())
    for _ in range(wanted - len(os.listdir(spares))):
        try:
            fd = os.open(
                spares / secrets.token_hex(16), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
            )
        except OSError as error:
            if not is_disk_full(error):
                raise
            break
        try:
            os.utime(fd, ns=(today, today))
        finally:
            os.close(fd)


def claim(spares: Path, temp: Path) -> tuple[int, bool]:
    """Open a new temporary file at ``temp``: a spare moved there, or a fresh file.

    Returns the open descriptor, locked (``blob_locks.py``), and whether the
    file is a spare. A spare is locked, and its modification time set to
    now, before it moves, so that no clean-up ever takes a starting upload
    for a stale one. Of two processes after the same spare, only one gets
    its lock. A fresh file is made among the spares and moved the same way,
    so it too has a lock before it has its name.
    """
    try:  # a fresh file being made there (below) is not a spare yet
        names = [n for n in os.listdir(spares) if not n.startswith(TEMP_PREFIX)]
    except FileNotFoundError:
        names = []
    while names:
        spare = spares / names.pop(secrets.randbelow(len(names)))
        claimed = blob_locks.lock_and_move(spare, temp)
        if claimed is not None:
            os.ftruncate(claimed, 0)  # spares are empty; this makes sure of it
            return claimed, True
    # none left: a fresh file, whose birth time is now (SECURITY.md says so)
    spares.mkdir(mode=0o700, exist_ok=True)
    fresh = spares / f"{TEMP_PREFIX}{secrets.token_hex(16)}"
    return blob_locks.create_locked(fresh, temp), False


def give_back(spares: Path, temp: Path) -> None:
    """Return the spare claimed at ``temp`` to the pool, emptied and dated to the day.

    Its birth time is still the spare's, so the pool loses nothing by an
    upload that was not kept. It goes back under a new random name.
    """
    today = day_start_ns(time.time_ns())
    os.truncate(temp, 0)
    os.utime(temp, ns=(today, today))
    os.rename(temp, spares / secrets.token_hex(16))
