"""How the desk cuts a sender's text for the redaction page, and shows hidden characters.

The page turns a selection back into offsets from the ``data-at`` of each run
(reviewer_tool/desk/static/redact.js), so every run must start where it says,
in code points, whatever the text holds.
"""

from __future__ import annotations

import pytest

from reviewer_tool.desk.display import segments, shown_value, visible
from reviewer_tool.errors import ReviewerError
from reviewer_tool.redaction import detect_identifiers
from reviewer_tool.redaction_flow import manual_span, split_terms, words_in

TEXTS = [
    "Boarded at night near IMO 9074729, call +44 20 7946 0958.",
    "Line one\r\nline two \U0001f6a2 near the Sextans Star\rthird\u202eevil\u202c end\x1b[0m",
    "\u200b\u200b",
    "",
]


def _flat(parts: list[dict]) -> list[dict]:
    out = []
    for part in parts:
        out.extend(part["runs"] if "mark" in part else [part])
    return out


@pytest.mark.parametrize("text", TEXTS)
def test_every_run_starts_where_it_says_and_covers_the_text(text: str) -> None:
    findings = detect_identifiers(text, ["Sextans Star"])
    runs = _flat(segments(text, findings))
    rebuilt = ""
    for run in runs:
        assert run["at"] == len(rebuilt)
        rebuilt += text[run["at"]] if "hidden" in run else run["text"]
    assert rebuilt == text
    for run in runs:
        if "text" in run:
            assert "\n" not in run["text"][:-1]  # a line break ends a run
    marks = [part for part in segments(text, findings) if "mark" in part]
    assert [(m["start"], m["end"]) for m in marks] == [(f.start, f.end) for f in findings]


def test_hidden_characters_are_shown_as_markers_and_markup_is_escaped() -> None:
    shown = str(visible('<b onclick="x">\u202eA\x1b</b>\u200d'))
    assert shown == (
        '&lt;b onclick=&#34;x&#34;&gt;<span class="hidden-char">U+202E</span>A'
        '<span class="hidden-char">U+001B</span>&lt;/b&gt;\u200d'  # a joiner shapes words
    )
    assert shown_value("weapons", ["guns", "spears"]) == "Guns, spears"


def test_manual_spans_and_words() -> None:
    text = "Bonny Island, then bonny island again"
    assert [(f.start, f.end) for f in words_in(text, split_terms(" bonny island | |x"))] == [
        (0, 12), (19, 31)
    ]  # fmt: skip
    assert manual_span(text, 0, 5).text == "Bonny"
    for start, end in ((5, 5), (-1, 3), (3, 99), (9, 2)):
        with pytest.raises(ReviewerError):
            manual_span(text, start, end)
