"""When incidents happen on the local clock and calendar: the clock window and the days.

Both figures answer a watch-keeping question ("when do we double the
rounds?") and both refuse to answer from too few incidents rather than
guess: a window drawn through three times, or a "busiest day" picked out
of six dated incidents, would look like knowledge and be noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: the share of known local times the clock window holds unless told otherwise
CLOCK_SHARE = 0.8
#: fewer known local times than this give no window at all
MIN_KNOWN_TIMES = 5
#: a day stands out with at least this many times the mean incidents per day ...
DAY_FACTOR = (3, 2)  # 1.5 as a fraction, so the comparison is exact
#: ... and only when at least this many incidents are dated (two a day on average)
MIN_DATED = 14
DAY = 24 * 60


def minutes(clock: str) -> int:
    """``"HH:MM"`` → minutes after midnight."""
    return int(clock[:2]) * 60 + int(clock[3:5])


def clock(minute: int) -> str:
    """Minutes after midnight → ``"HH:MM"``."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def clock_window(clocks: Sequence[str], share: float = CLOCK_SHARE) -> dict[str, Any]:
    """The tightest stretch of the 24-hour clock that holds at least ``share`` of ``clocks``.

    The clock is a circle, so a window may run past midnight (23:45 to
    04:15). With M known times, sorted, and k = ceil(share x M), every run of
    k consecutive times around the circle is a candidate; the shortest wins,
    and of equally short ones the one starting earliest after midnight.
    "holds" counts every time inside the window, which may be more than k
    when times repeat. Fewer than ``MIN_KNOWN_TIMES`` times give no window
    (``from`` and ``to`` are None), never a guess.
    """
    if not 0 < share <= 1:
        raise ValueError("the clock share must be above 0 and at most 1")
    known = sorted(minutes(c) for c in clocks)
    count = len(known)
    figure: dict[str, Any] = {"share": share, "known": count, "minimum": MIN_KNOWN_TIMES,
                              "needed": None, "holds": None, "from": None, "to": None,
                              "minutes": None}  # fmt: skip
    if count < MIN_KNOWN_TIMES:
        return figure
    # a tiny epsilon keeps 0.8 x 10 at 8, not 9, despite binary fractions
    needed = min(count, max(1, math.ceil(share * count - 1e-9)))
    best_start, best_span = 0, DAY
    for first in range(count):
        last = first + needed - 1
        end = known[last % count] + (DAY if last >= count else 0)
        span = end - known[first]
        if span < best_span:  # strictly shorter: ties keep the earlier start
            best_start, best_span = known[first], span
    holds = sum(1 for m in known if (m - best_start) % DAY <= best_span)
    return figure | {"needed": needed, "holds": holds, "from": clock(best_start),
                     "to": clock((best_start + best_span) % DAY),
                     "minutes": best_span}  # fmt: skip


def weekday_pattern(by_weekday: Mapping[str, int], days: Sequence[str]) -> dict[str, Any]:
    """Which local weekdays stand out, by a stated rule.

    A day stands out when it has at least 1.5 times the mean number of
    incidents per day (dated incidents / 7), and only when at least
    ``MIN_DATED`` incidents are dated; otherwise no day is named. The days
    that stand out are listed busiest first (ties in week order).
    """
    counts = {day: by_weekday.get(day, 0) for day in days}
    dated = sum(counts.values())
    numerator, denominator = DAY_FACTOR
    standing_out: list[str] = []
    if dated >= MIN_DATED:
        # count >= 1.5 x dated / 7, in integers
        standing_out = [d for d in days if counts[d] * len(days) * denominator >= dated * numerator]
        standing_out.sort(key=lambda d: -counts[d])
    return {
        "dated": dated,
        "mean": round(dated / len(days), 2),
        "factor": numerator / denominator,
        "minimum": MIN_DATED,
        "standing_out": standing_out,
    }
