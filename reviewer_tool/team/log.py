"""The team log: every team update this workstation holds, and the reviewer's personal notes.

Tables, made on demand so that an older workspace gains them without a
migration::

    team_event(id, report, signed, state, reason)   one row per update, whoever made it;
        signed = the signed document, sealed under the workspace key;
        state = accepted | pending | refused (reviewer_tool/team/directories.py)
    team_outgoing(id, exported_in)                  this workstation's own updates,
        until a bundle carries them (reviewer_tool/team/exchange.py)
    personal_note(id, report, sealed)               notes for this reviewer alone: never
        in a team update, never exported, never forwarded

The log only grows. An update is kept under its id once, whatever its
state, so receiving it again changes nothing; a refused one stays with its
reason, so that ``reviewer team`` can say why. The ids and report ids in the
clear are random, like the workspace's other structural columns.

The Lamport clock (the greatest clock of any accepted update) is kept in the
workspace meta ``team_clock``, so that making an update does not decrypt the
whole log; it is counted again from the accepted updates whenever they are
admitted again, so that an update refused since then no longer holds it up.
A new own update takes one more, but never more than the greatest clock a
reader takes (crypto/SPEC.md §17, Merge): at that cap own updates tie with
the update that reached it and the (author, id) order decides, and work goes on.

Verifying signatures is most of what reading the log costs. An import
(reviewer_tool/team/exchange.py) runs inside :func:`one_pass`, which
remembers each document verified during it, so that receiving an update and
folding its report afterwards check its signature once, not once per fold.
"""

from __future__ import annotations

import hashlib
import secrets
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from reviewer_tool.team import directories, merge
from reviewer_tool.team.wire import MAX_CLOCK, Update, check_signed, check_value, make_signed
from reviewer_tool.workspace import Workspace

_TABLES = (
    "CREATE TABLE IF NOT EXISTS team_event (id TEXT PRIMARY KEY, report TEXT NOT NULL,"
    " signed BLOB NOT NULL, state TEXT NOT NULL, reason TEXT)",
    "CREATE INDEX IF NOT EXISTS team_event_report ON team_event (report)",
    "CREATE TABLE IF NOT EXISTS team_outgoing (id TEXT PRIMARY KEY, exported_in TEXT)",
    "CREATE TABLE IF NOT EXISTS personal_note (id TEXT PRIMARY KEY, report TEXT NOT NULL,"
    " sealed BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS personal_note_report ON personal_note (report)",
)
_READY: weakref.WeakSet[Workspace] = weakref.WeakSet()
#: per workspace, during :func:`one_pass`: SHA-256 of a signed document -> its checked update
_PASSES: weakref.WeakKeyDictionary[Workspace, dict[bytes, Update]] = weakref.WeakKeyDictionary()
STATES = ("accepted", "pending", "refused")
_FEW = 64


def ensure_tables(ws: Workspace) -> None:
    """Create the team tables if this workspace has none yet (once per opened workspace)."""
    if ws in _READY:
        return
    for statement in _TABLES:
        ws.db.execute(statement)  # not executescript: that would commit a caller's transaction
    _READY.add(ws)


def clock(ws: Workspace) -> int:
    """The greatest clock of any accepted update held (0 when none)."""
    return int(ws.meta("team_clock") or 0)


@contextmanager
def one_pass(ws: Workspace) -> Iterator[None]:
    """Within this block, :func:`checked` verifies each distinct signed document once.

    The same bytes always give the same verdict, so remembering it is safe;
    the memory is dropped when the block ends (nested blocks share the outer one's).
    """
    if ws in _PASSES:
        yield
        return
    _PASSES[ws] = {}
    try:
        yield
    finally:
        _PASSES.pop(ws, None)


def checked(ws: Workspace, signed: bytes) -> Update:
    """:func:`reviewer_tool.team.wire.check_signed`, remembered during :func:`one_pass`."""
    memory = _PASSES.get(ws)
    if memory is None:
        return check_signed(signed)
    digest = hashlib.sha256(signed).digest()
    update = memory.get(digest)
    if update is None:
        update = memory[digest] = check_signed(signed)
    return update


