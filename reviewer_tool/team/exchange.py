"""Team updates in bundles: read from the inbox bundle, written into the replies bundle.

The portal relays what it cannot read (crypto/SPEC.md §17.5-§17.11). An
inbox bundle may carry, besides reports, the organisation's key directory
(payload field ``directory``), the team updates other workstations sent
(items ``{"type": "team-update", "update_id": …}``) and the range of the
portal's team sequence they cover (``team_cursor``). A replies bundle carries
this workstation's own updates the same way, and ``team_acknowledges``, the
end of the contiguous team range it has imported, so the portal can stop
sending what has arrived.

The directory is read first: it decides which updates are admitted. An
update that does not open, parse or verify is never stored; its entry's id
and a one-line reason go into the result. Every update is received first and
each report they are about is folded once at the end, all in one
transaction: folding after each update would read a report's updates once
per update, and an import stopped half-way would leave reports unfolded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crypto.bundle import Bundle, BundleItem, BundleWriter
from crypto.errors import BundleError
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team import directories, wire
from reviewer_tool.workspace import Workspace

ITEM_TYPE = "team-update"
ITEM_MEMBERS = frozenset({"type", "update_id"})
CURSOR_META = "team_cursor"
#: the serials of the directories held when updates were last admitted again
_JUDGED_META = "team_directories_judged"
_HEX32 = re.compile(r"[0-9a-f]{32}")


@dataclass
class TeamImportResult:
    """What importing a bundle's team part did, for the closing message."""

    #: "absent" (none in the bundle), "new", "held", "unchecked" (no pinned key), "refused"
    directory: str = "absent"
    directory_serial: int | None = None
    #: why the directory was not checked or was refused (our words, never the bundle's)
    directory_problem: str | None = None
    accepted: int = 0
    pending: int = 0
    refused: int = 0
    already: int = 0
    not_for_you: int = 0
    #: (entry's update id or "entry N", reason) of items that did not open, parse or verify
    problems: list[tuple[str, str]] = field(default_factory=list)
    cursor_from: int | None = None
    cursor_to: int | None = None

    @property
    def items(self) -> int:
        """How many team items the bundle held."""
        return self.accepted + self.pending + self.refused + self.already + self.not_for_you

    def summary(self) -> str | None:
        """One line for the terminal, or None when the bundle had no team part."""
        if not self.items and self.directory == "absent":
            return None
        line = (
            f"team updates: {self.accepted} new accepted, {self.pending} pending,"
            f" {self.refused} refused"
        )
        if self.already:
            line += f", {self.already} already held"
        if self.not_for_you:
            line += f", {self.not_for_you} not addressed to this key"
        if self.directory == "new":
            line += f"; key directory {self.directory_serial} accepted"
        elif self.directory in ("unchecked", "refused"):
            line += f"; key directory not accepted: {self.directory_problem}"
        return line


def _log() -> Any:
    """The team log, imported when first needed (it imports this package's other modules)."""
    from reviewer_tool.team import log

    return log


def _directory(ws: Workspace, bundle: Bundle, result: TeamImportResult) -> None:
    """Keep the bundle's key directory if the pinned organisation key signed it (§17.8)."""
    text = bundle.fields.get("directory")
    if text is None:
        return
    if directories.organisation_key(ws) is None:
        result.directory = "unchecked"
        result.directory_problem = "no organisation key is pinned (`reviewer trust-org csosig1…`)"
        return
    try:
        if not isinstance(text, str):
            raise ReviewerError("key directory refused: the bundle's directory is not text")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ReviewerError("key directory refused: it is not UTF-8") from None
        stored = directories.store_directory(ws, data)
    except ReviewerError as error:
        result.directory, result.directory_problem = "refused", error.diagnostics()
        return
    if stored is None:
        result.directory = "held"
    else:
        result.directory, result.directory_serial = "new", stored.serial


def judge_again_if_needed(ws: Workspace) -> None:
    """Admit every held update again when the set of directories held changed (§17.9).

    Kept in the workspace rather than decided by "this import stored a new
    directory", so that an import stopped between the two still re-admits
    on the next run, and so that replacing the organisation key (which
    forgets the directories) is noticed too.
    """
    serials = ",".join(str(d.serial) for d in directories.held(ws))
    if (ws.meta(_JUDGED_META) or "") != serials:
        _log().reevaluate(ws)
        ws.set_meta(_JUDGED_META, serials)


def _entry_id(item: BundleItem) -> str | None:
    """The update id an item's entry names, or None when the entry is malformed."""
    meta = item.meta
    update_id = meta.get("update_id")
    if set(meta) != ITEM_MEMBERS or not isinstance(update_id, str):
        return None
    return update_id if _HEX32.fullmatch(update_id) else None


def _held_ids(ws: Workspace) -> set[str]:
    log = _log()
    log.ensure_tables(ws)
    return {row[0] for row in ws.db.execute("SELECT id FROM team_event")}


def _receive(
    ws: Workspace, bundle: Bundle, item: BundleItem, update_id: str, result: TeamImportResult
) -> tuple[wire.Update, str] | None:
    """Open, check and hand one item to the log (which stores it, folding nothing); count
    what happened; the update and its state if it was stored."""
    try:
        envelope = bundle.read_item(item)
    except BundleError as error:
        raise ReviewerError(f"{bundle.path}: {error.diagnostics()}") from None
    log = _log()
    try:
        signed = wire.open_update(envelope, ws.identity)
        update = log.checked(ws, signed)
        if update.id != update_id:
            raise wire.TeamUpdateError("its bundle entry names another update id")
    except wire.NotForYouError:
        result.not_for_you += 1  # sealed before this workstation was in the directory
        return None
    except wire.TeamUpdateError as error:
        result.refused += 1
        result.problems.append((update_id, error.diagnostics()))
        return None
    state = log.receive(ws, signed, defer=True)
    if state == "accepted":
        result.accepted += 1
    elif state == "pending":
        result.pending += 1
    else:
        result.refused += 1
    return update, state


