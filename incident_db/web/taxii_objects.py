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

from sqlalchemy import Connection, String, and_, literal, or_, select

from incident_db import tlp
from incident_db.exports import exported_incidents
from incident_db.exports import stix as stix_export
from incident_db.models import Incident, IncidentLink, core_table
from incident_db.stix_ids import NAMESPACE, link_name, link_uuid
from incident_db.web.taxii_protocol import (
    AFTER_ALL,
    MAX_LIMIT,
    STIX_ID,
    Filters,
    Item,
    Position,
)

#: date_added of the objects every partner receives: the day OASIS published the TLP 2.0 markings
COMMON_ADDED = dt.datetime(2022, 10, 1)
#: object types made from incidents (the rest come from ``common_objects``)
INCIDENT_TYPES = frozenset({"incident", "location", "relationship"})
_MARKING_LEVELS = {marking: level for level, marking in tlp.STIX_MARKINGS.items()}
#: every object type the collection can hold, and every spec_version
EMITTED_TYPES = INCIDENT_TYPES | {obj["type"] for obj in stix_export.common_objects()}
SPEC_VERSIONS = frozenset({"2.1"} | {obj["spec_version"] for obj in stix_export.common_objects()})
#: incident rows one request may read per object of its limit (a page stops there, more: true)
SCAN_PER_OBJECT = 5
#: the object of the item that ends a walk stopped by the scan budget (never sent)
SCAN_STOP: dict[str, Any] = {}
_MILLISECOND = dt.timedelta(milliseconds=1)


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


def _rows(connection: Connection, clearance: str, filters: Filters, narrowed: list[Any],
          start: Position | None, size: int, *, inclusive: bool) -> list[Any]:  # fmt: skip
    """Up to ``size`` live incident rows the clearance allows, from ``start``'s incident on.

    ``inclusive``: with that incident itself (a page may end inside it).
    ``narrowed``: more conditions (the incidents of ``match[id]``, the
    versions of ``match[version]``). Incident ids are 32 lowercase hex
    digits, which every collation orders as Python does, so the database's
    order and :class:`Position`'s agree.
    """
    table = core_table(Incident)
    levels = tlp.allowed_levels(clearance)
    query = select(table).where(table.c.merged_into.is_(None), table.c.tlp.in_(levels), *narrowed)
    if filters.added_after is not None:
        query = query.where(table.c.version_at > filters.added_after)
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


def _before(column: Any, moment: dt.datetime, dialect: str) -> Any:
    """``column < moment``, with the same care for SQLite's two forms of a whole second."""
    if dialect == "sqlite" and moment.microsecond == 0:
        return column < literal(moment.strftime("%Y-%m-%d %H:%M:%S"), String)
    return column < moment


def _version_window(column: Any, moments: Iterable[dt.datetime], dialect: str) -> Any | None:
    """The incidents whose objects have one of the versions ``moments``; None if none can.

    An incident's objects all have ``modified`` = its ``version_at`` cut to
    the millisecond (``stix_time``; ``version_at`` is never before
    ``added_at``), so a version names a millisecond of ``version_at``: the
    index on it finds them. A version with finer digits names no object.
    """
    windows = [and_(_at_or_after(column, moment, dialect),
                    _before(column, moment + _MILLISECOND, dialect))
               for moment in sorted(moments) if moment.microsecond % 1000 == 0]  # fmt: skip
    return or_(*windows) if windows else None


def matches_nothing(filters: Filters) -> bool:
    """Whether the filters rule out every object this collection could ever hold."""
    if filters.spec_versions is not None and not filters.spec_versions & SPEC_VERSIONS:
        return True
    if filters.types is not None and not filters.types & EMITTED_TYPES:
        return True
    if filters.ids is not None:
        kinds = {object_id.partition("--")[0] for object_id in filters.ids}
        return not kinds & EMITTED_TYPES
    return False


def scan_budget(limit: int) -> int:
    """How many incident rows one request for a page of ``limit`` objects may read."""
    return SCAN_PER_OBJECT * limit


