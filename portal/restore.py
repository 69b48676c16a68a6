"""Restoring an encrypted backup (:mod:`portal.backup`) into a new data directory.

The whole envelope is decrypted into an anonymous temporary file first (it has
no name, so nothing is left if the process dies), so a damaged, truncated or
foreign backup restores nothing. Then every file is checked against the
manifest, the data directory is built beside the target and renamed into
place, the database is put back (the SQLite file, or ``pg_restore`` into an
empty PostgreSQL database), a new Flask secret is made, and the schema is
upgraded to this version's: restoring onto newer code is how upgrades and
moves to a new host work.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import inspect as sql_inspect
from sqlalchemy import select

from crypto.envelope import open_envelope
from crypto.errors import CryptoError
from crypto.keyfile import decrypt_key_file
from crypto.keys import EncryptionKeyPair
from portal.backup import SCHEMA, BackupError, libpq_environment, sqlite_path
from portal.config import SECRET_FILE, environ_snapshot, load_config
from portal.db import make_engine, upgrade

_COPY_CHUNK = 1024 * 1024
_MAX_MANIFEST = 64 * 1024 * 1024


@dataclass(frozen=True)
class RestoreResult:
    """A restore done: where, what, and anything the operator should look at."""

    data_dir: Path
    files: int
    database: str
    created: str
    warnings: list[str] = field(default_factory=list)


def restore_backup(
    backup: Path, key_file: Path, passphrase: bytes, data_dir: Path
) -> RestoreResult:
    """Restore ``backup`` into ``data_dir``, which must not exist yet or be empty."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new data directory")
    try:
        bundle = decrypt_key_file(key_file.read_bytes(), passphrase)
    except OSError as error:
        raise BackupError(f"cannot read {key_file}: {error.strerror}") from None
    if bundle.encryption is None:
        raise BackupError(f"{key_file} has no decryption key: use the backup key file")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-", dir=data_dir.parent))
    try:
        with tempfile.TemporaryFile(dir=staging) as plain:
            _decrypt(backup, bundle.encryption, plain)
            plain.seek(0)
            manifest = _extract(plain, staging / "data", staging / "database")
        result = _install(manifest, staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _decrypt(backup: Path, identity: EncryptionKeyPair, plain: IO[bytes]) -> None:
    try:
        with backup.open("rb") as source:
            open_envelope(source, plain, identity)  # type: ignore[arg-type]
    except OSError as error:
        raise BackupError(f"cannot read {backup}: {error.strerror}") from None
    except CryptoError as error:
        raise BackupError(
            f"{backup} does not open with this key, or is damaged ({error.failure_class}); "
            "nothing was restored"
        ) from None


def _extract(plain: IO[bytes], data: Path, database: Path) -> dict[str, Any]:
    """Unpack a decrypted backup; check every file against the manifest."""
    seen: dict[str, tuple[int, str]] = {}
    manifest: dict[str, Any] | None = None
    data.mkdir(mode=0o700)
    database.mkdir(mode=0o700)
    with tarfile.open(fileobj=plain, mode="r|") as archive:
        for member in archive:
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                raise BackupError(f"the backup holds {member.name!r}, which is not a file")
            if member.name == "manifest.json":
                manifest = _parse_manifest(source.read(_MAX_MANIFEST))
                continue
            target = _member_target(member.name, data, database)
            seen[member.name] = _copy_out(source, target)
    if manifest is None:
        raise BackupError("the backup has no manifest")
    listed = {entry["path"]: (entry["size"], entry["sha256"]) for entry in manifest["files"]}
    if listed != seen:
        raise BackupError("the backup's files do not match its manifest; nothing was restored")
    return manifest


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise BackupError("the backup's manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BackupError(f"not a {SCHEMA} backup")
    if manifest.get("database") not in ("sqlite", "postgresql"):
        raise BackupError("the backup's manifest names no known database")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and set(f) == {"path", "size", "sha256"} for f in files
    ):
        raise BackupError("the backup's manifest is malformed")
    return manifest


def _member_target(name: str, data: Path, database: Path) -> Path:
    """Where a member goes; refuses anything outside the two folders."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        raise BackupError(f"the backup holds an unsafe path {name!r}")
    folder = {"data": data, "database": database}.get(path.parts[0])
    if folder is None:
        raise BackupError(f"the backup holds an unexpected path {name!r}")
    target = folder.joinpath(*path.parts[1:])
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return target


def _copy_out(source: IO[bytes], target: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _install(manifest: dict[str, Any], staging: Path, data_dir: Path) -> RestoreResult:
    """Put the database in place, make a new secret, move the directory in, upgrade."""
    built = staging / "data"
    url = load_config(
        {**environ_snapshot(), "PORTAL_SECRET_KEY": secrets.token_hex(32)}, data_dir=data_dir
    ).database_url
    kind = manifest["database"]
    target_sqlite = sqlite_path(url)
    if (kind == "sqlite") != (target_sqlite is not None):
        raise BackupError(
            f"the backup holds a {kind} database but DATABASE_URL names another kind; "
            "restore into the same kind, then migrate"
        )
    if target_sqlite is not None:
        if target_sqlite.parent != data_dir:
            raise BackupError("DATABASE_URL names a SQLite file outside the data directory")
        os.replace(staging / "database" / "portal.sqlite3", built / target_sqlite.name)
    else:
        _restore_postgres(url, staging / "database" / "portal.pgdump")
    secret = os.open(built / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(secret, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    (built / "blobs").mkdir(mode=0o700, exist_ok=True)
    if data_dir.exists():
        data_dir.rmdir()
    os.replace(built, data_dir)
    data_dir.chmod(0o700)
    if (data_dir / "key-directory.json").exists():
        (data_dir / "key-directory.json").chmod(0o644)  # served to browsers as it is
    upgrade(url)
    return RestoreResult(
        data_dir=data_dir,
        files=len(manifest["files"]),
        database=kind,
        created=manifest["created_at"],
        warnings=_missing_blobs(url, data_dir / "blobs"),
    )


def _restore_postgres(url: str, dump: Path) -> None:
    engine = make_engine(url)
    try:
        if sql_inspect(engine).get_table_names():
            raise BackupError("the database in DATABASE_URL is not empty: restore into a new one")
    finally:
        engine.dispose()
    environment = libpq_environment(url)
    database = environment.get("PGDATABASE", "")
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
               "--single-transaction", "--dbname", database, str(dump)]  # fmt: skip
    result = subprocess.run(  # noqa: S603 - a fixed program; the dump path is ours
        command, stderr=subprocess.PIPE, env=environment, check=False
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_restore failed: {message[-1] if message else 'no message'}")


def _missing_blobs(url: str, blobs: Path) -> list[str]:
    """Blobs the restored database names but the backup did not hold (purged meanwhile)."""
    from portal.models import Part

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            names = connection.execute(select(Part.blob)).scalars().all()
    finally:
        engine.dispose()
    missing = [name for name in names if not (blobs / name).exists()]
    if not missing:
        return []
    return [f"{len(missing)} stored part(s) named in the database have no blob in the backup"]
