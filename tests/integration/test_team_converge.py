"""Two reviewers' workstations work one inbox through a real portal (crypto/SPEC.md §17).

The demo portal (``portal init --demo``: its directory lists reviewer-1 and
reviewer-2 with their signing keys) serves its sync API under gunicorn;
reports arrive through the intake. Each reviewer has a workspace around the
demo key, pinned to the portal and the organisation. They make conflicting
and non-conflicting edits, exchange them over the sync API and then over the
operator's offline path with bundles imported in different orders, and must
end in the same state, the conflicts settled as the spec's rule says. Then
the refusals: updates tampered with inside a bundle the portal signed again,
an update from a key outside the directory put straight into the portal's
table, and a reviewer removed from the directory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from crypto import _base64url as base64url
from crypto.header import read_header
from crypto.keys import SigningKeyPair
from portal.storage.team_relay import check_envelope
from reviewer_tool.team import actions, log, wire
from tests.conftest import DemoPortal
from tests.integration.portal_server import send_plain, serve_portal
from tests.integration.team_converge_helpers import (
    Operator,
    Station,
    canary,
    files_holding,
    replies_with,
    rewrite_inbox,
)
from tests.integration.test_reviewer_workflow import report_fields


@dataclass
class Team:
    demo: DemoPortal
    operator: Operator
    one: Station
    two: Station
    submit: Callable[[str], None]

    def recipients(self) -> list[bytes]:
        """The encryption keys of the demo directory: both reviewers."""
        return [self.demo.identity(0).public, self.demo.identity(1).public]


@pytest.fixture
def team(
    demo: DemoPortal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., Flask],
) -> Iterator[Team]:
    """Both demo reviewers enrolled for sync, three reports in, the sync API serving,
    and each workstation set up (nothing imported yet)."""
    for name, value in demo.environ().items():
        monkeypatch.setenv(name, value)  # for the operator's `portal` commands
    operator = Operator(demo)
    one = Station(demo, tmp_path / "ws-1", "reviewer-1")
    two = Station(demo, tmp_path / "ws-2", "reviewer-2")
    portal_key = (demo.data_dir / "portal-signing.pub").read_text().strip()
    organisation = (demo.data_dir / "organisation.pub").read_text().strip()
    for station in (one, two):
        operator.enrol(station)
        station.setup(portal_key, organisation)
    intake = make_app().test_client()

    def submit(narrative: str) -> None:
        assert send_plain(intake, report_fields(narrative)).status_code == 200

    for narrative in ("Boarded at anchor.", "Paint stolen.", "A skiff came alongside."):
        submit(narrative)
    with serve_portal(demo, tmp_path, "sync") as sync:
        for station in (one, two):
            station.portal_url = sync["url"]
        try:
            yield Team(demo, operator, one, two, submit)
        finally:
            one.close()
            two.close()


def lww(*updates: wire.Update) -> wire.Update:
    """The winner of a conflict by the spec's rule: the greatest (clock, author, id)."""
    return max(updates, key=lambda u: (u.clock, u.author, u.id))


def label_of(team: Team, update: wire.Update) -> str:
    return "reviewer-1" if update.author == str(team.one.ws.keys.signing.token) else "reviewer-2"


def assert_converged(team: Team, reports: list[str]) -> dict[str, Any]:
    """Both workstations show the same queue, team state and history; return it."""
    first, second = team.one.snapshot(reports), team.two.snapshot(reports)
    assert first == second
    return first


