"""Incidents, their tags, provenance, links, and the batches and feed runs they came from.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CREW = ("threatened", "tied_up", "assaulted", "injured", "hostage", "kidnapped", "killed",
        "missing")  # fmt: skip


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=True)


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=True)


def upgrade() -> None:
    """Create the six tables and their indexes."""
    op.create_table(
        "incident",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        _text("report_type", 40),
        _text("incident_type", 40),
        sa.Column("local_date", sa.Date, nullable=True),
        _text("local_time", 5),
        _count("utc_offset_minutes"),
        sa.Column("occurred_utc", sa.DateTime, nullable=True),
        sa.Column("approx_utc", sa.DateTime, nullable=True),
        _count("approx_day"),
        sa.Column("latitude", sa.Float, nullable=True),
        sa.Column("longitude", sa.Float, nullable=True),
        _count("position_decimals"),
        _text("place", 200),
        _text("place_key", 200),
        _text("location_type", 40),
        _text("vessel_type", 40),
        _text("vessel_status", 40),
        _count("perpetrators_min"),
        _count("perpetrators_max"),
        _text("boarding_method", 40),
        _text("outcome", 60),
        *(_count(f"crew_{key}") for key in CREW),
        _count("suspect_craft_count"),
        _text("suspect_craft_type", 40),
        _text("suspect_craft_description", 200),
        _count("stowaway_count"),
        _text("stowaway_embarkation_port", 200),
        _text("stowaway_embarkation_berth", 200),
        _text("stowaway_hiding_place", 40),
        _text("stowaway_how_found", 200),
        _text("cyber_vector", 40),
        sa.Column("cyber_impact", sa.Text, nullable=True),
        sa.Column("narrative", sa.Text, nullable=True),
        sa.Column("verification_status", sa.String(20), nullable=False),
        _text("grade", 2),
        _text("signer_fingerprint", 35),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("merged_into", sa.String(32), sa.ForeignKey("incident.id"), nullable=True),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_incident_place_key", "incident", ["place_key"])
    op.create_index("ix_incident_latitude", "incident", ["latitude"])
    op.create_index("ix_incident_day_latitude", "incident", ["approx_day", "latitude"])
    op.create_table(
        "incident_tag",
        sa.Column(
            "incident_id",
            sa.String(32),
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("facet", sa.String(20), primary_key=True),
        sa.Column("value", sa.String(60), primary_key=True),
        sqlite_with_rowid=False,  # the key is the row: one b-tree, not two
    )
    op.create_table(
        "provenance",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id",
            sa.String(32),
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("file_line", sa.Integer, nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        _text("signer_fingerprint", 35),
        sa.Column("original_id", sa.String(32), nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_provenance_incident_id", "provenance", ["incident_id"])
    op.create_table(
        "reviewer_batch",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signer", sa.String(65), nullable=False),
        sa.Column("signer_fingerprint", sa.String(35), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
    )
    op.create_table(
        "feed_import",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feed", sa.String(100), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("already_present", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("credit", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_link",
        sa.Column(
            "incident_id",
            sa.String(32),
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("other_id", sa.String(32), primary_key=True),
        sa.Column("relation", sa.String(20), primary_key=True),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("distance_nm", sa.Float, nullable=True),
        sa.Column("hours_apart", sa.Float, nullable=True),
    )
    op.create_index("ix_incident_link_other_id", "incident_link", ["other_id"])


def downgrade() -> None:
    """Drop every table of the incident database."""
    op.drop_index("ix_incident_link_other_id", table_name="incident_link")
    op.drop_table("incident_link")
    op.drop_table("feed_import")
    op.drop_table("reviewer_batch")
    op.drop_index("ix_provenance_incident_id", table_name="provenance")
    op.drop_table("provenance")
    op.drop_table("incident_tag")
    for name in ("ix_incident_day_latitude", "ix_incident_latitude", "ix_incident_place_key"):
        op.drop_index(name, table_name="incident")
    op.drop_table("incident")
