"""Drafts and partial uploads: the bookkeeping behind resumable sending.

A browser on a satellite link sends a report in steps (``resumable.py``):
``/submit/begin`` spends its proof of work and opens a *draft*; each sealed
envelope then arrives by tus into a *partial upload*, in as many pieces and
over as many connections as the link needs; ``/submit/finish`` stores all
of them as one submission, or none. These modules keep the books:
this one holds what they share (limits, records as read, errors and the
words shown for them); ``pending_drafts.py`` opens and stores drafts,
``pending_uploads.py`` makes uploads and grants them room,
``pending_locks.py`` holds the locks and ``pending_cleanup.py`` removes what
has expired.

* Records of drafts and uploads live in the volatile runtime store
  (``runtime.py``), each with the UTC *day* it expires. Their ids are
  128-bit capabilities; the store keeps only a hash of each.
* Bytes are ciphertext only, in partial files in a directory beside the
  blobs (``BlobStore.partial``), taken from the spare pool and dated to the
  day like blobs (``blobs.py``). A partial file's name begins with its
  expiry day, so that the daily purge, which cannot see the runtime store
  (it runs in a sandbox of its own), knows when the file may go.
* Bounds. A draft has at most ``max_parts`` uploads (and
  :data:`SPARE_UPLOADS` more, made again by a browser that never got the
  answer to its first try; past that, such empty uploads are thrown away),
  and its uploads hold at most ``max_total`` bytes together. Unfinished
  drafts are at most ``pending_drafts``; their partial files hold at most
  ``pending_bytes`` between them. Only bytes *stored* count, never bytes
  declared: a PATCH is granted room as its bytes arrive (``pending_uploads.grant``, at
  most :data:`GRANT` ahead of them), so that declaring a large upload and
  sending nothing holds nothing. When there is no room, the PATCH is
  refused (429) and what arrived stays; the browser tries again later.
* Lapse: a draft that has received no byte :data:`FIRST_BYTE_SECONDS` after
  it began lapses and is removed, so that drafts nothing is sent to cannot
  hold ``pending_drafts`` for days. That moment is the one time the store
  holds for a draft, and only until its first byte arrives.
* Expiry: a draft and its uploads expire at the start of the second UTC day
  after the day it began, 24 to 48 hours later. Expired or lapsed uploads,
  and partial files that no record names (the runtime store was lost in a
  restart), are removed when the portal starts (``tidy``), whenever an
  upload or draft is made (``expire``) and by the daily purge
  (``purge_files``), all in ``pending_cleanup.py``.
* Locks, all ``flock``, so that a crashed worker holds none:
  whichever request changes a partial file holds its lock (``locked``);
  a finish holds its draft's lock (``draft_lock``), which creating an
  upload also takes, and then every upload's; a PATCH holds one of
  :data:`PATCHES_PER_DRAFT` slots of its draft (``patch_slot``), all in
  ``pending_locks.py``. The drafts' lock files are empty files in the
  runtime directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, text
from sqlalchemy.orm import Session, sessionmaker

from crypto.manifest import MAX_ATTACHMENTS
from portal.config import MIB, Config
from portal.storage.blobs import BlobStore
from portal.storage.runtime import Draft, PendingUpload

#: a draft expires at the start of this many UTC days after the day it began
LIFETIME_DAYS = 2
#: a draft that has received no byte this many seconds after it began lapses
FIRST_BYTE_SECONDS = 30 * 60
#: uploads a draft may make beyond its parts: ones made again because the answer
#: to the first try was lost (never named at finish, they hold nothing)
SPARE_UPLOADS = 2
#: the most room a PATCH is granted beyond the bytes it has stored; it asks for
#: more as they arrive, so a slow PATCH never holds much that it has not sent
GRANT = 4 * MIB
#: PATCHes to one draft's uploads at once; another one waits briefly, then 423
PATCHES_PER_DRAFT = 2
_ID = re.compile(r"[0-9a-f]{32}")
_KEY_LABEL = b"cso-portal pending v1\n"


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a no-op marker)
    """Mark ``message`` for the translation catalogs, leaving it as it is.

    Storage does not translate (it runs without Flask); the web layer does,
    when it answers with a :class:`PendingError` (``resumable.pending_refusal``).
    ``scripts/catalogs.py`` extracts the messages marked so.
    """
    return message


class PendingError(Exception):
    """A draft or upload cannot be used as asked; the message is safe to show.

    ``message`` is an English sentence whose numbers are ``%(name)s``
    placeholders, filled from ``values``; ``str()`` is that sentence filled in.
    The web layer translates ``message`` first, then fills it in.
    """

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(str(message) % values if values else message)
        self.message = message
        self.values = values


class UnknownError(PendingError):
    """No such draft or upload: never made, removed, or stored already."""


class ExpiredError(PendingError):
    """The draft or upload has expired, or lapsed before its first byte."""

    @classmethod
    def lapsed(cls) -> ExpiredError:
        """The refusal of a draft that received no byte in time (:data:`LAPSED`)."""
        return cls(LAPSED, minutes=FIRST_BYTE_SECONDS // 60)


class FinishedError(PendingError):
    """The draft has been stored already."""


class OverLimitError(PendingError):
    """An upload would take a draft past its own limits."""


class FullError(PendingError):
    """Unfinished uploads already hold all the room the portal gives them."""


class LockedError(PendingError):
    """Another request is using the upload, or the draft."""


UNKNOWN = N_("The portal does not know this upload: it was removed or has expired.")
EXPIRED = N_(
    "This upload has expired: unfinished uploads are kept until the start of the second"
    " day (UTC) after they began. Nothing was stored."
)
#: filled with ``minutes`` (:meth:`ExpiredError.lapsed`)
LAPSED = N_(
    "Nothing arrived for this report within %(minutes)s minutes of its"
    " start, so the portal let it go. Nothing was stored: please send it again."
)
FULL = N_(
    "The portal is holding as many unfinished reports as it can right now. Nothing was"
    " stored. Room is made as other reports finish, and at the latest as unfinished ones"
    " expire (within two days): please try again later."
)
NO_SPACE = N_(
    "The portal has no room just now for more unfinished uploads. What has arrived is"
    " kept, and sending can go on from there once there is room: as other reports finish,"
    " and at the latest as unfinished ones expire (within two days)."
)
LOCKED = N_("An earlier request is still sending to this upload; ask for its offset and resume.")
BUSY_DRAFT = N_(
    "Other parts of this report are being sent or stored right now; ask again in a moment."
)
UNKNOWN_DRAFT = N_("The portal does not know this draft: it was removed or has expired.")
STORED_ALREADY = N_("This report has been stored already.")


@dataclass(frozen=True)
class Limits:
    """How much one draft, and all of them together, may hold."""

    max_parts: int
    max_total: int
    pending_bytes: int
    pending_drafts: int

    @classmethod
    def of(cls, config: Config) -> Limits:
        """The limits ``config`` sets: a report and its attachments, and the global caps."""
        return cls(
            max_parts=min(config.max_attachments, MAX_ATTACHMENTS) + 1,
            max_total=config.max_upload_bytes,
            pending_bytes=config.pending_bytes,
            pending_drafts=config.pending_drafts,
        )


@dataclass(frozen=True)
class DraftState:
    """A draft as recorded: its key, expiry day and, once stored, its receipt hash."""

    key: str
    expires_on: date
    receipt: str | None
    stored_parts: int | None


@dataclass(frozen=True)
class UploadState:
    """An upload as recorded, with the path of its partial file."""

    key: str
    draft: str
    path: Path
    length: int
    expires_on: date
    spare: bool
    header_checked: bool
    checksum_from: int | None

    def offset(self) -> int:
        """Bytes stored and acknowledged: the file's size, less an unproven checksummed PATCH.

        Raises :class:`UnknownError` if the file is gone.
        """
        try:
            size = os.stat(self.path, follow_symlinks=False).st_size
        except FileNotFoundError:
            raise UnknownError(UNKNOWN) from None
        return size if self.checksum_from is None else min(size, self.checksum_from)


def today() -> date:
    """The current UTC day."""
    return datetime.now(UTC).date()


def seconds_now(now: int | None) -> int:
    """``now`` if given (tests set the clock), else the current time in whole seconds."""
    return int(time.time()) if now is None else now


def expiry(began: date) -> date:
    """The day at whose start a draft begun on ``began`` expires."""
    return began + timedelta(days=LIFETIME_DAYS)


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of a draft or upload id (32 lower-case hex digits)."""
    return _ID.fullmatch(text) is not None


