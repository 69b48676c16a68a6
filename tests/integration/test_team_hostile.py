"""What a hostile or careless teammate, or a heavy inbox, must not do to the team's work.

Each test pins one finding of the outside review of the team updates
(crypto/SPEC.md §17): an update at the greatest clock stopped every later
change; a teammate reusing another's note or reply id replaced it on the
other workstations; importing N updates about one report verified them
N²/2 times; a long reply in a script of 3-byte characters was refused
because its team copy did not fit the relay.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from crypto.keys import SigningKeyPair
from reviewer_tool.team import actions, directories, log, wire
from tests.integration.test_team_exchange import Relay, Station, directory, team_item

Pair = tuple[Station, Station]
#: the greatest clock a reader takes (§17.2)
CAP = 2**53 - 1


@pytest.fixture
def relay(tmp_path: Path) -> Relay:
    return Relay(tmp_path)


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Station(tmp_path / "a", "reviewer-1"), Station(tmp_path / "b", "reviewer-2")


def _started(pair: Pair, relay: Relay, *more: Station) -> str:
    """One report every station holds, and a directory listing them all; the report's id."""
    report = secrets.token_hex(16)
    stations = [*pair, *more]
    start = relay.inbox(
        reports=[(report, [s.public for s in stations])], directory=directory(1, *stations)
    )
    for station in stations:
        station.take(start)
    return report


def _capped(station: Station, report: str, recipients: list[bytes]) -> tuple[Any, bytes]:
    """A label update of ``station`` at the greatest clock a reader takes."""
    signed = wire.make_signed(station.keys.signing, report=report, field="label",
                              value={"name": "hold", "present": False}, clock=CAP,
                              directory_serial=1)  # fmt: skip
    return team_item(signed, recipients)


# --- the clock at its cap (§17.12) ----------------------------------------------------------


def test_an_update_at_the_greatest_clock_does_not_stop_work(pair: Pair, relay: Relay) -> None:
    a, b = pair
    report = _started(pair, relay)
    result = a.take(relay.inbox(team=[_capped(b, report, [a.public])]))
    assert result.team is not None
    assert result.team.accepted == 1
    assert log.clock(a.ws) == CAP
    # every kind of change still works, and each new update ties at the cap
    actions.triage(a.ws, report, "confirmed", "B2")
    actions.set_label(a.ws, report, "urgent")
    actions.add_note(a.ws, report, "Still working.")
    actions.reply(a.ws, report, "Thank you.", None)
    made = [wire.check_signed(signed) for _, signed in log.outgoing(a.ws)]
    assert [u.clock for u in made] == [CAP] * 4
    team = a.team(report)
    assert team["triage"]["status"] == "confirmed"
    assert "urgent" in team["labels"]
    # at the tie the greater author wins the label both wrote (crypto/SPEC.md §17, Merge)
    mine = log.record(a.ws, report, "label", {"name": "hold", "present": True})
    assert mine.clock == CAP
    assert ("hold" in a.team(report)["labels"]) is (mine.author > str(b.keys.signing.token))


def test_the_clock_is_counted_again_when_updates_are_admitted_again(
    pair: Pair, relay: Relay
) -> None:
    a, b = pair
    report = _started(pair, relay)
    own = log.record(a.ws, report, "label", {"name": "boarding", "present": True})
    a.take(relay.inbox(team=[_capped(b, report, [a.public])]))
    assert log.clock(a.ws) == CAP
    # the directories are forgotten: the capped update waits again and no longer counts
    directories.pin_organisation(a.ws, str(SigningKeyPair.generate().token), replace=True)
    a.take(relay.inbox())
    assert log.counts(a.ws)["pending"] == 1
    assert log.clock(a.ws) == own.clock
    assert log.record(a.ws, report, "label", {"name": "armed", "present": True}).clock == (
        own.clock + 1
    )


# --- notes and replies are keyed by (author, id) (§17.10) -----------------------------------


