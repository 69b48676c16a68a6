"""`reviewer list` and `show` name the language a reporter wrote in (issue 15).

The document's ``language`` is the sender's choice: a malformed one is shown
as "invalid", never printed, and never refuses the report; a report from
before issue 15 has none ("not recorded"); forwarding does not carry it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crypto.batch import read_batch
from crypto.keys import parse_public_key
from reviewer_tool.cli import main as reviewer
from reviewer_tool.languages import describe, language_of
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox
from tests.security.test_terminal_injection import assert_terminal_safe

#: (language member, or None for a document without one; what list and show say)
CASES: list[tuple[Any, str]] = [
    ("ar", "ar (Arabic)"),
    ("zh-Hans", "zh-Hans (Chinese, Simplified)"),
    ("TL", "tl (Filipino/Tagalog)"),  # BCP 47 codes ignore case
    ("pt-BR", "pt-BR"),  # well formed but not shipped: the code alone
    ("\x1b[31mxx", "invalid"),
    ("en\nFAKE", "invalid"),
    ("en\n", "invalid"),
    ("a" * 200, "invalid"),
    ("en-" + "a" * 14, "invalid"),  # well formed but longer than 16
    ("\u202ear", "invalid"),
    (5, "invalid"),
    (["ar"], "invalid"),
    (None, "not recorded"),
]


def run(*args: str | Path) -> int:
    return reviewer([str(a) for a in args])


def _document(language: Any) -> dict[str, Any]:
    document = report_document("Robbers boarded at anchorage.")
    if language is not None:
        document["language"] = language
    return document


@pytest.fixture
def imported(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """The ids of one imported report per case, in the order of :data:`CASES`."""
    reports = [(_document(language), []) for language, _ in CASES]
    ids = write_inbox(tmp_path / "inbox", PORTAL, [recipient], reports)
    assert run("import", tmp_path / "inbox", *ws) == 0
    out = capsys.readouterr().out
    assert f"{len(CASES)} new report(s)" in out  # a bad language refuses nothing
    assert "refused" not in out
    return ids


def _captured(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert_terminal_safe(captured.out.encode(), "stdout")
    assert_terminal_safe(captured.err.encode(), "stderr")
    return captured.out


def test_show_names_the_language_or_says_why_not(
    ws: list[str], imported: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for report, (_, expected) in zip(imported, CASES, strict=True):
        capsys.readouterr()
        assert run("show", report, *ws) == 0
        out = _captured(capsys)
        assert f"\nlanguage: {expected}\n" in out
        assert "FAKE" not in out
        assert "[31m" not in out
        assert "aaaaaaaaaaaaaaaa" not in out


def test_list_has_a_language_column(
    ws: list[str], imported: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # each row on one line
    capsys.readouterr()
    assert run("list", *ws) == 0
    out = _captured(capsys)
    assert "| language " in out.splitlines()[1]
    for report, (_, expected) in zip(imported, CASES, strict=True):
        (row,) = [line for line in out.splitlines() if report[:12] in line]
        assert f"| {expected} " in row
    assert "FAKE" not in out
    assert "[31m" not in out


def test_json_output_holds_only_checked_codes(
    ws: list[str], imported: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run("list", "--json", *ws) == 0
    rows = {row["id"]: row["language"] for row in json.loads(_captured(capsys))}
    stored = [rows[report] for report in imported]
    assert stored == [language_of(_document(language)) for language, _ in CASES]
    assert stored[:4] == ["ar", "zh-Hans", "tl", "pt-BR"]
    assert set(stored[4:-1]) == {"invalid"}
    assert stored[-1] is None

    assert run("show", imported[4], "--json", *ws) == 0
    shown = json.loads(_captured(capsys))
    assert shown["language"] == "invalid"
    assert shown["report"]["language"] == "\x1b[31mxx"  # as sent, but escaped on the way out


def test_a_summary_from_before_issue_15_reads_not_recorded(
    ws: list[str], imported: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from reviewer_tool.workspace import Workspace

    ws_dir, passphrase = Path(ws[1]), Path(ws[3]).read_text().splitlines()[0].encode()
    workspace = Workspace.open(ws_dir, passphrase)
    item = workspace.item(imported[-1])
    del item.summary["language"]
    with workspace.transaction():
        workspace.put_item(item)
    workspace.close()
    capsys.readouterr()
    assert run("list", "--json", *ws) == 0
    rows = {row["id"]: row for row in json.loads(_captured(capsys))}
    assert rows[imported[-1]]["language"] is None
    assert describe(None) == "not recorded"


def test_the_tools_languages_are_the_portals() -> None:
    """The reviewer tool keeps its own table (it does not import the portal)."""
    from portal.web.i18n import SHIPPED
    from reviewer_tool.languages import SHIPPED as NAMES

    assert list(NAMES) == [language.code for language in SHIPPED]


def test_forwarding_does_not_carry_the_language(
    ws: list[str], recipient: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = report_document("Robbers boarded at anchorage.")
    document["language"] = "ar"
    (report,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", report, "--status", "confirmed", "--grade", "B2", *ws) == 0
    assert run("redact", report, "--accept-suggestions", *ws) == 0
    assert run("forward", "--out", tmp_path / "batch", *ws) == 0
    capsys.readouterr()
    assert run("pubkey", *ws) == 0
    signing = parse_public_key(capsys.readouterr().out.split()[1])
    (record,) = [r for _, r in read_batch((tmp_path / "batch").read_bytes(), {signing}).records]
    assert "language" not in json.dumps(record)