def key_of(capability: str) -> str:
    """What the runtime store keeps of an id: a hash, so that a copy of it opens nothing."""
    return hashlib.sha256(_KEY_LABEL + capability.encode("ascii")).hexdigest()


@contextmanager
def writing(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that holds SQLite's write lock from its start: checks and writes are one."""
    with sessions.begin() as session:
        session.execute(text("BEGIN IMMEDIATE"))
        yield session


def lapsed_clause(now: int) -> ColumnElement[bool]:
    """SQL: the draft is unfinished and has lapsed before its first byte."""
    return Draft.receipt.is_(None) & (Draft.lapses_at <= now)


def has_lapsed(draft: Draft, now: int) -> bool:
    """Whether ``draft`` is unfinished and lapsed before its first byte."""
    return draft.receipt is None and draft.lapses_at is not None and draft.lapses_at <= now


def upload_state(row: PendingUpload, store: BlobStore) -> UploadState:
    """The record ``row`` as an :class:`UploadState`, its file in ``store``'s partial folder."""
    return UploadState(
        key=row.key,
        draft=row.draft,
        path=store.partial / row.file,
        length=row.length,
        expires_on=row.expires_on,
        spare=row.spare,
        header_checked=row.header_checked,
        checksum_from=row.checksum_from,
    )
