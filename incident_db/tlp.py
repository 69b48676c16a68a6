"""The Traffic Light Protocol 2.0 (FIRST): the sharing limit every incident carries.

Levels, weakest limit first: CLEAR < GREEN < AMBER < AMBER+STRICT < RED.
The database stores the lower-case slug (``"amber+strict"``); people see the
label (``"TLP:AMBER+STRICT"``), untranslated, in the standard colours.

Who may receive what (``allows``):

* a partner's *clearance* is the highest level it may receive; it receives
  an incident only if the incident's level is at or below it;
* RED never leaves the service: no clearance admits it (``PARTNER_LEVELS``
  stops at AMBER+STRICT), and no export, feed or download carries it;
* AMBER+STRICT may be shared only inside the receiving organisation, so a
  partner is given AMBER+STRICT clearance only when its feed reaches that
  one organisation's own people (``incident-db partners add --clearance``).

Defaults by source (``default_for``): an incident a reviewer confirmed from
an anonymous report starts AMBER (it may be shared with members' own
organisations and their clients on a need-to-know basis); a row of a public
feed (the crime-at-sea dataset, the IMB's public reports) starts CLEAR, as
it is already public. Editors change a level with a reason, kept in the
incident's history and the audit log.

The STIX 2.1 marking definitions are the fixed objects OASIS published for
TLP 2.0 (``extension-definition--60a3c5c5-…``); their ids are never made up
here, they are copied from the published definition.
"""

from __future__ import annotations

from typing import Any

#: every level, weakest limit first
LEVELS = ("clear", "green", "amber", "amber+strict", "red")
#: the levels a partner's clearance may take: RED never leaves the service
PARTNER_LEVELS = LEVELS[:-1]
#: the highest level any export, feed or download may carry
EXPORT_MAX = "amber+strict"
RANK = {level: rank for rank, level in enumerate(LEVELS)}

#: defaults by where an incident came from (``Incident.origin``)
DEFAULTS = {"reviewer": "amber", "external": "clear"}

#: the label people see, never translated
LABELS = {level: "TLP:" + level.upper() for level in LEVELS}

#: FIRST's colours: the label's text colour, always on black (RGB hex)
COLOURS = {
    "clear": "#FFFFFF",
    "green": "#33FF00",
    "amber": "#FFC000",
    "amber+strict": "#FFC000",
    "red": "#FF2B2B",
}
BACKGROUND = "#000000"

#: the OASIS TLP 2.0 extension for STIX 2.1 marking definitions
STIX_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
#: the fixed marking-definition ids OASIS published, one per level
STIX_MARKINGS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
#: when OASIS created them (the published objects' ``created``)
STIX_CREATED = "2022-10-01T00:00:00.000Z"

#: the MISP taxonomy tag of each level (misp-taxonomies ``tlp``)
MISP_TAGS = {level: "tlp:" + level for level in LEVELS}


class UnknownLevelError(ValueError):
    """A TLP level that is not one of ``LEVELS``."""


def parse(text: str) -> str:
    """The level slug for ``text``: ``amber``, ``TLP:AMBER``, ``Amber+Strict``, …

    Raises :class:`UnknownLevelError` (with the accepted spellings) for anything else.
    """
    slug = text.strip().lower()
    if slug.startswith("tlp:"):
        slug = slug[4:]
    slug = slug.replace("_", "+").replace(" ", "+")
    if slug == "white":  # TLP 1.0's name for CLEAR
        slug = "clear"
    if slug not in RANK:
        raise UnknownLevelError(
            "unknown TLP level; use one of " + ", ".join(LABELS[level] for level in LEVELS)
        )
    return slug


def allows(clearance: str, level: str) -> bool:
    """True when a holder of ``clearance`` may receive an item marked ``level``.

    RED is never allowed to leave: ``allows(x, "red")`` is False for every
    clearance, ``"red"`` included.
    """
    if level == "red" or clearance not in RANK or level not in RANK:
        return False
    return RANK[level] <= RANK[clearance]


def check_clearance(clearance: str) -> None:
    """Refuse (:class:`UnknownLevelError`) anything but a partner clearance slug: never RED."""
    if clearance not in PARTNER_LEVELS:
        raise UnknownLevelError(
            "unknown clearance; use one of " + ", ".join(LABELS[level] for level in PARTNER_LEVELS)
        )


def allowed_levels(clearance: str) -> tuple[str, ...]:
    """Every level a holder of ``clearance`` may receive, weakest first (never RED)."""
    return tuple(level for level in LEVELS if allows(clearance, level))


def strictest(*levels: str) -> str:
    """The strictest of ``levels`` (a link between two incidents takes the stricter)."""
    return max(levels, key=RANK.__getitem__)


def default_for(origin: str) -> str:
    """The level an incident starts with, by where it came from."""
    return DEFAULTS[origin]


def stix_marking_definition(level: str) -> dict[str, Any]:
    """The OASIS TLP 2.0 ``marking-definition`` object for ``level``, as published."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": STIX_MARKINGS[level],
        "created": STIX_CREATED,
        "name": LABELS[level],
        "extensions": {
            STIX_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level},
        },
    }
