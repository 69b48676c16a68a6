"""Port and anchorage trend briefs: select incidents, count them, render them.

``make_brief`` returns the figures as JSON-ready data; ``brief.html``
renders them as a printable page with charts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from incident_db.brief.figures import compute
from incident_db.brief.selection import Selection, resolve_period, select_incidents
from incident_db.brief.timing import CLOCK_SHARE
from incident_db.brief.trend import make_trend
from incident_db.models import FeedImport, core_table


def feed_credits(connection: Connection) -> dict[str, str]:
    """Each imported feed's credit line (authors, licence), by feed name."""
    table = core_table(FeedImport)
    query = select(table.c.feed, table.c.credit).order_by(table.c.id)
    return {feed: credit for feed, credit in connection.execute(query) if credit}


def make_brief(
    connection: Connection,
    selection: Selection,
    *,
    clock_share: float = CLOCK_SHARE,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Every figure of the brief for ``selection``, as the selection's dates give it.

    The dates are taken as they are (no dates: the whole archive, and no
    trend); ``resolve_period`` gives the usual default of the last 24
    months. ``today`` (the UTC day by default) ends a period with no end.
    """
    selected = select_incidents(connection, selection)
    feeds = {name.split("/")[0] for names in selected.sources.values() for _, name in names}
    credits = {k: v for k, v in feed_credits(connection).items() if k in feeds}
    day = today or dt.datetime.now(dt.UTC).date()
    trend = make_trend(connection, selection, selected.rows, day)
    return compute(selected, credits=credits, clock_share=clock_share, trend=trend)


__all__ = ["CLOCK_SHARE", "Selection", "make_brief", "resolve_period"]
