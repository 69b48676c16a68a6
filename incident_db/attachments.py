"""Photos and documents forwarded with a reviewer batch (crypto/SPEC.md §16.9-§16.11).

A batch's header lists its attachments by SHA-256; the files lie beside it
in a directory, each named by that hash. Before anything is written,
:func:`load_attachments` reads every listed file and refuses the whole batch
if one is missing, differs from its hash or size, is of a type outside
:data:`ALLOWED_TYPES`, is larger than the database's limit, or does not look
like the type it claims. Only then does the ingest store them, in the same
transaction as the incidents.

Storage is content-addressed inside the database (``attachment_content``,
keyed by SHA-256), not in files beside it: a refused or interrupted ingest
then leaves no stray file, the same photo forwarded twice is kept once, a
database backup holds the attachments too, and SQLite and PostgreSQL behave
the same (a BLOB, or bytea). Files are small (:data:`MAX_BYTES`), so a row
is the right size of container.

An editor may also attach a file on an incident's page (:func:`clean_upload`,
:func:`store_upload`): the same types, limit and content checks, and since
nobody cleaned it before, images are rebuilt from their pixels alone and
PDFs lose their document metadata (:mod:`incident_db.attachment_cleaning`,
which holds the checks on content for both ways in). Such a file has no
batch (``batch_id`` is empty); the incident's history says who added it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from crypto.batch import Attachment, Batch, check_attachment
from crypto.errors import BatchError

# the checks on content live there; some are imported from here (history.py, tests)
from incident_db.attachment_cleaning import (
    ALLOWED_TYPES,
    MAX_BYTES,
    Upload,
    UploadError,
    looks_like,
)
from incident_db.attachment_cleaning import NAME as NAME
from incident_db.attachment_cleaning import clean_upload as clean_upload
from incident_db.attachment_cleaning import upload_name as upload_name
from incident_db.errors import IngestError
from incident_db.models import Base, Incident, Provenance, ReviewerBatch, core_table

#: image types the members' service shows in the page; others only download
INLINE_TYPES = frozenset({"image/jpeg", "image/png"})


class AttachmentContent(Base):
    """One distinct file, stored once under its SHA-256."""

    __tablename__ = "attachment_content"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class IncidentAttachment(Base):
    """A file attached to an incident by a signed batch."""

    __tablename__ = "incident_attachment"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(
        ForeignKey("attachment_content.sha256"), primary_key=True, index=True
    )
    media_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    # checked against crypto.batch's name pattern: A-Z a-z 0-9 . _ - only
    name: Mapped[str] = mapped_column(String(120))
    # empty for a file an editor attached on the incident's page (migration 0006)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("reviewer_batch.batch_id"))


@dataclass(frozen=True)
class StoredAttachment:
    """What a page or an export shows of one attachment."""

    sha256: str
    media_type: str
    size: int
    name: str
    batch_id: str | None

    @property
    def inline(self) -> bool:
        """Whether the service may show it in a page (a re-encoded image)."""
        return self.media_type in INLINE_TYPES


def _refused(entry: Attachment, why: str) -> IngestError:
    return IngestError(
        f"batch refused: line 1: attachment {entry.sha256[:16]} (record {entry.record}): {why}"
    )


def _read(directory: Path, entry: Attachment) -> bytes:
    """The file named by the entry's hash: a regular file, read without following a link."""
    path = directory / entry.sha256  # the name is 64 hex digits: never a path (§16.10)
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (it is then refused)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise _refused(entry, f"the file is missing from {directory}") from None
    except OSError:
        raise _refused(entry, "the file cannot be read (a link or not a file?)") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _refused(entry, "not a regular file")
        # one byte more than signed shows a longer file without reading all of it
        return handle.read(entry.size + 1)


def load_attachments(
    batch: Batch, directory: Path | None, *, max_bytes: int = MAX_BYTES
) -> dict[str, bytes]:
    """Read and check every file ``batch`` lists; return their bytes by SHA-256.

    Raises :class:`IngestError` (the whole batch is refused) on the first
    entry whose file is missing or differs from what was signed, or that the
    database's policy refuses. A batch without attachments needs no directory.
    """
    contents: dict[str, bytes] = {}
    if not batch.attachments:
        return contents
    if directory is None:
        raise IngestError(
            f"batch refused: line 1: it lists {len(batch.attachments)} attachment(s); "
            "give the directory that holds them (--attachments DIR)"
        )
    for entry in batch.attachments:
        if entry.media_type not in ALLOWED_TYPES:
            raise _refused(entry, f"type {entry.media_type} is not accepted "
                                  "(JPEG, PNG and PDF only)")  # fmt: skip
        if entry.size > max_bytes:
            raise _refused(entry, f"{entry.size:,} bytes is over the limit of {max_bytes:,}")
        content = contents.get(entry.sha256)
        if content is None:
            content = _read(directory, entry)
        try:
            check_attachment(entry, content)
        except BatchError:
            raise _refused(entry, "the file differs from the one the batch signed") from None
        if not looks_like(entry.media_type, content):
            raise _refused(entry, f"the content is not a valid {entry.media_type} file")
        contents[entry.sha256] = content
    return contents


