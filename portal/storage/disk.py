"""Small helpers for the files the portal keeps: dates, quiet reads, fsync, a full disk.

The blob store (``blobs.py``) and its writers, the resumable uploads, the
backups and the purge all need the same few things: to date a file to the
start of its UTC day rather than to the moment it was written (SECURITY.md
"Metadata handling"), to read a file without setting its access time, to
make a rename or unlink in a directory survive a crash, and to tell a full
disk from any other failure to write.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

_DAY_NS = 86_400 * 10**9
_NO_ATIME = getattr(os, "O_NOATIME", 0)  # Linux; elsewhere reads update the access time


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


def sync_directory(path: Path) -> None:
    """fsync a directory, so that files created, renamed or unlinked in it stay so."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the file system (or the user's quota) has no room left."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
