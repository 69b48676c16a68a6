"""Reading the number of perpetrators out of a free-text description.

IMB descriptions say "Three armed robbers boarded …", "six to eight
pirates", "a robber". The count is external, unverified data read by a
heuristic, so it is only taken when the words are unambiguous.
"""

from __future__ import annotations

import re

NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
_NUMBER = r"(\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_WHO = (
    r"(?:(?:armed|masked|unarmed|suspected|unauthorised|unauthorized|unknown|heavily armed)\s+)*"
    r"(?:robbers?|pirates?|perpetrators?|intruders?|thieves|thief|attackers?|persons?|"
    r"man|men|gunmen|hijackers?|boarders?)\b"
)
_RANGE = re.compile(rf"\b{_NUMBER}\s*(?:-|–|to|or)\s*{_NUMBER}\s+{_WHO}", re.IGNORECASE)
_SINGLE = re.compile(rf"\b{_NUMBER}\s+{_WHO}", re.IGNORECASE)
MAX_PLAUSIBLE = 100


def _first(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match that counts perpetrators, not the crew ("a crew of 21 persons")."""
    for match in pattern.finditer(text):
        if "crew" not in text[max(0, match.start() - 12) : match.start()].lower():
            return match
    return None


def _value(word: str) -> int:
    return int(word) if word.isdigit() else NUMBERS[word.lower()]


def count_perpetrators(text: str) -> tuple[int, int] | None:
    """(min, max) perpetrators from the first phrase that states them, or None."""
    found = _first(_RANGE, text)
    if found is not None:
        low, high = sorted((_value(found[1]), _value(found[2])))
    else:
        single = _first(_SINGLE, text)
        if single is None:
            return None
        low = high = _value(single[1])
    if not 1 <= low <= high <= MAX_PLAUSIBLE:
        return None
    return low, high
