"""Find identifiers of ships, companies and people in incident narratives, and redact them.

Kinds: ``imo`` (IMO ship number), ``imo_company`` (IMO company/owner number, only
when labelled as a company's), ``mmsi``, ``call_sign`` (only when labelled),
``email``, ``url``, ``phone`` (E.164, Inmarsat, local forms), ``identity`` (values
the caller knows from the report's identity section) and ``person``. Person names
are found only after a title or rank (Capt., Master, C/O, AB, Mr, …): names on their
own, in lower case or in scripts without capitals are NOT found, because no
well-kept named-entity model installs offline from PyPI. Rules and check digits follow
../shared/DOMAIN.md, "Identifiers that reveal a ship, company or person".
Dates, times, positions, speeds, counts and years are never flagged: every numeric
rule needs a label, a ``+``/``00``/trunk-``0`` prefix, or 7+ contiguous digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reviewer_tool.redaction import _identity, _persons

# When findings overlap, the most specific kind names the merged span.
_PRIORITY = {"identity": 3, "imo_company": 2, "person": 0}
_SPLIT_VALUE = re.compile(r"[\n;]+")  # one identity field may hold several values
#: a person's name written on its own in a contact field: two to four capitalised words
_BARE_NAME = re.compile(r"\s*([^\W\d_][\w'\u2019.-]*(?:\s+[^\W\d_][\w'\u2019.-]*){1,3})\s*")
#: below this many letters a surname alone is an ordinary word too often ("Lee", "Khan")
SURNAME_MINIMUM = 5


@dataclass(frozen=True)
class Finding:
    """One identifier found in a text: ``text[start:end]`` of a kind, with a confidence."""

    kind: str
    start: int
    end: int
    text: str
    confidence: float
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object; ``note`` only when there is one."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "confidence": self.confidence,
        }
        if self.note:
            out["note"] = self.note
        return out


def _digits(text: str) -> list[int]:
    """The decimal digits of ``text`` (any script), in order."""
    return [unicodedata.decimal(ch) for ch in text if unicodedata.decimal(ch, None) is not None]


def imo_check_digit_ok(seven_digits: str) -> bool:
    """Whether a 7-digit IMO ship number passes its check digit (weights 7..2, mod 10)."""
    d = _digits(seven_digits)
    if len(d) != 7 or len(seven_digits) != 7:
        return False
    return sum(n * w for n, w in zip(d, range(7, 1, -1), strict=False)) % 10 == d[6]


def imo_company_check_ok(seven_digits: str) -> bool:
    """Whether a 7-digit IMO company number passes its check (weights 8,6,4,2,9,7, mod 11)."""
    d = _digits(seven_digits)
    if len(d) != 7 or len(seven_digits) != 7:
        return False
    total = sum(n * w for n, w in zip(d, (8, 6, 4, 2, 9, 7), strict=False))
    return (11 - total % 11) % 10 == d[6]


def mmsi_plausible(nine_digits: str) -> bool:
    """Whether nine digits carry a maritime identification digit where an MMSI puts one."""
    d = "".join(str(n) for n in _digits(nine_digits))
    if len(d) != 9:
        return False
    if d.startswith(("970", "972", "974")):
        return True  # AIS-SART, MOB and EPIRB-AIS carry no MID

    def mid(at: int) -> bool:
        return 201 <= int(d[at : at + 3]) <= 775

    if d.startswith("111"):
        return mid(3)
    if d.startswith(("00", "98", "99")):
        return mid(2)
    if d.startswith(("0", "8")):
        return mid(1)
    return mid(0)


# A number stands alone: no digit, decimal point or thousands separator touches it.
_ALONE_BEFORE = r"(?<![\d+])(?<!\d[.,:/])"
_ALONE_AFTER = r"(?!\d)(?![.,:/]\d)"
_NUMBER_LABEL = r"(?:[\s.:#-]*(?i:no|nr|num|number)\b\.?)?[\s.:#-]*"

_IMO_LABELLED = re.compile(r"(?<!\w)(?i:imo)" + _NUMBER_LABEL + r"(\d{7})" + _ALONE_AFTER)
_IMO_COMPANY = re.compile(
    r"(?i:\b(?:company|owner|operator|manager|doc\s+holder)(?:['\u2019]s)?\s+(?:imo\b\s*)?)"
    + _NUMBER_LABEL
    + r"(\d{7})"
    + _ALONE_AFTER
)
_SEVEN = re.compile(_ALONE_BEFORE + r"\d{7}" + _ALONE_AFTER)
_MMSI_LABELLED = re.compile(
    r"(?<!\w)(?i:mmsi)" + _NUMBER_LABEL + r"(\d{3}[ -]?\d{3}[ -]?\d{3})" + _ALONE_AFTER
)
_NINE = re.compile(_ALONE_BEFORE + r"\d{9}" + _ALONE_AFTER)
_CALL_SIGN = re.compile(
    r"(?i:\b(?:call\s*-?\s*sign|c/s)\b\.?(?:\s+(?:is|was|of))?)"
    r"[\s:#.-]*[\"'\u201c\u2018]?([A-Z0-9]{3,7})\b"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_URL = re.compile(r"(?i:\bhttps?://|\bwww\.)[^\s<>\"'()\[\]]+")
_PHONE_SEP = r"(?:[ .\-]|\s?\(0\)\s?)"
# A phone number has at most 15 digits (E.164), so at most 15 groups: an unbounded
# "+1 1 1 1 …" would make one match, and its trimming, as long as the text.
_PHONE_INTL = re.compile(
    r"(?:(?<![\w+])\+|(?<![\w.,:+])00)\s?[1-9]\d{0,14}(?:"
    + _PHONE_SEP
    + r"\(?\d{1,15}\)?\d{0,15}){0,14}"
)
_PHONE_LOCAL = re.compile(
    r"(?<![\w+.,:/-])(?:\(0\d{1,4}\)\s?|0\d{1,4}[ -])\d{3,4}(?:[ -]\d{3,4}){1,2}" + _ALONE_AFTER
    + r"|(?<![\w+.,:/-])0\d{9,11}" + _ALONE_AFTER
)  # fmt: skip
_PHONE_LOCAL_ANYWHERE = re.compile(f"(?=({_PHONE_LOCAL.pattern}))")
_PHONE_LABELLED = re.compile(
    r"(?i:\b(?:tel|telephone|phone|ph|mobile|mob|cell|fax|whatsapp|hp)\b\.?)"
    + _NUMBER_LABEL
    + r"(\+?\(?\d[\d() .\-]{5,40}\d)"
)
_DECIMAL = re.compile(r"[+-]?\d{1,3}\.\d+")  # "+1.234567" is a coordinate, not a phone


def _find(kind: str, start: int, end: int, text: str, confidence: float, note: str = "") -> Finding:
    """A finding over ``text[start:end]``."""
    return Finding(kind, start, end, text[start:end], confidence, note)


def _numbers(text: str) -> Iterator[Finding]:
    """IMO, IMO company and MMSI numbers."""
    for m in _IMO_COMPANY.finditer(text):
        ok = imo_company_check_ok(m.group(1))
        note = "" if ok else "check digit fails"
        yield _find("imo_company", *m.span(1), text, 0.95 if ok else 0.8, note)
    for m in _IMO_LABELLED.finditer(text):
        ok = imo_check_digit_ok(m.group(1))
        yield _find("imo", *m.span(1), text, 0.99 if ok else 0.8, "" if ok else "check digit fails")
    for m in _SEVEN.finditer(text):
        # Seven contiguous digits are an identifier of some kind in any narrative.
        ok = imo_check_digit_ok(m.group(0))
        note = "no IMO label" + ("" if ok else "; check digit fails")
        yield _find("imo", *m.span(), text, 0.7 if ok else 0.5, note)
    for m in _MMSI_LABELLED.finditer(text):
        ok = mmsi_plausible(m.group(1))
        yield _find("mmsi", *m.span(1), text, 0.99 if ok else 0.85, "" if ok else "no valid MID")
    for m in _NINE.finditer(text):
        if mmsi_plausible(m.group(0)):
            yield _find("mmsi", *m.span(), text, 0.7, "no MMSI label")


def _phone_digits(candidate: str) -> int:
    """How many digits a phone candidate holds."""
    return sum(ch.isdigit() for ch in candidate)


def _trim_phone(text: str, start: int, end: int, most: int = 15) -> int:
    """Shorten a phone match to at most ``most`` digits and balanced brackets; return the end."""
    # A number written just before a time ("+65 6123 4567 2235 UTC") swallows it; the
    # last groups go, in one pass: the match ends at the last separator before which
    # the digits still fit (or, if none, at the first separator).
    digits, fits, first = 0, None, None
    for at in range(start, end):
        ch = text[at]
        if ch in " .-(" and at > start:
            first = at if first is None else first
            if digits <= most:
                fits = at
        digits += ch.isdigit()
    if digits > most:
        end = fits if fits is not None else first if first is not None else end
    span = text[start:end].rstrip(" .-(")
    if span.endswith(")") and span.count(")") > span.count("("):
        span = span[:-1]
    return start + len(span)


def _phones(text: str) -> Iterator[Finding]:
    """International (incl. Inmarsat), local and labelled phone numbers."""
    for m in _PHONE_INTL.finditer(text):
        inmarsat = re.match(r"(?:\+|00)\s?870", m.group(0)) is not None
        exit_code = 2 if m.group(0).startswith("00") else 0  # "00" stands for "+"
        end = _trim_phone(text, m.start(), m.end(), (12 if inmarsat else 15) + exit_code)
        candidate = text[m.start() : end]
        if _phone_digits(candidate) < 7 or _DECIMAL.fullmatch(candidate):
            continue
        if inmarsat:
            yield _find("phone", m.start(), end, text, 0.95, "Inmarsat")
        else:
            yield _find("phone", m.start(), end, text, 0.9)
    # Local forms are tried at every position (a lookahead match does not consume), so
    # two numbers written side by side are both found and merged rather than one
    # swallowing the other's first digits.
    for m in _PHONE_LOCAL_ANYWHERE.finditer(text):
        start = m.start(1)
        end = _trim_phone(text, start, m.end(1), 12)
        if 9 <= _phone_digits(text[start:end]) <= 12:
            yield _find("phone", start, end, text, 0.75, "local form")
    for m in _PHONE_LABELLED.finditer(text):
        end = _trim_phone(text, m.start(1), m.end(1))
        if 7 <= _phone_digits(text[m.start(1) : end]) <= 15:
            yield _find("phone", m.start(1), end, text, 0.9)


def _generic(text: str) -> list[Finding]:
    """Every finding that does not depend on the caller's identity values."""
    found = [*_numbers(text), *_phones(text)]
    for m in _CALL_SIGN.finditer(text):
        sign = m.group(1)
        if any(c.isdigit() for c in sign) and any(c.isalpha() for c in sign):
            found.append(_find("call_sign", *m.span(1), text, 0.95))
    for m in _EMAIL.finditer(text):
        found.append(_find("email", *m.span(), text, 0.99))
    for m in _URL.finditer(text):
        end = m.start() + len(m.group(0).rstrip(".,;:!?"))
        found.append(_find("url", m.start(), end, text, 0.95))
    for start, end in _persons.person_spans(text):
        found.append(_find("person", start, end, text, 0.7, "name after a title or rank"))
    return found


