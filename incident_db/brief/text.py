"""The brief as plain text for a terminal: the same sentences and tables as the page.

Place names and feed values come from outside, so every line is cleaned of
control and format characters before it is printed: a name cannot move the
cursor, recolour the terminal or hide text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from incident_db.brief.wording import heading, key_points, subtitle, tables


def clean(text: object) -> str:
    """``text`` as one printable line: control and format characters become spaces."""
    return "".join(
        " " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in str(text)
    )


def _table_lines(table: dict[str, Any]) -> list[str]:
    rows = [tuple(clean(cell) for cell in row) for row in table["rows"]]
    if table["header"]:
        rows.insert(0, tuple(clean(cell) for cell in table["header"]))
    if not rows:
        return [f"  {clean(table['empty'])}"]
    width = max(len(row[0]) for row in rows)
    lines = []
    for row in rows:
        numbers = "".join(f"{cell:>12}" for cell in row[1:])
        lines.append(f"  {row[0]:<{width}}{numbers}".rstrip())
    if table["note"]:
        lines.append(f"  ({clean(table['note'])})")
    return lines


def render_text(figures: dict[str, Any]) -> str:
    """The brief for ``figures`` (from ``make_brief``) as plain text."""
    lines = [f"Incident brief: {clean(heading(figures['selection']))}",
             clean(subtitle(figures)), ""]  # fmt: skip
    lines += [f"- {clean(point)}" for point in key_points(figures)]
    for table in tables(figures):
        lines += ["", clean(table["title"]), *_table_lines(table)]
    if figures["credits"]:
        lines.append("")
        lines += [f"{clean(name)}: {clean(credit)}" for name, credit in figures["credits"].items()]
    return "\n".join(lines) + "\n"
