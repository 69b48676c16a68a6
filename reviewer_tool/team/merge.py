"""One report's team state, folded from the team updates accepted for it.

Every workstation holds the same set of updates sooner or later, but never in
the same order: bundles cross, are imported twice, arrive after the report
they describe. So the state is a pure function of the *set*: the updates are
sorted by ``(clock, author, id)`` (crypto/SPEC.md, team updates: the greater
triple wins a conflict), duplicates dropped by (author, id), and folded in
that order. Triage and assignment keep the last value; a label or a link
keeps the last "present" said about that one name or report; notes and
replies are appended once each per (author, note or reply id), so that one
author reusing another's id adds their own entry and never replaces the
other's. Two workstations with the same updates therefore show the same
triage, labels, notes and history, whoever edited last on which machine.

:func:`materialise` writes the folded state into the workspace, where the
CLI and the desk read it: the record's ``team``, ``triage`` and ``replies``,
and the summary's ``status``, ``grade``, ``labels`` and ``assignee`` (what the
queue filters on without decrypting whole records).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from reviewer_tool.team.wire import Update
from reviewer_tool.workspace import Item, Workspace

Labels = Callable[[str], str | None]
#: the fields this version folds (reviewer_tool/team/wire.py refuses any other)
#: the record's ``triage`` as cmd_triage always wrote it
TRIAGE_KEYS = ("status", "grade", "duplicate_of", "on")
KNOWN = frozenset({"triage", "assignee", "label", "link", "note", "reply"})


@dataclass
class TeamState:
    """What the team has said about one report, folded (see the module docstring)."""

    triage: dict[str, Any] | None = None
    assignee: str | None = None
    labels: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def order_key(update: Update) -> tuple[int, str, str, str]:
    """Where ``update`` goes in the fold; the greater key wins a conflict.

    The last member only separates two different updates that claim the same
    id (a faulty or hostile author): without it their order, and so the
    state, would depend on the order they arrived in.
    """
    canonical = json.dumps(asdict(update), sort_keys=True, ensure_ascii=True)
    return (update.clock, update.author, update.id, canonical)


def in_order(updates: Iterable[Update]) -> list[Update]:
    """``updates`` sorted by :func:`order_key`, each (author, id) once (the first in that
    order): an id only names an update among its author's."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for update in sorted(updates, key=order_key):
        if (update.author, update.id) not in seen:
            seen.add((update.author, update.id))
            unique.append(update)
    return unique


def short_author(author: str) -> str:
    """A key without a label, shown by the start of its token (enough to tell keys apart)."""
    return author[:15] + "…"


