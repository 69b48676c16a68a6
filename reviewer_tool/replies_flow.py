"""The replies bundle: written the same way by ``reviewer export-replies`` and the desk.

A replies bundle (crypto/SPEC.md §15) carries to the portal the replies
queued on this workstation, the team updates it made (§17.4), and the
acknowledgement of the inbox bundles and team range imported so far. It is
written to a new temporary file beside ``out`` (a fresh random name, created
exclusively, so that a link planted in the folder is never written through)
and moved into place only when complete and signed; the replies and updates
are marked exported only then, so an interrupted export leaves nothing
half-done and is simply run again.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.bundle import BundleWriter
from reviewer_tool.errors import ReviewerError
from reviewer_tool.team import exchange
from reviewer_tool.workspace import Workspace


@dataclass(frozen=True)
class RepliesExported:
    """What :func:`export_replies` wrote, for the closing message."""

    out: Path
    replies: int
    team_updates: int
    acknowledges: list[list[int]]
    #: why some team updates could not leave yet ("N team update(s) waiting: …"), or None
    held_back: str | None


def export_replies(
    ws: Workspace, out: Path, *, include_all: bool = False, force: bool = False
) -> RepliesExported:
    """Write the replies bundle to ``out``; ``include_all`` repeats replies exported before,
    ``force`` overwrites ``out``. Raises ReviewerError when there is nothing to carry."""
    where = "" if include_all else " WHERE exported_in IS NULL"
    rows = ws.db.execute(
        f"SELECT reply_id, item_id, sealed, envelope FROM outgoing{where} ORDER BY rowid"  # noqa: S608 - fixed text
    ).fetchall()
    acknowledges = ws.imported_ranges()
    held_back = exchange.held_back(ws)  # team updates that cannot leave yet, and why
    team_ready = held_back is None and exchange.waiting(ws) > 0
    if not rows and not acknowledges and not team_ready:
        raise ReviewerError(
            "nothing to export: no new replies, team updates or imported inbox bundles"
            + (f" ({held_back})" if held_back else "")
        )
    fields = {"acknowledges": acknowledges, **exchange.acknowledgement(ws)}
    _check_target(out, force)
    # a new name, made here and never followed through a link: a name chosen in
    # advance could be a link planted in the folder (removable media someone else
    # prepared), and writing through it would overwrite the file it points to
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    except OSError as error:
        raise ReviewerError(f"cannot write in {out.parent}: {_why(error)}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = BundleWriter(handle, ws.keys.signing, "replies", fields)
            for reply_id, item_id, sealed, envelope in rows:
                reply: dict[str, Any] = ws.unseal_json(sealed)
                meta = {
                    "type": "reply",
                    "reply_id": reply_id,
                    "submission": item_id,
                    "status": reply["status"],
                }
                writer.add(meta, ws.unseal(envelope))
            team = exchange.add_team_updates(ws, writer)  # crypto/SPEC.md §17.4
            bundle_id = writer.finish()
        _check_target(out, force)  # again: the folder may have changed meanwhile
        os.replace(temp, out)  # replaces a name, never what a link there points to
    except OSError as error:
        raise ReviewerError(f"cannot write {out}: {_why(error)}; nothing written") from None
    finally:
        temp.unlink(missing_ok=True)
    with ws.transaction():
        ws.db.executemany(
            "UPDATE outgoing SET exported_in = ? WHERE reply_id = ?",
            [(bundle_id, row[0]) for row in rows],
        )
        exchange.mark_team_exported(ws, team, bundle_id)
    return RepliesExported(out, len(rows), len(team), acknowledges, held_back)


def _check_target(out: Path, force: bool) -> None:
    """Refuse to write the bundle at ``out`` when it is a link (even with ``force``: the
    reviewer meant a file there, not wherever the link leads) or, unless ``force``, exists."""
    if out.is_symlink():
        raise ReviewerError(f"{out} is a symbolic link; choose another name. Nothing written.")
    if out.exists() and not force:
        raise ReviewerError(f"{out} exists; choose another name or pass --force")
    if not out.parent.is_dir():
        raise ReviewerError(f"{out.parent} is not an existing folder; nothing written")


def _why(error: OSError) -> str:
    """The system's short reason for ``error`` ("No space left on device")."""
    return error.strerror or type(error).__name__
