"""Person names that follow a title or shipboard rank ("Capt. Juan dela Cruz", "AB Santos").

No well-kept named-entity model installs offline from the package registry (spaCy's
English models are published on GitHub, not on PyPI), so this finds only names that
a title or rank introduces. It does not find names written on their own ("Juan
reported…"), names in lower case, or names in scripts without capital letters.
"""

from __future__ import annotations

import re

# Abbreviated titles may carry a full stop that does not end the sentence.
_ABBREVIATED = frozenset({"capt", "mr", "mrs", "ms", "dr", "cdr", "lt", "sgt", "insp"})

_TITLE = re.compile(
    r"(?<![\w/])(?:"
    # Short titles only as written in names: "MRS Terminal" is a place.
    r"C/O|C/E|[234]/O|[234]/E|AB|OS|OOW|Capt|CAPT|Mr|Mrs|Ms|Dr|Cdr|Lt|Sgt|Insp"
    r"|[Bb]osun|BOSUN|Boatswain|Cadet|Oiler|Fitter|Cook|COOK|Pumpman|Seaman"
    # Senior ranks are often written in lower case ("the master Juan Cruz"); crew
    # trades are ordinary words in lower case ("a cook", "capitan cook Cameroon").
    r"|(?i:captain|master|(?:chief|second|third|fourth)\s+(?:officer|mate|engineer))"
    r")(?![\w/])"
)
_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_][\w'\u2019-]*)(\.?)")
_PARTICLES = frozenset(
    {"de", "dela", "del", "dos", "da", "van", "von", "der", "bin", "binti", "al", "el", "la"}
)
_MAX_WORDS = 4

# Capitalised words that follow a rank in incident narratives but are not names:
# sentence openers, ranks, crew and authority words, calendar and compass words.
_NOT_NAMES = frozenset(
    """
    a about after all also an and another as at both but by during each every for from
    he her his however i immediately in into it its later meanwhile no none nothing of on
    once or our she some soon that the their then there these they this those to upon we
    when whilst while who with
    ab able agent agents alarm anchor anchorage authorities authority barge boat boats
    bosun bridge cabin cadet captain chief coast company cook crew crews deck duty engine
    engineer engineers fitter guard incident local manager mariner master mate navy naval
    officer officers oiler ordinary owner owners pirates pirate police port position posn
    pumpman robber robbers room rounds seaman second security ship ships skiff suspects
    team third fourth first tanker tug vessel watch
    call email fax imo mmsi phone tel
    ais cso dpa gmdss imb isc mdat mrcc mschoa oow os pa prc rcc recaap ssas uk ukmto
    us utc lt gmt vhf vts vtis
    monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december
    north south east west northern southern eastern western
    """.split()
)


def person_spans(text: str) -> list[tuple[int, int]]:
    """Spans of names introduced by a title or rank; the title itself is not included."""
    found: list[tuple[int, int]] = []
    for title in _TITLE.finditer(text):
        pos = title.end()
        if text.startswith(".", pos):
            if title.group(0).casefold() not in _ABBREVIATED:
                continue  # "…informed the Master. Alarm raised" ends a sentence
            pos += 1
        span = _name_after(text, pos)
        if span is not None:
            found.append(span)
    return found


def _name_after(text: str, pos: int) -> tuple[int, int] | None:
    """The run of name-like words starting right after ``pos``, if any."""
    start: int | None = None
    name_end = cursor = pos
    words = 0
    while words < _MAX_WORDS:
        match = _NEXT_WORD.match(text, cursor)
        if match is None:
            break
        word, stop = match.group(1), match.group(2)
        bare = re.sub(r"['\u2019]s$", "", word)
        if start is not None and not stop and bare.casefold() in _PARTICLES:
            cursor = match.end(1)  # "dela" counts only if a name follows it
            continue
        if not _looks_like_name(bare, initial=bool(stop)):
            break
        if start is None:
            start = match.start(1)
        words += 1
        name_end = cursor = match.start(1) + len(bare)
        if stop and len(bare) > 1:
            break  # "Smith." ends the sentence
        if stop:
            name_end = cursor = cursor + 1  # keep the initial's full stop: "J."
    return None if start is None else (start, name_end)


def not_a_name(word: str) -> bool:
    """Whether ``word`` is a rank, title, calendar or crew word rather than part of a name."""
    bare = re.sub(r"\W+$", "", word).casefold()
    return bare in _NOT_NAMES or _TITLE.fullmatch(word.rstrip(".")) is not None


def _looks_like_name(word: str, *, initial: bool) -> bool:
    """A capitalised word that is not a known non-name."""
    if not word or not word[0].isupper() or word.casefold() in _NOT_NAMES:
        return False
    if len(word) == 1:
        return initial
    return not any(ch.isdigit() for ch in word)
