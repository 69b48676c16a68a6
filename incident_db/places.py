"""Place names to place keys: the names that mean the same port or anchorage.

Reports name one place many ways: "Chittagong Anchorage, Bangladesh",
"Chittagong, Bangladesh", "Chittagong 'B' Anchorage", "Tg. Priok Roads",
"Berth No. 5, Callao Port, Peru". A brief for a place must count them all,
so every incident stores a *place key*: the name without its country, its
generic words (anchorage, roads, port, inner, outer …), sub-anchorage
letters and berth numbers, with common abbreviations spelled out. The brief
then lists the names it merged, so a reader can see what was counted.

A name that starts with a distance ("Around 20nm SW of Lagos") is not at
that place, and keeps a key of its own.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: words that say what kind of spot it is, not which place
GENERIC = frozenset(
    "anchorage anchorages anchoarage acnhorage anchor anch roads road roadstead port harbour "
    "harbor harbours outer inner off offshore area areas opl sts secure security quarantine "
    "tanker cargo lightening lighterage literage general purpose waiting the at near".split()
)
#: sub-anchorage designators ("Anchorage 'B'", "Alpha Anchorage", "No. 12")
DESIGNATORS = frozenset("a b c d e alpha bravo charlie delta echo no nos".split())
#: facilities inside a port: a part naming one is skipped for the next part
FACILITIES = frozenset("berth berths jetty wharf pier terminal buoy mooring dock quay".split())
#: spellings and abbreviations that mean the same word or name
ALIASES = {
    "tg": "tanjung",
    "tj": "tanjung",
    "tanjong": "tanjung",
    "vungtau": "vung tau",
    "dar es salam": "dar es salaam",
    "chattogram": "chittagong",
    "mui vung tau": "vung tau",  # mui: cape
}
#: names in which "port of" is part of the name
PORT_OF_NAMES = frozenset({"port of spain"})
_DISTANCE = re.compile(r"^\(?\s*(around |approx\w*\.? |about )?[0-9]")
_BRACKETS = re.compile(r"\([^)]*\)?")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")
# a full stop ends a part only after a word, not after "No." or "Tg."
_PARTS = re.compile(r",|;|(?<=[a-z]{4})\.\s", re.IGNORECASE)
_ABBREVIATED = re.compile(r"\b(tg|tj|th)\s*[.,]\s*", re.IGNORECASE)  # "Th." is a common typo


def _plain(text: str) -> str:
    """Lower case, accents and punctuation removed, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(_NON_WORD.sub(" ", ascii_text.replace("'", "")).split())


def _aliased(words: str) -> str:
    words = " ".join(ALIASES.get(w, w) for w in words.split())
    for variant, canonical in ALIASES.items():
        if " " in variant and variant in words:
            words = words.replace(variant, canonical)
    return words


def _core(part: str) -> str:
    """A part's distinctive words, or "" if it only says what kind of spot it is."""
    plain = _aliased(_plain(part))
    if plain in PORT_OF_NAMES:
        return plain
    words = plain.split()
    if words[:2] == ["port", "of"]:
        words = words[2:]
    elif len(words) > 1 and words[0] == "port":  # Port Harcourt, Port Klang, Port Said
        words = ["port", *(w for w in words[1:] if w not in GENERIC)]
    words = [w for w in words if w not in GENERIC or w == "port" == words[0]]
    while words and (words[-1] in DESIGNATORS or words[-1].isdigit()):
        words.pop()
    if words and words[0] == "no":  # "No. 2 Anchorage"
        words = [w for w in words[1:] if not w.isdigit()]
    return " ".join(w for w in words if w not in DESIGNATORS or len(words) == 1)


# a database holds few places under many incidents: computing a key once per name
# keeps ingest fast
@functools.lru_cache(maxsize=65536)
def place_key(name: str | None) -> str | None:
    """The key shared by every name of the same place; None for no name."""
    if name is None or not name.strip():
        return None
    if _DISTANCE.match(name.strip().lower()):
        return _plain(name) or None
    text = _ABBREVIATED.sub("tanjung ", _BRACKETS.sub(" ", name))
    for part in _PARTS.split(text):
        words = _plain(part).split()
        if not words or words[0] in FACILITIES or (len(words) > 1 and words[1] in FACILITIES):
            continue
        if any(w in FACILITIES for w in words) and len(words) <= 3:
            continue  # "Folawiyo Nispan Jetty": a berth, the port follows
        core = _core(part)
        if core:
            return core
    return _plain(name) or None
