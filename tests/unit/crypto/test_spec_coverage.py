"""Every numbered MUST rule in crypto/SPEC.md is cited by at least one test.

A rule is a paragraph starting ``N.N.`` (or ``N.N.N.``) whose text says
MUST; a test cites it by writing ``§N.N`` in a Python or JavaScript test file.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

SPEC = ROOT / "crypto" / "SPEC.md"
RULE = re.compile(r"^(\d+\.\d+(?:\.\d+)?)\. ", re.MULTILINE)


def _rules_with_must() -> set[str]:
    text = SPEC.read_text(encoding="utf-8")
    rules = set()
    for match in RULE.finditer(text):
        paragraph = text[match.start() :].split("\n\n", 1)[0]
        if "MUST" in paragraph:
            rules.add(match.group(1))
    return rules


def _citations() -> set[str]:
    cited: set[str] = set()
    files = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "tests" / "js").glob("*.test.mjs")]
    for path in files:
        cited.update(re.findall(r"§(\d+\.\d+(?:\.\d+)?)", path.read_text(encoding="utf-8")))
    return cited


def test_spec_has_rules() -> None:
    assert {"3.1", "5.1", "7.2", "10.3", "11.2"} <= _rules_with_must()


def test_every_must_is_cited_by_a_test() -> None:
    missing = sorted(
        _rules_with_must() - _citations(), key=lambda s: [int(p) for p in s.split(".")]
    )
    assert not missing, f"SPEC rules with MUST but no test citing them: {missing}"
