"""Is it getting better or worse? The brief's period against the one just before it.

The previous period has the same number of days and ends the day before the
brief's period starts. Counts are given by kind of incident, and a change
in per cent only when the earlier count is at least ``MIN_BASE_FOR_PERCENT``:
from zero a percentage is meaningless, and from three it is noise.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from incident_db.brief.selection import Selection, select_rows, shift_months
from incident_db.models import Incident, core_table
from incident_db.taxonomy import SUCCESSFUL

#: the kinds a trend is counted by, in the order a brief shows them
KINDS = ("actual-attack", "attempted-attack", "suspicious-approach", "other")
KIND_LABELS = {
    "actual-attack": "actual attacks",
    "attempted-attack": "attempted attacks",
    "suspicious-approach": "suspicious approaches",
    "other": "other or not stated",
}
#: incident types where the perpetrators got aboard, or took, held or damaged the ship
ACTUAL = frozenset(
    {"boarded", "hijacked", "illegal-boarding-citadel", "detained", "explosion"}
)  # fmt: skip
#: incident types where they tried but did not get aboard; like the IMB, a ship
#: fired upon counts as an attempted attack
ATTEMPTED = frozenset({"attempted-boarding", "fired-upon", "attack-weapons-discharged"})
MIN_BASE_FOR_PERCENT = 10
KIND_COLUMNS = ("incident_type", "category", "outcome")


def kind(incident_type: str | None, category: str | None, outcome: str | None) -> str:
    """The kind of an incident for the trend, from what the record states.

    The incident type decides. Without one, a suspicious-approach category
    is a suspicious approach, a successful outcome an actual attack and an
    "attempted" outcome an attempted attack. Anything else ("foiled by
    crew" without a type says nothing about whether they got aboard, and a
    stowaway is no attack) is "other".
    """
    if incident_type == "suspicious-approach":
        return "suspicious-approach"
    if incident_type in ACTUAL:
        return "actual-attack"
    if incident_type in ATTEMPTED:
        return "attempted-attack"
    if incident_type is None:
        if category == "suspicious-approach":
            return "suspicious-approach"
        if outcome == SUCCESSFUL:
            return "actual-attack"
        if outcome == "attempted":
            return "attempted-attack"
    return "other"


def _by_kind(rows: Iterable[Any]) -> Counter[str]:
    return Counter(kind(r.incident_type, r.category, r.outcome) for r in rows)


def length_words(since: dt.date, until: dt.date) -> str:
    """The period's length as a person says it: "24 months" when whole months, else days."""
    after = until + dt.timedelta(days=1)
    months = (after.year - since.year) * 12 + after.month - since.month
    if months > 0 and shift_months(since, months) == after:
        return "1 month" if months == 1 else f"{months} months"
    days = (until - since).days + 1
    return "1 day" if days == 1 else f"{days} days"


def previous_period(since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same number of days that ends the day before ``since``."""
    days = (until - since).days + 1
    return since - dt.timedelta(days=days), since - dt.timedelta(days=1)


def _span(since: dt.date, until: dt.date) -> dict[str, Any]:
    return {"since": since.isoformat(), "until": until.isoformat(),
            "days": (until - since).days + 1}  # fmt: skip


def archive_span(connection: Connection) -> dict[str, str | None]:
    """The first and last local dates in the whole database, to say what a period can show."""
    table = core_table(Incident)
    # the two ends of the index on the day (migration 0007), rather than MIN and MAX over
    # every row: neither database reads an index from both ends for one aggregate query
    dated = select(table.c.local_date).where(
        table.c.merged_into.is_(None), table.c.local_date.is_not(None)
    )
    first = connection.execute(dated.order_by(table.c.local_date).limit(1)).scalar()
    last = connection.execute(dated.order_by(table.c.local_date.desc()).limit(1)).scalar()
    return {"first": None if first is None else str(first)[:10],
            "last": None if last is None else str(last)[:10]}  # fmt: skip


def trend_figures(
    since: dt.date,
    until: dt.date,
    rows: Iterable[Any],
    previous_rows: Iterable[Any],
    archive: dict[str, str | None],
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Counts in the period and the one before, overall and by kind (rows need KIND_COLUMNS)."""
    now, before = _by_kind(rows), _by_kind(previous_rows)
    earlier = previous_period(since, until)

    def pair(current: int, previous: int) -> dict[str, Any]:
        percent = None
        if previous >= MIN_BASE_FOR_PERCENT:
            percent = round(100 * (current - previous) / previous)
        return {"period": current, "previous": previous, "change": current - previous,
                "change_percent": percent}  # fmt: skip

    return {
        "period": _span(since, until),
        "previous": _span(*earlier),
        "length": length_words(since, until),
        "ends_today": until == today,
        "archive": archive,
        "all": pair(sum(now.values()), sum(before.values())),
        "by_kind": {k: pair(now[k], before[k]) for k in KINDS},
    }


def make_trend(
    connection: Connection, selection: Selection, rows: Iterable[Any], today: dt.date
) -> dict[str, Any] | None:
    """The trend for a selection whose rows are fetched; None without a start date."""
    if selection.since is None:
        return None  # the whole archive has no "period before"
    until = selection.until or today
    earlier = previous_period(selection.since, until)
    before = select_rows(connection, replace(selection, since=earlier[0], until=earlier[1]),
                         KIND_COLUMNS)  # fmt: skip
    return trend_figures(selection.since, until, rows, before, archive_span(connection), today)
