"""The home page of a signed-in member: their role, and what the database holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Blueprint, render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incident_db.models import FeedImport, Incident, ReviewerBatch
from incident_db.web import sessions

home = Blueprint("home", __name__)


@dataclass(frozen=True)
class Holdings:
    """A few real figures from the database, for the home page."""

    incidents: int
    confirmed: int
    from_feeds: int
    last_ingest: dt.date | None


def holdings(db: Session) -> Holdings:
    """Count the incidents (merged duplicates not counted twice) and find the last ingest day."""
    live = Incident.merged_into.is_(None)
    incidents = db.scalar(select(func.count(Incident.id)).where(live)) or 0
    confirmed = (
        db.scalar(
            select(func.count(Incident.id)).where(live, Incident.verification_status == "confirmed")
        )
        or 0
    )
    from_feeds = (
        db.scalar(select(func.count(Incident.id)).where(live, Incident.origin == "external")) or 0
    )
    days = [
        db.scalar(select(func.max(ReviewerBatch.ingested_at))),
        db.scalar(select(func.max(FeedImport.imported_at))),
    ]
    known = [day.date() for day in days if day is not None]
    return Holdings(incidents, confirmed, from_feeds, max(known) if known else None)


@home.get("/")
def index() -> str:
    """The member's home page."""
    return render_template("home.html", holdings=holdings(sessions.database()))
