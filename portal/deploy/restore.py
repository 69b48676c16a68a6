"""Restoring an encrypted backup (:mod:`portal.deploy.backup`) into a new data directory.

A backup is sealed to the backup key but signed by nobody, and that key's
public half sits on the host: anyone who reads the host can forge one. So
every byte of a backup is untrusted input, and no trust anchor comes from it:

* the organisation key is the one the operator brings from the key-ceremony
  record (``--organisation-key``); a backup that carries another is refused,
  and the key directory in it must verify under the ceremony key;
* the key directory installed is the ceremony's newest (``--key-directory``),
  never the backup's, so an old backup cannot bring back a removed reviewer;
  a backup whose directory is newer than it is refused (the operator's copy
  is stale);
* sync accounts are the operator's enrolment record (``--accounts``), or none
  (:mod:`portal.deploy.backup_rows`), and no session or spent challenge is kept;
* the tar stream may hold regular files only, at the paths a backup writes
  (``database/portal.sqlite3`` or ``.pgdump``, ``data/`` with the four key
  files and ``blobs/NAME``), each once and within a size bound;
* a SQLite database is opened read-only with ``trusted_schema`` off, must
  pass ``PRAGMA integrity_check``, and must have exactly the tables, indexes
  and columns this code's migrations make at its recorded revision: no
  triggers, no views, nothing extra;
* no SQL from a PostgreSQL dump runs: its rows alone are parsed out of it and
  loaded into a schema this code's migrations build in the new, empty
  database, in one transaction with the checks below
  (:mod:`portal.deploy.backup_pgdump`);
* once upgraded to this version's schema, every row must look as this code
  writes it (:mod:`portal.deploy.backup_rows`).

The whole envelope is decrypted into an anonymous temporary file first (it has
no name, so nothing is left if the process dies), so a damaged, truncated or
foreign backup restores nothing. Then every file is checked as above and
against the manifest, the data directory is built beside the target and
renamed into place, the database is put back, a new Flask secret is made.
The database is upgraded to this version's schema before its rows are
checked (restoring onto newer code is how upgrades and moves to a new host
work); a SQLite database is upgraded and checked in the staging directory,
before anything is in place, and a PostgreSQL database is committed only once
its rows have passed, so a refused backup leaves it empty.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from crypto.directory import MAX_DOCUMENT_BYTES, KeyDirectory, read_directory
from crypto.envelope import open_envelope
from crypto.errors import CryptoError
from crypto.keyfile import decrypt_key_file
from crypto.keys import EncryptionKeyPair, KeyKind, PublicKeyToken, parse_public_key
from portal.config import SECRET_FILE, environ_snapshot, load_config
from portal.deploy.backup import SCHEMA, BackupError, sqlite_path
from portal.deploy.backup_pgdump import DataDump, load_dump, read_dump
from portal.deploy.backup_rows import Account, KeptRows, check_rows, check_rows_on
from portal.deploy.backup_schema import check_sqlite_file
from portal.storage.db import upgrade
from portal.storage.inbox import SIGNING_KEY_FILE, SIGNING_PUBLIC_FILE
from portal.web.reviewers import ORGANISATION_KEY_FILE

_COPY_CHUNK = 1024 * 1024
_MAX_MANIFEST = 64 * 1024 * 1024
_DIRECTORY_FILE = "key-directory.json"
#: the only files a backup's data/ may hold, each with its size bound
_DATA_FILES = {
    ORGANISATION_KEY_FILE: 1024,
    SIGNING_PUBLIC_FILE: 1024,
    SIGNING_KEY_FILE: 64 * 1024,
    _DIRECTORY_FILE: MAX_DOCUMENT_BYTES,
}
_DATABASE_FILES = {"portal.sqlite3", "portal.pgdump"}
#: the names :meth:`portal.storage.blobs.BlobStore.path` accepts
_BLOB = re.compile(r"[0-9a-f]{32}")
_MAX_BLOB = 4 * 1024**3
_MAX_DATABASE = 64 * 1024**3
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@dataclass(frozen=True)
class RestoreResult:
    """A restore done: where, what, and anything the operator should look at."""

    data_dir: Path
    files: int
    database: str
    created: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ceremony:
    """What the operator brings from the key-ceremony record, never from a backup.

    ``organisation`` is the organisation key; ``directory`` the newest key
    directory it signed (the file); ``accounts`` the enrolment record of the
    sync accounts, or None to enrol everyone again after the restore.
    """

    organisation: PublicKeyToken
    directory: Path
    accounts: list[Account] | None = None


def restore_backup(
    backup: Path, key_file: Path, passphrase: bytes, data_dir: Path, ceremony: Ceremony
) -> RestoreResult:
    """Restore ``backup`` into ``data_dir``, which must not exist yet or be empty.

    The restored portal pins the ceremony's organisation key and serves its
    key directory whatever the backup says; a backup that names another key,
    holds a directory that key did not sign or one newer than the ceremony's,
    or holds accounts other than those enrolled, restores nothing.
    """
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new data directory")
    directory, warnings = _ceremony_directory(ceremony)
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
        _check_trust_anchors(staging / "data", ceremony.organisation, directory)
        (staging / "data" / _DIRECTORY_FILE).write_bytes(directory.raw)
        if manifest["database"] == "sqlite":
            check_sqlite_file(staging / "database" / "portal.sqlite3", staging)
            result = _install(manifest, staging, data_dir, ceremony, warnings, None)
        else:
            with read_dump(staging / "database" / "portal.pgdump", staging) as rows:
                result = _install(manifest, staging, data_dir, ceremony, warnings, rows)
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
                raise BackupError(f"the backup holds {member.name[:80]!r}, which is not a file")
            if member.name in seen or (member.name == "manifest.json" and manifest is not None):
                raise BackupError(f"the backup holds {member.name[:80]!r} twice")
            if member.name == "manifest.json":
                manifest = _parse_manifest(source.read(_MAX_MANIFEST))
                continue
            target, limit = _member_target(member.name, data, database)
            if member.size > limit:
                raise BackupError(
                    f"the backup's {member.name[:80]!r} is larger than a portal makes"
                )
            seen[member.name] = _copy_out(source, target)
    if manifest is None:
        raise BackupError("the backup has no manifest")
    listed = {entry["path"]: (entry["size"], entry["sha256"]) for entry in manifest["files"]}
    if listed != seen:
        raise BackupError("the backup's files do not match its manifest; nothing was restored")
    expected = {"sqlite": "database/portal.sqlite3", "postgresql": "database/portal.pgdump"}
    if {name for name in seen if name.startswith("database/")} != {expected[manifest["database"]]}:
        raise BackupError("the backup does not hold exactly the database its manifest names")
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
    if not isinstance(files, list) or not all(_is_entry(f) for f in files):
        raise BackupError("the backup's manifest is malformed")
    created = manifest.get("created_at")
    if not isinstance(created, str) or not _TIME.fullmatch(created):
        raise BackupError("the backup's manifest has a malformed time")  # it reaches the terminal
    return manifest


def _is_entry(entry: Any) -> bool:
    """A manifest line: a path, a size and a SHA-256, each of its own type."""
    return (
        isinstance(entry, dict)
        and set(entry) == {"path", "size", "sha256"}
        and isinstance(entry["path"], str)
        and type(entry["size"]) is int
        and isinstance(entry["sha256"], str)
    )


def _member_target(name: str, data: Path, database: Path) -> tuple[Path, int]:
    """Where a member goes, and its size bound; refuses any path a backup never holds."""
    parts = PurePosixPath(name).parts
    if "/".join(parts) != name:  # "//", "./", a trailing slash: not how a backup spells it
        parts = ()
    if len(parts) == 2 and parts[0] == "database" and parts[1] in _DATABASE_FILES:
        return database / parts[1], _MAX_DATABASE
    if len(parts) == 2 and parts[0] == "data" and parts[1] in _DATA_FILES:
        return data / parts[1], _DATA_FILES[parts[1]]
    if len(parts) == 3 and parts[:2] == ("data", "blobs") and _BLOB.fullmatch(parts[2]):
        (data / "blobs").mkdir(mode=0o700, exist_ok=True)
        return data / "blobs" / parts[2], _MAX_BLOB
    # Whatever else: absolute, "..", "//", "./", links' names, other files.
    raise BackupError(f"the backup holds a path a portal backup never has: {name[:80]!r}")


@dataclass(frozen=True)
class _Directory:
    raw: bytes
    verified: KeyDirectory


def _ceremony_directory(ceremony: Ceremony) -> tuple[_Directory, list[str]]:
    """The ceremony's key directory, verified under its organisation key."""
    try:
        with ceremony.directory.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise BackupError(f"cannot read {ceremony.directory}: {error.strerror}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise BackupError("--key-directory is larger than any key directory")
    try:
        verified = read_directory(raw, ceremony.organisation)
    except CryptoError as error:
        raise BackupError(
            f"--key-directory does not verify under --organisation-key ({error.diagnostics()})"
        ) from None
    if verified.expires_at <= datetime.now(UTC):
        return _Directory(raw, verified), [
            "the key directory has expired: re-sign it before taking reports"
        ]
    return _Directory(raw, verified), []


def _check_trust_anchors(data: Path, organisation: PublicKeyToken, ceremony: _Directory) -> None:
    """Refuse a backup whose organisation key or key directory the ceremony did not make.

    The backup's directory is not installed, but one that does not verify
    marks a forgery, and one newer than the ceremony's marks a stale copy.
    """
    carried = data / ORGANISATION_KEY_FILE
    if carried.exists():
        try:
            token = parse_public_key(carried.read_text(encoding="ascii"), KeyKind.SIGNING)
        except (UnicodeDecodeError, CryptoError):
            raise BackupError("the backup's organisation key is malformed") from None
        if token != organisation:
            raise BackupError(
                "the backup carries another organisation key than the ceremony's "
                f"({token.fingerprint}); nothing was restored"
            )
    directory = data / _DIRECTORY_FILE
    if not directory.exists():
        return
    try:
        verified = read_directory(directory.read_bytes(), organisation)
    except CryptoError as error:
        raise BackupError(
            f"the backup's key directory does not verify under the ceremony's organisation "
            f"key ({error.diagnostics()}); nothing was restored"
        ) from None
    if verified.serial > ceremony.verified.serial:
        raise BackupError(
            f"the backup holds a newer key directory (serial {verified.serial}) than "
            f"--key-directory (serial {ceremony.verified.serial}): bring the ceremony's newest"
        )


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


def _install(
    manifest: dict[str, Any],
    staging: Path,
    data_dir: Path,
    ceremony: Ceremony,
    warnings: list[str],
    rows: DataDump | None,
) -> RestoreResult:
    """Load, upgrade and check the database; make a new secret; move the directory in.

    ``rows`` is what a PostgreSQL backup's dump holds (None for SQLite).
    """
    built = staging / "data"
    config = load_config(
        {**environ_snapshot(), "PORTAL_SECRET_KEY": secrets.token_hex(32)}, data_dir=data_dir
    )
    if config.organisation_key is not None and config.organisation_key != ceremony.organisation:
        raise BackupError(
            "PORTAL_ORGANISATION_KEY names another key than --organisation-key; "
            "set it to the key-ceremony record's"
        )
    url = config.database_url
    kind = manifest["database"]
    target_sqlite = sqlite_path(url)
    if (kind == "sqlite") != (target_sqlite is not None):
        raise BackupError(
            f"the backup holds a {kind} database but DATABASE_URL names another kind; "
            "restore into the same kind, then migrate"
        )
    blobs = {
        entry["path"].removeprefix("data/blobs/"): (entry["size"], entry["sha256"])
        for entry in manifest["files"]
        if entry["path"].startswith("data/blobs/")
    }
    if target_sqlite is not None:
        if target_sqlite.parent != data_dir:
            raise BackupError("DATABASE_URL names a SQLite file outside the data directory")
        staged = staging / "database" / "portal.sqlite3"
        kept = _upgrade_and_check(f"sqlite:///{staged}", blobs, ceremony)
        os.replace(staged, built / target_sqlite.name)
    elif rows is not None:
        kept = load_dump(url, rows, lambda c: check_rows_on(c, blobs, ceremony.accounts))
    else:
        raise BackupError("the backup's database was not read")  # restore_backup reads it
    (built / ORGANISATION_KEY_FILE).write_text(f"{ceremony.organisation}\n", encoding="ascii")
    secret = os.open(built / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(secret, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    (built / "blobs").mkdir(mode=0o700, exist_ok=True)
    unnamed = [name for name in blobs if name not in kept.blobs]
    for name in unnamed:  # no row names them, so no purge would ever remove them
        (built / "blobs" / name).unlink()
    if data_dir.exists():
        data_dir.rmdir()
    os.replace(built, data_dir)
    data_dir.chmod(0o700)
    (data_dir / _DIRECTORY_FILE).chmod(0o644)  # served to browsers as it is
    if unnamed:
        warnings.append(f"left out {len(unnamed)} blob file(s) that no row of the database names")
    missing = len(kept.blobs - blobs.keys())
    if missing:
        warnings.append(f"{missing} stored blob(s) named in the database are not in the backup")
    return RestoreResult(
        data_dir=data_dir,
        files=len(manifest["files"]),
        database=kind,
        created=manifest["created_at"],
        warnings=[*warnings, *kept.warnings],
    )


def _upgrade_and_check(url: str, blobs: dict[str, tuple[int, str]], ceremony: Ceremony) -> KeptRows:
    """Bring the database to this version's schema, then check (and prune) its rows."""
    try:
        upgrade(url)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        raise BackupError(f"the backup's database does not upgrade: {reason!a}") from None
    return check_rows(url, blobs, ceremony.accounts)
