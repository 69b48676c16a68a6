"""Brief figures that need no database: the time window, months, success."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from incident_db.brief.figures import _months, compute, time_window
from incident_db.brief.selection import Selected, Selection
from incident_db.models import CREW_COLUMNS


def test_the_time_window_may_cross_midnight() -> None:
    assert time_window(["23:45", "01:10", "04:15", "02:00"]) == {"from": "23:45", "to": "04:15"}
    assert time_window(["10:00", "14:30"]) == {"from": "10:00", "to": "14:30"}
    assert time_window(["03:00"]) == {"from": "03:00", "to": "03:00"}
    assert time_window([]) is None


def test_months_run_from_first_to_last_with_empty_months() -> None:
    dates = [dt.date(2019, 11, 3), dt.date(2020, 2, 1), dt.date(2020, 2, 9)]
    assert _months(dates) == {"2019-11": 1, "2019-12": 0, "2020-01": 0, "2020-02": 2}


def _row(number: int, **values: Any) -> SimpleNamespace:
    base = {name: None for name in CREW_COLUMNS} | {
        "id": f"{number:032x}", "origin": "reviewer", "category": "piracy-or-armed-robbery",
        "incident_type": None, "local_date": None, "local_time": None, "latitude": None,
        "longitude": None, "place": None, "vessel_type": None, "vessel_status": None,
        "perpetrators_min": None, "perpetrators_max": None, "boarding_method": None,
        "outcome": None, "verification_status": "confirmed", "grade": "B2",
    }  # fmt: skip
    return SimpleNamespace(**(base | values))


def test_counts_are_incidents_and_unknowns_are_not_guessed() -> None:
    rows = (
        _row(1, local_date=dt.date(2024, 3, 1), local_time="23:50", outcome="foiled-by-crew",
             crew_tied_up=2, perpetrators_min=3, perpetrators_max=5),
        _row(2, local_date=dt.date(2024, 3, 2), outcome="successful-items-stolen-or-control-taken",
             crew_tied_up=1, perpetrators_max=10),
        _row(3, origin="external", verification_status="unverified", grade=None),
    )  # fmt: skip
    tags = {rows[0].id: {"weapons": ["guns", "knives-or-machetes"]},
            rows[1].id: {"weapons": ["knives-or-machetes"]}}  # fmt: skip
    selected = Selected(Selection(place="Chittagong"), rows, tags, {}, {})
    figures = compute(selected)
    assert figures["incidents"] == 3
    assert figures["by_weekday"]["friday"] == 1
    assert figures["by_weekday"]["saturday"] == 1
    assert figures["by_weekday"]["unknown"] == 1
    assert figures["by_hour"]["23"] == 1
    assert figures["by_hour"]["unknown"] == 2
    assert figures["weapons"] == {"incidents_stating": 2,
                                  "counts": {"knives-or-machetes": 2, "guns": 1}}  # fmt: skip
    assert figures["crew"]["tied_up"] == {"incidents": 2, "people": 3}
    assert figures["perpetrators"] == {"incidents_stating": 2, "fewest": 3, "most": 10}
    assert figures["success"] == {"successful": 1, "with_outcome": 2, "ratio": 0.5}
    assert figures["outcomes"]["not-stated"] == 1
    assert figures["verification"] == {"confirmed": 2, "unverified": 1, "grades": {"B2": 2}}
