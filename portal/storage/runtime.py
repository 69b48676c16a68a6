"""The runtime store: anti-abuse state that needs the time, kept out of the data directory.

Proof of work must know which puzzles were spent and how many in the last
hour, and which a send is using right now; the global budgets must know
their level and when they were last drawn on. Both need times finer than a
day, and SECURITY.md promises that nothing in the data directory or the main
database dates a submission more finely than its day. So this state lives in
a small SQLite file in a runtime directory on tmpfs (``PORTAL_RUNTIME_DIR``;
in deployment systemd's ``RuntimeDirectory=``), shared by every gunicorn
worker and thread in WAL mode, and gone when the service stops or the host
reboots. It is never backed up and never migrated: its tables are made on
first use (a new table is made in an existing file too).

Its directory may have a predictable name in ``/dev/shm``, where every local
user can write, so it is never reached through a symbolic link, and the
portal refuses to start unless the directory is this user's alone and
nobody else can replace it: see :func:`private_directory`.

It also holds the bookkeeping of resumable uploads (``pending.py``):
drafts and their partial uploads, each with the *day* it expires; their
ciphertext is in files beside the blobs, and a start of the portal removes
any whose record this store has lost. A draft nothing has been sent to yet
holds a time as well, the moment it lapses (a few minutes after it began),
until its first byte arrives. Beside the file, a folder ``draft-locks``
holds empty lock files, one per draft in use and one per PATCH slot, that
serialise what happens to a draft across workers (``pending.py``).

Losing it costs little. Budgets start full again. Unfinished resumable
uploads are forgotten: the browser is told the upload is unknown and sends
again. Spent puzzles would be forgotten, so that a puzzle could be spent
twice within its hour; instead, the store holds an *epoch*, a random value
made with the file, which is folded into the puzzle key (``pow.py``):
puzzles issued before the store was lost no longer verify, and a browser
that held one is asked to send again.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import stat
import threading
from pathlib import Path

from sqlalchemy import Boolean, Date, Engine, Float, Integer, String, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.schema import CreateIndex, CreateTable

from portal.config import ConfigError
from portal.storage.db import make_engine, make_sessions

FILE_NAME = "anti-abuse-v2.sqlite3"  # a new layout gets a new name, never a migration
LOCK_FOLDER = "draft-locks"  # lock files of drafts in use (``pending.py``)


class RuntimeBase(DeclarativeBase):
    """Declarative base for the runtime store's tables (never the main database's)."""


class Epoch(RuntimeBase):
    """The random value this store was made with; it keys every puzzle issued meanwhile."""

    __tablename__ = "epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    nonce: Mapped[str] = mapped_column(String(64))  # 256 random bits, hex


class SpentPuzzle(RuntimeBase):
    """A proof-of-work puzzle already used; kept until it would have expired anyway."""

    __tablename__ = "spent_puzzle"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the puzzle
    expires_at: Mapped[int] = mapped_column(Integer, index=True)  # seconds since the epoch


class ProofHold(RuntimeBase):
    """A proof of work being used right now: reserved before anything it pays for is stored.

    Made by an atomic insert, so that of the sends racing with one proof
    only one goes on to store anything (``pow.py``). It becomes a spent
    puzzle once that is stored, and is removed if the send fails; one left
    by a process that died is taken over at once, and any other lapses at
    ``until``, a few minutes on.
    """

    __tablename__ = "proof_hold"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the puzzle
    holder: Mapped[str] = mapped_column(String(32))  # random, the holding request's own
    pid: Mapped[int] = mapped_column(Integer)  # the process that holds it
    until: Mapped[int] = mapped_column(Integer, index=True)  # seconds since the epoch


class RateBudget(RuntimeBase):
    """A global token bucket (never per address): tokens left and when it was last used."""

    __tablename__ = "rate_budget"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class Draft(RuntimeBase):
    """A submission being sent in resumable parts (``pending.py``).

    Once a byte of it has arrived it holds a day, never a time. Until then it
    holds the moment it lapses, a few minutes after it began: a draft that
    nothing is sent to must not hold a place for days (``pending.py``).
    """

    __tablename__ = "draft"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the draft id
    #: the UTC day at whose start it expires (one or two days after the day it began)
    expires_on: Mapped[dt.date] = mapped_column(Date, index=True)
    #: until its first byte is stored: when it lapses (seconds since the epoch); then NULL
    lapses_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: once stored: SHA-256 of the receipt fields it was stored with, and how many parts
    receipt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stored_parts: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PendingUpload(RuntimeBase):
    """One envelope of a draft, arriving by tus into a partial file (``pending.py``)."""

    __tablename__ = "pending_upload"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the upload id
    draft: Mapped[str] = mapped_column(String(64), index=True)  # the draft's key
    file: Mapped[str] = mapped_column(String(64), unique=True)  # its partial file's name
    length: Mapped[int] = mapped_column(Integer)  # Upload-Length
    expires_on: Mapped[dt.date] = mapped_column(Date, index=True)  # the draft's
    #: whether its file came from the spare pool (it goes back there if not kept)
    spare: Mapped[bool] = mapped_column(Boolean, default=False)
    #: whether its first bytes have passed the envelope header check
    header_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: bytes counted against the pending space: those in its file, and while a
    #: PATCH is under way, the room granted to that PATCH beyond them
    held: Mapped[int] = mapped_column(Integer, default=0)
    #: while a PATCH with a checksum is under way: the offset it started from, which
    #: is all that counts as stored until its checksum matches
    checksum_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RuntimeStore:
    """The runtime store in ``directory``, opened on first use by any thread.

    With ``prepare``, the directory is made and checked at once, so that a
    portal that will need the store refuses to start rather than fail on
    its first request.
    """

    def __init__(self, directory: Path, *, prepare: bool = False) -> None:
        self.directory = directory
        if prepare:
            private_directory(directory)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The store's session factory; the directory, file and tables are made if missing."""
        with self._lock:
            if self._sessions is None:
                self._engine = _open(self.directory)
                self._sessions = make_sessions(self._engine)
        return self._sessions

    @property
    def locks(self) -> Path:
        """The folder of the drafts' lock files (``pending.py``); made when first locked."""
        return self.directory / LOCK_FOLDER

    def dispose(self) -> None:
        """Close the store's connections (it stays usable; the next use reopens them)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()


def epoch(session: Session) -> bytes:
    """This store's epoch: it changes whenever the store is lost and made anew."""
    nonce = session.scalar(select(Epoch.nonce).where(Epoch.id == 1))
    if nonce is None:  # pragma: no cover - _open made it before any session existed
        raise RuntimeError("the runtime store has no epoch")
    return bytes.fromhex(nonce)


