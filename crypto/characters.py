"""The characters no text passed between the parties may carry: one definition for all.

A report's text was chosen by an anonymous sender. Some characters in it act
rather than read: a terminal obeys C0 and C1 controls; bidi overrides and
isolates make text display other than it is stored; zero-width characters,
Hangul fillers and variation selectors (Unicode's Default_Ignorable_Code_Point
set) render as nothing, so a name can hide in plain sight; U+0085, U+2028 and
U+2029 end a line for ``str.splitlines`` and for JavaScript, and so break a
JSON Lines reader. The reviewer's terminal filter, the redaction step, the
forwarding check and the shared database's record validation all use
:func:`unsafe`, so that what one of them lets through the next cannot refuse.

Every party must judge a text alike, on whatever Python it runs: Python 3.12
knows letters that 3.11 calls unassigned, and a record the reviewer's check
passed must not be refused by the shared database's. So the categories are
not asked of the running interpreter's :mod:`unicodedata` but read from a
table fixed at Unicode 14 (crypto/unicode14.py, the version of Python 3.11,
the oldest supported): a letter newer than Unicode 14 is unassigned, and so
unsafe, everywhere.

Standard library only: every package imports this, the air-gapped reviewer
tool included. Default_Ignorable_Code_Point is not in :mod:`unicodedata`, so
its ranges are written out below (DerivedCoreProperties.txt, Unicode 15; the
property is stable, and a unit test compares the table with ICU's ``[:DI:]``).
"""

from __future__ import annotations

from bisect import bisect_right

from crypto.unicode14 import UNSAFE_RANGES

#: Cc (C0 and C1 controls), Cf (format: bidi, zero-width), Cs (surrogates),
#: Co (private use), Cn (unassigned in Unicode 14, so perhaps a format
#: character to a newer reader), Zl and Zp (line and paragraph separators);
#: crypto/unicode14.py lists their code points
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_UNSAFE_STARTS = tuple(start for start, _ in UNSAFE_RANGES)

#: Default_Ignorable_Code_Point, as inclusive ranges in code point order
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_STARTS = tuple(start for start, _ in DEFAULT_IGNORABLE)

#: zero-width non-joiner and joiner shape Persian and Indic words; record text
#: may keep them (they are default-ignorable, so matching drops them)
JOINERS = "\u200c\u200d"


def _within(code: int, starts: tuple[int, ...], ranges: tuple[tuple[int, int], ...]) -> bool:
    at = bisect_right(starts, code) - 1
    return at >= 0 and code <= ranges[at][1]


def default_ignorable(char: str) -> bool:
    """Whether ``char`` is a Default_Ignorable_Code_Point (renders as nothing)."""
    return _within(ord(char), _STARTS, DEFAULT_IGNORABLE)


def unsafe_category(char: str) -> bool:
    """Whether ``char``'s category in Unicode 14 is one of :data:`UNSAFE_CATEGORIES`."""
    return _within(ord(char), _UNSAFE_STARTS, UNSAFE_RANGES)


def unsafe(char: str, allow: str = "") -> bool:
    """Whether ``char`` is one of the characters above, unless it is in ``allow``.

    Callers allow only newline and tab in multi-line text, and the joiners in
    stored text; nothing else is ever allowed.
    """
    if char in allow:
        return False
    return unsafe_category(char) or default_ignorable(char)
