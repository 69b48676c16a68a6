"""The objects of the partners' TAXII collection, walked from the incidents in order.

The collection holds the objects every partner receives (the TLP 2.0
marking definitions, the producer and the extension definition, all at
:data:`COMMON_ADDED`) and the STIX objects of the live incidents
(``exports/stix.py``), each at its incident's ``version_at``. Only what the
clearance allows is read from the database, and every object is checked
again by its markings before it comes out (:func:`_allowed`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, String, literal, or_, select

from incident_db import tlp
from incident_db.exports import exported_incidents
from incident_db.exports import stix as stix_export
from incident_db.models import Incident, IncidentLink, core_table
from incident_db.web.taxii_protocol import MAX_LIMIT, STIX_ID, Filters, Item, Position

#: date_added of the objects every partner receives: the day OASIS published the TLP 2.0 markings
COMMON_ADDED = dt.datetime(2022, 10, 1)
#: object types made from incidents (the rest come from ``common_objects``)
INCIDENT_TYPES = frozenset({"incident", "location", "relationship"})
_MARKING_LEVELS = {marking: level for level, marking in tlp.STIX_MARKINGS.items()}


def _allowed(obj: dict[str, Any], clearance: str) -> bool:
    """The last guard: every TLP marking on ``obj`` is one ``clearance`` allows."""
    refs = obj.get("object_marking_refs", [])
    if obj["type"] != "marking-definition" and not refs:
        return False
    return all(tlp.allows(clearance, _MARKING_LEVELS.get(ref, "red")) for ref in refs)


def _common(clearance: str) -> list[Item]:
    found = [(Position(COMMON_ADDED, "", obj["id"]), obj) for obj in stix_export.common_objects()]
    return sorted((item for item in found if _allowed(item[1], clearance)), key=lambda i: i[0])


def _incident_items(connection: Connection, rows: list[Any], clearance: str) -> Iterator[Item]:
    """The objects of ``rows`` (in order), each incident's sorted by id."""
    rows = [row for row in rows if tlp.allows(clearance, row.tlp)]  # the SQL is not the only guard
    for incident in exported_incidents(connection, rows, clearance=clearance):
        row = incident.row
        objects = stix_export.incident_objects(incident, clearance)
        yield from sorted(((Position(row.version_at, row.id, obj["id"]), obj) for obj in objects
                           if _allowed(obj, clearance)), key=lambda item: item[0])  # fmt: skip


def _rows(connection: Connection, clearance: str, filters: Filters, owners: set[str] | None,
          start: Position | None, size: int, *, inclusive: bool) -> list[Any]:  # fmt: skip
    """Up to ``size`` live incident rows the clearance allows, from ``start``'s incident on.

    ``inclusive``: with that incident itself (a page may end inside it).
    Incident ids are 32 lowercase hex digits, which every collation orders
    as Python does, so the database's order and :class:`Position`'s agree.
    """
    table = core_table(Incident)
    query = select(table).where(table.c.merged_into.is_(None),
                                table.c.tlp.in_(tlp.allowed_levels(clearance)))  # fmt: skip
    if filters.added_after is not None:
        query = query.where(table.c.version_at > filters.added_after)
    if owners is not None:
        query = query.where(table.c.id.in_(sorted(owners)))
    if start is not None:
        same_or_later = _at_or_after(table.c.version_at, start.added, connection.dialect.name)
        later = table.c.id >= start.incident if inclusive else table.c.id > start.incident
        query = query.where(same_or_later, or_(table.c.version_at > start.added, later))
    query = query.order_by(table.c.version_at, table.c.id).limit(size)
    return list(connection.execute(query))


def _at_or_after(column: Any, moment: dt.datetime, dialect: str) -> Any:
    """``column >= moment``, also where SQLite holds a whole second without a fraction.

    SQLite keeps times as text: SQLAlchemy writes ``… 08:34:32.000000``, the
    driver itself ``… 08:34:32``, and both are in the incident table. Text
    at or above the shorter form is the same moment or a later one.
    """
    if dialect == "sqlite" and moment.microsecond == 0:
        return column >= literal(moment.strftime("%Y-%m-%d %H:%M:%S"), String)
    return column >= moment


