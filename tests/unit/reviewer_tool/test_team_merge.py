"""The team state is a function of the set of updates: order and repeats change nothing."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewer_tool.admiralty import CREDIBILITY, RELIABILITY, describe
from reviewer_tool.team.merge import TeamState, apply_state, merge, merged_replies
from reviewer_tool.team.wire import Update
from reviewer_tool.workspace import Item

REPORT = "ab" * 16
OTHER = "cd" * 16
ALICE = "csosig1" + "a" * 52
BOB = "csosig1" + "b" * 52
CAROL = "csosig1" + "c" * 52
LABELS = {ALICE: "reviewer-1", BOB: "reviewer-2"}


def label(author: str) -> str | None:
    return LABELS.get(author)


def update(
    field: str,
    value: dict[str, Any],
    *,
    clock: int = 1,
    author: str = ALICE,
    update_id: str | None = None,
    made_at: str = "2026-11-21T08:30:15Z",
) -> Update:
    return Update(
        id=update_id or secrets.token_hex(16),
        author=author,
        directory_serial=1,
        clock=clock,
        made_at=made_at,
        report=REPORT,
        field=field,
        value=value,
    )


def triage(status: str, grade: str, **kwargs: Any) -> Update:
    return update("triage", {"status": status, "grade": grade, "duplicate_of": None}, **kwargs)


# --- properties ---------------------------------------------------------------------------

_hex = st.binary(min_size=16, max_size=16).map(bytes.hex)
_pick = st.sampled_from
_values = st.one_of(
    st.tuples(st.just("triage"), st.fixed_dictionaries({
        "status": _pick(["confirmed", "unconfirmed", "rejected"]),
        "grade": _pick(["A1", "B2", "F6"]), "duplicate_of": _pick([None, OTHER])})),
    st.tuples(st.just("assignee"), st.fixed_dictionaries({"label": _pick([None, "r1", "r2"])})),
    st.tuples(st.just("label"), st.fixed_dictionaries({
        "name": _pick(["boarding", "theft"]), "present": st.booleans()})),
    st.tuples(st.just("link"), st.fixed_dictionaries({
        "other": _pick([OTHER, "ef" * 16]), "present": st.booleans()})),
    st.tuples(st.just("note"), st.fixed_dictionaries({
        "note_id": _pick(["01" * 16, "02" * 16]), "text": st.text(min_size=1, max_size=5)})),
    st.tuples(st.just("reply"), st.fixed_dictionaries({
        "reply_id": _pick(["03" * 16, "04" * 16]), "status": _pick([None, "closed"]),
        "message": st.just("hello"), "written_on": st.just("2026-11-21"),
        "in_reply_to": st.just(None)})),
)  # fmt: skip
_updates = st.lists(
    st.builds(
        lambda fv, clock, author, update_id: update(fv[0], fv[1], clock=clock, author=author,
                                                    update_id=update_id),
        _values, st.integers(1, 4), st.sampled_from([ALICE, BOB, CAROL]), _hex,
    ),
    max_size=12,
    unique_by=lambda u: u.id,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(data=st.data(), updates=_updates)
def test_any_order_and_any_repeats_give_the_same_state(
    data: st.DataObject, updates: list[Update]
) -> None:
    shuffled = data.draw(st.permutations(updates))
    repeats = data.draw(st.lists(st.sampled_from(updates), max_size=8)) if updates else []
    assert merge(shuffled + repeats, label) == merge(updates, label)


@settings(max_examples=50, deadline=None)
@given(updates=_updates, data=st.data())
def test_two_updates_claiming_one_id_fold_the_same_either_way(
    updates: list[Update], data: st.DataObject
) -> None:
    """A faulty author may reuse an id; the state must still not depend on arrival order."""
    if not updates:
        return
    twin = update("note", {"note_id": "09" * 16, "text": "other"}, clock=updates[0].clock,
                  author=updates[0].author, update_id=updates[0].id)  # fmt: skip
    everything = [*updates, twin]
    assert merge(data.draw(st.permutations(everything)), label) == merge(everything, label)


# --- the rules ----------------------------------------------------------------------------


def test_the_greater_clock_wins_then_the_greater_author_then_the_greater_id() -> None:
    later = triage("rejected", "E5", clock=3)
    assert merge([later, triage("confirmed", "A1", clock=2)], label).triage["status"] == "rejected"
    # a tie on the clock: the author token decides (BOB > ALICE), whichever was made last
    tie = [triage("confirmed", "B2", clock=5, author=BOB), triage("rejected", "C3", clock=5)]
    assert merge(tie, label).triage["grade"] == "B2"
    same = [
        triage("confirmed", "A1", update_id="0" * 32),
        triage("rejected", "F6", update_id="f" * 32),
    ]
    assert merge(same, label).triage["grade"] == "F6"


def test_triage_keeps_its_day_and_author() -> None:
    state = merge([triage("confirmed", "B2", author=BOB)], label)
    assert state.triage == {"status": "confirmed", "grade": "B2", "duplicate_of": None,
                            "on": "2026-11-21", "by": "reviewer-2"}  # fmt: skip


def test_labels_and_links_are_last_writer_wins_each() -> None:
    state = merge(
        [
            update("label", {"name": "boarding", "present": True}, clock=1),
            update("label", {"name": "theft", "present": True}, clock=1, author=BOB),
            update("label", {"name": "boarding", "present": False}, clock=2, author=BOB),
            update("link", {"other": OTHER, "present": True}, clock=1),
            update("link", {"other": "ef" * 16, "present": True}, clock=2),
            update("link", {"other": "ef" * 16, "present": False}, clock=1, author=BOB),
        ],
        label,
    )
    assert state.labels == ["theft"]
    assert state.links == sorted([OTHER, "ef" * 16])  # the removal came before the link


def test_assignment_can_be_removed() -> None:
    state = merge([update("assignee", {"label": "reviewer-2"}, clock=1),
                   update("assignee", {"label": None}, clock=2)], label)  # fmt: skip
    assert state.assignee is None
    assert [h["what"] for h in state.history] == ["assigned to reviewer-2", "assignment removed"]


def test_notes_and_replies_are_appended_once_in_order() -> None:
    note = {"note_id": "01" * 16, "text": "SECRET-NOTE-TEXT"}
    message = {"reply_id": "03" * 16, "status": "closed", "message": "SECRET-REPLY",
               "written_on": "2026-11-21", "in_reply_to": None}  # fmt: skip
    state = merge(
        [
            update("note", {"note_id": "02" * 16, "text": "second"}, clock=2, author=CAROL),
            update("note", note, clock=1),
            update("note", {**note, "text": "the same id again"}, clock=3),
            update("reply", message, clock=4, author=BOB),
        ],
        label,
    )
    assert [n["text"] for n in state.notes] == ["SECRET-NOTE-TEXT", "second"]
    assert state.notes[1]["who"] == CAROL[:15] + "…"  # no label: the start of the key
    assert state.replies[0]["who"] == "reviewer-2"
    assert state.replies[0]["written_at"] == "2026-11-21T08:30:15.000000+00:00"
    # one history entry per update, without any note's or reply's text
    assert [h["what"] for h in state.history] == [
        "team note", "team note", "team note", "replied to the reporter (status closed)",
    ]  # fmt: skip
    assert "SECRET" not in repr(state.history)
    assert state.history[0] == {"at": "2026-11-21 08:30", "who": "reviewer-1", "what": "team note"}


def test_history_says_what_each_change_was() -> None:
    state = merge(
        [
            update("triage", {"status": "confirmed", "grade": "B2", "duplicate_of": OTHER}),
            update("label", {"name": "boarding", "present": True}, clock=2),
            update("link", {"other": OTHER, "present": True}, clock=3),
            update("reply", {"reply_id": "03" * 16, "status": "closed", "message": None,
                             "written_on": "2026-11-21", "in_reply_to": None}, clock=4),
        ],
        label,
    )  # fmt: skip
    assert [h["what"] for h in state.history] == [
        f"confirmed, graded B2, duplicate of {OTHER[:12]}",
        "label 'boarding' added",
        f"linked as duplicate of {OTHER[:12]}",
        "set the status the reporter sees to closed",
    ]


# --- writing the state into a report -----------------------------------------------------


def _item(**record: Any) -> Item:
    return Item(REPORT, {"status": "new", "grade": None}, {"replies": [], **record})


def test_a_triage_made_before_team_updates_stays() -> None:
    before = {"status": "confirmed", "grade": "C3", "duplicate_of": None, "on": "2026-01-02"}
    item = _item(triage=dict(before))
    item.summary.update(status="confirmed", grade="C3")
    apply_state(item, merge([update("label", {"name": "x", "present": True})], label), ALICE)
    assert item.record["triage"] == before
    assert item.summary == {"status": "confirmed", "grade": "C3", "labels": ["x"], "assignee": None}


def test_a_triage_update_sets_the_record_and_the_summary() -> None:
    item = _item(triage=None)
    apply_state(item, merge([triage("rejected", "D4")], label), ALICE)
    assert item.record["triage"] == {"status": "rejected", "grade": "D4", "duplicate_of": None,
                                     "on": "2026-11-21"}  # fmt: skip
    assert (item.summary["status"], item.summary["grade"]) == ("rejected", "D4")
    assert item.record["team"] == asdict(merge([triage("rejected", "D4")], label)) | {
        "history": item.record["team"]["history"]
    }
    # the update is later refused (a newer directory): the team's triage goes with it
    apply_state(item, TeamState(), ALICE)
    assert item.record["triage"] is None
    assert item.summary["status"] == "new"


def test_replies_merge_by_id_keeping_the_local_copy() -> None:
    own = {"reply_id": "03" * 16, "message": "mine",
           "written_at": "2026-11-21T09:00:00.123456+00:00"}  # fmt: skip
    copy = {**own, "written_at": "2026-11-21T09:00:00.000000+00:00", "who": "reviewer-1"}
    theirs = {"reply_id": "04" * 16, "message": "theirs", "who": "reviewer-2", "author": BOB}
    team = [{**copy, "author": ALICE}, theirs]
    merged = merged_replies([own], team, ALICE)
    assert merged[0] is own
    assert merged[1]["message"] == "theirs"
    assert merged[1]["team"] is True
    # rebuilt each time: a teammate's reply whose update is gone disappears
    assert merged_replies(merged, team[:1], ALICE) == [own]


def test_a_teammate_reusing_our_reply_id_is_shown_beside_our_reply() -> None:
    """§17.10: a reply is ours only when we wrote it, whatever id it names."""
    own = {"reply_id": "03" * 16, "message": "mine"}
    theirs = {"reply_id": "03" * 16, "message": "not mine", "author": BOB, "who": "reviewer-2"}
    team = [{**own, "author": ALICE, "who": "reviewer-1"}, theirs]
    merged = merged_replies([own], team, ALICE)
    assert [(r["message"], r.get("team", False)) for r in merged] == [
        ("mine", False),
        ("not mine", True),
    ]


def test_a_note_or_reply_id_names_an_entry_among_its_authors_only() -> None:
    """§17.10: another author reusing an id adds their own entry, in any order."""
    note = {"note_id": "01" * 16, "text": "the original"}
    message = {"reply_id": "03" * 16, "status": None, "message": "the original",
               "written_on": "2026-11-21", "in_reply_to": None}  # fmt: skip
    updates = [
        update("note", note, clock=5),
        update("reply", message, clock=6),
        update("note", {**note, "text": "shadow"}, clock=1, author=BOB),
        update("reply", {**message, "message": "shadow"}, clock=1, author=BOB),
    ]
    state = merge(updates, label)
    assert [(n["who"], n["text"]) for n in state.notes] == [
        ("reviewer-2", "shadow"), ("reviewer-1", "the original"),
    ]  # fmt: skip
    assert [(r["author"], r["message"]) for r in state.replies] == [
        (BOB, "shadow"), (ALICE, "the original"),
    ]  # fmt: skip
    assert merge(updates[::-1], label) == state


def test_a_shortened_reply_says_so_in_the_history() -> None:
    """§17.13: the team's copy of a long reply is cut, and every reader says so."""
    message = {"reply_id": "03" * 16, "status": "closed", "message": "the start",
               "written_on": "2026-11-21", "in_reply_to": None, "shortened": True}  # fmt: skip
    state = merge([update("reply", message)], label)
    assert state.replies[0]["shortened"] is True
    assert state.history[0]["what"] == (
        "replied to the reporter (status closed); the team's copy is shortened"
    )
    whole = merge([update("reply", {**message, "shortened": False})], label)
    assert whole.replies[0]["shortened"] is False
    assert whole.history[0]["what"] == "replied to the reporter (status closed)"


def test_the_admiralty_scales_explain_a_grade() -> None:
    assert len(RELIABILITY) == 6
    assert len(CREDIBILITY) == 6
    assert describe("B2") == "source usually reliable, information probably true"
