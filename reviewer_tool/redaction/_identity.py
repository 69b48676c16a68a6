"""Tolerant matching of known identity values (vessel, company, numbers) inside free text.

Text and values are both *folded*: Unicode compatibility-decomposed, case-folded,
stripped of combining marks and of everything that is not a letter or a digit.
A value of four or more folded characters matches wherever its folded form
occurs in the folded text, even inside a longer word: scripts written without
spaces (Chinese, Japanese, Thai) and names run together in an address
("ops@cosmicleadershipping.com") must not slip past the forwarding check.
Shorter values must start and end on a word boundary of the original text.
So "MV  Cosmic-Leader", "mv cosmic leader" and "COSMIC LEADER" all meet, and
so do "+65 6123 4567" and "6561234567".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Prefixes written before ship names (motor vessel, motor tanker, motor ship, motor
# yacht, steam ship, fishing vessel); "M/V", "M.V." and "Mv" all fold to "mv".
VESSEL_PREFIXES = ("mv", "mt", "ms", "my", "ss", "fv")

#: legal-form words a company name may be written with or without
LEGAL_SUFFIXES = frozenset(
    {"ltd", "limited", "pte", "plc", "llc", "inc", "incorporated", "corp", "corporation", "co",
     "company", "gmbh", "ag", "kg", "sa", "sas", "srl", "spa", "bv", "nv", "as", "asa", "ab",
     "oy", "kk", "sdn", "bhd", "pvt", "pty", "lp", "llp", "sarl", "se"}
)  # fmt: skip
#: below this many folded characters a value must stand as a word of its own
SUBSTRING_MINIMUM = 4

_LABELLED_NUMBER = re.compile(r"^(?:imo|mmsi|tel|phone|fax|mobile)(?:no|nr|number)?(\d{7,15})$")


@dataclass(frozen=True)
class Folded:
    """A folded string and, per folded character, where it came from in the original."""

    chars: str
    origin: tuple[int, ...]
    gap_before: tuple[bool, ...]  # a separator stood between this character and the last

    def starts_word(self, i: int) -> bool:
        """Whether a match may begin at folded index ``i``."""
        if i == 0 or self.gap_before[i]:
            return True
        return self.chars[i - 1].isdigit() != self.chars[i].isdigit()

    def ends_word(self, j: int) -> bool:
        """Whether a match may end just before folded index ``j``."""
        if j == len(self.chars) or self.gap_before[j]:
            return True
        return self.chars[j - 1].isdigit() != self.chars[j].isdigit()


def fold(text: str) -> Folded:
    """Fold ``text`` for matching, remembering each character's origin."""
    chars: list[str] = []
    origin: list[int] = []
    gaps: list[bool] = []
    pending_gap = False
    for index, ch in enumerate(text):
        for part in unicodedata.normalize("NFKD", ch.casefold()):
            if unicodedata.combining(part):
                continue  # an accent is not a separator: "Leão" is one word
            if not part.isalnum():
                pending_gap = True
                continue
            chars.append(part)
            origin.append(index)
            gaps.append(pending_gap)
            pending_gap = False
    return Folded("".join(chars), tuple(origin), tuple(gaps))


def variants(value: str) -> set[str]:
    """The folded forms under which one identity value may appear in a narrative."""
    folded = fold(value)
    base = folded.chars
    found = {base}
    for prefix in VESSEL_PREFIXES:
        # "MV Cosmic Leader" may be written "Cosmic Leader"; the reverse is handled
        # when matching, by widening a match over a prefix that precedes it.
        if base.startswith(prefix) and len(base) > len(prefix) and folded.gap_before[len(prefix)]:
            found.add(base[len(prefix) :])
    words = [w for w in re.split(r"\W+|_", unicodedata.normalize("NFKD", value.casefold())) if w]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()  # "Acme Tankers GmbH" is often written "Acme Tankers"
        found.add(fold(" ".join(words)).chars)
    labelled = _LABELLED_NUMBER.match(base)
    if labelled:
        found.add(labelled.group(1))  # "IMO 9074729" is also written "9074729"
    if base.isdigit():
        if base.startswith("00") and len(base) > 6:
            found.add(base[2:])  # "0065…" is "+65…"
        elif len(base) >= 8 and not base.startswith("0"):
            found.add("00" + base)
        if len(base) >= 10:
            found.add(base[-8:])  # "+65 6123 4567" written locally as "6123 4567"
    # Fewer than three letters ("PA", "UK", initials) would match ordinary words and
    # abbreviations in almost every narrative, so the hard check would refuse every
    # record and redaction would shred the text; digits never occur as words, so a
    # numeric identifier is kept whatever its length.
    return {form for form in found if form and (len(form) >= 3 or form.isdigit())}


def spans(text: str, values: Iterable[str]) -> list[tuple[int, int]]:
    """Original-text spans where any of ``values`` occurs, unsorted and possibly overlapping."""
    folded = fold(text)
    forms: set[str] = set()
    for value in values:
        forms |= variants(value)
    found: list[tuple[int, int]] = []
    for form in forms:
        start = folded.chars.find(form)
        while start != -1:
            end = start + len(form)
            if len(form) >= SUBSTRING_MINIMUM or (
                folded.starts_word(start) and folded.ends_word(end)
            ):
                found.append(_to_original(text, folded, _widen(folded, start), end))
            start = folded.chars.find(form, start + 1)
    return found


def _widen(folded: Folded, start: int) -> int:
    """Move a match's start back over a vessel prefix written before it."""
    if start == 0 or not folded.gap_before[start]:
        return start
    for prefix in VESSEL_PREFIXES:
        begin = start - len(prefix)
        if begin >= 0 and folded.chars[begin:start] == prefix and folded.starts_word(begin):
            return begin
    return start


def _to_original(text: str, folded: Folded, start: int, end: int) -> tuple[int, int]:
    """Map a folded span back to the original text, keeping trailing accents."""
    first = folded.origin[start]
    if first > 0 and text[first - 1] == "+" and folded.chars[start].isdigit():
        first -= 1  # "+65 6123 4567" whole, not "+[redacted]"
    last = folded.origin[end - 1] + 1
    while last < len(text) and unicodedata.combining(text[last]):
        last += 1
    return first, last
