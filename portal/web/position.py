"""Positions as seafarers write them: decimal degrees, or degrees and decimal minutes.

The browser (``portal/web/static/js/position.js``) reads the same grammar; both
must pass ``tests/vectors/positions.json``, so change the two together.

One coordinate, :func:`parse_coordinate` (spaces trimmed, letters in either case):

* decimal degrees, ``-?D{1,3}(.d{1,6})?``, optionally followed by a degree
  sign (``°`` or ``º``), optionally with a hemisphere letter before or after
  the number (and then no minus sign): ``-22.27``, ``22.27°``, ``22.27 S``,
  ``S22.27``;
* degrees and decimal minutes, ``D{1,3}`` then a degree sign or a space,
  then minutes ``M{1,2}(.m{1,4})?`` with an optional minute sign (the
  apostrophe, U+2032 PRIME or U+2019 RIGHT SINGLE QUOTATION MARK, which
  phones put in for an apostrophe), and a hemisphere letter after or
  before, which this form requires: ``22°16.2'N``, ``22 16.2N``,
  ``N 22°16.2'``. Minutes are below 60.

Latitude takes N or S, longitude E or W (S and W are negative); the other
axis's letter is an error. A latitude lies within ±90, a longitude within
±180. Values are rounded to six decimals (about 11 cm), and zero is never
negative. "Spaces" are the space, tab, no-break space (U+00A0), thin space
(U+2009) and narrow no-break space (U+202F).

Digits may be of any script (``portal/web/digits.py``: Arabic-Indic, full-width...),
and a decimal point may be written as the Arabic decimal separator (U+066B)
or as a comma between two digits (``22,27N``, ``22°16,2'N``): the text is read
in ASCII first, and the grammar above applies to that. A comma with a space
after it, or next to a letter, is never a decimal comma; and a coordinate with
a decimal comma must carry its hemisphere letter or a degree sign, since a bare
``12,45`` may as well be 12 N 45 E typed into one box.

A whole position typed into one field, :func:`parse_position`: the latitude
and then the longitude, each with its hemisphere letter, separated by spaces
and at most one ``,``, ``;``, ``/`` or Arabic comma (U+060C). Digits are read
in ASCII first, and then the decimal commas (comma between two digits) of each
part once it is split off. The text must hold exactly one N or S
and exactly one E or W, N/S first. If the latitude's letter comes after its
number, the latitude ends with that letter; if it comes first, the longitude
must start with its own letter, and the latitude ends before it. (``N22 16.2
091 48.5E`` has no such boundary and is refused rather than guessed.)
"""

from __future__ import annotations

import re

from portal.web.digits import ARABIC_DECIMAL, ascii_digits, decimal_text

AXES = {"latitude": ("NS", 90), "longitude": ("EW", 180)}
SPACES = " \t\u00a0\u2009\u202f"
_TRIM = SPACES + "\r\n"
_DIGITS = "0123456789"
_S = f"[{SPACES}]"
_DEGREE_SIGN = "[\u00b0\u00ba]"  # degree sign, and the ordinal sign some keyboards offer
#: a comma between two digits, and what makes it a decimal comma (see parse_coordinate)
_DECIMAL_COMMA_IN = re.compile(r"[0-9],[0-9]")
_MARKED = re.compile(r"[NSEWnsew\u00b0\u00ba]")
_MINUTE_SIGN = "['\u2032\u2019]"
_DECIMAL = rf"(?P<sign>-)?(?P<dd>[0-9]{{1,3}}(?:\.[0-9]{{1,6}})?){_S}*{_DEGREE_SIGN}?"
_DECIMAL_MINUTES = (
    rf"(?P<deg>[0-9]{{1,3}})(?:{_S}*{_DEGREE_SIGN}{_S}*|{_S}+)"
    rf"(?P<min>[0-9]{{1,2}}(?:\.[0-9]{{1,4}})?){_S}*{_MINUTE_SIGN}?"
)
_LETTER = "(?P<letter>[NSEWnsew])"
#: every accepted shape of one coordinate; the letter is checked against the axis after
_FORMS = tuple(
    re.compile(pattern)
    for pattern in (
        _DECIMAL,
        rf"{_DECIMAL}{_S}*{_LETTER}",
        rf"{_LETTER}{_S}*{_DECIMAL}",
        rf"{_DECIMAL_MINUTES}{_S}*{_LETTER}",
        rf"{_LETTER}{_S}*{_DECIMAL_MINUTES}",
    )
)
_GAP_AFTER = re.compile(rf"{_S}*[,;/\u060c]?{_S}*")
_GAP_BEFORE = re.compile(rf"{_S}*[,;/\u060c]?{_S}*$")


class PositionError(ValueError):
    """The text is not a coordinate (or position) this grammar reads."""


def parse_coordinate(text: str, axis: str) -> float:
    """The coordinate in ``text`` for ``axis`` ("latitude" or "longitude"), in degrees."""
    letters, limit = AXES[axis]
    if _DECIMAL_COMMA_IN.search(ascii_digits(text)) and not _MARKED.search(text):
        # "12,45" could be 12.45 degrees, or 12 N 45 E typed into one box: refused,
        # not guessed; with a hemisphere letter or a degree sign it is one coordinate
        raise PositionError("a decimal comma needs a hemisphere letter or a degree sign")
    text = decimal_text(text).strip(_TRIM)
    for form in _FORMS:
        match = form.fullmatch(text)
        if match is not None:
            break
    else:
        raise PositionError("not a coordinate")
    parts = match.groupdict()
    letter = (parts.get("letter") or "").upper()
    if letter and letter not in letters:
        raise PositionError("hemisphere letter of the other axis")
    if letter and parts.get("sign"):
        raise PositionError("both a minus sign and a hemisphere letter")
    if parts.get("dd") is not None:
        value = float(parts["dd"])
    else:
        minutes = float(parts["min"])
        if minutes >= 60:
            raise PositionError("minutes must be below 60")
        value = int(parts["deg"]) + minutes / 60
    if value > limit:
        raise PositionError("out of range")
    negative = parts.get("sign") == "-" or letter in ("S", "W")
    value = round(-value if negative else value, 6)
    return value + 0.0  # never -0.0


def parse_position(text: str) -> tuple[float, float]:
    """(latitude, longitude) from a whole position typed as one text; see the module text."""
    text = ascii_digits(text).replace(ARABIC_DECIMAL, ".").strip(_TRIM)
    north_south = [i for i, char in enumerate(text) if char in "NSns"]
    east_west = [i for i, char in enumerate(text) if char in "EWew"]
    if len(north_south) != 1 or len(east_west) != 1 or north_south[0] > east_west[0]:
        raise PositionError("not a whole position")
    i, j = north_south[0], east_west[0]
    if any(char in _DIGITS for char in text[:i]):  # the latitude's letter follows its number
        latitude = text[: i + 1]
        rest = text[i + 1 :]
        longitude = rest[_GAP_AFTER.match(rest).end() :]  # type: ignore[union-attr]
    elif any(char in _DIGITS for char in text[j + 1 :]):  # both letters lead their numbers
        head = text[:j]
        latitude = head[: _GAP_BEFORE.search(head).start()]  # type: ignore[union-attr]
        longitude = text[j:]
    else:
        raise PositionError("no boundary between latitude and longitude")
    return parse_coordinate(latitude, "latitude"), parse_coordinate(longitude, "longitude")
