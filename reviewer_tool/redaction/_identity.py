"""Tolerant matching of known identity values (vessel, company, numbers) inside free text.

Text and values are both *folded*: Unicode compatibility-decomposed, case-folded,
stripped of combining marks and of everything that is not a letter or a digit.
A name written in a script with spaces matches only as whole words, and a
separator in the text may fall inside a match only where the value has one
(or inside a number): otherwise ordinary text holds real ships' names, "in a"
is "Ina", "jumped overboard" holds "Dover", "alerted" holds "Alert" (measured
over the crime-at-sea narratives). A value of four or more folded characters
that holds a digit (numbers, call signs), an e-mail or web address, or a word
of a script written without spaces (Chinese, Japanese, Thai) matches anywhere,
and so does any value inside an address of the text
("ops@cosmicleadershipping.com"). So "MV  Cosmic-Leader", "mv cosmic leader",
"CosmicLeader" and "COSMIC LEADER" all meet, and so do "+65 6123 4567" and
"6561234567". A value is also sought as people rewrite it (:func:`_rewritten`):
"Ocean Star II" as "Ocean Star 2", "Saint" as "St", a company without its legal
form or by its leading words.

Each text is folded once per command (:func:`_prepare`) and all values' forms
are looked up together (:func:`_occurrences`): a report naming thousands of
numbers must not cost numbers times text length.

How a text is folded, and which other ways of writing a value (other scripts'
digits, confusable letters, look-alikes) fold alike, is in ``_folding.py``.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from reviewer_tool.redaction._folding import (
    Folded,
    Form,
    capital_i_as_l,
    fold,
    form_of,
    look_alike,
    spaceless,
)

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

#: words that say what a company does, not which one it is
_GENERIC_COMPANY_WORDS = frozenset(
    {"shipping", "management", "marine", "tankers", "navigation", "maritime", "lines",
     "services", "co", "company", "group", "holdings", "shipmanagement", "line"}
)  # fmt: skip
#: single words too common in company names to name one on their own
_COMMON_NAME_WORDS = frozenset(
    {"ocean", "oceanic", "pacific", "atlantic", "global", "international", "united",
     "general", "golden", "royal", "great", "world", "asian", "trans", "eastern",
     "western", "northern", "southern", "oriental", "national", "first", "south", "north",
     "china", "india", "euro", "seaways", "transport", "trading", "energy", "bulk"}
)  # fmt: skip
#: Roman numerals written after a ship's name ("Ocean Star II" is "Ocean Star 2")
_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x")
_SAINTS = {"saint": "st", "st": "saint", "sainte": "ste", "ste": "sainte"}
#: above this many forms of one length, occurrences are found in one pass
_FIND_EACH = 16
_ADDRESS = re.compile(r"[\w.+-]+@[\w.-]+|(?i:\bhttps?://|\bwww\.)[^\s<>\"'()\[\]]+")

_LABELLED_NUMBER = re.compile(r"^(?:imo|mmsi|tel|phone|fax|mobile)(?:no|nr|number)?(\d{7,15})$")


def _words(value: str) -> list[str]:
    """The value's words, case-folded and decomposed, punctuation dropped."""
    return [w for w in re.split(r"\W+|_", unicodedata.normalize("NFKD", value.casefold())) if w]


def _rewritten(value: str) -> set[str]:
    """Other ways people write the same name: numerals, saints, a company's short name."""
    words = _words(value)
    found = {value}
    if not words:
        return found
    last = words[-1]
    if last in _ROMAN:
        found.add(" ".join([*words[:-1], str(_ROMAN.index(last) + 1)]))  # "Star II", "Star 2"
    elif last.isdigit() and 1 <= int(last) <= len(_ROMAN):
        found.add(" ".join([*words[:-1], _ROMAN[int(last) - 1]]))
    for index, word in enumerate(words):
        other = _SAINTS.get(word)
        if other:
            found.add(" ".join([*words[:index], other, *words[index + 1 :]]))  # "St", "Saint"
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()  # "Acme Tankers GmbH" is often written "Acme Tankers"
        found.add(" ".join(words))
    if any(w in _GENERIC_COMPANY_WORDS for w in words):
        # "Cosmic Shipping Management Pte Ltd" is written "Cosmic Shipping": its leading
        # words, as long as what they hold beyond generic words still names it.
        for size in range(2, len(words)):
            if _distinctive(words[:size]):
                found.add(" ".join(words[:size]))
    return found


