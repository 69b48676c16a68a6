"""The STIX ids of the incidents' objects: UUIDv5 of names made from incident ids.

Low in the layers on purpose: ``store.py`` stores the ids with every new
incident (so the TAXII server finds an object by an index, not by hashing
every incident), migration 0008 fills them in for incidents already stored,
and ``exports/stix.py`` makes the objects with them. One function per name,
used by all three, so the stored ids and the exported ones cannot drift.

* an incident SDO and its ``location``: the incident id itself;
* its ``located-at`` relationship: ``"located-at " + id``;
* a link's relationship: ``"RELATION ID OTHER"`` (not stored: see TAXII.md).

A UUIDv5 is one SHA-1 of the namespace and the name: cheap enough for a
million-row ingest.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f0d6b4e-2a87-4f43-8f39-1c7a5e2b9d30")


def stix_uuid(name: str) -> str:
    """The UUID part of a STIX id named ``name`` (lowercase, with hyphens)."""
    return str(uuid.uuid5(NAMESPACE, name))


def incident_uuid(incident_id: str) -> str:
    """The UUID of incident ``incident_id``'s ``incident`` SDO, and of its ``location``."""
    return stix_uuid(incident_id)


def located_at_uuid(incident_id: str) -> str:
    """The UUID of the ``located-at`` relationship of incident ``incident_id``."""
    return stix_uuid(f"located-at {incident_id}")


def link_name(relation: str, incident_id: str, other_id: str) -> str:
    """The name of the relationship of the link ``relation`` from one incident to another."""
    return f"{relation} {incident_id} {other_id}"


def link_uuid(relation: str, incident_id: str, other_id: str) -> str:
    """The UUID of the relationship of the link ``relation`` from one incident to another."""
    return stix_uuid(link_name(relation, incident_id, other_id))
