"""File handling for the command line: private, atomic outputs.

The library modules of ``crypto`` never touch the file system; only the CLI
does, through these helpers.

Decrypted output must never be left behind under any name if decryption
fails or the process dies. On Linux the output is written to an anonymous
``O_TMPFILE`` inode in the target directory, which has no name at all until
it is linked in after success: a crash, SIGKILL or power cut leaves no file
(the kernel frees the inode; its blocks are not overwritten, see
SECURITY.md). Where ``O_TMPFILE`` is unavailable, a named private temporary
file is used and removed on failure; the CLI turns SIGTERM and SIGHUP into a
normal exit so that removal also happens then.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Yield a private stream that appears at ``path`` only if the block succeeds."""
    directory = path.parent if str(path.parent) else Path(".")
    fd = _anonymous_file(directory)
    if fd is None:
        with _named_temporary(path, directory) as handle:
            yield handle
        return
    handle = os.fdopen(fd, "wb")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        _link_into_place(fd, path, directory)
    finally:
        handle.close()


def _anonymous_file(directory: Path) -> int | None:
    """An unnamed file in ``directory`` (Linux O_TMPFILE), or None if unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o600)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            if error.errno == errno.ENOENT and not directory.exists():
                raise
            return None
        raise


def _link_into_place(fd: int, path: Path, directory: Path) -> None:
    """Give the anonymous file a name, replacing ``path`` atomically."""
    temporary = directory / f".{path.name}.{secrets.token_hex(8)}.part"
    # Passing a directory fd makes Python call linkat(AT_SYMLINK_FOLLOW), which
    # is what links an O_TMPFILE inode through its /proc/self/fd entry.
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", temporary.name, dst_dir_fd=directory_fd)
    finally:
        os.close(directory_fd)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _named_temporary(path: Path, directory: Path) -> Iterator[BinaryIO]:
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``data``; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