def test_two_workstations_converge_over_the_sync_api_and_offline(
    team: Team, tmp_path: Path
) -> None:
    one, two, operator = team.one, team.two, team.operator
    for station in (one, two):
        assert "3 new report(s)" in station.pull_and_import()
    a, b, c = [row["id"] for row in one.listing()]
    note, message = canary(), canary()

    # --- round 1, over the sync API: neither has seen the other's edits ---------------
    one.cli("triage", a, "--status", "confirmed", "--grade", "B2")
    one.cli("label", a, "boarding")
    one.cli("note", a, f"The master confirms the boarding. {note}")
    two.cli("triage", a, "--status", "rejected", "--grade", "E5")
    two.cli("label", a, "boarding")
    two.cli("label", a, "night")
    two.cli("assign", b, "reviewer-1")
    two.cli("link", c, a)
    two.cli("reply", b, "--message", f"Thank you; which berth? {message}",
            "--status", "under-review")  # fmt: skip
    assert "0 reply(ies), 3 team update(s)" in one.export_and_push()
    assert "1 reply(ies), 6 team update(s)" in two.export_and_push()
    assert operator.team_seq() == 9

    assert "team updates: 6 new accepted, 0 pending, 0 refused, 3 already held" in (
        one.pull_and_import()
    )
    assert "team updates: 3 new accepted, 0 pending, 0 refused, 6 already held" in (
        two.pull_and_import()
    )
    assert one.mark() == two.mark() == 9
    for station in (two, one):  # again, the other way round: nothing changes
        assert "0 new accepted, 0 pending, 0 refused, 9 already held" in station.pull_and_import()
    state = assert_converged(team, [a, b, c])

    (mine,), (theirs,) = one.own(a, "triage"), two.own(a, "triage")
    assert mine.clock == theirs.clock == 1  # concurrent: the author's key decides
    winner = lww(mine, theirs)
    triage = state["team"][a]["triage"]
    assert (triage["status"], triage["grade"]) == (winner.value["status"], winner.value["grade"])
    assert triage["by"] == label_of(team, winner)
    row = {r["id"]: r for r in state["list"]}
    assert (row[a]["status"], row[a]["grade"]) == (triage["status"], triage["grade"])
    assert row[a]["labels"] == ["boarding", "night"]
    assert (row[b]["assignee"], row[c]["assignee"]) == ("reviewer-1", None)
    assert [n["who"] for n in state["team"][a]["notes"]] == ["reviewer-1"]
    assert note in state["team"][a]["notes"][0]["text"]
    assert state["team"][c]["links"] == [a]
    (shared,) = state["team"][b]["replies"]
    assert (shared["status"], shared["who"]) == ("under-review", "reviewer-2")
    assert message in shared["message"]
    assert len(state["history"][a]) == 6  # both triages, three labels, the note
    # reviewer-1 sees the reply in the conversation, and never sends it again
    (seen,) = one.ws.report(b).record["replies"]  # type: ignore[union-attr]
    assert seen["team"] is True
    assert "0 reply(ies), 0 team update(s)" in one.export_and_push()
    two.export_and_push()  # acknowledges the team range too
    for station in (one, two):
        assert "already held" not in station.pull_and_import()  # the portal sent nothing again

    # --- round 2, offline: portal export / import-replies, bundles crossing ---------------
    base = operator.team_seq()
    assert log.clock(one.ws) == log.clock(two.ws) == 6
    actions.assign(one.ws, b, "reviewer-2")
    actions.set_label(one.ws, a, "night", present=False)
    actions.add_note(one.ws, c, "Same skiff as the first report.")
    replies_one, said = one.export_replies()
    assert "3 team update(s)" in said
    assert "3 team update(s) relayed" in operator.run("import-replies", replies_one)
    first = tmp_path / "operator-1.bundle"
    assert "team cursor 9 to 12" in operator.export(first, since=3, team_since=base)

    actions.assign(two.ws, b, None)  # conflicts with reviewer-1's assignment
    actions.triage(two.ws, a, "unconfirmed", "C3")  # made after seeing round 1: it wins
    actions.set_label(two.ws, c, "piracy")
    replies_two, _ = two.export_replies()
    assert "3 team update(s) relayed" in operator.run("import-replies", replies_two)
    second = tmp_path / "operator-2.bundle"
    assert "team cursor 12 to 15" in operator.export(second, since=3, team_since=base + 3)

    one.cli("import", second)  # before the first: its range does not join the mark
    assert one.mark() == 9
    one.cli("import", first)
    assert one.mark() == 12
    two.cli("import", first)
    two.cli("import", second)
    assert two.mark() == 15
    assert "3 already held" in one.cli("import", second)
    assert one.mark() == 15
    state = assert_converged(team, [a, b, c])

    (assign_one,) = one.own(b, "assignee")
    assign_two = two.own(b, "assignee")[-1]  # the first was round 1's
    assert assign_one.clock == assign_two.clock == 7
    assert state["team"][b]["assignee"] == lww(assign_one, assign_two).value["label"]
    triage = state["team"][a]["triage"]
    assert (triage["status"], triage["grade"], triage["by"]) == ("unconfirmed", "C3", "reviewer-2")
    assert state["team"][a]["labels"] == ["boarding"]
    assert state["team"][c]["labels"] == ["piracy"]
    assert [n["who"] for n in state["team"][c]["notes"]] == ["reviewer-1"]

    # --- what the portal holds: envelopes it cannot open, and no canary anywhere --------
    for station in (one, two):  # the last acknowledgements
        operator.run("import-replies", station.export_replies()[0])
    rows = operator.team_rows()
    assert len(rows) == 15
    for _, data in rows:
        check_envelope(data)
        assert len(read_header(io.BytesIO(data)).recipients) == 2
        assert note.encode() not in data
        assert message.encode() not in data
    assert list(files_holding(team.demo.data_dir, b"cso-key-directory/v1"))  # the scan reads
    for secret in (note, message):
        assert list(files_holding(team.demo.data_dir, secret.encode())) == []
        assert list(files_holding(tmp_path, secret.encode())) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tampered_foreign_and_removed_reviewers_updates_are_refused(
    team: Team, tmp_path: Path
) -> None:
    one, two, operator = team.one, team.two, team.operator
    for station in (one, two):
        station.pull_and_import()
    a, b, c = [row["id"] for row in one.listing()]
    actions.triage(one.ws, a, "confirmed", "B2")
    actions.set_label(two.ws, b, "night")
    actions.add_note(two.ws, b, "Seen from the bridge.")
    for station in (one, two):
        station.export_and_push()
    for station in (one, two):
        station.pull_and_import()
    assert_converged(team, [a, b, c])

    # --- tampered inside a bundle the portal signed again ---------------------------------
    since = operator.team_seq()
    actions.set_label(two.ws, c, "alpha")
    actions.set_label(two.ws, c, "beta")
    actions.add_note(two.ws, c, "gamma")
    flipped, forged, kept = [update_id for update_id, _ in log.outgoing(two.ws)]
    two.export_and_push()
    team.submit("A fourth report, in the same bundle.")
    raw = operator.export(tmp_path / "raw.bundle", since=3, team_since=since)
    assert "1 submission(s)" in raw
    assert "3 team update(s)" in raw

    def tamper(meta: dict[str, Any], data: bytes) -> bytes | None:
        if meta["update_id"] == flipped:  # one byte of the envelope's ciphertext
            return data[:-1] + bytes([data[-1] ^ 1])
        if meta["update_id"] == forged:  # the update changed, its signature kept
            signed = json.loads(wire.open_update(data, team.demo.identity(0)))
            payload = base64url.decode(signed["payload"])
            assert payload is not None
            signed["payload"] = base64url.encode(payload.replace(b'"beta"', b'"delta"'))
            return wire.seal_update(json.dumps(signed).encode(), team.recipients())
        return None

    tampered = rewrite_inbox(team.demo, tmp_path / "raw.bundle", tmp_path / "tampered", tamper)
    said = one.cli("import", tampered)
    assert "1 new report(s)" in said  # the rest of the bundle is imported
    assert "team updates: 1 new accepted, 0 pending, 2 refused" in said
    assert f"team update {flipped} refused: a team update could not be opened" in said
    assert f"team update {forged} refused: a team update's signature does not verify" in said
    assert one.team(c)["labels"] == []
    assert [n["text"] for n in one.team(c)["notes"]] == ["gamma"]
    assert [u.id for u in log.accepted(one.ws, c)] == [kept]
    # §17.4: nothing unverified is stored, so the genuine copies still get in
    assert one.team_status()["counts"]["refused"] == 0
    assert "2 new accepted" in one.pull_and_import()
    assert one.team(c)["labels"] == ["alpha", "beta"]

    # --- a key outside the directory, written straight into the portal's table ------------
    outsider = SigningKeyPair.generate()
    value = {"status": "rejected", "grade": "F6", "duplicate_of": None}
    signed = wire.make_signed(outsider, report=a, field="triage", value=value,
                              clock=10**6, directory_serial=1)  # fmt: skip
    stranger = wire.check_signed(signed).id
    operator.inject(stranger, wire.seal_update(signed, team.recipients()))
    for station in (one, two):
        assert ", 1 refused" in station.pull_and_import()
        refused = [r for r in station.team_status()["not_applied"] if r["id"] == stranger]
        assert refused == [{"id": stranger, "report": a, "author": str(outsider.token),
                            "field": "triage", "state": "refused",
                            "reason": "its author is not listed in key directory 1"}]  # fmt: skip
        assert station.team(a)["triage"]["status"] == "confirmed"  # clock 10**6 won nothing
        assert log.clock(station.ws) < 10**6

    # --- reviewer-2 leaves the directory ------------------------------------------------
    assert "serial 2" in operator.run("reviewers", "remove", *operator.org, "reviewer-2")
    # not yet seen by reviewer-2's workstation, whose update names directory 1: the spec
    # accepts it (a back-dated serial cannot be told apart; the portal enrolment stops it)
    actions.set_label(two.ws, a, "old-serial")
    assert [u.directory_serial for u in two.own(a, "label")] == [1]
    assert "1 team update(s)" in two.export_and_push()
    said = one.pull_and_import()
    assert "1 new accepted" in said
    assert "key directory 2 accepted" in said
    assert one.team(a)["labels"] == ["old-serial"]
    assert one.team(b)["labels"] == ["night"]  # reviewer-2's earlier updates stay
    assert one.team(c)["labels"] == ["alpha", "beta"]
    assert [n["who"] for n in one.team(b)["notes"]] == ["reviewer-2"]

    assert "key directory 2 accepted" in two.pull_and_import()
    status = two.team_status()
    assert (status["label"], status["directory_serial"]) == ("this workstation", 2)
    actions.set_label(two.ws, a, "new-serial")  # names directory 2, which lacks reviewer-2
    (latest,) = [u for u in two.own(a, "label") if u.value["name"] == "new-serial"]
    assert latest.directory_serial == 2
    _, said = two.export_replies()
    assert "0 team update(s)" in said
    assert "1 team update(s) waiting: this workstation's signing key is not in key directory 2" in (
        said
    )
    # a client that sends it all the same (sealed to directory 2: reviewer-1 alone)
    ((update_id, signed),) = log.outgoing(two.ws)
    envelope = wire.seal_update(signed, [team.demo.identity(0).public])
    pushed = replies_with(two, [(update_id, envelope)], tmp_path / "insistent.bundle")
    two.sync("push", pushed)
    assert ", 1 refused" in one.pull_and_import()
    (row,) = [r for r in one.team_status()["not_applied"] if r["id"] == update_id]
    assert (row["state"], row["reason"]) == (
        "refused",
        "its author is not listed in key directory 2",
    )
    assert one.team(a)["labels"] == ["old-serial"]
    # what does stop a removed reviewer: the operator withdraws the sync enrolment
    operator.run("accounts", "remove", "reviewer-2")
    assert "refused" in two.sync("push", pushed, code=1)
