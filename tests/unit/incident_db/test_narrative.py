"""Perpetrator counts read from feed descriptions."""

from __future__ import annotations

import pytest

from incident_db.narrative import count_perpetrators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Three armed robbers boarded an anchored LPG tanker.", (3, 3)),
        ("Ten pirates armed with AK47 rifles boarded and hijacked a tanker.", (10, 10)),
        ("Around six to eight pirates in a skiff approached.", (6, 8)),
        ("5-6 robbers were seen on the poop deck.", (5, 6)),
        ("Duty AB saw a robber on the forecastle.", (1, 1)),
        ("Robbers boarded and stole stores.", None),
        ("A crew of 21 persons was safe. Two robbers escaped.", (2, 2)),
        ("Some 500 men", None),  # implausible: left out
    ],
)
def test_counts(text: str, expected: tuple[int, int] | None) -> None:
    assert count_perpetrators(text) == expected