def _advance(ws: Workspace, seen: int) -> None:
    if seen > clock(ws):
        ws.set_meta("team_clock", str(seen))


def _insert(ws: Workspace, update: Update, signed: bytes, state: str, reason: str) -> None:
    ws.db.execute(
        "INSERT INTO team_event (id, report, signed, state, reason) VALUES (?, ?, ?, ?, ?)",
        (update.id, update.report, ws.seal(signed), state, reason or None),
    )
    if state == "accepted":
        _advance(ws, update.clock)


def own_author(ws: Workspace) -> str:
    """The token of this workstation's signing key, the author of its own updates."""
    return str(ws.keys.signing.token)


def directory_serial(ws: Workspace) -> int:
    """The serial a new update names: the newest directory held, or 0 when none is."""
    newest = directories.newest(ws)
    return newest.serial if newest is not None else 0


def record_in(ws: Workspace, report: str, field: str, value: dict[str, Any], serial: int) -> Update:
    """Make, store and queue an own update inside the caller's transaction (no folding).

    ``serial`` comes from :func:`directory_serial`, read before the
    transaction began.
    """
    ensure_tables(ws)
    shape = check_value(field, value)
    # at the cap the new update ties with the one that reached it; (author, id) decides
    after = min(clock(ws) + 1, MAX_CLOCK)
    signed = make_signed(ws.keys.signing, report=report, field=field, value=shape,
                         clock=after, directory_serial=serial)  # fmt: skip
    update = checked(ws, signed)
    _insert(ws, update, signed, "accepted", "")
    ws.db.execute("INSERT INTO team_outgoing (id, exported_in) VALUES (?, NULL)", (update.id,))
    return update


def record(ws: Workspace, report: str, field: str, value: dict[str, Any]) -> Update:
    """Make this workstation's update about ``report``, apply it, and queue it for export.

    Own updates are always accepted here: the author is this workstation.
    Raises TeamUpdateError (a ReviewerError) for a value of the wrong shape.
    """
    ensure_tables(ws)
    serial = directory_serial(ws)
    with ws.transaction():
        update = record_in(ws, report, field, value, serial)
        merge.write_states(ws, {report})
    return update


def receive(ws: Workspace, signed: bytes, *, defer: bool = False) -> str:
    """Store a teammate's update (idempotent by id) and apply it if it is admitted.

    Returns its state: "accepted", "pending" or "refused" (an update already
    held keeps the state it has). Raises TeamUpdateError when the document
    does not verify; nothing is stored then, since nothing in it can be trusted.

    With ``defer`` the update is only stored, inside the caller's transaction,
    and the caller folds every report it received updates about once at the
    end (:func:`reviewer_tool.team.merge.write_states`): folding after each of
    N updates about one report would read the report's updates N times.
    """
    update = checked(ws, signed)
    ensure_tables(ws)
    row = ws.db.execute("SELECT state FROM team_event WHERE id = ?", (update.id,)).fetchone()
    if row is not None:
        return str(row[0])
    if update.author == own_author(ws):
        state, reason = "accepted", ""  # our own, come back through the portal
    else:
        state, reason = directories.admission(ws, update)
    if defer:
        _insert(ws, update, signed, state, reason)
        return state
    with ws.transaction():
        _insert(ws, update, signed, state, reason)
        if state == "accepted":
            merge.write_states(ws, {update.report})
    return state


def reevaluate(ws: Workspace) -> None:
    """Admit again every teammate's update held, after a new key directory arrived.

    A pending update may now be accepted or refused, and a newer directory
    can also change the verdict on one already decided (crypto/SPEC.md, team
    updates: admission); every report whose accepted set changed is folded again.
    The clock is counted again from the updates accepted now.
    """
    ensure_tables(ws)
    mine = own_author(ws)
    changes = []
    reports = set()
    greatest = 0
    for event_id, report, sealed, state, reason in ws.db.execute(
        "SELECT id, report, signed, state, reason FROM team_event ORDER BY rowid"
    ).fetchall():
        update = checked(ws, ws.unseal(sealed))
        if update.author == mine:
            greatest = max(greatest, update.clock)  # own updates are always applied
            continue
        verdict, why = directories.admission(ws, update)
        if verdict == "accepted":
            greatest = max(greatest, update.clock)
        if (verdict, why or None) != (state, reason):
            changes.append((verdict, why or None, event_id))
            if "accepted" in (state, verdict):
                reports.add(report)
    if not changes and greatest == clock(ws):
        return
    with ws.transaction():
        ws.db.executemany("UPDATE team_event SET state = ?, reason = ? WHERE id = ?", changes)
        ws.set_meta("team_clock", str(greatest))
        merge.write_states(ws, reports)


