"""Digits in any script, read as ASCII before a number, date or position is checked.

A reporter types numbers with the keyboard of their own language: Arabic-Indic
(U+0660 to U+0669), Persian (U+06F0...), Devanagari (U+0966...), Myanmar
(U+1040...), Bengali, Thai, full-width (U+FF10...) and so on. Every Unicode
decimal digit (category Nd) is read as the ASCII digit of the same value, by
:func:`unicodedata.decimal`. The browser does the same in
``portal/web/static/js/digits.js``; ``tests/vectors/digits.json`` (written by
``tests/vectors/generate_digits.py``) holds every Nd character of this
Python's Unicode and its value, and both sides are checked against it.

Only values that are numbers are read this way: receipts, counts, local times,
UTC offsets and positions. Free text (the narrative, names, places) is never
touched: it reaches the reviewers exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata

#: U+066B ARABIC DECIMAL SEPARATOR, read as "."
ARABIC_DECIMAL = "\u066b"
#: U+066C ARABIC THOUSANDS SEPARATOR, dropped from a whole number written in groups
ARABIC_THOUSANDS = "\u066c"
_GROUPED = re.compile(rf"[0-9]{{1,3}}(?:{ARABIC_THOUSANDS}[0-9]{{3}})+")
#: a comma between two digits is a decimal comma ("22,27", "16,2'")
_DECIMAL_COMMA = re.compile(r"([0-9]),(?=[0-9])")


def ascii_digits(text: str) -> str:
    """``text`` with each decimal digit of any script replaced by its ASCII digit.

    Everything else is left as it is, character for character.
    """
    if text.isascii():
        return text
    return "".join(_ascii_digit(char) for char in text)


def _ascii_digit(char: str) -> str:
    value = unicodedata.decimal(char, None)  # set for exactly the Nd characters
    return char if value is None else str(value)


def whole_number_text(text: str) -> str:
    """A typed whole number in ASCII digits: "1\u066c234" in Arabic-Indic digits becomes "1234".

    Arabic thousands separators are dropped only where they group the digits
    in threes; anywhere else they stay, and the number is then refused.
    """
    text = ascii_digits(text)
    if _GROUPED.fullmatch(text):
        return text.replace(ARABIC_THOUSANDS, "")
    return text


def decimal_text(text: str) -> str:
    """A typed decimal number (a coordinate) in ASCII: digits, and "." for the
    Arabic decimal separator or a decimal comma between two digits."""
    text = ascii_digits(text).replace(ARABIC_DECIMAL, ".")
    return _DECIMAL_COMMA.sub(r"\1.", text)