def _resolve(text: str, findings: Iterable[Finding]) -> list[Finding]:
    """Merge overlapping findings into one per cluster, named by the most specific kind."""
    clusters: list[list[Finding]] = []
    reach = -1
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.end <= f.start:
            continue
        if clusters and f.start < reach:
            clusters[-1].append(f)
            reach = max(reach, f.end)
        else:
            clusters.append([f])
            reach = f.end
    merged = []
    for cluster in clusters:
        best = max(cluster, key=lambda f: (_PRIORITY.get(f.kind, 1), f.confidence, f.end - f.start))
        start = min(f.start for f in cluster)
        end = max(f.end for f in cluster)
        merged.append(_find(best.kind, start, end, text, best.confidence, best.note))
    return merged


def _expand(identity_values: Iterable[str]) -> list[str]:
    """Identity values plus the numbers, addresses and names written inside them."""
    out: list[str] = []
    for value in identity_values:
        for part in _SPLIT_VALUE.split(value):
            if part.strip():
                out.append(part)
                # A contact field "Capt. Ann Lee, +65 6123 4567" must also match the
                # phone number or the name where either is written on its own.
                generic = _generic(part)
                out.extend(f.text for f in generic)
                names = [f.text for f in generic if f.kind == "person"]
                if "," in part:
                    names += [m.group(1) for p in part.split(",") if (m := _bare_name(p))]
                out.extend(names)
                out.extend(_surnames(names))
    return out


