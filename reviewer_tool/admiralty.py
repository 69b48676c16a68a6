"""The Admiralty grade: how far to trust a report's source, and its information.

A grade is two independent judgements written together, such as ``B2``: a
letter for the reliability of the source and a digit for the credibility of
the information itself. A reliable source can pass on doubtful information,
and an unknown source can report something other sources confirm, so the
two are chosen separately. The scales are kept here as data so that the
desk can show each choice with its meaning instead of asking for a code.
"""

from __future__ import annotations

import re

from reviewer_tool.errors import ReviewerError

#: source reliability, letter → its standard meaning
RELIABILITY: dict[str, str] = {
    "A": "completely reliable",
    "B": "usually reliable",
    "C": "fairly reliable",
    "D": "not usually reliable",
    "E": "unreliable",
    "F": "reliability cannot be judged",
}
#: information credibility, digit → its standard meaning
CREDIBILITY: dict[str, str] = {
    "1": "confirmed by other sources",
    "2": "probably true",
    "3": "possibly true",
    "4": "doubtful",
    "5": "improbable",
    "6": "truth cannot be judged",
}
GRADE = re.compile(r"[A-F][1-6]")


def check_grade(grade: str) -> str:
    """``grade`` if it is a letter A-F and a digit 1-6; else a ReviewerError."""
    if not isinstance(grade, str) or not GRADE.fullmatch(grade):
        raise ReviewerError("a grade is a letter A-F and a digit 1-6, such as B2")
    return grade


def describe(grade: str) -> str:
    """The grade in words: ``B2`` → "source usually reliable, information probably true"."""
    check_grade(grade)
    return f"source {RELIABILITY[grade[0]]}, information {CREDIBILITY[grade[1]]}"