def _open(directory: Path) -> Engine:
    """Check or make the private directory, then the file, its tables and its epoch."""
    private_directory(directory)
    # WAL, so readers and the one writer across workers never block each other,
    # and the busy timeout of db.py; on tmpfs and volatile by design, so commits
    # need no fsync. Every write here is one short transaction that starts with
    # its write, with the hashing and file work done before it (pow.py, budget.py).
    engine = make_engine(f"sqlite:///{directory / FILE_NAME}", durable=False)

    # Every worker may get here at once: each statement is safe to repeat.
    with engine.begin() as connection:
        for table in RuntimeBase.metadata.sorted_tables:
            connection.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))
        connection.execute(
            insert(Epoch).values(id=1, nonce=secrets.token_hex(32)).on_conflict_do_nothing()
        )
    return engine


def private_directory(directory: Path) -> None:
    """Make ``directory`` (0700) or accept it only if it is ours alone; else :class:`ConfigError`.

    Its name may be predictable, in a directory every local user can write
    to (``/dev/shm``), so someone may have put something there first. It is
    made without parents and never followed if it is a symbolic link; an
    existing one must be a directory of this user's with mode 0700; and no
    directory above it may let anyone else rename it away and put another in
    its place: each must belong to this user or root, and none may be
    writable by others unless it has the sticky bit (``/dev/shm``, ``/tmp``).
    """
    directory = Path(os.path.abspath(directory))
    for above in _above(directory):
        _check_above(above)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass  # checked below, whoever made it
    except FileNotFoundError:
        raise ConfigError(
            f"the runtime directory's parent {directory.parent} does not exist"
        ) from None
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        if directory.is_symlink():
            raise ConfigError(
                f"the runtime directory {directory} is a symbolic link: refusing to follow it"
            ) from None
        raise ConfigError(f"the runtime directory {directory} is not a directory") from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            f"the runtime directory {directory} must belong to this user alone (chmod 700)"
        )


def _above(directory: Path) -> list[Path]:
    """Every directory above ``directory``, as named and as resolved (links and all)."""
    real = Path(os.path.realpath(directory.parent))
    return [*directory.parents, real, *real.parents]


def _check_above(place: Path) -> None:
    """Refuse a directory (or link) above the runtime directory that others could change."""
    try:
        info = place.lstat()
    except FileNotFoundError:
        return  # making the runtime directory will say so
    if info.st_uid not in {0, os.getuid()}:
        raise ConfigError(f"{place}, above the runtime directory, must belong to this user or root")
    if stat.S_ISLNK(info.st_mode):
        return  # a link's own mode means nothing; where it leads is checked too
    if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"others can write to {place}, above the runtime directory, and could replace it:"
            " use a directory only this user can write to, or a sticky one like /dev/shm"
        )