def _cursor(ws: Workspace, bundle: Bundle, result: TeamImportResult) -> None:
    """Move the contiguous team mark along the bundle's range if it joins it (§17.11)."""
    cursor = bundle.fields.get(CURSOR_META)
    if not isinstance(cursor, dict):
        return
    start, end = cursor.get("from"), cursor.get("to")
    if type(start) is not int or type(end) is not int or not 0 <= start <= end:
        return
    result.cursor_from, result.cursor_to = start, end
    mark = team_mark(ws)
    if start <= mark < end:
        ws.set_meta(CURSOR_META, str(end))


def team_mark(ws: Workspace) -> int:
    """The end of the contiguous range of the portal's team sequence imported (0 at first)."""
    value = ws.meta(CURSOR_META)
    return int(value) if value is not None and value.isdigit() else 0


def import_team(ws: Workspace, bundle: Bundle, new_reports: Iterable[str] = ()) -> TeamImportResult:
    """Import a verified inbox bundle's key directory and team updates.

    ``new_reports`` are the reports this import just stored: team updates
    received before them are applied to them now. Called by
    reviewer_tool/importer.py after the reports are stored, so an
    interrupted import runs this again; receiving is idempotent (§15.3).
    """
    from reviewer_tool.team import merge

    result = TeamImportResult()
    with _log().one_pass(ws):
        _directory(ws, bundle, result)
        judge_again_if_needed(ws)
        with ws.transaction():
            reports = _receive_all(ws, bundle, result) | set(new_reports)
            _cursor(ws, bundle, result)
            merge.write_states(ws, reports)
    return result


def _receive_all(ws: Workspace, bundle: Bundle, result: TeamImportResult) -> set[str]:
    """Store every team item of ``bundle`` (inside the caller's transaction), folding
    nothing; return the reports that updates accepted now are about."""
    teamwork = any(item.meta.get("type") == ITEM_TYPE for item in bundle.items)
    held = _held_ids(ws) if teamwork else set()
    reports = set()
    for item in bundle.items:
        if item.meta.get("type") != ITEM_TYPE:
            continue  # reports and follow-ups: reviewer_tool/importer.py
        update_id = _entry_id(item)
        if update_id is None:
            result.refused += 1
            result.problems.append((f"entry {item.index + 1}", "its bundle entry is malformed"))
        elif update_id in held:
            result.already += 1
        elif (stored := _receive(ws, bundle, item, update_id, result)) is not None:
            held.add(update_id)  # only a verified one: a forged entry must not hide the real one
            update, state = stored
            if state == "accepted":
                reports.add(update.report)
    return reports


# --- export ---------------------------------------------------------------------------


def export_problem(ws: Workspace, now: datetime | None = None) -> str | None:
    """Why this workstation cannot send its team updates now, or None if it can (§17.5)."""
    directory = directories.newest(ws)
    if directory is None:
        return (
            "no key directory is held yet (pin the organisation key with `reviewer trust-org`,"
            " then import an inbox bundle)"
        )
    if directories.expired(directory, now):
        day = directory.expires_at.date().isoformat()
        return f"key directory {directory.serial} expired on {day}; import a newer inbox bundle"
    if not directories.listed(directory, str(ws.keys.signing.token)):
        return (
            f"this workstation's signing key is not in key directory {directory.serial};"
            " ask the operator to add it"
        )
    return None


def waiting(ws: Workspace) -> int:
    """How many of this workstation's updates no bundle has carried yet."""
    return len(_log().outgoing(ws))


def held_back(ws: Workspace, now: datetime | None = None) -> str | None:
    """The line to show when updates wait and cannot be sent ("N team update(s) waiting: …")."""
    problem = export_problem(ws, now)
    count = waiting(ws) if problem else 0
    return f"{count} team update(s) waiting: {problem}" if count else None


def add_team_updates(ws: Workspace, writer: BundleWriter) -> list[str]:
    """Seal each own update not yet exported to the newest directory's keys; return their ids.

    Adds nothing when :func:`export_problem` names a reason: the caller
    shows :func:`held_back`, so that updates never stay behind unsaid.
    """
    directory = directories.newest(ws)
    if directory is None or export_problem(ws) is not None:
        return []
    recipients = list(directory.recipient_keys)
    ids = []
    for update_id, signed in _log().outgoing(ws):
        writer.add(
            {"type": ITEM_TYPE, "update_id": update_id}, wire.seal_update(signed, recipients)
        )
        ids.append(update_id)
    return ids


def mark_team_exported(ws: Workspace, ids: Sequence[str], bundle_id: str) -> None:
    """Record that bundle ``bundle_id`` carries these updates (one statement; any transaction)."""
    if ids:
        ws.db.executemany(
            "UPDATE team_outgoing SET exported_in = ? WHERE id = ?",
            [(bundle_id, update_id) for update_id in ids],
        )


def acknowledgement(ws: Workspace) -> dict[str, int]:
    """The replies payload's ``team_acknowledges``, once some team range has been imported."""
    value = ws.meta(CURSOR_META)
    return {"team_acknowledges": team_mark(ws)} if value is not None else {}
