"""The names a cso-report/v1 document may use (portal/FIELDS.md).

The portal's form defines them (portal/fields.py); the reviewer tool keeps
its own copy rather than import the portal, and a test checks that the two
agree. A report sealed in a browser can carry any JSON, so the importer
refuses a report with any other name: a name is printed to the reviewer's
terminal, and a name nobody defined is either a newer portal (update the
tool) or a sender trying something. So does a value of the wrong type (a
narrative that is a number, a place that is a list): the form never
produces one, and the redaction step could not read it.
"""

from __future__ import annotations

#: members of the document itself
DOCUMENT_MEMBERS = frozenset(
    {"schema", "encrypted_by", "report", "identity", "attachments", "reporter_key"}
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
