"""How text and identity values are folded before they are compared (``_identity.py``).

Folding decomposes, case-folds, drops combining marks and keeps only letters
and digits, remembering where each came from. Other ways of writing the same
value are folded too, because a reporter's
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
  projection (:func:`look_alike`): with 0 and 1 as o and l, and with
  capital I as l as well, before case folding, since lower-case i is not
  confusable with l ("Thailand" must not meet "Halia"). Such a look-alike
  match must be whole words of four or more characters, between separators:
  inside words and beside digits, l for I and 1 matched ordinary text
  ("vessel managed" holds "lman", "04:45S - 011" reads "Sol I");
- characters that render as nothing (format characters, Hangul fillers,
  variation selectors: crypto/characters.py) are dropped without counting
  as a separator, so "Mary\u3164Ann" is "maryann".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from reviewer_tool.errors import ReviewerError

if TYPE_CHECKING:
    import icu

from crypto.characters import default_ignorable

#: first word of the Unicode name of characters of scripts written without spaces
_SPACELESS_SCRIPTS = frozenset(
    {"CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH", "THAI", "LAO", "KHMER", "MYANMAR",
     "TIBETAN", "JAVANESE", "BALINESE", "IDEOGRAPHIC", "YI"}
)  # fmt: skip


@dataclass(frozen=True)
class Folded:
    """A folded string and, per folded character, where it came from in the original."""

    chars: str
    origin: tuple[int, ...]
    gap_before: tuple[bool, ...]  # a separator stood between this character and the last

    def starts_word(self, i: int) -> bool:
        """Whether a match may begin at folded index ``i``."""
        return i == 0 or self.gap_before[i] or self._kinds_differ(i)

    def separated(self, i: int, j: int) -> bool:
        """Whether folded ``[i:j]`` has a separator (or an end of the text) on each side."""
        return (i == 0 or self.gap_before[i]) and (j == len(self.chars) or self.gap_before[j])

    def ends_word(self, j: int) -> bool:
        """Whether a match may end just before folded index ``j``."""
        return j == len(self.chars) or self.gap_before[j] or self._kinds_differ(j)

    def _kinds_differ(self, i: int) -> bool:
        """Whether a word boundary falls before folded ``i`` with no separator: between
        letters and digits, or next to a script written without spaces ("船Cosmic")."""
        before, after = self.chars[i - 1], self.chars[i]
        return before.isdigit() != after.isdigit() or spaceless(before) or spaceless(after)


@dataclass(frozen=True)
class Form:
    """One folded form of a value, and where the value had a separator (offsets)."""

    chars: str
    gaps: frozenset[int]


@cache
def _spoof_checker() -> icu.SpoofChecker:
    """ICU's UTS #39 checker. PyICU is the ``reviewer`` extra, not needed on a portal
    host; without it the check stops here rather than run without skeletons."""
    try:
        import icu  # only where the reviewer extra is installed
    except ImportError:
        raise ReviewerError(
            "the confusable check needs PyICU: pip install 'cso-portal[reviewer]'"
        ) from None
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
        # both tries start from the case-folded letter, so that a capital and its small
        # letter always fold alike (ICU's skeleton of Greek capital kappa is "K", of small
        # kappa the non-ASCII kra, of capital lambda "ʌ" and of small lambda itself)
        folded = part.casefold()
        lower = _spoof_checker().getSkeleton(0, folded)
        if not lower.isascii():
            lower = _spoof_checker().getSkeleton(0, folded.upper()).casefold()
        out.append(unicodedata.normalize("NFKD", lower.casefold()))
    return "".join(out)


def look_alike(folded: str) -> str:
    """``folded`` with look-alike digits merged into letters, one character for one."""
    return folded.translate(_LOOK_ALIKE)


def capital_i_as_l(text: str) -> str:
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


def form_of(folded: Folded, start: int = 0) -> Form:
    """``folded.chars[start:]`` with the places where the value had a separator."""
    chars = folded.chars[start:]
    gaps = frozenset(i - start for i in range(start + 1, len(folded.chars)) if folded.gap_before[i])
    return Form(chars, gaps)


@lru_cache(maxsize=4096)
def spaceless(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces between words."""
    return unicodedata.name(ch, "").split(" ", 1)[0] in _SPACELESS_SCRIPTS
