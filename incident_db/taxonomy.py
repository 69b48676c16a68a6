"""The incident vocabulary: slug → label for every choice field of cso-incident/v1.

This is the one list of choices: the report form (``portal/web/fields.py``)
offers exactly these, so a value a reporter picked passes unchanged from the
portal through the reviewer tool into the shared database. This module
imports nothing but the standard library, since the portal and the reviewer
tool use it too; ``tests/unit/incident_db/test_taxonomy.py`` checks that
every choice field of the form is one of these vocabularies.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def slug(label: str) -> str:
    """The stable slug of a label: lower case, runs of other characters as one dash."""
    text = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")
    while "--" in text:
        text = text.replace("--", "-")
    return text


def _vocabulary(*labels: str) -> Mapping[str, str]:
    return MappingProxyType({slug(label): label for label in labels})


CATEGORIES = _vocabulary(
    "Piracy or armed robbery",
    "Suspicious approach",
    "Stowaways",
    "Drug smuggling",
    "Cargo crime (theft, tampering)",
    "Vessel theft",
    "Terrorism or militant activity",
    "Cyber incident",
    "Insider threat",
    "Other",
)
REPORT_TYPES = _vocabulary("Initial alert", "Follow-up", "Final", "Suspicious activity")
LOCATION_TYPES = _vocabulary(
    "Port or berth",
    "Inner anchorage",
    "Outer anchorage",
    "STS area",
    "SBM",
    "River",
    "Territorial sea",
    "EEZ or high seas",
)
VESSEL_STATUSES = _vocabulary(
    "Berthed", "Anchored", "Moored (buoy/SBM)", "Underway", "Drifting", "Stationary"
)
VESSEL_TYPES = _vocabulary(
    "Bulk carrier",
    "Crude oil tanker",
    "Product tanker",
    "Chemical tanker",
    "LPG tanker",
    "LNG tanker",
    "Container ship",
    "General cargo",
    "Ro-ro or vehicle carrier",
    "Reefer",
    "Passenger or cruise",
    "Offshore supply",
    "Tug",
    "Fishing vessel",
    "Yacht",
    "Dhow",
    "Other",
)
INCIDENT_TYPES = _vocabulary(
    "Attempted boarding",
    "Boarded",
    "Fired upon",
    "Hijacked",
    "Suspicious approach",
    "Detained",
    "Explosion",
    "Attack (weapons discharged)",
    "Illegal boarding (citadel)",
)
WEAPONS = _vocabulary(
    "None", "Knives or machetes", "Guns", "RPG or explosives", "Other", "Not seen"
)
BOARDING_METHODS = _vocabulary(
    "Ladder",
    "Hook and rope",
    "Anchor chain or hawse pipe",
    "From a craft alongside",
    "Via the gangway",
    "Not boarded",
)
BOARDING_POINTS = _vocabulary(
    "Forecastle or forecastle store",
    "Bosun store",
    "Poop deck",
    "Engine room",
    "Steering flat",
    "Accommodation",
    "Bridge",
    "Cargo hold",
    "Paint store",
)
STOLEN = _vocabulary(
    "Ship's stores",
    "Engine spares",
    "Mooring ropes",
    "Paint",
    "Cash or crew belongings",
    "Cargo",
    "Fuel",
    "Nothing",
)
ACTIONS_TAKEN = _vocabulary(
    "Alarm raised",
    "PA announcement",
    "Crew mustered",
    "Citadel",
    "Evasive manoeuvres",
    "SSAS activated",
    "Fire hoses",
    "Security team",
    "Lights or searchlights",
)
SUSPECT_CRAFT_TYPES = _vocabulary(
    "Skiff", "Fishing boat", "Dinghy", "Speedboat", "Mother ship", "Other"
)
OUTCOMES = _vocabulary("Successful (items stolen or control taken)", "Attempted", "Foiled by crew")
#: the outcome that counts as a success for the perpetrators in a brief
SUCCESSFUL = "successful-items-stolen-or-control-taken"
REPORTED_TO = _vocabulary(
    "Coastal or port authority",
    "Flag state",
    "IMB PRC",
    "UKMTO",
    "MDAT-GoG",
    "ReCAAP focal point",
    "P&I club",
    "Nobody yet",
)
HIDING_PLACES = _vocabulary(
    "Empty container",
    "Cargo hold",
    "Tank",
    "Void space",
    "Chain locker",
    "Rudder trunk",
    "Crane",
    "Stores",
    "Accommodation",
    "Engine room",
    "Other",
)
CYBER_SYSTEMS = _vocabulary(
    "ECDIS",
    "GNSS",
    "AIS",
    "Radar",
    "Cargo management",
    "Propulsion, machinery or power",
    "Access control",
    "Passenger systems",
    "Crew welfare network",
    "Communications (VSAT, e-mail)",
    "Administrative IT",
    "Port or terminal systems",
)
CYBER_VECTORS = _vocabulary(
    "Phishing",
    "Malware or ransomware",
    "Infected USB or removable media",
    "GNSS jamming",
    "GNSS spoofing",
    "AIS spoofing",
    "Supply-chain compromise",
    "Remote access abuse",
    "Insider",
    "Unknown",
)
#: crew consequence keys (record ``crew`` members) and their labels
CREW = MappingProxyType(
    {
        "threatened": "threatened",
        "tied_up": "tied up",
        "assaulted": "assaulted",
        "injured": "injured",
        "hostage": "taken hostage",
        "kidnapped": "kidnapped",
        "killed": "killed",
        "missing": "missing",
    }
)
LINK_RELATIONS = ("duplicate-of", "corroborates")
#: Admiralty grades: source reliability A–F, information credibility 1–6
GRADES = tuple(f"{r}{c}" for r in "ABCDEF" for c in "123456")

#: record field (dotted for nested members) → its vocabulary
VOCABULARIES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "category": CATEGORIES,
        "report_type": REPORT_TYPES,
        "incident_type": INCIDENT_TYPES,
        "location_type": LOCATION_TYPES,
        "vessel_type": VESSEL_TYPES,
        "vessel_status": VESSEL_STATUSES,
        "weapons": WEAPONS,
        "boarding_method": BOARDING_METHODS,
        "boarding_points": BOARDING_POINTS,
        "stolen": STOLEN,
        "actions_taken": ACTIONS_TAKEN,
        "outcome": OUTCOMES,
        "reported_to": REPORTED_TO,
        "suspect_craft.type": SUSPECT_CRAFT_TYPES,
        "stowaways.hiding_place": HIDING_PLACES,
        "cyber.systems": CYBER_SYSTEMS,
        "cyber.vector": CYBER_VECTORS,
    }
)


def label(field: str, value: str) -> str:
    """The human label of ``value`` in ``field``'s vocabulary (the slug if unknown)."""
    return VOCABULARIES.get(field, {}).get(value, value)
