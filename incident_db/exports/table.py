"""CSV export: one row per live incident, lists joined with "; "."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from incident_db.exports import EXPORT_FIELDS, ExportedIncident

#: free-text columns: a leading = + - @ would make a spreadsheet run a formula
TEXT_COLUMNS = frozenset(
    {"place", "suspect_craft_description", "stowaway_embarkation_port",
     "stowaway_embarkation_berth", "stowaway_how_found", "cyber_impact", "narrative"}
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(name: str, value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if name in TEXT_COLUMNS and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text, never evaluated
    return value


COLUMNS = (*EXPORT_FIELDS, "sources", "possible_duplicates", "attachments")


def write_csv(incidents: Iterable[ExportedIncident], out: TextIO) -> int:
    """Write the incidents as CSV with a header row; return how many were written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for incident in incidents:
        values = incident.values()
        values["sources"] = [f"{s['kind']}:{s['source']}:{s['row']}" for s in incident.sources]
        values["possible_duplicates"] = sorted(
            link["other"] for link in incident.links if link["relation"] == "possible-duplicate"
        )
        # "<sha256> <name>": the name is A-Z a-z 0-9 . _ - only (crypto/SPEC.md §16.9)
        values["attachments"] = [f"{a['sha256']} {a['name']}" for a in incident.attachments]
        writer.writerow({k: _cell(k, v) for k, v in values.items()})
        count += 1
    return count
