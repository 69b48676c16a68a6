"""Synthetic incidents for bench/incidents.py: realistic shape, made up content.

Incidents cluster at 20,000 anchorages whose popularity follows a
flattened Zipf law (busy ones with over ten thousand incidents, a long
tail), spread over a few miles around each, at night-heavy local hours,
over 25 years, with the multi-valued fields a reviewer fills in.
Everything comes from one seeded generator, so runs are comparable.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

from incident_db.taxonomy import (
    ACTIONS_TAKEN,
    BOARDING_METHODS,
    BOARDING_POINTS,
    GRADES,
    INCIDENT_TYPES,
    OUTCOMES,
    STOLEN,
    VESSEL_STATUSES,
    VESSEL_TYPES,
    WEAPONS,
)

PLACES = 20_000
SYLLABLES = ("ka", "lo", "mi", "ra", "tu", "be", "sa", "no", "di", "ve", "po", "gu", "la",
             "ne", "si", "to", "ma", "ri", "ba", "ko")  # fmt: skip
START = dt.date(2000, 1, 1)
DAYS = 25 * 365
#: local hours weighted toward the night, when anchorage robberies happen
HOUR_WEIGHTS = [6, 6, 7, 7, 6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6]
NARRATIVE = (
    "Duty crew on routine rounds noticed robbers near the forecastle store of the anchored "
    "ship. Alarm raised and crew mustered; the robbers escaped in a small boat with ship's "
    "stores. Port control informed and a patrol boat dispatched."
)


class Generator:
    """Makes records; ``place(i)`` gives the centre of anchorage ``i``."""

    def __init__(self, seed: int = 7) -> None:
        self.random = random.Random(seed)  # noqa: S311 - made-up data, reproducible on purpose
        self.places = [
            (round(self.random.uniform(-40, 40), 2), round(self.random.uniform(-179, 179), 2))
            for _ in range(PLACES)
        ]
        # cumulative weights once: random.choices would add them up on every call
        self.cumulative = list(itertools.accumulate(1 / (rank + 10) for rank in range(PLACES)))
        self.hours = list(itertools.accumulate(HOUR_WEIGHTS))
        self.values = {
            name: list(vocabulary)
            for name, vocabulary in (
                ("incident_type", INCIDENT_TYPES), ("vessel_type", VESSEL_TYPES),
                ("vessel_status", VESSEL_STATUSES), ("weapons", WEAPONS),
                ("boarding_method", BOARDING_METHODS), ("boarding_points", BOARDING_POINTS),
                ("stolen", STOLEN), ("actions_taken", ACTIONS_TAKEN), ("outcome", OUTCOMES),
            )
        }  # fmt: skip

    def place_name(self, index: int) -> str:
        """A made-up name for anchorage ``index``, in one of two spellings of one place."""
        word, number = "", index
        for _ in range(4):  # four syllables from twenty: 160,000 distinct names
            number, syllable = divmod(number, len(SYLLABLES))
            word += SYLLABLES[syllable]
        word = word.title()
        return f"{word} Anchorage" if index % 3 else f"{word} Roads, Somewhere"

    def _some(self, name: str, most: int) -> list[str]:
        return sorted(self.random.sample(self.values[name], self.random.randint(0, most)))

    def record(self) -> dict[str, Any]:
        """One cso-incident/v1 record."""
        r = self.random
        index = r.choices(range(PLACES), cum_weights=self.cumulative)[0]
        lat, lon = self.places[index]
        hour = r.choices(range(24), cum_weights=self.hours)[0]
        day = START + dt.timedelta(days=r.randrange(DAYS))
        offset = max(-12, min(14, round(lon / 15)))
        low = r.randint(1, 8)
        obj: dict[str, Any] = {
            "schema": "cso-incident/v1",
            "id": f"{r.getrandbits(128):032x}",
            "category": "piracy-or-armed-robbery",
            "incident_type": r.choice(self.values["incident_type"]),
            "occurred_local": f"{day.isoformat()}T{hour:02d}:{r.randrange(60):02d}",
            "utc_offset": f"{'+' if offset >= 0 else '-'}{abs(offset):02d}:00",
            "position": {"lat": round(lat + r.uniform(-0.1, 0.1), 2),
                         "lon": round(lon + r.uniform(-0.1, 0.1), 2), "decimals": 2},
            "place": self.place_name(index),
            "vessel_type": r.choice(self.values["vessel_type"]),
            "vessel_status": r.choice(self.values["vessel_status"]),
            "perpetrators_min": low,
            "perpetrators_max": low + r.randint(0, 4),
            "weapons": self._some("weapons", 2),
            "boarding_method": r.choice(self.values["boarding_method"]),
            "boarding_points": self._some("boarding_points", 2),
            "stolen": self._some("stolen", 2),
            "actions_taken": self._some("actions_taken", 3),
            "outcome": r.choice(self.values["outcome"]),
            "narrative": NARRATIVE,
            "verification": {"status": "confirmed", "grade": r.choice(GRADES)},
        }  # fmt: skip
        if r.random() < 0.3:
            obj["crew"] = {"threatened": r.randint(1, 3), "tied_up": r.randint(0, 2)}
        for name in ("weapons", "boarding_points", "stolen", "actions_taken"):
            if not obj[name]:
                del obj[name]
        return obj
