"""Ciphertext blobs on disk, written atomically.

A blob is written to a temporary file in the blob directory, flushed and
fsync'd, then renamed into place, and the directory is fsync'd: a stored blob
is never partial, and a failed upload leaves no file behind. Blob names are
random, so they say nothing about order or volume.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_TEMP_PREFIX = ".incoming-"


class BlobStore:
    """A directory of write-once ciphertext files named by random ids."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """Where blob ``name`` lives; refuses names that are not ours."""
        if len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            raise ValueError("not a blob name")
        return self.root / name

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

    def clean_incomplete(self) -> int:
        """Remove temporary files left by a crash; return how many."""
        removed = 0
        for leftover in self.root.glob(f"{_TEMP_PREFIX}*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def _sync_directory(self) -> None:
        sync_directory(self.root)


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
        fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.stream: BinaryIO = os.fdopen(fd, "wb")
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
        """Flush, fsync and rename into place; return the blob name."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self._temp, self.store.path(self.name))
        self.store._sync_directory()
        return self.name

    def abort(self) -> None:
        """Throw the partial blob away."""
        if not self.stream.closed:
            self.stream.close()
        self._temp.unlink(missing_ok=True)
