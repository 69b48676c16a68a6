"""Encrypted backups of a portal's data directory, and restoring them.

A backup is one envelope (crypto/SPEC.md), sealed to one or more *backup
keys* whose private halves stay offline, over a tar stream of:

* ``database/portal.sqlite3`` (SQLite's online backup API, so a live portal
  keeps running) or ``database/portal.pgdump`` (``pg_dump --format=custom``);
* ``data/…``: the blobs (report ciphertext), the bundle-signing key, the
  organisation's public key and the signed key directory;
* ``manifest.json`` last: every file's size and SHA-256.

Left out: the Flask secret (it protects forms for hours; a restore makes a new
one), ``demo/`` (demo keys), and temporary files. The host holding the backup
files, or anyone who copies them, sees envelopes only. Sealing streams, so a
backup of any size takes constant memory.

:mod:`portal.deploy.restore` undoes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy.engine import make_url

from crypto.envelope import Sealer
from crypto.errors import CryptoError
from crypto.keys import KeyKind, parse_public_key
from portal.config import SECRET_FILE, environ_snapshot, load_config
from portal.storage.disk import open_quietly, sync_directory

SCHEMA = "cso-portal-backup/v1"
_NAME = re.compile(r"cso-portal-backup-\d{8}T\d{6}Z\.tar\.cso")
#: never in a backup: the Flask secret, demo keys, SQLite side files
_LEFT_OUT = {SECRET_FILE, "demo"}
_COPY_CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    """A backup written: where, how many files, how large."""

    path: Path
    files: int
    size: int


def read_backup_key(path: Path) -> list[bytes]:
    """The backup public keys (``csoenc1…``, one a line) from ``path``."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines()]
    except (OSError, UnicodeDecodeError):
        raise BackupError(f"cannot read the backup key from {path}") from None
    tokens = [line for line in lines if line and not line.startswith("#")]
    if not tokens:
        raise BackupError(f"{path} holds no csoenc1… key")
    try:
        return [parse_public_key(token, KeyKind.ENCRYPTION).key for token in tokens]
    except CryptoError as error:
        raise BackupError(f"{path}: {error.diagnostics()}") from None


def read_passphrase(path: Path | None) -> bytes:
    """The backup key's passphrase, from a file or the terminal."""
    from crypto import cli as crypto_cli

    try:
        return crypto_cli.read_passphrase(None if path is None else str(path), confirm=False)
    except crypto_cli.UsageError as error:
        raise BackupError(str(error)) from None


class _SealingWriter(io.RawIOBase):
    """A write-only stream that seals what it is given into ``out``."""

    def __init__(self, out: BinaryIO, recipients: list[bytes]) -> None:
        super().__init__()
        self._out = out
        self._sealer = Sealer(recipients)
        self.size = len(self._sealer.header_bytes)
        out.write(self._sealer.header_bytes)

    def writable(self) -> bool:
        """Always: that is all this stream does."""
        return True

    def write(self, data: Any) -> int:
        """Seal ``data``; write whatever whole chunks it completes."""
        sealed = self._sealer.update(data)
        self._out.write(sealed)
        self.size += len(sealed)
        return len(memoryview(data).cast("B"))

    def finish(self) -> None:
        """Write the last chunks (the tail and the padding)."""
        for chunk in self._sealer.finalize():
            self._out.write(chunk)
            self.size += len(chunk)


class _Hashing(io.RawIOBase):
    """Reads from ``source`` while hashing what passes."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        """Always."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Read and hash."""
        data = self._source.read(size)
        self.digest.update(data)
        return data


def _database_url(data_dir: Path) -> str:
    return load_config(environ_snapshot(), data_dir=data_dir).database_url


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(parsed.database).resolve()


def _snapshot_sqlite(path: Path) -> bytes:
    """A consistent copy of a live SQLite database, taken in memory."""
    if not path.exists():
        raise BackupError(f"no database at {path}; run `portal init`")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        image = bytearray(copy.serialize())
        # The live file runs in WAL mode and the backup API copies that mark (header
        # bytes 18 and 19, the file format versions: 2 is WAL). The copy has no log,
        # so it says rollback journal (1), the only mode a restore accepts.
        image[18:20] = b"\x01\x01"
        return bytes(image)
    finally:
        source.close()
        copy.close()


