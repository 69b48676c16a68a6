"""A blob being written: a private, locked ``.incoming-*`` file until it is committed.

:meth:`BlobStore.begin <portal.storage.blobs.BlobStore.begin>` hands one out.
Its file is a spare from the store's pool (or, when the pool is empty, a
fresh file), moved under a temporary name in the blob directory and locked
there (``blob_locks.py``). The ciphertext is hashed as it arrives. A commit
dates the file to the day, fsyncs it and renames it to its random blob name
while it is still locked, so a stored blob is never partial; an abort gives
the spare back to the pool, emptied, so a refused upload leaves no file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from contextlib import suppress
from typing import TYPE_CHECKING, BinaryIO

from portal.storage.blob_locks import TEMP_PREFIX
from portal.storage.disk import day_start_ns, sync_directory

if TYPE_CHECKING:
    from portal.storage.blobs import BlobStore


class PendingBlob:
    """A blob being written: a private temporary file until committed."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.name = secrets.token_hex(16)
        self._temp = store.root / f"{TEMP_PREFIX}{self.name}"
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
        # renamed while the file is still open and locked: a clean-up never
        # sees the temporary name without its lock (see blob_locks.py)
        os.replace(self._temp, self.store.path(self.name))
        self._ended = True
        self.stream.close()
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
