"""The figures of a brief, as JSON: what a CSO reads before a port call.

Every figure counts *incidents* (not people) unless its name says
otherwise, so "knives-or-machetes: 4" means four incidents in which knives
or machetes were seen. Days and hours are on the local clock where it
happened, since robbers keep local hours; an incident whose local time is
not known is counted as "unknown", never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from incident_db.brief.selection import Selected
from incident_db.taxonomy import CREW, SUCCESSFUL

SCHEMA = "cso-incident-brief/v1"
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


def _minutes(clock: str) -> int:
    return int(clock[:2]) * 60 + int(clock[3:])


def time_window(clocks: list[str]) -> dict[str, str] | None:
    """The shortest stretch of the 24-hour clock that holds every time (may cross midnight)."""
    if not clocks:
        return None
    minutes = sorted({_minutes(c) for c in clocks})
    # the largest gap between consecutive times (around the clock) is what lies outside
    gaps = [((minutes[(i + 1) % len(minutes)] - m) % 1440, i) for i, m in enumerate(minutes)]
    _, widest = max(gaps) if len(minutes) > 1 else (0, 0)
    start, end = minutes[(widest + 1) % len(minutes)], minutes[widest]
    return {"from": f"{start // 60:02d}:{start % 60:02d}", "to": f"{end // 60:02d}:{end % 60:02d}"}


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


def compute(selected: Selected, *, credits: dict[str, str] | None = None) -> dict[str, Any]:
    """Every figure of the brief for ``selected``."""
    rows = selected.rows
    dates = [r.local_date for r in rows if r.local_date is not None]
    clocks = [r.local_time for r in rows if r.local_time is not None]
    weekdays = Counter(WEEKDAYS[d.weekday()] for d in dates)
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
        "by_weekday": {day: weekdays.get(day, 0) for day in WEEKDAYS}
        | {UNKNOWN: len(rows) - len(dates)},
        "by_hour": {f"{h:02d}": hours.get(f"{h:02d}", 0) for h in range(24)}
        | {UNKNOWN: len(rows) - len(clocks)},
        "local_time_window": time_window(clocks),
        "by_month": _months(dates),
        "categories": _counts([r.category for r in rows]),
        "incident_types": _counts([r.incident_type for r in rows]),
        "vessel_types": _counts([r.vessel_type for r in rows]),
        "vessel_status": _counts([r.vessel_status for r in rows]),
        "perpetrators": _perpetrators(rows),
        "weapons": _tag_counts(selected, "weapons"),
        "boarding_methods": _counts([r.boarding_method for r in rows]),
        "boarding_points": _tag_counts(selected, "boarding_points"),
        "stolen": _tag_counts(selected, "stolen"),
        "crew": _crew(rows),
        "actions_taken": _tag_counts(selected, "actions_taken"),
        "outcomes": _counts([r.outcome for r in rows]),
        "success": _success(rows),
        "sources": _sources(selected),
        "verification": {
            "confirmed": sum(1 for r in rows if r.verification_status == "confirmed"),
            "unverified": sum(1 for r in rows if r.verification_status != "confirmed"),
            "grades": _counts([r.grade for r in rows if r.grade is not None]),
        },
        "credits": dict(sorted((credits or {}).items())),
    }