def accepted(ws: Workspace, report: str) -> list[Update]:
    """The accepted updates about ``report``, in the order they were stored."""
    ensure_tables(ws)
    rows = ws.db.execute(
        "SELECT signed FROM team_event WHERE report = ? AND state = 'accepted' ORDER BY rowid",
        (report,),
    )
    return [checked(ws, ws.unseal(sealed)) for (sealed,) in rows.fetchall()]


def reports_with_updates(ws: Workspace, among: Iterable[str]) -> set[str]:
    """Those of ``among`` that some held update (in any state) is about.

    A few reports are looked up one by one (a change made here); many, such
    as a whole import, by one pass over the log's report index.
    """
    ensure_tables(ws)
    wanted = set(among)
    if len(wanted) <= _FEW:
        query = "SELECT 1 FROM team_event WHERE report = ? LIMIT 1"
        return {report for report in wanted if ws.db.execute(query, (report,)).fetchone()}
    return wanted & {row[0] for row in ws.db.execute("SELECT DISTINCT report FROM team_event")}


def outgoing(ws: Workspace) -> list[tuple[str, bytes]]:
    """This workstation's updates not yet carried by a bundle: (id, signed document)."""
    ensure_tables(ws)
    rows = ws.db.execute(
        "SELECT o.id, e.signed FROM team_outgoing o JOIN team_event e ON e.id = o.id"
        " WHERE o.exported_in IS NULL ORDER BY o.rowid"
    )
    return [(event_id, ws.unseal(sealed)) for event_id, sealed in rows.fetchall()]


def counts(ws: Workspace) -> dict[str, int]:
    """How many updates are held in each state, and how many own ones wait for export."""
    ensure_tables(ws)
    found: Counter[str] = Counter(dict.fromkeys(STATES, 0))
    found.update(dict(ws.db.execute("SELECT state, count(*) FROM team_event GROUP BY state")))
    (waiting,) = ws.db.execute(
        "SELECT count(*) FROM team_outgoing WHERE exported_in IS NULL"
    ).fetchone()
    return {**found, "waiting": int(waiting)}


def not_applied(ws: Workspace) -> list[dict[str, Any]]:
    """The pending and refused updates: id, report, author, state and reason."""
    ensure_tables(ws)
    rows = ws.db.execute(
        "SELECT signed, state, reason FROM team_event WHERE state != 'accepted' ORDER BY rowid"
    ).fetchall()
    shown = []
    for sealed, state, reason in rows:
        update = checked(ws, ws.unseal(sealed))
        shown.append({"id": update.id, "report": update.report, "author": update.author,
                      "field": update.field, "state": state, "reason": reason or ""})  # fmt: skip
    return shown


# --- personal notes ----------------------------------------------------------------------


def add_personal_note(ws: Workspace, report: str, text: str) -> dict[str, Any]:
    """Keep a note for this reviewer alone (sealed; never in a team update)."""
    ensure_tables(ws)
    note = {
        "note_id": secrets.token_hex(16),
        "text": text,
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    with ws.transaction():
        ws.db.execute(
            "INSERT INTO personal_note (id, report, sealed) VALUES (?, ?, ?)",
            (note["note_id"], report, ws.seal_json(note)),
        )
    return note


def personal_notes(ws: Workspace, report: str) -> list[dict[str, Any]]:
    """This reviewer's personal notes on ``report``, oldest first."""
    ensure_tables(ws)
    rows = ws.db.execute(
        "SELECT sealed FROM personal_note WHERE report = ? ORDER BY rowid", (report,)
    )
    return [ws.unseal_json(sealed) for (sealed,) in rows.fetchall()]
