"""The language a reporter used, as the report document records it.

Since issue 15 a cso-report/v1 document may carry ``"language"``: the BCP 47
code of the page the reporter filled in (portal/web/report.py), so that the
reviewer knows which language the narrative is in. Older reports have no
such member. The sender chooses the value like every other, so it is shown
only when it is a well-formed short code (:data:`_CODE`); anything else, of
any type, is "invalid". A bad language never refuses the report: the
narrative matters more than the label on it.

The member is for the reviewer alone: forwarding (reviewer_tool/forwarding.py)
builds each incident record field by field and does not carry it.
"""

from __future__ import annotations

import re
from typing import Any

#: the languages the portal ships, by code, with their English names
SHIPPED = {
    "en": "English",
    "tl": "Filipino/Tagalog",
    "zh-Hans": "Chinese, Simplified",
    "id": "Indonesian",
    "ru": "Russian",
    "uk": "Ukrainian",
    "hi": "Hindi",
    "vi": "Vietnamese",
    "my": "Burmese",
    "ar": "Arabic",
    "fr": "French",
    "es": "Spanish",
}
_BY_LOWER = {code.lower(): code for code in SHIPPED}
#: a primary language subtag and optional subtags: ASCII letters, digits and
#: hyphens only, so nothing a terminal obeys can pass (``fullmatch`` takes the
#: whole string: unlike ``$``, it lets no trailing newline through)
_CODE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
MAX_CODE = 16
#: what the summary holds for a value that is not a code (never a code itself:
#: a primary subtag has at most three letters)
INVALID = "invalid"
NOT_RECORDED = "not recorded"


def language_of(document: dict[str, Any]) -> str | None:
    """The document's language code (canonical case for a shipped one), :data:`INVALID`
    for a value that is not a well-formed code, or None when it records none."""
    if "language" not in document:
        return None
    value = document["language"]
    if not isinstance(value, str) or len(value) > MAX_CODE or not _CODE.fullmatch(value):
        return INVALID
    return _BY_LOWER.get(value.lower(), value)


def describe(code: str | None) -> str:
    """How a code from :func:`language_of` is shown: ``ar (Arabic)``, an unshipped
    code alone, ``invalid``, or ``not recorded``."""
    if code is None:
        return NOT_RECORDED
    if code == INVALID or not _CODE.fullmatch(code) or len(code) > MAX_CODE:
        return INVALID  # a workspace value is checked again: it was the sender's once
    name = SHIPPED.get(code)
    return f"{code} ({name})" if name else code
