"""Generate tests/vectors/digits.json: every decimal digit Unicode knows, and its value.

``digits`` lists runs of consecutive code points of category Nd: ``first``,
the first code point, and ``values``, the value of each code point in turn.

Run from the repository root: ``python tests/vectors/generate_digits.py``.
The values come from Python's ``unicodedata`` (its own Unicode version, named
in the file), not from either parser; ``portal/web/digits.py`` and the
browser's ``digits.js`` are both checked against the file.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent
#: characters that look like numbers but are no decimal digit: they must pass unchanged
NOT_DIGITS = "²³¹⁰½①⑩Ⅻ〇零一,.-+:%x\u066a\u066b\u066c\u2212"


def main() -> None:
    """Write the vector file."""
    runs: list[dict[str, object]] = []  # consecutive code points, each with its value
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point)) != "Nd":
            continue
        value = str(unicodedata.decimal(chr(point)))
        last = runs[-1] if runs else None
        if last is not None and point == int(str(last["first"])) + len(str(last["values"])):
            last["values"] = str(last["values"]) + value
        else:
            runs.append({"first": point, "values": value})
    document = {
        "schema": "cso-digit-vectors/v1",
        "source": (
            f"tests/vectors/generate_digits.py: Python's unicodedata, Unicode "
            f"{unicodedata.unidata_version}, every character of category Nd"
        ),
        "rationale": (
            "Reporters type numbers in their own script. The server (portal/web/digits.py, "
            "unicodedata.decimal) and the browser (digits.js, /\\p{Nd}/u and the offset in "
            "its run of digits) must read every decimal digit as the same ASCII digit, and "
            "leave everything else alone: superscripts, circled and fraction numbers, CJK "
            "numerals and separators are no decimal digits."
        ),
        "unicode_version": unicodedata.unidata_version,
        "digits": runs,
        "not_digits": [
            {"name": unicodedata.name(char, f"U+{ord(char):04X}"), "input": char}
            for char in dict.fromkeys(NOT_DIGITS)
        ],
    }
    text = json.dumps(document, ensure_ascii=False, indent=1)
    (HERE / "digits.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
