"""Port and anchorage trend briefs: select incidents, count them, render them.

``make_brief`` returns the figures as JSON-ready data; ``brief.html``
renders them as a printable page with charts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from incident_db.brief.figures import compute
from incident_db.brief.selection import Selection, select_incidents
from incident_db.models import FeedImport, core_table


def feed_credits(connection: Connection) -> dict[str, str]:
    """Each imported feed's credit line (authors, licence), by feed name."""
    table = core_table(FeedImport)
    query = select(table.c.feed, table.c.credit).order_by(table.c.id)
    return {feed: credit for feed, credit in connection.execute(query) if credit}


def make_brief(connection: Connection, selection: Selection) -> dict[str, Any]:
    """Every figure of the brief for ``selection``."""
    selected = select_incidents(connection, selection)
    feeds = {name.split("/")[0] for names in selected.sources.values() for _, name in names}
    credits = {k: v for k, v in feed_credits(connection).items() if k in feeds}
    return compute(selected, credits=credits)


__all__ = ["Selection", "make_brief"]
