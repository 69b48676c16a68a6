"""Brief figures that need no database: the clock window, days, trend, months, success."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from incident_db.brief.figures import WEEKDAYS, _months, compute, perpetrator_numbers
from incident_db.brief.selection import Selected, Selection, resolve_period, shift_months
from incident_db.brief.text import render_text
from incident_db.brief.timing import clock_window, weekday_pattern
from incident_db.brief.trend import kind, length_words, previous_period, trend_figures
from incident_db.brief.wording import clock_line, days_line, key_points, trend_lines
from incident_db.models import CREW_COLUMNS


def _window(clocks: list[str], share: float = 0.8) -> tuple[str | None, str | None, Any]:
    figure = clock_window(clocks, share)
    return figure["from"], figure["to"], figure["holds"]


def test_the_clock_window_is_the_tightest_that_holds_the_share() -> None:
    # 10 times, 80 %: the 8 between 22:00 and 23:10 beat any window with the outliers
    clocks = ["22:00", "22:10", "22:20", "22:30", "22:40", "22:50", "23:00", "23:10",
              "06:00", "14:00"]  # fmt: skip
    assert _window(clocks) == ("22:00", "23:10", 8)
    figure = clock_window(clocks)
    assert (figure["known"], figure["needed"], figure["minutes"]) == (10, 8, 70)
    # every time: 22:00-14:00 and 14:00-06:00 both leave out an 8 h gap; 14:00 starts earlier
    assert _window(clocks, 1.0) == ("14:00", "06:00", 10)


def test_the_clock_window_wraps_past_midnight() -> None:
    clocks = ["23:45", "01:10", "04:15", "02:00", "00:30", "12:00"]
    # ceil(0.8 x 6) = 5: 23:45 to 04:15 (270 minutes) is tighter than anything through noon
    assert _window(clocks) == ("23:45", "04:15", 5)
    assert clock_window(clocks)["minutes"] == 270


def test_equal_times_give_a_window_of_one_minute_and_ties_take_the_earliest_start() -> None:
    assert _window(["03:00"] * 6) == ("03:00", "03:00", 6)
    # two runs of 4 equally tight (60 minutes): 01:00-02:00 starts earlier than 13:00-14:00
    clocks = ["01:00", "01:20", "01:40", "02:00", "13:00", "13:20", "13:40", "14:00"]
    assert _window(clocks, 0.5) == ("01:00", "02:00", 4)
    # repeated times inside the window all count, beyond the k needed
    assert _window(["05:00", "05:00", "05:00", "05:00", "05:00", "18:00"], 0.5)[2] == 5


def test_too_few_known_times_give_no_window() -> None:
    for clocks in ([], ["01:00"], ["01:00", "02:00", "03:00", "04:00"]):
        figure = clock_window(clocks)
        assert (figure["from"], figure["to"], figure["holds"]) == (None, None, None)
        assert figure["known"] == len(clocks)
    assert _window(["01:00", "02:00", "03:00", "04:00", "05:00"])[0] is not None
    with pytest.raises(ValueError, match="share"):
        clock_window(["01:00"] * 5, 0)


def test_the_clock_line_states_the_window_or_says_there_is_none() -> None:
    clocks = ["23:45", "01:10", "04:15", "02:00", "00:30", "12:00"]
    assert clock_line({"clock_window": clock_window(clocks)}) == (
        "Between 23:45 and 04:15 local time: holds 5 of 6 with a known local time "
        "(the tightest window holding at least 80%)."
    )
    assert "too few to give a time window" in clock_line({"clock_window": clock_window(["01:00"])})


def _days(**counts: int) -> dict[str, int]:
    return {day: counts.get(day, 0) for day in WEEKDAYS}


def test_a_day_stands_out_only_with_one_and_a_half_times_the_mean() -> None:
    # 28 dated: mean 4, so a day needs 6
    even = _days(monday=4, tuesday=4, wednesday=4, thursday=4, friday=4, saturday=4, sunday=4)
    assert weekday_pattern(even, WEEKDAYS)["standing_out"] == []
    peaked = _days(monday=3, tuesday=3, wednesday=3, thursday=3, friday=7, saturday=6, sunday=3)
    pattern = weekday_pattern(peaked, WEEKDAYS)
    assert pattern["standing_out"] == ["friday", "saturday"]
    assert days_line({"weekday_pattern": pattern, "by_weekday": peaked}) == (
        "Friday (7) and Saturday (6) stand out, with at least 1.5 × the mean of 4.0 a day "
        "(28 dated incidents)."
    )
    just_below = _days(monday=4, tuesday=4, wednesday=4, thursday=4, friday=5, saturday=4,
                       sunday=4)  # fmt: skip
    assert weekday_pattern(just_below, WEEKDAYS)["standing_out"] == []
    few = weekday_pattern(_days(friday=5, monday=1), WEEKDAYS)
    assert few["standing_out"] == []  # 6 dated: too few to name a day
    assert days_line({"weekday_pattern": few, "by_weekday": _days()}).startswith("Too few")


def test_periods_default_to_the_last_24_months_and_each_end_overrides() -> None:
    today = dt.date(2026, 12, 7)
    assert resolve_period(None, None, today) == (dt.date(2024, 12, 8), today)
    assert resolve_period(dt.date(2020, 1, 1), None, today) == (dt.date(2020, 1, 1), today)
    assert resolve_period(None, dt.date(2019, 12, 31), today) == (
        dt.date(2018, 1, 1), dt.date(2019, 12, 31))  # fmt: skip
    assert resolve_period(None, None, today, whole_archive=True) == (None, None)
    assert shift_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)
    assert shift_months(dt.date(2024, 12, 15), 1) == dt.date(2025, 1, 15)


def test_the_previous_period_has_the_same_number_of_days() -> None:
    since, until = dt.date(2024, 12, 8), dt.date(2026, 12, 7)
    before = previous_period(since, until)
    assert before == (dt.date(2022, 12, 9), dt.date(2024, 12, 7))
    assert (before[1] - before[0]) == (until - since)
    assert length_words(since, until) == "24 months"
    assert length_words(dt.date(2024, 1, 1), dt.date(2024, 1, 10)) == "10 days"


def test_the_kind_of_an_incident_comes_from_what_it_states() -> None:
    assert kind("boarded", "piracy-or-armed-robbery", "foiled-by-crew") == "actual-attack"
    assert kind("fired-upon", None, None) == "attempted-attack"
    assert kind("attempted-boarding", None, "attempted") == "attempted-attack"
    assert kind("suspicious-approach", None, None) == "suspicious-approach"
    assert kind(None, "suspicious-approach", None) == "suspicious-approach"
    assert kind(None, None, "successful-items-stolen-or-control-taken") == "actual-attack"
    assert kind(None, "piracy-or-armed-robbery", "foiled-by-crew") == "other"  # not guessed
    assert kind(None, "stowaways", None) == "other"


def _kinds(*types: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(incident_type=t, category=None, outcome=None) for t in types]


def test_the_trend_gives_counts_and_a_percentage_only_from_a_real_base() -> None:
    archive = {"first": "1993-01-02", "last": "2026-12-01"}
    since, until = dt.date(2024, 12, 8), dt.date(2026, 12, 7)
    now = _kinds(*["boarded"] * 9, "attempted-boarding", "suspicious-approach", "fired-upon")
    trend = trend_figures(since, until, now, _kinds(), archive, until)
    assert trend["all"] == {"period": 12, "previous": 0, "change": 12, "change_percent": None}
    assert trend["by_kind"]["attempted-attack"]["period"] == 2
    lines = trend_lines({"trend": trend})
    assert lines[0] == "12 in the last 24 months, 0 in the 24 months before (12 more)."
    assert "%" not in " ".join(lines)
    assert lines[1] == ("By kind: actual attacks 9 (0 before), attempted attacks 2 (0 before), "
                        "suspicious approaches 1 (0 before).")  # fmt: skip
    trend = trend_figures(since, until, now, _kinds(*["boarded"] * 16), archive, until)
    assert trend["all"]["change_percent"] == -25
    assert trend_lines({"trend": trend})[0].endswith("(4 fewer, -25 %).")
    few_before = trend_figures(since, until, now, _kinds(*["boarded"] * 3), archive, until)
    assert few_before["all"]["change_percent"] is None  # 3 is too small a base
    ended = trend_figures(since, until, [], [], {"first": "1993-01-02", "last": "2020-12-29"})
    assert trend_lines({"trend": ended})[0].startswith("0 from 2024-12-08 to 2026-12-07,")
    assert "dated after 2020-12-29" in trend_lines({"trend": ended})[1]


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
    assert figures["source_shares"]["confirmed_share"] == 0.667
    assert figures["source_shares"]["external_unverified"] == 1


def test_modus_operandi_counts_keep_unknowns_apart() -> None:
    rows = (
        _row(1, perpetrators_min=8, perpetrators_max=10),  # a range counts by its upper bound
        _row(2, perpetrators_min=12),  # "at least 12": the lower bound is all that is said
        _row(3, perpetrators_max=2),
        _row(4, perpetrators_min=0, perpetrators_max=0),
        _row(5),
    )
    assert perpetrator_numbers(rows) == {"0": 1, "1-2": 1, "3-5": 0, "6-10": 1, "11+": 1,
                                         "unknown": 1}  # fmt: skip


def test_what_helped_counts_the_crew_actions_of_failed_attempts() -> None:
    rows = (
        _row(1, outcome="foiled-by-crew"),
        _row(2, outcome="attempted"),
        _row(3, outcome="attempted"),  # failed, but says nothing of the crew
        _row(4, outcome="successful-items-stolen-or-control-taken"),
        _row(5),  # no outcome: in neither group
    )
    tags = {rows[0].id: {"actions_taken": ["alarm-raised", "fire-hoses"]},
            rows[1].id: {"actions_taken": ["alarm-raised"]},
            rows[3].id: {"actions_taken": ["alarm-raised"]},
            rows[4].id: {"actions_taken": ["citadel"]}}  # fmt: skip
    helped = compute(Selected(Selection(place="Lagos"), rows, tags, {}, {}))["what_helped"]
    assert helped["failed"] == {"incidents": 3, "incidents_stating": 2,
                                "counts": {"alarm-raised": 2, "fire-hoses": 1}}  # fmt: skip
    assert helped["successful"] == {"incidents": 1, "incidents_stating": 1,
                                    "counts": {"alarm-raised": 1}}  # fmt: skip


def test_the_text_brief_cannot_drive_the_terminal() -> None:
    hostile = "Chittagong\x1b]0;owned\x07\x1b[2J\u202e"
    rows = tuple(_row(n, place=hostile, local_date=dt.date(2024, 3, n), local_time="01:00")
                 for n in range(1, 7))  # fmt: skip
    figures = compute(Selected(Selection(place=hostile), rows, {}, {}, {hostile: 6}))
    text = render_text(figures)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    assert "Between 01:00 and 01:00 local time: holds 6 of 6" in text
    assert key_points(figures)[0].startswith("No trend")
