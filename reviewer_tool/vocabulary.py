"""The names a cso-report/v1 document may use (portal/web/FIELDS.md).

The portal's form defines them (portal/web/fields.py); the reviewer tool keeps
its own copy rather than import the portal, and a test checks that the two
agree. A report sealed in a browser can carry any JSON, so the importer
refuses a report with any other name: a name is printed to the reviewer's
terminal, and a name nobody defined is either a newer portal (update the
tool) or a sender trying something. So does a value of the wrong type (a
narrative that is a number, a place that is a list): the form never
produces one, and the redaction step could not read it. And so does a value
larger than the form lets anyone enter: a text longer than its ``maxlength``,
a list with more items than the field has choices or an item longer than the
longest choice, a latitude off -90..90 or a longitude off -180..180. Without
these limits, one narrative of many megabytes costs the redaction step
gigabytes of memory.
"""

from __future__ import annotations

#: members of the document itself (``language``: reviewer_tool/languages.py)
DOCUMENT_MEMBERS = frozenset(
    {"schema", "encrypted_by", "report", "identity", "attachments", "reporter_key", "language"}
)
#: the identity section, which only reviewers ever see
IDENTITY_FIELDS = frozenset(
    f"identity_{slug}"
    for slug in ("company", "vessel", "imo", "call_sign", "mmsi", "flag", "contact")
)
_CREW = ("threatened", "tied_up", "assaulted", "injured", "hostage", "kidnapped", "killed",
         "missing")  # fmt: skip
#: the report section
REPORT_FIELDS = frozenset(
    {
        "category", "report_type", "incident_local_time", "incident_utc_offset", "place_name",
        "location_type", "latitude", "longitude", "vessel_status", "vessel_type",
        "incident_type", "perpetrators_min", "perpetrators_max", "weapons", "boarding_method",
        "boarding_point", "stolen", "actions_taken", "suspect_craft_count",
        "suspect_craft_type", "suspect_craft_description", "outcome", "reported_to",
        "stowaway_count", "stowaway_embarkation_port", "stowaway_embarkation_berth",
        "stowaway_hiding_place", "stowaway_how_found", "cyber_systems", "cyber_vector",
        "cyber_impact", "narrative", *(f"crew_{slug}" for slug in _CREW),
    }
)  # fmt: skip
#: report fields that hold a list of choices; every other field holds one string,
#: except the counts (whole numbers) and the coordinates (numbers)
LIST_FIELDS = frozenset(
    {"weapons", "boarding_point", "stolen", "actions_taken", "reported_to", "cyber_systems"}
)
COUNT_FIELDS = frozenset(
    {"perpetrators_min", "perpetrators_max", "suspect_craft_count", "stowaway_count",
     *(f"crew_{slug}" for slug in _CREW)}
)  # fmt: skip
COORDINATE_FIELDS = frozenset({"latitude", "longitude"})
COORDINATE_LIMITS = {"latitude": 90, "longitude": 180}
#: the form's ``max_length`` of each field that holds one string
MAX_LENGTH = {
    **dict.fromkeys(REPORT_FIELDS - LIST_FIELDS - COUNT_FIELDS - COORDINATE_FIELDS, 200),
    **dict.fromkeys(IDENTITY_FIELDS, 200),
    "cyber_impact": 1000,
    "narrative": 20000,
}
#: (number of choices, length of the longest choice) of each list field
LIST_LIMITS = {
    "weapons": (6, 18), "boarding_point": (9, 30), "stolen": (8, 23), "actions_taken": (9, 22),
    "reported_to": (8, 25), "cyber_systems": (12, 29),
}  # fmt: skip
