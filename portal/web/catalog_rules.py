"""What a translation must keep of its msgid: placeholders and markup.

Shared by ``scripts/catalogs.py`` (extract, check, compile) and the wheel's
build step (``setup.py``), which loads this file by its path: it imports
nothing but the standard library, so a build needs neither Flask nor the
rest of the portal.

Templates trust a translation as HTML (Jinja's gettext marks it safe) and the
server and browser fill placeholders into it, so a translation may hold
exactly the placeholders and tags of its msgid: a lost ``%(name)s`` is a 500,
an extra tag is markup no reviewer of the code has seen.
"""

from __future__ import annotations

import re

#: both styles in both domains: the server also fills ``{label}`` templates that it
#: shares with the browser (portal/web/field_rules.py)
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]|\{(\w*)\}")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def placeholders(text: str) -> list[str]:
    """The placeholders of ``text`` (``%(name)s``, ``{name}``), sorted."""
    return sorted(match.group(0) for match in _PLACEHOLDER.finditer(text))


def markup(text: str) -> list[str]:
    """The HTML tags of ``text``, in order, and any stray ``<``, ``>`` or ``&``."""
    tags = _TAG.findall(text)
    rest = _TAG.sub("", text)
    return tags + [c for c in rest if c in "<>&"]


def faults(msgid: str, strings: tuple[str, ...]) -> list[str]:
    """Why the translations ``strings`` of ``msgid`` (its plural, for plurals) cannot ship.

    A plural form may leave out a placeholder (the form for exactly one need
    not say "1"), but may add none.
    """
    found = []
    want = placeholders(msgid)
    for string in strings:
        if markup(string) != markup(msgid):
            found.append(f"markup differs: {msgid!r} -> {string!r}")
        got = placeholders(string)
        if got != want and not (len(strings) > 1 and set(got) <= set(want)):
            found.append(f"placeholders differ: {msgid!r} -> {string!r}")
    return found
