"""New versions of reviewer records: the path a changed record takes into the database.

A reviewer batch may carry a record whose id is already stored with other
content: a reviewer corrected or completed it (RECORD.md, "New versions of
a record"). It replaces the stored incident only when it comes from a
reviewer (a feed row is never replaced by a batch, nor a reviewer record by
a feed), signed by the key that signed the stored version, and from a batch
made after every batch that stored a version of it. A batch dated more than
:data:`CLOCK_MARGIN` after its ingest is refused outright: its date would
lock its records against their own author until then.

A correction may exist to take words out (a name left in a narrative), so
the ``incident_change`` row (record-version) keeps which fields changed, the
old and new values of the coded ones (slugs, counts, times, position) and of
free text only a SHA-256, never the text. An editor's verification or grade
outlives a new version: the record's own values apply only while no editor has
changed them. So does the TLP level the incident carries (the default of
its source, or what an editor set): a new version never changes it. Each
version moves the incident's ``version_at`` on (history.next_version).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, Text, delete, func, insert, select, update

from incident_db.errors import IngestError
from incident_db.history import dump, next_version
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

#: how far a batch's ``created_at`` may run ahead of the ingest (clocks differ a little)
CLOCK_MARGIN = dt.timedelta(days=1)
#: columns that hold free text (RECORD.md: "text"): the history keeps only their SHA-256
FREE_TEXT = frozenset(
    column.name
    for column in core_table(Incident).columns
    if isinstance(column.type, Text)
    or (isinstance(column.type, String) and (column.type.length or 0) >= 200)
)
#: columns left out of a version's history row: derived from another, or the record's digest
_UNRECORDED = frozenset({"place_key", "content_sha256", "version_at"})
#: an editor's decision on these stands against every later version of the record
_EDITOR_DECIDES = {"verification": "verification_status", "grade": "grade"}
_SHOWN = {"verification_status": "verification", "grade": "grade"}


def refuse_future_batch(created_at: dt.datetime, now: dt.datetime) -> None:
    """Raise IngestError if the batch says it was made more than CLOCK_MARGIN after ``now``.

    Versions are ordered by ``created_at``: a batch dated 2999 would make
    every later correction of its records look stale. Old batches stay valid.
    """
    made, moment = created_at.astimezone(dt.UTC), now.astimezone(dt.UTC)
    if made > moment + CLOCK_MARGIN:
        raise IngestError(
            f"batch refused: line 1: it says it was made at {made:%Y-%m-%d %H:%M} UTC, "
            f"more than {CLOCK_MARGIN.days} day after this ingest ({moment:%Y-%m-%d %H:%M} "
            "UTC); check the reviewer's clock"
        )


@dataclass(frozen=True)
class RecordVersion:
    """A record in a verified batch whose id is stored with other content."""

    record: IncidentRecord
    line: int
    digest: str


def refuse_stale_versions(
    connection: Connection,
    versions: Sequence[RecordVersion],
    created_at: dt.datetime,
    signer_fingerprint: str,
) -> None:
    """Raise IngestError unless each version may replace what is stored.

    Only a reviewer's record can be replaced (never a feed row), only by the
    key that signed the stored version (another trusted reviewer cannot
    rewrite a colleague's record), and only by a batch made after every
    batch that stored a version of it: an old batch sent late cannot take an
    incident back to older content.
    """
    if not versions:
        return
    incidents, provenance = core_table(Incident), core_table(Provenance)
    batches = core_table(ReviewerBatch)
    every = [v.record.id for v in versions]
    origins: dict[str, str] = {}
    signers: dict[str, str | None] = {}
    newest: dict[str, dt.datetime] = {}
    for start in range(0, len(every), CHUNK):
        ids = every[start : start + CHUNK]
        query = select(incidents.c.id, incidents.c.origin, incidents.c.signer_fingerprint).where(
            incidents.c.id.in_(ids)
        )
        for row in connection.execute(query):
            origins[row.id], signers[row.id] = row.origin, row.signer_fingerprint
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
        if signers.get(ident) != signer_fingerprint:
            raise IngestError(
                f"batch refused: line {version.line}: incident {ident} was signed by another "
                f"reviewer key ({signers.get(ident)}); only that key may send a new version of it"
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


def _recorded(column: str, value: Any) -> Any:
    """A field's value as a version's history row keeps it: free text only as its SHA-256."""
    if column in FREE_TEXT and value is not None:
        return {"sha256": hashlib.sha256(str(value).encode("utf-8")).hexdigest()}
    return value


def _difference(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A version's history ``before`` and ``after``: the fields that changed, free text hashed.

    Tags and links are slugs and incident ids, so they are kept whole.
    """
    old_row, new_row = before["incident"], after["incident"]
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for column in sorted(old_row.keys() | new_row.keys()):
        if column in _UNRECORDED or old_row.get(column) == new_row.get(column):
            continue
        old[column] = _recorded(column, old_row.get(column))
        new[column] = _recorded(column, new_row.get(column))
    for part in ("tags", "links"):
        if before[part] != after[part]:
            old[part], new[part] = before[part], after[part]
    return old, new


def _editor_decisions(connection: Connection, ident: str) -> list[str]:
    """The columns of ``ident`` an editor has set (its verification, its grade), sorted."""
    changes = core_table(IncidentChange)
    actions = connection.execute(
        select(changes.c.action)
        .distinct()
        .where(changes.c.incident_id == ident, changes.c.action.in_(_EDITOR_DECIDES))
    ).scalars()
    return sorted(_EDITOR_DECIDES[action] for action in actions)


def _stored_version(connection: Connection, ident: str) -> dt.datetime | None:
    table = core_table(Incident)
    found = connection.execute(select(table.c.version_at).where(table.c.id == ident)).scalar()
    if isinstance(found, str):  # a raw SQLite text, should a driver hand one back
        found = dt.datetime.fromisoformat(found)
    return found


def store_versions(
    connection: Connection,
    versions: Sequence[RecordVersion],
    source: Source,
    added_at: dt.datetime,
) -> list[dict[str, Any]]:
    """Replace each stored record with its new version; keep what changed in the history.

    The incident keeps its id, origin, first ``added_at``, any merge, and the
    verification and grade an editor set (the record's own apply only where
    no editor has changed them); its tags and the reviewer's own links are
    replaced; a provenance row names the new batch line; an
    ``incident_change`` row (record-version) holds the changed fields (free
    text as a SHA-256 only: see :func:`_difference`), and an audit line
    names them. Returns the new incident rows (for finding possible
    duplicates again).
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
        decided = _editor_decisions(connection, ident)
        overruled = [(column, row[column], old[column]) for column in decided
                     if row[column] != old[column]]  # fmt: skip
        row.update({column: old[column] for column in decided})
        # the level stays as it is: the source's default, or what an editor decided
        row["tlp"] = old["tlp"]
        row["version_at"] = next_version(_stored_version(connection, ident), added_at)
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
        old_fields, new_fields = _difference(before, _content(connection, ident))
        reason = (f"a new version of the record: line {version.line} of batch {source.name}, "
                  f"signed by {source.signer_fingerprint}")  # fmt: skip
        for column, theirs, editors in overruled:
            reason += (f"; the record says {_SHOWN[column]} {theirs}, but an editor set "
                       f"{editors}, which stays")  # fmt: skip
        connection.execute(
            insert(core_table(IncidentChange)),
            {"incident_id": ident, "at": added_at, "actor": actor, "action": "record-version",
             "before": dump(old_fields), "after": dump(new_fields), "reason": reason},
        )  # fmt: skip
        detail = {"batch": source.name, "line": version.line, "changed": sorted(new_fields)}
        connection.execute(
            insert(core_table(AuditEvent)),
            {"at": added_at, "actor": actor, "action": "incident.record-version",
             "subject": ident, "detail": dump(detail)},
        )  # fmt: skip
        if old["merged_into"] is None:
            updated.append({**row, "merged_into": None})
    return updated
