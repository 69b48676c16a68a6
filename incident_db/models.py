"""The shared incident database's tables: plain SQLAlchemy 2.0 models.

One row per incident, with the record's single values as columns; the
multi-valued slugs (weapons, boarding points, …) as rows of
``incident_tag``, so that plain SQL can count them on any database;
where each incident came from in ``provenance``; links between incidents in
``incident_link``. There is no column for a vessel's name or number, nor
for a company or a person.

A few columns are derived on write so that briefs and corroboration need
no date arithmetic in SQL, which SQLite and PostgreSQL spell differently:
``place_key`` (the name with its generic words removed, ``places.py``),
``approx_utc`` and ``approx_day`` (the best UTC estimate, ``store.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Date, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: crew consequence columns, in the order of ``taxonomy.CREW``
CREW_COLUMNS = tuple(
    f"crew_{key}"
    for key in ("threatened", "tied_up", "assaulted", "injured", "hostage", "kidnapped",
                "killed", "missing")
)  # fmt: skip


class Base(DeclarativeBase):
    """Declarative base for the incident database."""


class Incident(Base):
    """One incident, from a reviewer batch or an external feed."""

    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_day_latitude", "approx_day", "latitude"),
        Index("ix_incident_latitude", "latitude"),
        # the members' pages ask for a period, of a place or of everywhere (migration 0007)
        Index("ix_incident_local_date", "local_date"),
        Index("ix_incident_place_day", "place_key", "local_date"),
        # partners page through what changed since their last pull (TAXII added_after)
        Index("ix_incident_version", "version_at", "id"),
        # partners ask for one STIX object by its id (TAXII; incident_db/stix_ids.py)
        Index("ix_incident_stix_uuid", "stix_uuid"),
        Index("ix_incident_stix_located_uuid", "stix_located_uuid"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    origin: Mapped[str] = mapped_column(String(10))  # "reviewer" or "external"
    category: Mapped[str] = mapped_column(String(40))
    report_type: Mapped[str | None] = mapped_column(String(40))
    incident_type: Mapped[str | None] = mapped_column(String(40))
    # brief.trend.kind() of the three columns it reads, set on write (migration 0003)
    kind: Mapped[str] = mapped_column(String(24))
    # time: the local wall clock as reported, its offset, and UTC when known
    local_date: Mapped[dt.date | None] = mapped_column(Date)
    local_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM"
    utc_offset_minutes: Mapped[int | None] = mapped_column(Integer)
    occurred_utc: Mapped[dt.datetime | None] = mapped_column(DateTime)
    approx_utc: Mapped[dt.datetime | None] = mapped_column(DateTime)
    approx_day: Mapped[int | None] = mapped_column(Integer)  # days since 1970-01-01
    # place
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    position_decimals: Mapped[int | None] = mapped_column(Integer)
    place: Mapped[str | None] = mapped_column(String(200))
    place_key: Mapped[str | None] = mapped_column(String(200), index=True)
    location_type: Mapped[str | None] = mapped_column(String(40))
    # the ship: kind and state only, never who
    vessel_type: Mapped[str | None] = mapped_column(String(40))
    vessel_status: Mapped[str | None] = mapped_column(String(40))
    # the attack
    perpetrators_min: Mapped[int | None] = mapped_column(Integer)
    perpetrators_max: Mapped[int | None] = mapped_column(Integer)
    boarding_method: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(60))
    crew_threatened: Mapped[int | None] = mapped_column(Integer)
    crew_tied_up: Mapped[int | None] = mapped_column(Integer)
    crew_assaulted: Mapped[int | None] = mapped_column(Integer)
    crew_injured: Mapped[int | None] = mapped_column(Integer)
    crew_hostage: Mapped[int | None] = mapped_column(Integer)
    crew_kidnapped: Mapped[int | None] = mapped_column(Integer)
    crew_killed: Mapped[int | None] = mapped_column(Integer)
    crew_missing: Mapped[int | None] = mapped_column(Integer)
    suspect_craft_count: Mapped[int | None] = mapped_column(Integer)
    suspect_craft_type: Mapped[str | None] = mapped_column(String(40))
    suspect_craft_description: Mapped[str | None] = mapped_column(String(200))
    # stowaways and cyber
    stowaway_count: Mapped[int | None] = mapped_column(Integer)
    stowaway_embarkation_port: Mapped[str | None] = mapped_column(String(200))
    stowaway_embarkation_berth: Mapped[str | None] = mapped_column(String(200))
    stowaway_hiding_place: Mapped[str | None] = mapped_column(String(40))
    stowaway_how_found: Mapped[str | None] = mapped_column(String(200))
    cyber_vector: Mapped[str | None] = mapped_column(String(40))
    cyber_impact: Mapped[str | None] = mapped_column(Text)
    narrative: Mapped[str | None] = mapped_column(Text)
    # verification: "confirmed" (reviewer batches) or "unverified" (external feeds)
    verification_status: Mapped[str] = mapped_column(String(20))
    grade: Mapped[str | None] = mapped_column(String(2))
    signer_fingerprint: Mapped[str | None] = mapped_column(String(35))
    # SHA-256 of the record's JSON: the same id with other content is refused
    content_sha256: Mapped[str] = mapped_column(String(64))
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("incident.id"))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # the sharing limit, a TLP 2.0 slug (``incident_db/tlp.py``; migration 0008)
    tlp: Mapped[str] = mapped_column(String(12))
    # when this version of the incident was made: set on insert and on every change
    # (edit, TLP, record version, merge), so partners can pull what changed since
    version_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # the UUIDs of its STIX objects (``stix_ids.py``): the incident SDO and its location
    # share one, the located-at relationship has its own; set on insert (migration 0008)
    stix_uuid: Mapped[str] = mapped_column(String(36))
    stix_located_uuid: Mapped[str] = mapped_column(String(36))


class IncidentTag(Base):
    """One value of a multi-valued field (``facet``) of an incident."""

    __tablename__ = "incident_tag"
    # the key is the row: one b-tree, not two
    __table_args__ = ({"sqlite_with_rowid": False},)

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(60), primary_key=True)


class Provenance(Base):
    """Where an incident (or one merged into it) came from, down to the line or row."""

    __tablename__ = "provenance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # "reviewer-batch" or "external-feed"
    source: Mapped[str] = mapped_column(String(100))  # batch id, or feed name
    row: Mapped[int] = mapped_column(Integer)  # batch line, or feed record number
    file_line: Mapped[int | None] = mapped_column(Integer)  # where a feed record starts
    file_sha256: Mapped[str] = mapped_column(String(64))
    signer_fingerprint: Mapped[str | None] = mapped_column(String(35))
    original_id: Mapped[str] = mapped_column(String(32))  # the incident it first created
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ReviewerBatch(Base):
    """A reviewer batch that was ingested."""

    __tablename__ = "reviewer_batch"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(65))
    signer_fingerprint: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime)
    records: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer)


class FeedImport(Base):
    """One run of ``import-feed``: which file, and what became of its rows."""

    __tablename__ = "feed_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed: Mapped[str] = mapped_column(String(100))
    file_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime)
    rows: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer)
    already_present: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    credit: Mapped[str] = mapped_column(Text)  # the feed's authors and licence, for briefs


class IncidentLink(Base):
    """A relation between two incidents: stated by a reviewer, found, or made by a merge.

    ``other_id`` has no foreign key: a reviewer may link to an incident that
    reaches the database later, or never.
    """

    __tablename__ = "incident_link"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    other_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    # "duplicate-of", "corroborates" (reviewers), "possible-duplicate" (found), "merged-into"
    relation: Mapped[str] = mapped_column(String(20), primary_key=True)
    origin: Mapped[str] = mapped_column(String(10))  # "reviewer", "found" or "merge"
    distance_nm: Mapped[float | None] = mapped_column(Float)
    hours_apart: Mapped[float | None] = mapped_column(Float)


class IncidentChange(Base):
    """One change to an incident, kept for good: who, when, what before and after, and why.

    Append-only: migration 0004 makes the database refuse UPDATE, DELETE and
    REPLACE of these rows. ``before`` and ``after`` are JSON objects.
    """

    __tablename__ = "incident_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incident.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)  # naive, UTC
    actor: Mapped[str] = mapped_column(String(120))  # a member's handle, or "batch:<id>"
    # verification, grade, note, merge, link, unlink, record-version
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


def core_table(model: type[Base]) -> Table:
    """The Core ``Table`` of a model, for bulk statements (typed as a Table, which it is)."""
    return cast(Table, model.__table__)