def _bare_name(part: str) -> re.Match[str] | None:
    """``part`` if it is a person's name alone ("Sean O'Brien" in "Sean O'Brien, +65 …")."""
    match = _BARE_NAME.fullmatch(part)
    if match is None:
        return None
    words = match.group(1).split()
    if not all(w[0].isupper() for w in words) or any(_not_a_name(w) for w in words):
        return None
    return match


def _not_a_name(word: str) -> bool:
    """A rank, title or company word ("Tankers" in "Acme Tankers, Inc.") names nobody."""
    bare = word.strip(".,").casefold()
    return _persons.not_a_name(word) or _identity.company_word(bare)


def _surnames(names: Iterable[str]) -> list[str]:
    """The last word of each person's name, when long enough to stand alone as a value:
    a narrative names "O'Brien" (or "OBrien") as often as "Sean O'Brien"."""
    out = []
    for name in names:
        last = name.split()[-1] if len(name.split()) > 1 else ""
        letters = [c for c in last if c.isalpha()]
        if len(letters) >= SURNAME_MINIMUM and not _not_a_name(last):
            out.append(last)
    return out


def identity_values_in(text: str, identity_values: Iterable[str]) -> list[Finding]:
    """Where ``text`` still contains one of the caller's identity values (the hard check)."""
    spans = _identity.spans(text, _expand(identity_values))
    return _resolve(text, (_find("identity", s, e, text, 1.0) for s, e in spans))


def known_values_in(text: str, known: Iterable[tuple[str, str]]) -> list[Finding]:
    """Where ``text`` holds a (kind, value) found elsewhere, such as an IMO number
    labelled once and written again without its label; named by its kind."""
    pairs = list(known)
    values = [value for _, value in pairs]
    return [
        _find(pairs[index][0], start, end, text, 0.9, "found elsewhere in the report")
        for start, end, index in sorted(set(_identity.tagged_spans(text, values)))
    ]


def detect_identifiers(
    text: str, identity_values: Iterable[str] = (), known: Iterable[tuple[str, str]] = ()
) -> list[Finding]:
    """All identifiers in ``text``, sorted by start, overlaps merged."""
    return _resolve(
        text,
        [
            *_generic(text),
            *identity_values_in(text, identity_values),
            *known_values_in(text, known),
        ],
    )


def redact_text(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each finding's span replaced by ``[redacted: KIND]``."""
    for f in findings:
        if not 0 <= f.start <= f.end <= len(text):
            raise ValueError("finding lies outside the text")
    out = []
    pos = 0
    for f in _resolve(text, findings):
        out.append(text[pos : f.start])
        out.append(f"[redacted: {f.kind}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