def write_attachments(
    connection: Connection,
    batch: Batch,
    contents: dict[str, bytes],
    incident_ids: list[str],
) -> int:
    """Store the checked files of ``batch`` and bind them to its incidents; return rows added.

    ``incident_ids[i]`` is the id of the batch's record ``i + 1``. A file or
    a binding already stored is kept as it is (the content is the same: it
    is addressed by its hash). An incident stored before this batch that
    gains a file has changed: its ``version_at`` moves on to the ingest.
    """
    if not batch.attachments:
        return 0
    content_table = core_table(AttachmentContent)
    link_table = core_table(IncidentAttachment)
    wanted = sorted(contents)
    have = set(connection.scalars(
        select(content_table.c.sha256).where(content_table.c.sha256.in_(wanted))
    ))  # fmt: skip
    new_content = [{"sha256": h, "content": contents[h]} for h in wanted if h not in have]
    if new_content:
        connection.execute(insert(content_table), new_content)
    ids = sorted(set(incident_ids))
    bound = {(row.incident_id, row.sha256) for row in connection.execute(
        select(link_table.c.incident_id, link_table.c.sha256)
        .where(link_table.c.incident_id.in_(ids))
    )}  # fmt: skip
    rows = []
    for entry in batch.attachments:
        key = (incident_ids[entry.record - 1], entry.sha256)
        if key in bound:
            continue
        bound.add(key)
        rows.append({"incident_id": key[0], "sha256": entry.sha256,
                     "media_type": entry.media_type, "size": entry.size,
                     "name": entry.name, "batch_id": batch.batch_id})  # fmt: skip
    if rows:
        connection.execute(insert(link_table), rows)
        _touch_earlier(connection, batch.batch_id, sorted({r["incident_id"] for r in rows}))
    return len(rows)


def _touch_earlier(connection: Connection, batch_id: str, ids: list[str]) -> None:
    """Move on ``version_at`` of those of ``ids`` that this batch did not create."""
    from incident_db.history import next_version  # history imports this module

    batches, provenance, incidents = (
        core_table(ReviewerBatch), core_table(Provenance), core_table(Incident)
    )  # fmt: skip
    moment = connection.scalar(select(batches.c.ingested_at).where(batches.c.batch_id == batch_id))
    created = set(connection.scalars(
        select(provenance.c.original_id).where(
            provenance.c.kind == "reviewer-batch", provenance.c.source == batch_id,
            provenance.c.original_id.in_(ids),
        )
    ))  # fmt: skip
    for ident, previous in connection.execute(
        select(incidents.c.id, incidents.c.version_at).where(incidents.c.id.in_(ids))
    ).all():
        if ident in created or moment is None:
            continue
        connection.execute(
            update(incidents)
            .where(incidents.c.id == ident)
            .values(version_at=next_version(previous, moment))
        )


def attachments_of(connection: Connection, incident_id: str) -> list[StoredAttachment]:
    """The attachments of one incident, by name."""
    table = core_table(IncidentAttachment)
    query = (
        select(table.c.sha256, table.c.media_type, table.c.size, table.c.name, table.c.batch_id)
        .where(table.c.incident_id == incident_id)
        .order_by(table.c.name, table.c.sha256)
    )
    return [StoredAttachment(*row) for row in connection.execute(query)]


def attachments_by_incident(
    connection: Connection, incident_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """For exports: each incident's attachments (sha256, name, media_type, size), by name."""
    table = core_table(IncidentAttachment)
    found: dict[str, list[dict[str, Any]]] = {}
    if not incident_ids:
        return found
    query = (
        select(table.c.incident_id, table.c.sha256, table.c.name, table.c.media_type,
               table.c.size)
        .where(table.c.incident_id.in_(incident_ids))
        .order_by(table.c.incident_id, table.c.name, table.c.sha256)
    )  # fmt: skip
    for incident_id, sha256, name, media_type, size in connection.execute(query):
        found.setdefault(incident_id, []).append(
            {"sha256": sha256, "name": name, "media_type": media_type, "size": size}
        )
    return found


def stored_file(connection: Connection, sha256: str) -> tuple[StoredAttachment, bytes] | None:
    """One stored file and how it was declared, or None if no incident holds it."""
    links = core_table(IncidentAttachment)
    content = core_table(AttachmentContent)
    row = connection.execute(
        select(links.c.sha256, links.c.media_type, links.c.size, links.c.name,
               links.c.batch_id, content.c.content)
        .join(content, content.c.sha256 == links.c.sha256)
        .where(links.c.sha256 == sha256)
        .order_by(links.c.batch_id, links.c.incident_id)
        .limit(1)
    ).first()  # fmt: skip
    if row is None:
        return None
    return StoredAttachment(*row[:5]), bytes(row[5])


# --- files an editor attaches on an incident's page ------------------------------------


def store_upload(connection: Connection, incident_id: str, upload: Upload) -> StoredAttachment:
    """Store a cleaned file (once per content) and bind it to an incident, with no batch.

    Raises :class:`UploadError` if the incident already holds this file.
    """
    digest = hashlib.sha256(upload.content).hexdigest()
    content_table = core_table(AttachmentContent)
    link_table = core_table(IncidentAttachment)
    bound = connection.scalar(
        select(link_table.c.name).where(
            link_table.c.incident_id == incident_id, link_table.c.sha256 == digest
        )
    )
    if bound is not None:
        raise UploadError(f"this incident already holds the same file, as {bound}")
    have = select(content_table.c.sha256).where(content_table.c.sha256 == digest)
    if connection.scalar(have) is None:
        connection.execute(insert(content_table), [{"sha256": digest, "content": upload.content}])
    stored = StoredAttachment(digest, upload.media_type, len(upload.content), upload.name, None)
    connection.execute(
        insert(link_table),
        [{"incident_id": incident_id, "sha256": digest, "media_type": stored.media_type,
          "size": stored.size, "name": stored.name, "batch_id": None}],
    )  # fmt: skip
    return stored
