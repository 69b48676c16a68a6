"""Write portal/web/FIELDS.md from portal/web/fields.py (a test checks they agree)."""

from __future__ import annotations

import sys
from pathlib import Path

from portal.web.fields import FIELDS, SECTIONS, Kind

KIND_TEXT = {
    Kind.CHOICE: "one of the values",
    Kind.MULTI: "any of the values (repeat the name)",
    Kind.TEXT: "one line of text",
    Kind.LONG_TEXT: "text, several lines",
    Kind.COUNT: "whole number 0-9999",
    Kind.COORDINATE: "decimal degrees",
    Kind.LOCAL_TIME: "local time `YYYY-MM-DDTHH:MM`",
    Kind.UTC_OFFSET: "`±HH:MM`",
}


def render() -> str:
    """The whole FIELDS.md text."""
    lines = [
        "# Report form fields",
        "",
        "Generated from `portal/web/fields.py` by `scripts/fields_doc.py`; do not edit by hand.",
        "",
        "These `name`s are a stable interface: the browser builds the report JSON",
        "(`cso-report/v1`, see `portal/web/report.py`) from them, the no-JavaScript path",
        "posts them as form fields, and the reviewer tool reads them. `identity_*`",
        "fields go into the report's separate `identity` object, which only reviewers",
        "read and which is never forwarded. Attachments are the file field",
        "`attachments` (without JavaScript) or encrypted parts (with it). A field",
        "applies to every category unless its row lists some.",
        "",
        "Values are canonical whatever the page's language: a choice is its value",
        "(the slug), never the label the reporter saw. Counts, local times, UTC offsets",
        "and coordinates may be typed with the digits of any script (Arabic-Indic,",
        "Devanagari, full-width...), a coordinate with a decimal comma or the Arabic",
        "decimal separator; they are stored in ASCII (`portal/web/digits.py`). Free",
        "text is stored exactly as typed. Beside `report` and `identity` the document",
        "carries `language`, the BCP 47 code of the page the reporter used (`en`, `ar`,",
        "`zh-Hans`...), so that reviewers know which language the free text is in.",
        "",
    ]
    all_categories = set(FIELDS[0].categories)
    for key, title in SECTIONS:
        lines += [f"## {title}", "", "| name | label | kind | categories |", "|---|---|---|---|"]
        for field in (f for f in FIELDS if f.section == key):
            kind = KIND_TEXT[field.kind]
            if field.choices and field.kind is not Kind.UTC_OFFSET:
                kind += ": " + ", ".join(f"`{v}`" for v, _ in field.choices)
            scope = "" if set(field.categories) == all_categories else ", ".join(field.categories)
            lines.append(f"| `{field.name}` | {field.label} | {kind} | {scope} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "portal" / "web" / "FIELDS.md"
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