def minute(made_at: str) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` as ``YYYY-MM-DD HH:MM`` (UTC), for the history."""
    return f"{made_at[:10]} {made_at[11:16]}"


def _describe(update: Update) -> str:
    """One line saying what ``update`` did; never the text of a note or reply."""
    value = update.value
    if update.field == "triage":
        what = f"{value['status']}, graded {value['grade']}"
        if value.get("duplicate_of"):
            what += f", duplicate of {value['duplicate_of'][:12]}"
        return what
    if update.field == "assignee":
        return f"assigned to {value['label']}" if value["label"] else "assignment removed"
    if update.field == "label":
        return f"label '{value['name']}' {'added' if value['present'] else 'removed'}"
    if update.field == "link":
        other = value["other"][:12]
        return f"linked as duplicate of {other}" if value["present"] else f"link to {other} removed"
    if update.field == "note":
        return "team note"
    shortened = "; the team's copy is shortened" if value.get("shortened") else ""
    if not value.get("status"):
        return f"replied to the reporter{shortened}"
    if value.get("message"):
        return f"replied to the reporter (status {value['status']}){shortened}"
    return f"set the status the reporter sees to {value['status']}"


def merge(updates: Iterable[Update], labels: Labels) -> TeamState:
    """The team state of one report from its accepted updates (pure; any order, any repeats).

    ``labels(author)`` names an author (their directory label), or None when
    the author has no label, and then the start of their key is shown.
    """
    state = TeamState()
    present: dict[tuple[str, str], bool] = {}
    names: dict[str, str] = {}
    # keyed by author too: a teammate reusing another's note or reply id must
    # not shadow theirs (crypto/SPEC.md §17, Merge)
    seen_notes: set[tuple[str, str]] = set()
    seen_replies: set[tuple[str, str]] = set()
    for update in in_order(updates):
        if update.field not in KNOWN:
            continue
        if update.author not in names:
            names[update.author] = labels(update.author) or short_author(update.author)
        who, at, value = names[update.author], minute(update.made_at), update.value
        if update.field == "triage":
            state.triage = {
                "status": value["status"],
                "grade": value["grade"],
                "duplicate_of": value.get("duplicate_of"),
                "on": update.made_at[:10],
                "by": who,
            }
        elif update.field == "assignee":
            state.assignee = value["label"]
        elif update.field == "label":
            present[("label", value["name"])] = bool(value["present"])
        elif update.field == "link":
            present[("link", value["other"])] = bool(value["present"])
        elif update.field == "note" and (update.author, value["note_id"]) not in seen_notes:
            seen_notes.add((update.author, value["note_id"]))
            state.notes.append({"note_id": value["note_id"], "text": value["text"],
                                "author": update.author, "who": who, "at": at})  # fmt: skip
        elif update.field == "reply" and (update.author, value["reply_id"]) not in seen_replies:
            seen_replies.add((update.author, value["reply_id"]))
            state.replies.append({**_reply(value), "author": update.author, "who": who,
                                  "at": at, "written_at": _iso(update.made_at)})  # fmt: skip
        state.history.append({"at": at, "who": who, "what": _describe(update)})
    state.labels = sorted(name for (kind, name), on in present.items() if kind == "label" and on)
    state.links = sorted(other for (kind, other), on in present.items() if kind == "link" and on)
    return state


def _reply(value: dict[str, Any]) -> dict[str, Any]:
    keys = ("reply_id", "status", "message", "written_on", "in_reply_to")
    return {**{key: value.get(key) for key in keys}, "shortened": bool(value.get("shortened"))}


def _iso(made_at: str) -> str:
    """``made_at`` in the form local replies keep their ``written_at`` (microseconds, +00:00),
    so that reviewer_tool/followups.py orders both kinds alike."""
    return f"{made_at[:19]}.000000+00:00"


# --- writing the state into the workspace ------------------------------------------------


def materialise(ws: Workspace, reports: Iterable[str]) -> None:
    """Fold and store the team state of each of ``reports`` that is in the workspace.

    A report with no team update at all is left as it is (its triage may
    predate team updates); one not in the workspace yet is skipped, and
    folded when it is imported.
    """
    with ws.transaction():
        write_states(ws, reports)


def write_states(ws: Workspace, reports: Iterable[str]) -> None:
    """:func:`materialise` inside a transaction the caller holds."""
    from reviewer_tool.team import log  # log records through this module

    wanted = log.reports_with_updates(ws, reports)
    if not wanted:
        return
    label = author_labels(ws)
    mine = str(ws.keys.signing.token)
    for report in sorted(wanted):
        item = ws.report(report)
        if item is not None:
            apply_state(item, merge(log.accepted(ws, report), label), mine)
            ws.put_item(item)


def author_labels(ws: Workspace) -> Labels:
    """Names for authors: this workstation's own label for its key, else the label the
    newest key directory gives the author's signing key (None: not listed)."""
    from reviewer_tool.team import directories

    mine = str(ws.keys.signing.token)

    @cache
    def label(author: str) -> str | None:
        return directories.my_label(ws) if author == mine else directories.label_of(ws, author)

    return label


def apply_state(item: Item, state: TeamState, mine: str) -> None:
    """Write ``state`` into ``item``'s record and summary (in memory); ``mine`` is this
    workstation's signing key token, the author of the replies kept locally."""
    before = item.record.get("team") or {}
    item.record["team"] = asdict(state)
    if state.triage is not None:
        triage = state.triage
        item.record["triage"] = {
            key: triage[key] for key in ("status", "grade", "duplicate_of", "on")
        }
        item.summary.update(status=triage["status"], grade=triage["grade"])
    elif before.get("triage"):
        # the triage came from an update no longer accepted (a newer directory refused it)
        item.record["triage"] = None
        item.summary.update(status="new", grade=None)
    item.summary["labels"] = state.labels
    item.summary["assignee"] = state.assignee
    local = item.record.get("replies") or []
    item.record["replies"] = merged_replies(local, state.replies, mine)


def merged_replies(
    local: Sequence[dict[str, Any]], team: Sequence[dict[str, Any]], mine: str
) -> list[dict[str, Any]]:
    """This workstation's own replies as written, then the team's replies but the team
    copies of those (the ones ``mine`` wrote under the same reply ids).

    A teammate's reply is marked ``"team": True`` and carries ``who`` and
    ``author``; it was sent to the portal by its author and is never queued
    again here. A teammate's reply that reuses one of ours' ids is theirs, and
    is shown beside ours (keyed by author and id, as in :func:`merge`). Marked
    entries are rebuilt from ``team`` each time, so one whose update is no
    longer accepted disappears.
    """
    own = [reply for reply in local if not reply.get("team")]
    ids = {reply["reply_id"] for reply in own}
    return own + [
        {**reply, "team": True}
        for reply in team
        if not (reply.get("author") == mine and reply["reply_id"] in ids)
    ]
