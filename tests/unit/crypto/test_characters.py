"""Issue 12, finding B6: which characters are unsafe must not depend on the Python.

The reviewer tool, the forwarding check and the shared database each judge a
text with crypto/characters.py, often on different machines. When "unassigned"
meant "unassigned in this interpreter's Unicode", a letter new in Unicode 15
passed a reviewer on Python 3.12 and was refused by a database on Python 3.11,
which refuses the whole batch.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from crypto.characters import UNSAFE_CATEGORIES, default_ignorable, unsafe
from crypto.unicode14 import UNICODE_VERSION, UNSAFE_RANGES

ROOT = Path(__file__).resolve().parents[3]

#: print, one per line, every code point characters.unsafe() calls unsafe while
#: ``unicodedata`` is Python's bundled Unicode 3.2 database: a real database of
#: another Unicode version, as another interpreter would have
_OTHER_UNICODE = """
import sys, unicodedata
sys.modules["unicodedata"] = unicodedata.ucd_3_2_0
from crypto.characters import unsafe
print("\\n".join(str(c) for c in range(0x110000) if unsafe(chr(c))))
"""


def test_letter_newer_than_the_interpreter_is_judged_alike_on_every_python() -> None:
    """A sender writes a letter one Unicode version knows and another does not."""
    here = [code for code in range(0x110000) if unsafe(chr(code))]
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_UNICODE],
        capture_output=True, cwd=ROOT, check=True, timeout=120, text=True,
    )  # fmt: skip
    there = [int(line) for line in done.stdout.split()]
    differ = sorted(set(here) ^ set(there))
    assert not differ, (len(differ), [f"U+{code:04X}" for code in differ[:10]])


def _unsafe_ranges() -> list[tuple[int, int]]:
    """The runs of unsafe categories in this interpreter's Unicode: on Python 3.11,
    crypto/unicode14.py's table (print it in that layout to generate it again)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) not in UNSAFE_CATEGORIES:
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


@pytest.mark.skipif(unicodedata.unidata_version != UNICODE_VERSION, reason="needs Python 3.11")
def test_the_fixed_judgement_is_unicode_14s() -> None:
    """The shipped table is what Python 3.11's own database (Unicode 14) says."""
    assert list(UNSAFE_RANGES) == _unsafe_ranges()
    for code in range(0x110000):
        char = chr(code)
        expected = unicodedata.category(char) in UNSAFE_CATEGORIES or default_ignorable(char)
        assert unsafe(char) == expected, hex(code)


def test_letters_after_unicode_14_are_unsafe_everywhere() -> None:
    """Cyrillic modifier letters came in Unicode 15: unassigned to Python 3.11."""
    assert unsafe("\U0001e030")
    assert not unsafe("a")
    assert not unsafe("\u0928")