def walk_objects(
    connection: Connection, clearance: str, filters: Filters, first_batch: int
) -> Iterator[Item]:
    """Every object the clearance and the filters admit, after ``filters.after``, in order."""
    after = filters.after
    owners = None if filters.ids is None else _owners(connection, clearance, filters.ids)
    pending = [item for item in _common(clearance) if after is None or item[0] > after]
    wants_incidents = (filters.types is None or bool(filters.types & INCIDENT_TYPES)) and (
        owners is None or bool(owners)
    )
    start, size, inclusive = after, max(first_batch, 2), True
    while wants_incidents:
        rows = _rows(connection, clearance, filters, owners, start, size, inclusive=inclusive)
        for position, obj in _incident_items(connection, rows, clearance):
            while pending and pending[0][0] < position:
                common = pending.pop(0)
                if filters.admits(*common):
                    yield common
            if (after is None or position > after) and filters.admits(position, obj):
                yield position, obj
        if len(rows) < size:
            break
        # on after the last incident fetched: its objects have all been seen
        start, inclusive = Position(rows[-1].version_at, rows[-1].id, ""), False
        size = min(size * 2, MAX_LIMIT)
    yield from (item for item in pending if filters.admits(*item))


def _owners(connection: Connection, clearance: str, ids: Iterable[str]) -> set[str]:
    """The incidents whose objects could have one of ``ids`` (the common objects' aside).

    STIX ids here are UUIDv5 of names built from incident ids (exports/stix.py):
    the incident and its location of the incident id, its located-at
    relationship of ``located-at ID``, a link of ``RELATION ID OTHER``. They
    cannot be reversed, so the names are hashed and compared, first by the
    six leading bytes (which UUIDv5 takes unchanged from SHA-1), then in full.
    """
    wanted: dict[bytes, set[str]] = {}
    for object_id in ids:
        found = STIX_ID.fullmatch(object_id)
        if found and found.group(1) in INCIDENT_TYPES:
            wanted.setdefault(uuid.UUID(found.group(2)).bytes[:6], set()).add(found.group(2))
    owners: set[str] = set()
    if not wanted:
        return owners
    namespace = stix_export.NAMESPACE.bytes

    def check(name: str, owner: str) -> None:
        prefix = hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest()[:6]
        if prefix in wanted and str(uuid.uuid5(stix_export.NAMESPACE, name)) in wanted[prefix]:
            owners.add(owner)

    table, link = core_table(Incident), core_table(IncidentLink)
    levels = tlp.allowed_levels(clearance)
    query = select(table.c.id).where(table.c.merged_into.is_(None), table.c.tlp.in_(levels))
    for (incident_id,) in connection.execute(query.execution_options(yield_per=5000)):
        check(incident_id, incident_id)
        check(f"located-at {incident_id}", incident_id)
    query = select(link.c.incident_id, link.c.other_id, link.c.relation)
    for incident_id, other_id, relation in connection.execute(
        query.where(link.c.relation != "merged-into").execution_options(yield_per=5000)
    ):
        check(f"{relation} {incident_id} {other_id}", incident_id)
    return owners


def find_object(connection: Connection, clearance: str, object_id: str) -> Item | None:
    """The object ``object_id`` as this clearance may see it, or None."""
    for item in _common(clearance):
        if item[1]["id"] == object_id:
            return item
    owners = _owners(connection, clearance, [object_id])
    if not owners:
        return None
    table = core_table(Incident)
    query = select(table).where(table.c.id.in_(sorted(owners)), table.c.merged_into.is_(None),
                                table.c.tlp.in_(tlp.allowed_levels(clearance)))  # fmt: skip
    rows = list(connection.execute(query))
    for item in _incident_items(connection, rows, clearance):
        if item[1]["id"] == object_id:
            return item
    return None
