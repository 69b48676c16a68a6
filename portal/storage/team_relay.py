"""Relaying the reviewers' team updates (crypto/SPEC.md §15, §17).

Each reviewer's workstation sends its team updates in its replies bundles,
one envelope per update sealed to every reviewer key of the key directory;
the portal cannot open them. It checks only what it can without a key: that
the bytes are one well-formed envelope of a size a workstation makes, and
that the id is well formed. It keeps them in arrival order (``seq``, the
*team cursor*) and puts the ones after a reviewer's cursor into that
reviewer's next inbox bundle. Whether an update is genuine, and whose it is,
each workstation decides for itself from the author's signature inside.

Nothing here knows about HTTP; ``inbox.py`` calls it while it imports and
exports bundles.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from crypto.bundle import Bundle, BundleItem, BundleWriter
from crypto.envelope import payload_is_well_formed
from crypto.errors import HeaderError
from crypto.header import MAX_STANZAS, read_header
from portal.storage.models import ReviewerAccount, TeamUpdate

ITEM_TYPE = "team-update"
#: §17: a workstation keeps each sealed update under this size
MAX_UPDATE_BYTES = 64 * 1024
#: team updates one replies bundle may bring (its replies are limited by the upload size)
MAX_UPDATES_IN = 10_000
#: team updates one inbox bundle carries; the team cursor carries on from the last
MAX_UPDATES_OUT = 20_000
#: the largest team cursor a replies bundle may name: what a 32-bit INTEGER holds
MAX_CURSOR = 2**31 - 1
_HEX32 = re.compile(r"[0-9a-f]{32}")
_BATCH = 500  # rows read or written at a time: bounds memory, not correctness


class TeamRelayError(Exception):
    """A team update or acknowledgement is malformed; ``inbox.py`` reports it as a SyncError."""


@dataclass(frozen=True)
class TeamSelection:
    """The team updates an inbox bundle will carry: their range and their sequence numbers."""

    since: int
    last: int
    seqs: tuple[int, ...]


def is_team_item(meta: Any) -> bool:
    """Whether a bundle item's entry says it is a team update."""
    return isinstance(meta, Mapping) and meta.get("type") == ITEM_TYPE


def check_entry(meta: dict[str, Any], size: int) -> str:
    """A team-update item entry: exactly its type and a 32-hex id, and a size a writer makes."""
    update_id = meta.get("update_id")
    if set(meta) != {"type", "update_id"}:
        raise TeamRelayError("a team update's entry has other fields than type and update_id")
    if not isinstance(update_id, str) or not _HEX32.fullmatch(update_id):
        raise TeamRelayError("a team update id is malformed")
    if size > MAX_UPDATE_BYTES:
        raise TeamRelayError(f"a team update is larger than {MAX_UPDATE_BYTES // 1024} KiB")
    return update_id


def check_envelope(data: bytes) -> None:
    """One well-formed envelope sealed to 1..64 keys (the portal cannot open it)."""
    stream = io.BytesIO(data)
    try:
        header = read_header(stream)
    except HeaderError:
        raise TeamRelayError("a team update is not an encrypted envelope") from None
    if not 1 <= len(header.recipients) <= MAX_STANZAS or not payload_is_well_formed(
        len(data) - stream.tell()
    ):
        raise TeamRelayError("a team update must be exactly one envelope")


def acknowledged(bundle: Bundle) -> int | None:
    """The replies payload's ``team_acknowledges``: a whole number, or None when absent."""
    if "team_acknowledges" not in bundle.fields:
        return None
    value = bundle.fields["team_acknowledges"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CURSOR:
        raise TeamRelayError("the bundle's team acknowledgement is malformed")
    return value


def store(
    session: Session,
    bundle: Bundle,
    items: Sequence[tuple[BundleItem, str]],
    account: ReviewerAccount,
) -> tuple[int, int]:
    """Store the team updates not already held, in bundle order; return (stored, already).

    Every envelope is checked, held already or not; on a bad one the caller
    rolls back, and nothing is stored. On PostgreSQL the table is locked
    against other writers until the commit, so that updates become visible
    in ``seq`` order and no export hands out a cursor past an update still
    to be committed (which that reviewer would then never receive). SQLite
    has one writer at a time anyway.
    """
    if not items:
        return 0, 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE team_update IN EXCLUSIVE MODE"))
    held = _held(session, [update_id for _, update_id in items])
    today = datetime.now(UTC).date()
    stored = 0
    for index, (item, update_id) in enumerate(items):
        data = bundle.read_item(item)  # hashed again: the file may have changed
        check_envelope(data)
        if update_id in held:
            continue  # §15.3: importing twice changes nothing
        held.add(update_id)
        session.add(
            TeamUpdate(
                update_id=update_id,
                data=data,
                size=len(data),
                received_on=today,
                account_id=account.id,
            )
        )
        stored += 1
        if index % _BATCH == _BATCH - 1:
            session.flush()  # flushed rows need not stay in memory
    session.flush()
    return stored, len(items) - stored


def _held(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the portal holds already."""
    found: set[str] = set()
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        found.update(
            session.scalars(select(TeamUpdate.update_id).where(TeamUpdate.update_id.in_(chunk)))
        )
    return found


def move_cursor(session: Session, account: ReviewerAccount, value: int | None) -> int:
    """Move the account's team cursor forward to ``value``, never past the newest update."""
    if value is not None:
        newest = session.scalar(select(func.max(TeamUpdate.seq))) or 0
        account.team_cursor = max(account.team_cursor, min(value, newest))
    return account.team_cursor


def select_updates(
    session: Session, since: int, limit: int | None = None, max_bytes: int | None = None
) -> TeamSelection:
    """The team updates after ``since``: at most ``limit`` (default :data:`MAX_UPDATES_OUT`),
    and at most ``max_bytes`` in all."""
    rows = session.execute(
        select(TeamUpdate.seq, TeamUpdate.size)
        .where(TeamUpdate.seq > since)
        .order_by(TeamUpdate.seq)
        .limit(MAX_UPDATES_OUT if limit is None else limit)
    ).all()
    seqs: list[int] = []
    total = 0
    for seq, size in rows:
        if max_bytes is not None and total + size > max_bytes:
            break
        seqs.append(seq)
        total += size
    return TeamSelection(since, seqs[-1] if seqs else since, tuple(seqs))


def write_updates(session: Session, writer: BundleWriter, selection: TeamSelection) -> int:
    """Add the selected updates to an inbox bundle, in ``seq`` order; return how many.

    One purged meanwhile (retention) is left out; the cursor range stays as
    selected, since the reviewer will not be sent it again anyway.
    """
    written = 0
    for chunk in _slices(selection.seqs):
        rows = session.execute(
            select(TeamUpdate.update_id, TeamUpdate.data)
            .where(TeamUpdate.seq.in_(chunk))
            .order_by(TeamUpdate.seq)
        )
        for update_id, data in rows:
            writer.add({"type": ITEM_TYPE, "update_id": update_id}, data)
            written += 1
    return written


def _slices(seqs: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(seqs), _BATCH):
        yield seqs[start : start + _BATCH]
