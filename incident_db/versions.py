"""New versions of reviewer records: the path a changed record takes into the database.

A reviewer batch may carry a record whose id is already stored with other
content: a reviewer corrected or completed it (RECORD.md, "New versions of
a record"). It replaces the stored incident only when it comes from a
reviewer (a feed row is never replaced by a batch, nor a reviewer record by
a feed) and from a batch made after every batch that stored a version of
it. The old content stays in an ``incident_change`` row (record-version).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from incident_db.errors import IngestError
from incident_db.history import dump
from incident_db.members.models import AuditEvent
from incident_db.models import (
    Incident,
    IncidentChange,
    IncidentLink,
    IncidentTag,
    Provenance,
    ReviewerBatch,
    core_table,
)
from incident_db.record import IncidentRecord
from incident_db.store import (
    CHUNK,
    Source,
    When,
    incident_row,
    link_rows,
    provenance_row,
    tag_rows,
    write,
)


@dataclass(frozen=True)
class RecordVersion:
    """A record in a verified batch whose id is stored with other content."""

    record: IncidentRecord
    line: int
    digest: str


def refuse_stale_versions(
    connection: Connection, versions: Sequence[RecordVersion], created_at: dt.datetime
) -> None:
    """Raise IngestError unless each version may replace what is stored.

    Only a reviewer's record can be replaced (never a feed row), and only by
    a batch made after every batch that stored a version of it: an old batch
    sent late cannot take an incident back to older content.
    """
    if not versions:
        return
    incidents, provenance = core_table(Incident), core_table(Provenance)
    batches = core_table(ReviewerBatch)
    every = [v.record.id for v in versions]
    origins: dict[str, str] = {}
    newest: dict[str, dt.datetime] = {}
    for start in range(0, len(every), CHUNK):
        ids = every[start : start + CHUNK]
        query = select(incidents.c.id, incidents.c.origin).where(incidents.c.id.in_(ids))
        origins.update((row.id, row.origin) for row in connection.execute(query))
        latest = (
            select(provenance.c.original_id, func.max(batches.c.created_at))
            .join(batches, batches.c.batch_id == provenance.c.source)
            .where(provenance.c.kind == "reviewer-batch", provenance.c.original_id.in_(ids))
            .group_by(provenance.c.original_id)
        )
        newest.update((ident, at) for ident, at in connection.execute(latest))
    made = created_at.astimezone(dt.UTC).replace(tzinfo=None)
    for version in versions:
        ident = version.record.id
        if origins.get(ident) != "reviewer":
            raise IngestError(
                f"batch refused: line {version.line}: incident {ident} came from an external "
                "feed; a reviewer batch cannot replace it"
            )
        last = newest.get(ident)
        if last is not None and made <= last:
            raise IngestError(
                f"batch refused: line {version.line}: incident {ident} is already in the "
                "database with different content from a batch made no earlier than this one"
            )


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, dt.date) else value
            for key, value in row.items()}  # fmt: skip


def _content(connection: Connection, ident: str) -> dict[str, Any]:
    """An incident's stored content: its row, its tags and its reviewer's links."""
    incidents, tags, links = core_table(Incident), core_table(IncidentTag), core_table(IncidentLink)
    row = connection.execute(select(incidents).where(incidents.c.id == ident)).mappings().one()
    tag_list = connection.execute(
        select(tags.c.facet, tags.c.value)
        .where(tags.c.incident_id == ident)
        .order_by(tags.c.facet, tags.c.value)
    )
    link_list = connection.execute(
        select(links.c.other_id, links.c.relation)
        .where(links.c.incident_id == ident, links.c.origin == "reviewer")
        .order_by(links.c.other_id, links.c.relation)
    )
    return {
        "incident": _jsonable(row),
        "tags": [list(t) for t in tag_list],
        "links": [list(k) for k in link_list],
    }


def store_versions(
    connection: Connection,
    versions: Sequence[RecordVersion],
    source: Source,
    added_at: dt.datetime,
) -> list[dict[str, Any]]:
    """Replace each stored record with its new version; keep the old one in the history.

    The incident keeps its id, origin, first ``added_at`` and any merge; its
    tags and the reviewer's own links are replaced; a provenance row names
    the new batch line; an ``incident_change`` row (record-version) holds
    the content before and after, and an audit line says so. Returns the
    new incident rows (for finding possible duplicates again).
    """
    incidents, tags, links = core_table(Incident), core_table(IncidentTag), core_table(IncidentLink)
    actor = f"batch:{source.name}"
    updated = []
    for version in versions:
        record, ident = version.record, version.record.id
        before = _content(connection, ident)
        old = before["incident"]
        row = incident_row(record, When.of_record(record), origin="reviewer",
                           digest=version.digest, signer_fingerprint=source.signer_fingerprint,
                           added_at=added_at)  # fmt: skip
        kept = {"id", "origin", "added_at", "merged_into"}
        connection.execute(
            update(incidents)
            .where(incidents.c.id == ident)
            .values({k: v for k, v in row.items() if k not in kept})
        )
        connection.execute(delete(tags).where(tags.c.incident_id == ident))
        write(connection, IncidentTag, tag_rows(record))
        connection.execute(
            delete(links).where(links.c.incident_id == ident, links.c.origin == "reviewer")
        )
        mine = select(links.c.other_id, links.c.relation).where(links.c.incident_id == ident)
        present = {(other, relation) for other, relation in connection.execute(mine)}
        # an editor may have made the same link meanwhile: keep theirs
        fresh = [r for r in link_rows(record) if (r["other_id"], r["relation"]) not in present]
        write(connection, IncidentLink, fresh)
        vouches_for = old["merged_into"] or ident
        provenance = provenance_row(source, vouches_for, version.line, added_at)
        write(connection, Provenance, [{**provenance, "original_id": ident}])
        after = _content(connection, ident)
        changed = sorted(k for k, v in after["incident"].items() if old.get(k) != v)
        reason = (f"a new version of the record: line {version.line} of batch {source.name}, "
                  f"signed by {source.signer_fingerprint}")  # fmt: skip
        connection.execute(
            insert(core_table(IncidentChange)),
            {"incident_id": ident, "at": added_at, "actor": actor, "action": "record-version",
             "before": dump(before), "after": dump(after), "reason": reason},
        )  # fmt: skip
        detail = {"batch": source.name, "line": version.line, "changed": changed}
        connection.execute(
            insert(core_table(AuditEvent)),
            {"at": added_at, "actor": actor, "action": "incident.record-version",
             "subject": ident, "detail": dump(detail)},
        )  # fmt: skip
        if old["merged_into"] is None:
            updated.append({**row, "merged_into": None})
    return updated
