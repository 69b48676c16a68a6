"""Ingest a signed reviewer batch: all of it, or nothing.

Order matters. First the batch layer checks framing, the signer against
the trusted reviewers and the signature (crypto/SPEC.md §16); then every
record is parsed (RECORD.md); then the database is compared: a batch seen
before with the same bytes changes nothing, and a record id already stored
with other content is a new version of that record (versions.py: allowed
from the key that signed the stored one, in a batch made after the one that
stored it, else the batch is refused). A batch dated more than a day after
its ingest is refused at once (versions.CLOCK_MARGIN).
Only then is anything written, in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from crypto.batch import Batch, read_batch
from crypto.errors import BatchError
from crypto.keys import PublicKeyToken
from incident_db.attachments import load_attachments, write_attachments
from incident_db.corroboration import Window, link_close_incidents, located
from incident_db.errors import IngestError, RecordError
from incident_db.models import ReviewerBatch, core_table
from incident_db.record import IncidentRecord, parse_record
from incident_db.store import (
    Source,
    When,
    content_sha256,
    existing_digests,
    incident_row,
    link_rows,
    provenance_row,
    tag_rows,
    write_incidents,
)
from incident_db.versions import (
    RecordVersion,
    refuse_future_batch,
    refuse_stale_versions,
    store_versions,
)


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did."""

    batch_id: str
    signer_fingerprint: str
    records: int
    added: int
    already_present: int
    links_found: int
    batch_seen_before: bool = False
    attachments_added: int = 0
    #: records that replaced an older version of themselves (versions.py)
    updated: int = 0


def _parse_all(records: tuple[tuple[int, dict[str, object]], ...]) -> list[IncidentRecord]:
    """Parse every record, refusing the batch at the first bad line or repeated id."""
    parsed: list[IncidentRecord] = []
    first_line: dict[str, int] = {}
    for line, obj in records:
        try:
            record = parse_record(obj)
        except RecordError as error:
            raise IngestError(f"batch refused: line {line}: {error.diagnostics()}") from None
        if record.id in first_line:
            raise IngestError(
                f"batch refused: line {line}: incident {record.id} repeats line "
                f"{first_line[record.id]}"
            )
        first_line[record.id] = line
        parsed.append(record)
    return parsed


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch's records are built.

    A million records are tens of millions of small objects, none of them in
    a cycle; every collection would walk them all again. Restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ingest_batch(
    engine: Engine,
    data: bytes | BinaryIO,
    trusted: Collection[PublicKeyToken],
    *,
    window: Window | None = None,
    now: dt.datetime | None = None,
    attachments: Path | None = None,
) -> IngestReport:
    """Verify and store one batch; raise :class:`IngestError` and write nothing if refused.

    ``attachments`` is the directory holding the files the batch lists
    (crypto/SPEC.md §16.10); every one is checked before anything is written.
    """
    raw = data if isinstance(data, bytes) else data.read()
    with bulk_work():
        try:
            batch = read_batch(raw, trusted)
        except BatchError as error:
            raise IngestError(f"batch refused: {error.diagnostics()}") from None
        moment = now or dt.datetime.now(dt.UTC)
        refuse_future_batch(batch.created_at, moment)
        records = _parse_all(batch.records)
        contents = load_attachments(batch, attachments)
        digests = [content_sha256(obj) for _, obj in batch.records]
        try:
            return _store(engine, batch, records, digests, hashlib.sha256(raw).hexdigest(),
                          window or Window(), moment, contents)  # fmt: skip
        except IntegrityError:
            # another ingest stored the same ids between our check and our write
            raise IngestError("batch refused: it conflicts with one ingested meanwhile") from None


def _store(
    engine: Engine,
    batch: Batch,
    records: list[IncidentRecord],
    digests: list[str],
    sha256: str,
    window: Window,
    now: dt.datetime,
    contents: dict[str, bytes] | None = None,
) -> IngestReport:
    """Write a verified, parsed batch in one transaction, unless it is refused."""
    fingerprint = batch.signer.fingerprint
    added_at = now.replace(tzinfo=None, microsecond=0)
    lines = [line for line, _ in batch.records]
    with engine.begin() as connection:
        table = core_table(ReviewerBatch)
        seen = connection.execute(
            select(table.c.sha256).where(table.c.batch_id == batch.batch_id)
        ).first()
        if seen is not None:
            if seen.sha256 != sha256:
                raise IngestError(
                    f"batch refused: line 1: batch {batch.batch_id} was ingested before "
                    "with different content"
                )
            return IngestReport(batch.batch_id, fingerprint, len(records), 0, len(records),
                                0, batch_seen_before=True)  # fmt: skip
        stored = existing_digests(connection, (r.id for r in records))
        source = Source("reviewer-batch", batch.batch_id, sha256, fingerprint)
        incidents, tags, provenance, links = [], [], [], []
        versions: list[RecordVersion] = []
        for record, line, digest in zip(records, lines, digests, strict=True):
            if record.id in stored:
                if stored[record.id] != digest:
                    versions.append(RecordVersion(record, line, digest))
                continue
            incidents.append(
                incident_row(record, When.of_record(record), origin="reviewer",
                             digest=digest, signer_fingerprint=fingerprint, added_at=added_at)
            )  # fmt: skip
            tags.extend(tag_rows(record))
            provenance.append(provenance_row(source, record.id, line, added_at))
            links.extend(link_rows(record))
        refuse_stale_versions(connection, versions, batch.created_at, fingerprint)
        connection.execute(
            insert(table),
            {"batch_id": batch.batch_id, "sha256": sha256, "signer": str(batch.signer),
             "signer_fingerprint": fingerprint,
             "created_at": batch.created_at.replace(tzinfo=None), "ingested_at": added_at,
             "records": len(records), "added": len(incidents)},
        )  # fmt: skip
        write_incidents(connection, incidents, tags, provenance, links)
        attached = write_attachments(connection, batch, contents or {}, [r.id for r in records])
        updated = store_versions(connection, versions, source, added_at)
        found = link_close_incidents(connection, located([*incidents, *updated]), window)
    return IngestReport(batch.batch_id, fingerprint, len(records), len(incidents),
                        len(records) - len(incidents) - len(versions), found,
                        attachments_added=attached, updated=len(versions))  # fmt: skip
