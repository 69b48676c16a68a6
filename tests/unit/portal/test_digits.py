"""Digits in any script (portal/web/digits.py) and the vector file the browser shares.

The browser's digits.js is checked against the same file by tests/js/digits.test.mjs.
Digits of other scripts are what these tests are about: RUF001 (ambiguous
characters) is off for this file.
"""

# ruff: noqa: RUF001
from __future__ import annotations

import sys
import unicodedata

from portal.web.digits import ascii_digits, decimal_text, whole_number_text
from tests.conftest import load_vectors

VECTORS = load_vectors("digits.json")


def test_every_decimal_digit_reads_as_its_value() -> None:
    """Every Nd character of this Python's Unicode, as unicodedata.decimal gives it."""
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if unicodedata.category(char) == "Nd":
            assert ascii_digits(char) == str(unicodedata.decimal(char)), hex(point)
            assert ascii_digits(f"a{char}b") == f"a{unicodedata.decimal(char)}b"


def test_nothing_else_changes() -> None:
    """Every character that is not a decimal digit passes unchanged."""
    others = "".join(
        chr(p)
        for p in range(sys.maxunicode + 1)
        if not 0xD800 <= p <= 0xDFFF and unicodedata.category(chr(p)) != "Nd"
    )
    assert ascii_digits(others) == others
    for case in VECTORS["not_digits"]:
        assert ascii_digits(case["input"]) == case["input"], case["name"]


def test_the_vector_file_is_what_the_generator_makes() -> None:
    """tests/vectors/digits.json lists exactly this Python's decimal digits."""
    assert VECTORS["schema"] == "cso-digit-vectors/v1"
    listed = {
        run["first"] + i: int(value)
        for run in VECTORS["digits"]
        for i, value in enumerate(run["values"])
    }
    expected = {
        p: unicodedata.decimal(chr(p))
        for p in range(sys.maxunicode + 1)
        if unicodedata.category(chr(p)) == "Nd"
    }
    if VECTORS["unicode_version"] == unicodedata.unidata_version:
        assert listed == expected
    else:  # another Python's Unicode: what both know must agree
        assert {p: v for p, v in listed.items() if p in expected} == {
            p: v for p, v in expected.items() if p in listed
        }


def test_scripts_reporters_use() -> None:
    assert ascii_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"  # Arabic-Indic
    assert ascii_digits("۰۱۲۳۴۵۶۷۸۹") == "0123456789"  # Persian, Urdu
    assert ascii_digits("०१२३४५६७८९") == "0123456789"  # Devanagari
    assert ascii_digits("၀၁၂၃၄၅၆၇၈၉") == "0123456789"  # Myanmar
    assert ascii_digits("০১২৩৪৫৬৭৮৯") == "0123456789"  # Bengali
    assert ascii_digits("๐๑๒๓๔๕๖๗๘๙") == "0123456789"  # Thai
    assert ascii_digits("０１２３４５６７８９") == "0123456789"  # full-width
    assert ascii_digits("²½①Ⅻ零") == "²½①Ⅻ零"  # numbers, but no decimal digits


def test_whole_numbers_and_decimals() -> None:
    assert whole_number_text("١٬٢٣٤") == "1234"
    assert whole_number_text("١٢٬٣٤") == "12\u066c34"  # not in threes: left to be refused
    assert whole_number_text("1,234") == "1,234"
    assert decimal_text("٢٢٫٢٧") == "22.27"
    assert decimal_text("22,27") == "22.27"
    assert decimal_text("22°16,2'N, 091°48,5'E") == "22°16.2'N, 091°48.5'E"
    assert decimal_text("1,2,3") == "1.2.3"
    assert decimal_text("22, 27") == "22, 27"


def test_the_browser_lists_the_zero_of_every_digit_run_of_this_unicode() -> None:
    """digits.js must read exactly the digits this server reads (finding of issue 15's review)."""
    import re
    import sys
    from pathlib import Path

    source = (Path(__file__).resolve().parents[3] / "portal/web/static/js/digits.js").read_text()
    listed = source[source.index("const ZEROS = [") : source.index("];", source.index("ZEROS"))]
    zeros = [int(text, 16) for text in re.findall(r"0x([0-9a-f]+)", listed)]
    expected = [
        point
        for point in range(sys.maxunicode + 1)
        if unicodedata.category(chr(point)) == "Nd" and unicodedata.decimal(chr(point)) == 0
    ]
    assert zeros == expected