def walk_objects(
    connection: Connection, clearance: str, filters: Filters, first_batch: int
) -> Iterator[Item]:
    """Every object the clearance and the filters admit, after ``filters.after``, in order.

    At most :func:`scan_budget` incident rows are read. A walk that stops
    there ends with ``(position, SCAN_STOP)``: the position is just after
    the last incident read, and the next page starts from it.
    """
    if matches_nothing(filters):
        return
    after, table, dialect = filters.after, core_table(Incident), connection.dialect.name
    narrowed: list[Any] = []
    wants_incidents = filters.types is None or bool(filters.types & INCIDENT_TYPES)
    if filters.ids is not None:
        owners = _owners(connection, clearance, filters.ids)
        narrowed.append(table.c.id.in_(sorted(owners)))
        wants_incidents = wants_incidents and bool(owners)
    if filters.versions is not None:
        window = _version_window(table.c.version_at, filters.versions, dialect)
        narrowed.append(window)
        wants_incidents = wants_incidents and window is not None
    pending = [item for item in _common(clearance) if after is None or item[0] > after]
    start, inclusive = after, after is None or after.object_id != AFTER_ALL
    size, budget = max(first_batch, 2), scan_budget(filters.limit)
    while wants_incidents:
        size = min(size, budget)
        rows = _rows(connection, clearance, filters, narrowed, start, size, inclusive=inclusive)
        budget -= len(rows)
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
        start, inclusive = Position(rows[-1].version_at, rows[-1].id, AFTER_ALL), False
        if budget <= 0:  # enough work for one request: the client asks again from here
            yield from (item for item in pending if item[0] < start and filters.admits(*item))
            yield start, SCAN_STOP
            return
        size = min(size * 2, MAX_LIMIT)
    yield from (item for item in pending if filters.admits(*item))


def _owners(connection: Connection, clearance: str, ids: Iterable[str]) -> set[str]:
    """The live incidents, allowed by ``clearance``, whose objects could have one of ``ids``.

    STIX ids here are UUIDv5 of names built from incident ids
    (``stix_ids.py``) and cannot be reversed. The incident's and its
    location's UUID and its located-at relationship's are stored with the
    incident and indexed, so those are looked up. A link's relationship
    UUID is not stored: a relationship id found nowhere else is looked for
    by hashing the names of the links (the link table only, never the
    incidents), first by the six leading bytes, which UUIDv5 takes
    unchanged from SHA-1, then in full.
    """
    own: set[str] = set()
    located: set[str] = set()
    other: set[str] = set()
    for object_id in ids:
        found = STIX_ID.fullmatch(object_id)
        if found is None or found.group(1) not in INCIDENT_TYPES:
            continue
        (located if found.group(1) == "relationship" else own).add(found.group(2))
    table = core_table(Incident)
    live = select(table.c.id, table.c.stix_located_uuid).where(
        table.c.merged_into.is_(None), table.c.tlp.in_(tlp.allowed_levels(clearance))
    )
    owners: set[str] = set()
    if own:
        query = live.where(table.c.stix_uuid.in_(sorted(own)))
        owners |= {row.id for row in connection.execute(query)}
    if located:
        query = live.where(table.c.stix_located_uuid.in_(sorted(located)))
        rows = list(connection.execute(query))
        owners |= {row.id for row in rows}
        other = located - {row.stix_located_uuid for row in rows}
    if other:
        owners |= _link_owners(connection, other)
    return owners


def _link_owners(connection: Connection, wanted_ids: set[str]) -> set[str]:
    """The incidents with an outgoing link whose relationship's UUID is in ``wanted_ids``."""
    wanted: dict[bytes, set[str]] = {}
    for text in wanted_ids:
        wanted.setdefault(uuid.UUID(text).bytes[:6], set()).add(text)
    namespace, owners = NAMESPACE.bytes, set()
    link = core_table(IncidentLink)
    query = select(link.c.incident_id, link.c.other_id, link.c.relation)
    for incident_id, other_id, relation in connection.execute(
        query.where(link.c.relation != "merged-into").execution_options(yield_per=5000)
    ):
        name = link_name(relation, incident_id, other_id).encode()
        prefix = hashlib.sha1(namespace + name, usedforsecurity=False).digest()[:6]
        if prefix in wanted and link_uuid(relation, incident_id, other_id) in wanted[prefix]:
            owners.add(incident_id)
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