def company_word(word: str) -> bool:
    """Whether a case-folded ``word`` is a legal form or says what a company does."""
    return word in LEGAL_SUFFIXES or word in _GENERIC_COMPANY_WORDS


def _distinctive(words: list[str]) -> bool:
    """Whether ``words`` name one company, not "Ocean Shipping" or "Global Marine"."""
    core = [w for w in words if w not in _GENERIC_COMPANY_WORDS and w not in LEGAL_SUFFIXES]
    if len(core) >= 2:
        return True
    return len(core) == 1 and len(core[0]) >= 5 and core[0] not in _COMMON_NAME_WORDS


@lru_cache(maxsize=4096)
def _value_forms(value: str) -> dict[str, Form]:
    """The folded forms under which one identity value may appear, by folded text."""
    found: dict[str, Form] = {}

    def add(form: Form) -> None:
        if form.chars and form.chars not in found:
            found[form.chars] = form

    for written in sorted(_rewritten(value)):
        folded = fold(written)
        base = folded.chars
        add(form_of(folded))
        for prefix in VESSEL_PREFIXES:
            # "MV Cosmic Leader" may be written "Cosmic Leader"; the reverse is handled
            # when matching, by widening a match over a prefix that precedes it.
            n = len(prefix)
            if base.startswith(prefix) and len(base) > n and folded.gap_before[n]:
                add(form_of(folded, n))
        labelled = _LABELLED_NUMBER.match(base)
        if labelled:
            add(Form(labelled.group(1), frozenset()))  # "IMO 9074729" is also "9074729"
        if base.isdigit():
            if base.startswith("00") and len(base) > 6:
                add(Form(base[2:], frozenset()))  # "0065…" is "+65…"
            elif len(base) >= 8 and not base.startswith("0"):
                add(Form("00" + base, frozenset()))
            if len(base) >= 10:
                add(Form(base[-8:], frozenset()))  # "+65 6123 4567" written as "6123 4567"
    # Fewer than three letters ("PA", "UK", initials) would match ordinary words and
    # abbreviations in almost every narrative, so the hard check would refuse every
    # record and redaction would shred the text; digits never occur as words, so a
    # numeric identifier is kept whatever its length.
    return {c: f for c, f in found.items() if len(c) >= 3 or c.isdigit()}


def variants(value: str) -> set[str]:
    """The folded forms under which one identity value may appear in a narrative."""
    return set(_value_forms(value))


@dataclass(frozen=True)
class _Prepared:
    """One text folded once, with its look-alike projections and address runs."""

    folded: Folded
    alike: tuple[str, str]
    addresses: tuple[tuple[int, int], ...]


@lru_cache(maxsize=16)
def _prepare(text: str) -> _Prepared:
    """Fold ``text`` once per command: every field is checked against several lists."""
    folded = fold(text)
    alike = (look_alike(folded.chars), look_alike(fold(capital_i_as_l(text)).chars))
    addresses = tuple(m.span() for m in _ADDRESS.finditer(text))
    return _Prepared(folded, alike, addresses)


def spans(text: str, values: Iterable[str]) -> list[tuple[int, int]]:
    """Original-text spans where any of ``values`` occurs, unsorted and possibly overlapping."""
    return sorted({(start, end) for start, end, _ in tagged_spans(text, list(values))})