def libpq_environment(url: str) -> dict[str, str]:
    """libpq variables for a SQLAlchemy URL: no password on any command line."""
    parsed = make_url(url)
    environ = dict(os.environ)
    for variable, value in (
        ("PGHOST", parsed.host or parsed.query.get("host")),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value:
            environ[variable] = str(value if not isinstance(value, tuple) else value[0])
    return environ


def _dump_postgres(url: str, spool: IO[bytes]) -> None:
    """``pg_dump --format=custom`` of the portal's database into ``spool``.

    pg_dump gets the spool by its /proc path, not as stdout: only when it can
    seek does it record where each table's data lies, which pg_restore needs.
    """
    fd = spool.fileno()
    result = subprocess.run(  # noqa: S603 - a fixed program and our own file
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",  # noqa: S607
         f"--file=/proc/self/fd/{fd}"],
        stderr=subprocess.PIPE, env=libpq_environment(url), pass_fds=(fd,), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_dump failed: {message[-1] if message else 'no message'}")


def _data_files(data_dir: Path, database: Path | None) -> Iterator[Path]:
    """The files of the data directory that a restore needs, in a stable order."""
    skipped = set()
    if database is not None:
        skipped = {database.name + suffix for suffix in ("", "-journal", "-wal", "-shm")}
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        top = relative.parts[0]
        if top in _LEFT_OUT or any(part.startswith(".") for part in relative.parts):
            continue
        if path.parent == data_dir and path.name in skipped:
            continue
        if path.is_file() and not path.is_symlink() and not path.name.endswith(".bundle"):
            yield path


def _add(archive: tarfile.TarFile, name: str, source: IO[bytes], size: int) -> str:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    hashing = _Hashing(source)
    archive.addfile(info, hashing)
    return hashing.digest.hexdigest()


def create_backup(data_dir: Path, out_dir: Path, recipients: list[bytes]) -> BackupResult:
    """Seal a backup of ``data_dir`` to ``recipients`` into a new file in ``out_dir``."""
    if not data_dir.is_dir():
        raise BackupError(f"no data directory at {data_dir}")
    url = _database_url(data_dir)
    sqlite_file = sqlite_path(url)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    target = out_dir / f"cso-portal-backup-{now:%Y%m%dT%H%M%SZ}.tar.cso"
    if target.exists():
        raise BackupError(f"{target} exists already; wait a second and run again")
    temp = out_dir / f".{target.name}.{secrets.token_hex(4)}.partial"
    entries: list[dict[str, Any]] = []
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            sealing = _SealingWriter(handle, recipients)
            with tarfile.open(fileobj=sealing, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                entries.append(_add_database(archive, url, sqlite_file, out_dir))
                entries += _add_files(archive, data_dir, sqlite_file)
                _add_manifest(archive, entries, now, sqlite_file is None)
            sealing.finish()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        sync_directory(out_dir)
    finally:
        temp.unlink(missing_ok=True)
    return BackupResult(target, len(entries), target.stat().st_size)


def _add_database(
    archive: tarfile.TarFile, url: str, sqlite_file: Path | None, out_dir: Path
) -> dict[str, Any]:
    if sqlite_file is not None:
        image = _snapshot_sqlite(sqlite_file)
        name = "database/portal.sqlite3"
        digest = _add(archive, name, io.BytesIO(image), len(image))
        return {"path": name, "size": len(image), "sha256": digest}
    with tempfile.TemporaryFile(dir=out_dir) as spool:  # unnamed: gone if we die
        _dump_postgres(url, spool)
        size = os.fstat(spool.fileno()).st_size
        spool.seek(0)
        name = "database/portal.pgdump"
        return {"path": name, "size": size, "sha256": _add(archive, name, spool, size)}


def _add_files(
    archive: tarfile.TarFile, data_dir: Path, sqlite_file: Path | None
) -> list[dict[str, Any]]:
    entries = []
    database = sqlite_file if sqlite_file and sqlite_file.parent == data_dir else None
    for path in _data_files(data_dir, database):
        try:
            handle = open_quietly(path)  # the backup's time is no file's
        except FileNotFoundError:
            continue  # purged since the listing: the database copy may name it, see restore
        with handle:
            size = os.fstat(handle.fileno()).st_size
            name = f"data/{path.relative_to(data_dir).as_posix()}"
            entries.append(
                {"path": name, "size": size, "sha256": _add(archive, name, handle, size)}
            )
    return entries


def _add_manifest(
    archive: tarfile.TarFile, entries: list[dict[str, Any]], now: datetime, postgres: bool
) -> None:
    manifest = {
        "schema": SCHEMA,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "database": "postgresql" if postgres else "sqlite",
        "files": entries,
    }
    raw = json.dumps(manifest, indent=1).encode()
    _add(archive, "manifest.json", io.BytesIO(raw), len(raw))


def prune(out_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``out_dir``; return the deleted."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    backups = sorted(p for p in out_dir.iterdir() if _NAME.fullmatch(p.name))
    doomed = backups[:-keep]
    for path in doomed:
        path.unlink()
    return doomed
