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

Standard library only: every package imports this, the air-gapped reviewer
tool included. Default_Ignorable_Code_Point is not in :mod:`unicodedata`, so
its ranges are written out below (DerivedCoreProperties.txt, Unicode 15; the
property is stable, and a unit test compares the table with ICU's ``[:DI:]``).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

#: Cc (C0 and C1 controls), Cf (format: bidi, zero-width), Cs (surrogates),
#: Co (private use), Cn (unassigned here, so perhaps a format character to a
#: newer reader), Zl and Zp (line and paragraph separators)
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

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


def default_ignorable(char: str) -> bool:
    """Whether ``char`` is a Default_Ignorable_Code_Point (renders as nothing)."""
    code = ord(char)
    at = bisect_right(_STARTS, code) - 1
    return at >= 0 and code <= DEFAULT_IGNORABLE[at][1]


def unsafe(char: str, allow: str = "") -> bool:
    """Whether ``char`` is one of the characters above, unless it is in ``allow``.

    Callers allow only newline and tab in multi-line text, and the joiners in
    stored text; nothing else is ever allowed.
    """
    if char in allow:
        return False
    return unicodedata.category(char) in UNSAFE_CATEGORIES or default_ignorable(char)


def unsafe_count(text: str, allow: str = "") -> int:
    """How many characters of ``text`` are :func:`unsafe`."""
    return sum(unsafe(char, allow) for char in text)
