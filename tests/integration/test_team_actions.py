"""Team work on real workspaces: the `reviewer` team commands, and two workstations converging.

Updates go from one workspace to the other through the team log directly
(reviewer_tool/team/log.py: ``outgoing`` on one side, ``receive`` on the
other); carrying them in bundles through a portal is tested with the
exchange (reviewer_tool/team/exchange.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crypto.directory import sign_directory
from crypto.keyfile import KeyBundle
from crypto.keys import SigningKeyPair
from reviewer_tool.cli import main as reviewer
from reviewer_tool.team import actions, directories, log
from reviewer_tool.team.wire import TeamUpdateError, make_signed
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox

ORGANISATION = SigningKeyPair.generate()
Keys = list[tuple[Path, KeyBundle]]


def run(*args: str | Path) -> int:
    return reviewer([str(a) for a in args])


@contextmanager
def opened(ws: list[str]) -> Iterator[Workspace]:
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    try:
        yield workspace
    finally:
        workspace.close()


def output(capsys: pytest.CaptureFixture[str], *args: str | Path, code: int = 0) -> str:
    capsys.readouterr()
    assert run(*args) == code
    captured = capsys.readouterr()
    return captured.out if code == 0 else captured.err


def directory(keys: Keys, *, serial: int = 1, members: tuple[int, ...] = (0, 1)) -> bytes:
    """A key directory listing reviewers ``members`` as reviewer-1, reviewer-2, …"""
    reviewers = []
    for index in members:
        bundle = keys[index][1]
        assert bundle.encryption is not None
        reviewers.append((f"reviewer-{index + 1}", bundle.encryption.token, bundle.signing.token))
    return sign_directory(ORGANISATION, reviewers, serial=serial,
                          issued_at=datetime.now(UTC), valid_for=timedelta(days=30))  # fmt: skip


def hold(ws: list[str], capsys: pytest.CaptureFixture[str], *documents: bytes) -> None:
    """Pin the organisation key and keep these directories, as an import would."""
    output(capsys, "trust-org", str(ORGANISATION.token), *ws)
    with opened(ws) as workspace:
        for document in documents:
            directories.store_directory(workspace, document)
        log.reevaluate(workspace)


def send(source: list[str], target: list[str]) -> list[str]:
    """Carry every own update of ``source`` to ``target``; return the states it gave them."""
    with opened(source) as workspace:
        updates = [signed for _, signed in log.outgoing(workspace)]
    with opened(target) as workspace:
        return [log.receive(workspace, signed) for signed in updates]


@pytest.fixture(scope="module")
def second_template(
    tmp_path_factory: pytest.TempPathFactory, reviewer_key_files: Keys, passphrase_file: Path
) -> Path:
    root = tmp_path_factory.mktemp("ws-second") / "ws"
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    key = reviewer_key_files[1][0]
    assert run("init", "--key", key, "--portal-key", str(PORTAL.token), *options) == 0
    return root


@pytest.fixture
def other_ws(second_template: Path, tmp_path: Path, passphrase_file: Path) -> list[str]:
    """A second reviewer's workstation (reviewer key 1)."""
    root = tmp_path / "ws-b"
    shutil.copytree(second_template, root)
    return ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]


def inbox(
    tmp_path: Path, keys: Keys, documents: list[dict[str, Any]], **kwargs: Any
) -> tuple[Path, list[str]]:
    """An inbox bundle sealed to reviewers 0 and 1, and its reports' ids."""
    recipients = [keys[0][1].encryption.public, keys[1][1].encryption.public]  # type: ignore[union-attr]
    path = tmp_path / f"inbox-{len(list(tmp_path.glob('inbox-*')))}"
    ids = write_inbox(path, PORTAL, recipients, [(d, []) for d in documents], **kwargs)
    return path, ids


def imported(
    ws: list[str], tmp_path: Path, keys: Keys, *narratives: str, **fields: Any
) -> list[str]:
    path, ids = inbox(tmp_path, keys, [report_document(n, **fields) for n in narratives])
    assert run("import", path, *ws) == 0
    return ids


