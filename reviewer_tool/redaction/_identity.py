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

Other ways of writing the same value are folded too, because a reporter's
keyboard, a copy and paste or a sender who wants a name kept produces them:

- every Unicode digit becomes its ASCII digit (Arabic-Indic, Persian,
  Devanagari, Thai, Myanmar, circled and dingbat digits: all that
  ``unicodedata.digit`` knows), so "٩٠٧٤٧٢٩" and "❾⓿❼❹❼❷❾" are "9074729";
- every non-ASCII letter becomes its UTS #39 confusable skeleton (ICU's
  data, through PyICU), so "Mary Ann" written with Cyrillic M, a, y and A
  (U+041C, U+0430, U+0443, U+0410) is "Mary Ann"; a lower-case skeleton is
  preferred where it is ASCII, so that Cyrillic I (U+0406) meets "i" and
  Cyrillic M (U+041C) still meets "m". Latin small capitals, which ICU does
  not map, become their letter ("ᴍᴀʀʏ ᴀɴɴ" is "mary ann");
- the ASCII look-alikes ICU's confusables list (zero for O; one, capital I
  and lower-case L for one another) match each other: "C0SMIC LEADER",
  "lvan" and "9Vl234" meet "Cosmic Leader", "Ivan" and "9V1234". Text and
  values are compared twice more, each time through the same one-for-one
  projection (:func:`_look_alike`): with 0 and 1 as o and l, and with
  capital I as l as well, before case folding, since lower-case i is not
  confusable with l ("Thailand" must not meet "Halia"). Such a look-alike
  match must be whole words of four or more characters, between separators:
  inside words and beside digits, l for I and 1 matched ordinary text
  ("vessel managed" holds "lman", "04:45S - 011" reads "Sol I");
- characters that render as nothing (format characters, Hangul fillers,
  variation selectors: crypto/characters.py) are dropped without counting
  as a separator, so "Mary\u3164Ann" is "maryann".

A value written backwards displays forwards only inside a bidi override,
and a record may not hold one (redact drops every format character, forward
refuses any left); without one, "nnA yraM" reads backwards. Reversed forms
are still looked for, as a margin for a reviewer who kept such a run, but
only as whole words of :data:`REVERSED_MINIMUM` or more folded characters:
inside a word or shorter, a name backwards is an ordinary word ("drone"
holds "Nord", "rats" is "Star", "evil" is "Live"), while whole words that
read as other words backwards are few beyond six letters ("stressed").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

import icu

from crypto.characters import default_ignorable

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
#: a value is looked for backwards only as whole words of this many folded characters
REVERSED_MINIMUM = 7

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

    def separated(self, i: int, j: int) -> bool:
        """Whether folded ``[i:j]`` has a separator (or an end of the text) on each side."""
        return (i == 0 or self.gap_before[i]) and (j == len(self.chars) or self.gap_before[j])

    def ends_word(self, j: int) -> bool:
        """Whether a match may end just before folded index ``j``."""
        if j == len(self.chars) or self.gap_before[j]:
            return True
        return self.chars[j - 1].isdigit() != self.chars[j].isdigit()


@cache
def _spoof_checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


_SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])")
#: ASCII digits ICU's confusables data merges with letters (after folding)
_LOOK_ALIKE = str.maketrans({"0": "o", "1": "l"})


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """One character's folded form, before combining marks and separators are dropped."""
    digit = unicodedata.digit(ch, None)
    if digit is not None:
        return str(digit)
    if unicodedata.category(ch) == "Cf" or default_ignorable(ch):
        return ""
    out = []
    for part in unicodedata.normalize("NFKD", ch):
        if part.isascii() or unicodedata.combining(part):
            out.append(part.casefold())
            continue
        small = _SMALL_CAPITAL.fullmatch(unicodedata.name(part, ""))
        if small:
            out.append(small.group(1).casefold())
            continue
        lower = _spoof_checker().getSkeleton(0, part.casefold())
        if not lower.isascii():
            lower = _spoof_checker().getSkeleton(0, part).casefold()
        out.append(unicodedata.normalize("NFKD", lower.casefold()))
    return "".join(out)


def _look_alike(folded: str) -> str:
    """``folded`` with look-alike digits merged into letters, one character for one."""
    return folded.translate(_LOOK_ALIKE)


def _capital_i_as_l(text: str) -> str:
    """``text`` with capital I written as l, one character for one (see above)."""
    return text.replace("I", "l")


def fold(text: str) -> Folded:
    """Fold ``text`` for matching, remembering each character's origin."""
    chars: list[str] = []
    origin: list[int] = []
    gaps: list[bool] = []
    pending_gap = False
    for index, ch in enumerate(text):
        for part in _fold_char(ch):
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
    exact: set[str] = set()
    capitals: set[str] = set()
    for value in values:
        exact |= variants(value)
        capitals |= {_look_alike(form) for form in variants(_capital_i_as_l(value))}
    backwards = {form[::-1] for form in exact if len(form) >= REVERSED_MINIMUM} - exact
    alike = {_look_alike(form) for form in exact} | capitals
    alike = {form for form in alike if len(form) >= SUBSTRING_MINIMUM}
    found: set[tuple[int, int]] = set()
    for start, end, form in _occurrences(folded.chars, exact | backwards):
        anywhere = len(form) >= SUBSTRING_MINIMUM and form not in backwards
        if anywhere or (folded.starts_word(start) and folded.ends_word(end)):
            found.add(_to_original(text, folded, _widen(folded, start), end))
    for seen in (_look_alike(folded.chars), _look_alike(fold(_capital_i_as_l(text)).chars)):
        for start, end, _ in _occurrences(seen, alike):
            if folded.separated(start, end):
                found.add(_to_original(text, folded, _widen(folded, start), end))
    return list(found)


def _occurrences(seen: str, forms: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """(start, end, form) of every occurrence of any of ``forms`` in ``seen``."""
    for form in forms:
        start = seen.find(form)
        while start != -1:
            yield start, start + len(form), form
            start = seen.find(form, start + 1)


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
