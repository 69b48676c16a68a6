"""The figures of a brief, as JSON: what a CSO reads before a port call.

Every figure counts *incidents* (not people) unless its name says
otherwise, so "knives-or-machetes: 4" means four incidents in which knives
or machetes were seen. Days and hours are on the local clock where it
happened, since robbers keep local hours; an incident whose local time is
not known is counted as "unknown", never guessed. Likewise every
modus-operandi figure keeps the incidents that do not state it apart
("unknown", "not-stated", or ``incidents_stating`` next to the counts).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from incident_db.brief.selection import Selected
from incident_db.brief.timing import CLOCK_SHARE, clock_window, weekday_pattern
from incident_db.taxonomy import CREW, SUCCESSFUL

SCHEMA = "cso-incident-brief/v2"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
UNKNOWN = "unknown"
NOT_STATED = "not-stated"


def _counts(values: list[str | None]) -> dict[str, int]:
    """Counts by value, largest first; None is counted as "not-stated"."""
    counted = Counter(NOT_STATED if v is None else v for v in values)
    return dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))


def _tag_counts(selected: Selected, facet: str) -> dict[str, Any]:
    """Incidents per tag value, and how many incidents state any value at all."""
    counted: Counter[str] = Counter()
    stated = 0
    for row in selected.rows:
        values = selected.tags.get(row.id, {}).get(facet, [])
        stated += bool(values)
        counted.update(set(values))
    ordered = dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))
    return {"incidents_stating": stated, "counts": ordered}


def _months(dates: list[dt.date]) -> dict[str, int]:
    """Incidents per calendar month from the first to the last, empty months included."""
    if not dates:
        return {}
    counted = Counter(f"{d.year:04d}-{d.month:02d}" for d in dates)
    first, last = min(dates), max(dates)
    year, month, months = first.year, first.month, {}
    while (year, month) <= (last.year, last.month):
        key = f"{year:04d}-{month:02d}"
        months[key] = counted.get(key, 0)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _perpetrators(rows: tuple[Any, ...]) -> dict[str, Any]:
    stated = [r for r in rows if r.perpetrators_min is not None or r.perpetrators_max is not None]
    lows = [r.perpetrators_min for r in stated if r.perpetrators_min is not None]
    highs = [r.perpetrators_max for r in stated if r.perpetrators_max is not None]
    return {
        "incidents_stating": len(stated),
        "fewest": min(lows) if lows else None,
        "most": max(highs) if highs else None,
    }


#: perpetrator group sizes: (label, fewest, most); None means no upper bound
GROUP_SIZES = (("0", 0, 0), ("1-2", 1, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11+", 11, None))
#: outcomes of attempts that failed
FAILED = ("attempted", "foiled-by-crew")


def perpetrator_numbers(rows: tuple[Any, ...]) -> dict[str, int]:
    """Incidents by the largest number of perpetrators stated (the upper bound, else the lower).

    A range such as "8-10" counts under its upper bound, the number a crew
    should be ready for; an incident stating no number is "unknown".
    """
    counted = dict.fromkeys([*(name for name, _, _ in GROUP_SIZES), UNKNOWN], 0)
    for row in rows:
        largest = row.perpetrators_max if row.perpetrators_max is not None else row.perpetrators_min
        if largest is None:
            counted[UNKNOWN] += 1
            continue
        for name, fewest, most in GROUP_SIZES:
            if largest >= fewest and (most is None or largest <= most):
                counted[name] += 1
                break
    return counted


def what_helped(selected: Selected) -> dict[str, Any]:
    """Crew actions in attempts that failed, next to the same actions in successful ones.

    "Failed" means the outcome is "attempted" or "foiled by crew"; an
    incident without an outcome is in neither group.
    """

    def group(outcomes: tuple[str, ...]) -> dict[str, Any]:
        rows = tuple(r for r in selected.rows if r.outcome in outcomes)
        return {"incidents": len(rows)} | _tag_counts(
            Selected(selected.selection, rows, selected.tags), "actions_taken"
        )

    return {"failed": group(FAILED), "successful": group((SUCCESSFUL,))}


def source_shares(rows: tuple[Any, ...]) -> dict[str, Any]:
    """How many incidents reviewers confirmed, against those only from external feeds."""
    confirmed = sum(1 for r in rows if r.verification_status == "confirmed")
    external = sum(
        1 for r in rows if r.verification_status != "confirmed" and r.origin == "external"
    )

    def share(part: int) -> float | None:
        return round(part / len(rows), 3) if rows else None

    return {
        "incidents": len(rows),
        "confirmed": confirmed,
        "confirmed_share": share(confirmed),
        "external_unverified": external,
        "external_unverified_share": share(external),
    }


def _crew(rows: tuple[Any, ...]) -> dict[str, dict[str, int]]:
    crew = {}
    for key in CREW:
        values = [getattr(r, f"crew_{key}") for r in rows]
        crew[key] = {
            "incidents": sum(1 for v in values if v),
            "people": sum(v for v in values if v),
        }
    return crew


def _success(rows: tuple[Any, ...]) -> dict[str, Any]:
    known = [r.outcome for r in rows if r.outcome is not None]
    successful = sum(1 for outcome in known if outcome == SUCCESSFUL)
    return {
        "successful": successful,
        "with_outcome": len(known),
        "ratio": round(successful / len(known), 3) if known else None,
    }


def _sources(selected: Selected) -> dict[str, Any]:
    by_name: Counter[str] = Counter()
    for row in selected.rows:
        by_name.update({name for _, name in selected.sources.get(row.id, [])})
    rows = selected.rows
    return {
        "reviewer": sum(1 for r in rows if r.origin == "reviewer"),
        "external": sum(1 for r in rows if r.origin == "external"),
        "by_source": dict(sorted(by_name.items(), key=lambda item: (-item[1], item[0]))),
    }


def compute(
    selected: Selected,
    *,
    credits: dict[str, str] | None = None,
    clock_share: float = CLOCK_SHARE,
    trend: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the brief for ``selected``; ``trend`` comes from ``trend.make_trend``."""
    rows = selected.rows
    dates = [r.local_date for r in rows if r.local_date is not None]
    clocks = [r.local_time for r in rows if r.local_time is not None]
    weekdays = Counter(WEEKDAYS[d.weekday()] for d in dates)
    by_weekday = {day: weekdays.get(day, 0) for day in WEEKDAYS}
    hours = Counter(f"{int(c[:2]):02d}" for c in clocks)
    return {
        "schema": SCHEMA,
        "selection": selected.selection.describe(),
        "names_merged": [
            {"name": name, "incidents": count}
            for name, count in sorted(selected.names.items(), key=lambda i: (-i[1], i[0]))
        ],
        "incidents": len(rows),
        "period": {
            "first": min(dates).isoformat() if dates else None,
            "last": max(dates).isoformat() if dates else None,
        },
        "trend": trend,
        "by_weekday": by_weekday | {UNKNOWN: len(rows) - len(dates)},
        "weekday_pattern": weekday_pattern(by_weekday, WEEKDAYS),
        "by_hour": {f"{h:02d}": hours.get(f"{h:02d}", 0) for h in range(24)}
        | {UNKNOWN: len(rows) - len(clocks)},
        "clock_window": clock_window(clocks, clock_share),
        "by_month": _months(dates),
        "categories": _counts([r.category for r in rows]),
        "incident_types": _counts([r.incident_type for r in rows]),
        "vessel_types": _counts([r.vessel_type for r in rows]),
        "vessel_status": _counts([r.vessel_status for r in rows]),
        "perpetrators": _perpetrators(rows),
        "perpetrator_numbers": perpetrator_numbers(rows),
        "weapons": _tag_counts(selected, "weapons"),
        "boarding_methods": _counts([r.boarding_method for r in rows]),
        "boarding_points": _tag_counts(selected, "boarding_points"),
        "stolen": _tag_counts(selected, "stolen"),
        "crew": _crew(rows),
        "actions_taken": _tag_counts(selected, "actions_taken"),
        "outcomes": _counts([r.outcome for r in rows]),
        "success": _success(rows),
        "what_helped": what_helped(selected),
        "sources": _sources(selected),
        "source_shares": source_shares(rows),
        "verification": {
            "confirmed": sum(1 for r in rows if r.verification_status == "confirmed"),
            "unverified": sum(1 for r in rows if r.verification_status != "confirmed"),
            "grades": _counts([r.grade for r in rows if r.grade is not None]),
        },
        "credits": dict(sorted((credits or {}).items())),
    }