# --- one workstation ---------------------------------------------------------------------


def test_triage_labels_notes_and_history_through_the_cli(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = imported(ws, tmp_path, reviewer_key_files, "one", "two")
    assert "confirmed, graded B2" in output(
        capsys, "triage", first, "--status", "confirmed", "--grade", "B2", *ws
    )
    assert "labels now boarding" in output(capsys, "label", first, "boarding", *ws)
    output(capsys, "label", first, "night  watch", *ws)  # spaces are squeezed
    output(capsys, "label", second, "theft", *ws)
    rows = json.loads(output(capsys, "list", "--json", "--label", "boarding", *ws))
    assert [row["id"] for row in rows] == [first]
    assert rows[0]["labels"] == ["boarding", "night watch"]
    assert rows[0]["status"] == "confirmed"
    output(capsys, "label", first, "boarding", "--remove", *ws)
    assert json.loads(output(capsys, "list", "--json", "--label", "boarding", *ws)) == []
    assert "has no label 'boarding'" in output(
        capsys, "label", first, "boarding", "--remove", *ws, code=1
    )
    error = output(capsys, "label", first, "no/slash", *ws, code=1)
    assert error.startswith("reviewer: error: a label is")
    assert error.count("\n") == 1

    assert "team note" in output(capsys, "note", first, "Same skiff as last week?", *ws)
    note_file = tmp_path / "note.txt"
    note_file.write_text("Call the agent first.\n", encoding="utf-8")
    assert "kept on this workstation only" in output(
        capsys, "note", first, "--file", note_file, "--personal", *ws
    )
    assert "linked to" in output(capsys, "link", first, second[:8], *ws)
    assert "itself" in output(capsys, "link", first, first, *ws, code=1)

    shown = output(capsys, "show", first, *ws)
    assert "labels: night watch" in shown
    assert f"likely duplicate of: {second[:12]}" in shown
    assert "team notes (shared with the team, never forwarded): 1" in shown
    assert "Same skiff as last week?" in shown
    assert "personal notes (yours alone, never shared or forwarded): 1" in shown
    assert "Call the agent first." in shown
    document = json.loads(output(capsys, "show", first, "--json", *ws))
    assert document["personal_notes"][0]["text"] == "Call the agent first."
    assert document["triage"]["grade"] == "B2"

    history = output(capsys, "history", first, *ws).splitlines()
    whats = [line.split(": ", 1)[1] for line in history]
    assert whats == [
        "confirmed, graded B2", "label 'boarding' added", "label 'night watch' added",
        "label 'boarding' removed", "team note", f"linked as duplicate of {second[:12]}",
    ]  # fmt: skip
    assert all(": this workstation: " not in line for line in history)  # no text of a note
    team = output(capsys, "team", *ws)
    assert "own updates waiting for export-replies: 7" in team  # triage, 4 labels, note, link
    with opened(ws) as workspace:  # the personal note is in no team update
        assert all(b"Call the agent" not in signed for _, signed in log.outgoing(workspace))


def test_reply_keeps_its_output_and_is_shared(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    (only,) = imported(ws, tmp_path, reviewer_key_files, "one")
    said = output(capsys, "reply", only, "--message", "Thank you.", "--status", "closed", *ws)
    assert said.startswith(f"{only[:12]}: reply ")
    assert said.endswith("queued (message sealed to the reporter, closed); run export-replies\n")
    with opened(ws) as workspace:
        (update,) = log.accepted(workspace, only)
        assert update.field == "reply"
        assert update.value["message"] == "Thank you."
        item = workspace.item(only)
        assert len(item.record["replies"]) == 1  # the team copy is this same reply
        assert "written_at" in item.record["replies"][0]
        assert workspace.db.execute("SELECT count(*) FROM outgoing").fetchone()[0] == 1
    history = output(capsys, "history", only, *ws)
    assert "replied to the reporter (status closed)" in history
    assert "Thank you" not in history


def test_assigning_needs_a_reviewer_of_the_directory(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    (only,) = imported(ws, tmp_path, reviewer_key_files, "one")
    assert "no key directory is held yet" in output(
        capsys, "assign", only, "reviewer-2", *ws, code=1
    )
    hold(ws, capsys, directory(reviewer_key_files))
    assert "it lists: reviewer-1, reviewer-2" in output(
        capsys, "assign", only, "reviewer-9", *ws, code=1
    )
    assert "assigned to reviewer-2" in output(capsys, "assign", only, "reviewer-2", *ws)
    rows = json.loads(output(capsys, "list", "--json", "--assignee", "reviewer-2", *ws))
    assert [row["id"] for row in rows] == [only]
    assert "assigned to nobody" in output(capsys, "assign", only, "--nobody", *ws)
    assert json.loads(output(capsys, "list", "--json", "--assignee", "reviewer-2", *ws)) == []
    history = output(capsys, "history", only, *ws)
    assert "reviewer-1: assigned to reviewer-2" in history  # this workstation's own label
    team = output(capsys, "team", *ws)
    assert "this workstation: reviewer-1" in team
    assert "key directory: serial 1, 2 reviewer(s)" in team


def test_a_triage_from_before_team_updates_stays(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    (only,) = imported(ws, tmp_path, reviewer_key_files, "one")
    with opened(ws) as workspace:  # what cmd_triage wrote before issue 18
        item = workspace.item(only)
        item.record["triage"] = {"status": "confirmed", "grade": "C3", "duplicate_of": None,
                                 "on": "2026-01-02"}  # fmt: skip
        item.summary.update(status="confirmed", grade="C3")
        with workspace.transaction():
            workspace.put_item(item)
    output(capsys, "label", only, "old", *ws)
    document = json.loads(output(capsys, "show", only, "--json", *ws))
    assert document["triage"]["grade"] == "C3"
    assert json.loads(output(capsys, "list", "--json", *ws))[0]["status"] == "confirmed"


def test_notes_are_sealed_and_escaped(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    (only,) = imported(ws, tmp_path, reviewer_key_files, "one")
    canary = "CANARY-TEAM-NOTE-7c1d"
    output(capsys, "note", only, f"{canary} team \u202eevil", *ws)
    output(capsys, "note", only, f"{canary} personal", "--personal", *ws)
    for path in Path(ws[1]).rglob("*"):
        assert canary.encode() not in path.read_bytes(), path
    shown = output(capsys, "show", only, *ws)
    assert "\u202e" not in shown
    assert f"{canary} team \ufffdevil" in shown


def test_duplicate_suggestions_by_place_and_distance(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys
) -> None:
    keys = reviewer_key_files
    lagos = {"latitude": 6.40, "longitude": 3.38}
    (base,) = imported(ws, tmp_path, keys, "base", place_name="Lagos Anchorage", **lagos)
    (same_place,) = imported(ws, tmp_path, keys, "a", place_name="lagos  anchorage")
    (near,) = imported(ws, tmp_path, keys, "b", latitude=6.45, longitude=3.50)  # ~14 km
    (far,) = imported(ws, tmp_path, keys, "c", latitude=4.0, longitude=7.0)
    path, _ = inbox(tmp_path, keys, [report_document("d", place_name="Lagos Anchorage")],
                 received_on="2026-12-20")  # fmt: skip
    assert run("import", path, *ws) == 0
    with opened(ws) as workspace:
        found = {row["id"]: row for row in actions.duplicate_suggestions(workspace, base[:8])}
    assert set(found) == {same_place, near}  # not far, not a month later
    assert found[same_place]["why"] == "same place"
    assert found[near]["why"] == "14 km apart"
    assert far not in found


# --- two workstations --------------------------------------------------------------------


def team_view(ws: list[str], report: str) -> dict[str, Any]:
    with opened(ws) as workspace:
        item = workspace.item(report)
        summary = {key: item.summary.get(key) for key in ("status", "grade", "labels", "assignee")}
        return {"team": item.record.get("team"), "triage": item.record["triage"], **summary}


def test_two_workstations_converge(
    ws: list[str], other_ws: list[str], tmp_path: Path, reviewer_key_files: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    keys = reviewer_key_files
    path, (first, second) = inbox(tmp_path, keys, [report_document("1"), report_document("2")])
    for side in (ws, other_ws):
        assert run("import", path, *side) == 0
        hold(side, capsys, directory(keys))
    # conflicting triage, a label one adds and the other removes, notes on both sides
    output(capsys, "triage", first, "--status", "confirmed", "--grade", "B2", *ws)
    output(capsys, "triage", first, "--status", "rejected", "--grade", "E5", *other_ws)
    output(capsys, "label", first, "boarding", *ws)
    output(capsys, "note", first, "from A", *ws)
    output(capsys, "note", first, "from B", *other_ws)
    output(capsys, "assign", second, "reviewer-1", *other_ws)
    output(capsys, "reply", second, "--message", "Noted.", *other_ws)
    assert send(ws, other_ws) == ["accepted"] * 3
    assert send(other_ws, ws) == ["accepted"] * 4
    assert send(other_ws, ws) == ["accepted"] * 4  # again: nothing changes
    for report in (first, second):
        assert team_view(ws, report) == team_view(other_ws, report)
    view = team_view(ws, first)
    assert view["labels"] == ["boarding"]
    # B's note has the smaller clock (B made one change before it, A two)
    assert [note["text"] for note in view["team"]["notes"]] == ["from B", "from A"]
    assert {note["who"] for note in view["team"]["notes"]} == {"reviewer-1", "reviewer-2"}
    # the teammate's reply is in the conversation, and is not queued to be sent again
    shown = output(capsys, "show", second, *ws)
    assert "reviewer-2  reply" in shown
    assert "0 reply(ies) from this workstation, 1 from teammates" in shown
    with opened(ws) as workspace:
        assert workspace.db.execute("SELECT count(*) FROM outgoing").fetchone()[0] == 0


def test_an_update_that_comes_before_its_report(
    ws: list[str], other_ws: list[str], tmp_path: Path, reviewer_key_files: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    keys = reviewer_key_files
    path, (only,) = inbox(tmp_path, keys, [report_document("one")])
    assert run("import", path, *ws) == 0
    hold(ws, capsys, directory(keys))
    hold(other_ws, capsys, directory(keys))
    output(capsys, "triage", only, "--status", "confirmed", "--grade", "A2", *ws)
    assert send(ws, other_ws) == ["accepted"]
    assert run("import", path, *other_ws) == 0
    assert team_view(other_ws, only)["grade"] == "A2"


def test_updates_from_outside_the_directory_are_refused_or_wait(
    ws: list[str], tmp_path: Path, reviewer_key_files: Keys, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("COLUMNS", "200")  # one row per update
    keys = reviewer_key_files
    (only,) = imported(ws, tmp_path, keys, "one")
    hold(ws, capsys, directory(keys))
    outsider, teammate = keys[2][1].signing, keys[1][1].signing
    label = {"name": "forged", "present": True}
    stranger = make_signed(outsider, report=only, field="label", value=label, clock=9,
                           directory_serial=1)  # fmt: skip
    early = make_signed(teammate, report=only, field="label", value={**label, "name": "early"},
                        clock=2, directory_serial=2)  # fmt: skip
    tampered = bytearray(make_signed(teammate, report=only, field="label", value=label, clock=3,
                                     directory_serial=1))  # fmt: skip
    tampered[len(tampered) // 2] ^= 1
    with opened(ws) as workspace:
        assert log.receive(workspace, stranger) == "refused"
        assert log.receive(workspace, early) == "pending"
        with pytest.raises(TeamUpdateError):
            log.receive(workspace, bytes(tampered))
        assert log.clock(workspace) == 0  # neither moved the clock
    team = output(capsys, "team", *ws)
    assert "0 applied, 1 pending, 1 refused" in team
    assert "its author is not listed in key directory 1" in team
    assert team_view(ws, only)["labels"] is None  # nothing applied
    # a newer directory naming the teammate arrives: the pending update applies
    hold(ws, capsys, directory(keys, serial=2))
    assert team_view(ws, only)["labels"] == ["early"]