def test_a_teammate_reusing_note_and_reply_ids_adds_their_own(
    pair: Pair, relay: Relay, tmp_path: Path
) -> None:
    a, b = pair
    mallory = Station(tmp_path / "m", "reviewer-3")
    report = _started(pair, relay, mallory)
    keys = [a.public, b.public, mallory.public]
    actions.set_label(a.ws, report, "piracy")
    note = actions.add_note(a.ws, report, "Reporter is credible; I called the agent.")
    reply = actions.reply(a.ws, report, "Thank you, we are looking into it.", "under-review")
    from_a = [team_item(signed, keys) for _, signed in log.outgoing(a.ws)]
    forged = [
        wire.make_signed(mallory.keys.signing, report=report, field="note", clock=1,
                         directory_serial=1,
                         value={"note_id": note["note_id"], "text": "Not credible; ignore."}),
        wire.make_signed(mallory.keys.signing, report=report, field="reply", clock=1,
                         directory_serial=1,
                         value={"reply_id": reply["reply_id"], "status": "closed",
                                "message": "Closed: not an incident.",
                                "written_on": reply["written_on"], "in_reply_to": None}),
    ]  # fmt: skip
    from_m = [team_item(signed, keys) for signed in forged]
    b.take(relay.inbox(team=from_a))
    b.take(relay.inbox(team=from_m))
    a.take(relay.inbox(team=from_m[::-1]))
    assert a.team(report) == b.team(report)
    notes = {(n["who"], n["text"]) for n in b.team(report)["notes"]}
    assert notes == {("reviewer-1", "Reporter is credible; I called the agent."),
                     ("reviewer-3", "Not credible; ignore.")}  # fmt: skip
    said = {(r["who"], r["message"]) for r in b.team(report)["replies"]}
    assert ("reviewer-1", "Thank you, we are looking into it.") in said
    assert ("reviewer-3", "Closed: not an incident.") in said
    # the conversation: A keeps its own reply as written and shows Mallory's beside it;
    # B shows both as teammates' replies
    on_a = a.ws.report(report).record["replies"]  # type: ignore[union-attr]
    on_b = b.ws.report(report).record["replies"]  # type: ignore[union-attr]
    assert [(r.get("team", False), r["message"]) for r in on_a] == [
        (False, "Thank you, we are looking into it."),
        (True, "Closed: not an incident."),
    ]
    assert sorted(r["message"] for r in on_b) == sorted(r["message"] for r in on_a)
    assert all(r["team"] for r in on_b)


# --- one import verifies and folds once (§17.10) --------------------------------------------


def test_an_import_verifies_each_update_once_and_folds_each_report_once(
    pair: Pair, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    report = _started(pair, relay)
    count = 60
    items = [
        team_item(wire.make_signed(b.keys.signing, report=report, field="label",
                                   value={"name": f"l{i % 7}", "present": bool(i % 2)},
                                   clock=i + 1, directory_serial=1), [a.public, b.public])
        for i in range(count)
    ]  # fmt: skip
    verified, folded = [], []
    real_verify, real_merge = wire.verify_signature, log.merge.merge
    monkeypatch.setattr(wire, "verify_signature",
                        lambda *args: verified.append(1) or real_verify(*args))  # fmt: skip
    monkeypatch.setattr(log.merge, "merge", lambda *args: folded.append(1) or real_merge(*args))
    result = a.take(relay.inbox(team=items))
    assert result.team is not None
    assert result.team.accepted == count
    assert len(verified) == count  # before: about count² / 2
    assert len(folded) == 1
    monkeypatch.undo()
    # the same state as folding them one at a time
    for _, envelope in items:
        log.receive(b.ws, wire.open_update(envelope, b.identity))
    assert a.team(report) == b.team(report)


# --- a reply whose team copy does not fit (§17.13) ------------------------------------------


def test_a_long_reply_reaches_the_reporter_whole_and_the_team_shortened(
    pair: Pair, relay: Relay
) -> None:
    a, b = pair
    report = _started(pair, relay)
    message = "海" * 15_000  # allowed (20,000 characters), but 45,000 bytes of UTF-8
    sent = actions.reply(a.ws, report, message, "under-review")
    assert sent["team_copy_shortened"] is True
    assert a.ws.report(report).record["replies"][0]["message"] == message  # type: ignore[union-attr]
    ((_, signed),) = log.outgoing(a.ws)
    shared = wire.check_signed(signed)
    assert shared.value["shortened"] is True
    assert 1_000 < len(shared.value["message"]) < len(message)
    assert message.startswith(shared.value["message"])
    # the longest start that fits: one more character would not
    longer = {**shared.value, "message": message[: len(shared.value["message"]) + 1]}
    assert not wire.shareable(shared.author, report, "reply", longer)
    assert "the team's copy is shortened" in actions.history(a.ws, report)[-1]["what"]
    b.take(relay.inbox(team=[team_item(signed, [b.public])]))
    (theirs,) = b.ws.report(report).record["replies"]  # type: ignore[union-attr]
    assert theirs["shortened"] is True
    assert "the team's copy is shortened" in actions.history(b.ws, report)[-1]["what"]
    # a reply that fits is shared whole, without the member
    actions.reply(a.ws, report, "海" * 10_000, None)
    whole = wire.check_signed(log.outgoing(a.ws)[-1][1])
    assert "shortened" not in whole.value