def tagged_spans(text: str, values: Sequence[str]) -> list[tuple[int, int, int]]:
    """(start, end, index into ``values``) of every occurrence, the text folded once."""
    prepared = _prepare(text)
    folded = prepared.folded
    exact: dict[str, list[tuple[Form, int, bool]]] = {}
    alike: dict[str, list[tuple[Form, int]]] = {}
    for index, value in enumerate(values):
        address = _ADDRESS.fullmatch(value.strip()) is not None
        forms = _value_forms(value)
        for form in forms.values():
            exact.setdefault(form.chars, []).append((form, index, address))
            if len(form.chars) >= SUBSTRING_MINIMUM:
                projected = Form(look_alike(form.chars), form.gaps)
                alike.setdefault(projected.chars, []).append((projected, index))
            if len(form.chars) >= REVERSED_MINIMUM:
                backwards = Form(
                    form.chars[::-1], frozenset(len(form.chars) - g for g in form.gaps)
                )
                if backwards.chars not in forms:
                    exact.setdefault(backwards.chars, []).append((backwards, -1 - index, False))
        for form in _value_forms(capital_i_as_l(value)).values():
            if len(form.chars) >= SUBSTRING_MINIMUM:
                projected = Form(look_alike(form.chars), form.gaps)
                alike.setdefault(projected.chars, []).append((projected, index))
    found: set[tuple[int, int, int]] = set()
    for start, end, chars in _occurrences(folded.chars, exact):
        for form, index, address in exact[chars]:
            if not _same_separators(folded, start, form):
                continue
            if index < 0:  # written backwards: only as whole words
                if folded.separated(start, end):
                    found.add((*_to_original(text, folded, start, end), -1 - index))
            elif (
                _anywhere(form, address)
                or _in_address(prepared, start, end)
                or (folded.starts_word(start) and folded.ends_word(end))
            ):
                found.add((*_to_original(text, folded, _widen(folded, start), end), index))
    for seen in prepared.alike:
        for start, end, chars in _occurrences(seen, alike):
            if not folded.separated(start, end):
                continue
            for form, index in alike[chars]:
                if _same_separators(folded, start, form):
                    found.add((*_to_original(text, folded, _widen(folded, start), end), index))
    return list(found)


def _same_separators(folded: Folded, start: int, form: Form) -> bool:
    """Whether every separator inside the match stands where the value has one, or
    inside a number: "jumped overboard" does not hold "Dover", nor "in a" "Ina"."""
    chars, gaps = folded.chars, folded.gap_before
    if not form.gaps and not form.chars.isalpha():
        return True  # a code written in one piece is spaced at will: "3E JH2", "9V-AB2"
    for offset in range(1, len(form.chars)):
        i = start + offset
        if (
            gaps[i]
            and offset not in form.gaps
            and not (chars[i - 1].isdigit() or chars[i].isdigit())
        ):
            return False
    return True


def _anywhere(form: Form, address: bool) -> bool:
    """Whether a value may match inside a longer word of the text.

    Numbers may (a ship's number glued to its label or to another number), so
    may e-mail addresses and web addresses, and words of scripts written without
    spaces; a name in a script written with spaces must be whole words, or
    "Alert" would be found in "alerted" and "Elsa" in "Bayelsa".
    """
    if len(form.chars) < SUBSTRING_MINIMUM:
        return False
    return address or any(c.isdigit() for c in form.chars) or any(map(spaceless, form.chars))


def _in_address(prepared: _Prepared, start: int, end: int) -> bool:
    """Whether folded ``[start:end]`` lies inside an e-mail or web address of the text,
    where names run together: "ops@cosmicleadershipping.com"."""
    first, last = prepared.folded.origin[start], prepared.folded.origin[end - 1]
    return any(a <= first and last < b for a, b in prepared.addresses)


def _occurrences(seen: str, forms: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """(start, end, form) of every occurrence of any of ``forms`` in ``seen``.

    Forms of one length are looked up together, one pass over the text, when
    there are many: a report naming thousands of numbers must not cost
    numbers times text length.
    """
    by_length: dict[int, list[str]] = {}
    for form in forms:
        by_length.setdefault(len(form), []).append(form)
    for length, group in by_length.items():
        if len(group) <= _FIND_EACH:
            for form in group:
                start = seen.find(form)
                while start != -1:
                    yield start, start + length, form
                    start = seen.find(form, start + 1)
            continue
        wanted = set(group)
        for start in range(len(seen) - length + 1):
            piece = seen[start : start + length]
            if piece in wanted:
                yield start, start + length, piece


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
