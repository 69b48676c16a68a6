"""What crosses to and from the reviewers: inbox bundles out, replies bundles in.

Used by the sync endpoints and by the operator's fully offline path
(``portal export`` / ``portal import-replies``) alike; nothing here knows
about HTTP. Bundles are crypto/SPEC.md §15: the portal signs inbox bundles
with its own Ed25519 key and trusts replies bundles only from enrolled
reviewers' signing keys. Replies bundles may also bring the reviewers' team
updates, which inbox bundles hand on to the others (``team_relay.py``).
"""

from __future__ import annotations

import hmac
import io
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from crypto.bundle import Bundle, BundleWriter, open_bundle
from crypto.envelope import payload_is_well_formed
from crypto.errors import BundleError, HeaderError
from crypto.header import read_header
from crypto.keys import KeyKind, PublicKeyToken, SigningKeyPair, parse_public_key
from portal.storage import team_relay
from portal.storage.blobs import BlobStore
from portal.storage.models import InboxEntry, Reply, ReviewerAccount, Submission
from portal.storage.team_relay import TeamRelayError

SIGNING_KEY_FILE = "portal-signing.key"
SIGNING_PUBLIC_FILE = "portal-signing.pub"
#: submissions and bytes per inbox bundle; the cursor carries on from the last one
MAX_SUBMISSIONS_PER_BUNDLE = 5000
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
STATUSES = frozenset({"received", "under-review", "closed"})
_HEX32 = re.compile(r"[0-9a-f]{32}")


class SyncError(Exception):
    """A bundle or request cannot be processed; the message is safe to show."""


@dataclass(frozen=True)
class ExportResult:
    """What an inbox bundle holds: its id and the cursor range it covers."""

    bundle_id: str
    cursor_from: int
    cursor_to: int
    submissions: int
    #: the team cursor range the bundle covers (both ``team_since`` when not asked for)
    team_from: int = 0
    team_to: int = 0
    team_updates: int = 0


@dataclass(frozen=True)
class RepliesResult:
    """What importing a replies bundle did."""

    imported: int
    already: int
    unknown: int
    acknowledged_cursor: int
    team_imported: int = 0
    team_already: int = 0
    team_cursor: int = 0


def create_signing_key(data_dir: Path) -> SigningKeyPair:
    """Make the portal's bundle-signing key unless it exists; return it."""
    path = data_dir / SIGNING_KEY_FILE
    if not path.exists():
        seed = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(seed.hex() + "\n")
    key = load_signing_key(data_dir)
    (data_dir / SIGNING_PUBLIC_FILE).write_text(str(key.token) + "\n")
    return key


def load_signing_key(data_dir: Path) -> SigningKeyPair:
    """The portal's bundle-signing key; refuse one that others can read."""
    path = data_dir / SIGNING_KEY_FILE
    try:
        if path.stat().st_mode & 0o077:
            raise SyncError(f"{path} is readable by others; chmod 600 it")
        seed = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise SyncError(f"no bundle-signing key in {path}; run `portal init`") from None
    except ValueError:
        raise SyncError(f"{path} is damaged") from None
    if len(seed) != 32:
        raise SyncError(f"{path} is damaged")
    return SigningKeyPair.from_seed(seed)


def directory_text(path: Path) -> str | None:
    """The key directory file's text, to hand on in inbox bundles; None if there is none.

    Passed on unverified: each workstation verifies it against the organisation
    key it pinned, which the portal's word could not replace anyway.
    """
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def export_inbox(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    signer: SigningKeyPair,
    out: BinaryIO,
    since: int,
    limit: int = MAX_SUBMISSIONS_PER_BUNDLE,
    max_bytes: int = MAX_BUNDLE_BYTES,
    *,
    team_since: int | None = None,
    directory: str | None = None,
) -> ExportResult:
    """Write the submissions after cursor ``since`` as a signed bundle.

    At most ``limit`` submissions and about ``max_bytes`` of envelopes (always
    at least one submission): the next export carries on from the cursor.
    With ``team_since``, the team updates after that team cursor follow them
    in the bytes left (payload field ``team_cursor``); ``directory`` is the
    text of the key directory, handed on as it is (payload field
    ``directory``) so that workstations learn the reviewers' signing keys.
    """
    with sessions() as session:
        candidates = session.scalars(
            select(InboxEntry)
            .where(InboxEntry.seq > since)
            .order_by(InboxEntry.seq)
            .limit(limit)
            # parts are read twice (sizes, then bytes): load them once, not per entry
            .options(selectinload(InboxEntry.submission).selectinload(Submission.parts))
        ).all()
        entries, total = [], 0
        for entry in candidates:
            size = sum(part.size for part in entry.submission.parts)
            if entries and total + size > max_bytes:
                break
            entries.append(entry)
            total += size
        cursor_to = entries[-1].seq if entries else since
        fields: dict[str, object] = {"cursor": {"from": since, "to": cursor_to}}
        team = None
        if team_since is not None:
            # at least one update's worth, so that the team cursor always moves
            room = max(max_bytes - total, team_relay.MAX_UPDATE_BYTES)
            team = team_relay.select_updates(session, team_since, max_bytes=room)
            fields["team_cursor"] = {"from": team.since, "to": team.last}
        if directory is not None:
            fields["directory"] = directory
        writer = BundleWriter(out, signer, "inbox", fields)
        for entry in entries:
            submission = entry.submission
            for part in submission.parts:
                meta: dict[str, object] = {
                    "type": "part",
                    "submission": submission.id,
                    "received_on": submission.received_on.isoformat(),
                    "position": part.position,
                    "kind": part.kind.value,
                }
                if submission.thread_id is not None:
                    meta["thread"] = submission.thread_id  # a reporter's follow-up message
                with blobs.open(part.blob) as source:  # leaves the access time alone
                    digest = writer.add(meta, source)
                # §15.4: what leaves must be what arrived
                if part.sha256 is not None and not hmac.compare_digest(digest, part.sha256):
                    raise SyncError(f"stored blob {part.blob} has changed since it arrived")
        written = team_relay.write_updates(session, writer, team) if team else 0
        bundle_id = writer.finish()
    team_range = (team.since, team.last) if team else (team_since or 0, team_since or 0)
    return ExportResult(bundle_id, since, cursor_to, len(entries), *team_range, written)


def acknowledge(session: Session, account: ReviewerAccount, cursor: int) -> int:
    """Record that ``account`` has imported everything up to ``cursor``; return the new mark."""
    newest = session.scalar(select(InboxEntry.seq).order_by(InboxEntry.seq.desc()).limit(1)) or 0
    if not 0 <= cursor <= newest:
        raise SyncError("that cursor is beyond the newest submission")
    if cursor > account.acknowledged_cursor:
        account.acknowledged_cursor = cursor
    session.execute(
        update(InboxEntry)
        .where(InboxEntry.seq <= cursor, InboxEntry.acknowledged_on.is_(None))
        .values(acknowledged_on=datetime.now(UTC).date())
    )
    return account.acknowledged_cursor


def enrolled_signers(session: Session) -> dict[PublicKeyToken, ReviewerAccount]:
    """Every enrolled reviewer's replies-signing key and its account."""
    return {
        parse_public_key(account.signing_key, KeyKind.SIGNING): account
        for account in session.scalars(select(ReviewerAccount))
    }


def _check_reply_entry(meta: Any) -> tuple[str, str, str | None]:
    if not isinstance(meta, dict) or meta.get("type") != "reply":
        raise SyncError("a replies bundle holds only replies and team updates")
    reply_id, submission, status = meta.get("reply_id"), meta.get("submission"), meta.get("status")
    if not isinstance(reply_id, str) or not _HEX32.fullmatch(reply_id):
        raise SyncError("a reply id is malformed")
    if not isinstance(submission, str) or not _HEX32.fullmatch(submission):
        raise SyncError("a reply's submission id is malformed")
    # a list or an object is not hashable: test the type before the set
    if status is not None and (not isinstance(status, str) or status not in STATUSES):
        raise SyncError("a reply's status is not one of received, under-review, closed")
    return reply_id, submission, status


def _check_reply_envelope(data: bytes) -> None:
    """A reply message must be a well-formed envelope (the portal cannot open it)."""
    stream = io.BytesIO(data)
    try:
        header = read_header(stream)
    except HeaderError:
        raise SyncError("a reply is not an encrypted envelope") from None
    if len(header.recipients) != 1 or not payload_is_well_formed(len(data) - stream.tell()):
        raise SyncError("a reply must be one envelope sealed to the reporter alone")


def import_replies(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    path: Path,
    *,
    only_from: ReviewerAccount | None = None,
) -> RepliesResult:
    """Verify a replies bundle, then store every new reply in one transaction.

    The reply blobs are written first, under the blob directory's guard
    (``portal/storage/blobs.py``), which is let go only once their rows are
    committed or the blobs removed again: a portal worker starting meanwhile
    does not take them for the orphans of a crash.
    """
    with sessions() as session:
        signers = enrolled_signers(session)
        if only_from is not None:
            signers = {k: a for k, a in signers.items() if a.id == only_from.id}
        try:
            bundle = open_bundle(path, signers.keys())
        except BundleError as error:
            raise SyncError(error.diagnostics()) from None
        if bundle.kind != "replies":
            raise SyncError("this is not a replies bundle")
        account = session.merge(signers[bundle.signer])
        checked, team = _check_entries(bundle)
        written: list[str] = []
        counts = {"imported": 0, "already": 0, "unknown": 0}
        # from the first reply blob until the rows naming them are committed (or
        # the blobs removed), the reconcile must not take them for orphans
        guard = blobs.guard()
        try:
            for item, reply_id, submission_id, status in checked:
                if session.scalar(select(Reply.id).where(Reply.reply_id == reply_id)):
                    counts["already"] += 1  # §15.3: importing twice changes nothing
                    continue
                submission = session.get(Submission, submission_id)
                if submission is None:
                    counts["unknown"] += 1  # purged, or from another portal
                    continue
                blob = _store_reply_blob(bundle, item, blobs, written)
                if blob is None and status is None:
                    raise SyncError("a reply carries neither a message nor a status")
                session.add(
                    Reply(
                        reply_id=reply_id,
                        submission_id=submission_id,
                        status=status,
                        blob=blob,
                        size=item.size,
                        received_on=datetime.now(UTC).date(),
                    )
                )
                if status is not None:
                    submission.status = status
                counts["imported"] += 1
            mark = account.acknowledged_cursor
            for start, end in _acknowledged(bundle):
                # only a range that joins what was already acknowledged moves the
                # mark: a reviewer who skipped a bundle has not seen what it held
                if start <= mark < end:
                    mark = acknowledge(session, account, end)
            # last: on PostgreSQL storing them locks team_update, after reply and
            # inbox_entry, the order in which a retention purge takes them too
            team_counts = _relay_team_updates(session, bundle, team, account)
            session.commit()
        except BaseException:
            session.rollback()
            for name in written:
                blobs.delete(name)
            raise
        finally:
            guard.release()
    return RepliesResult(**counts, acknowledged_cursor=mark, **team_counts)


def _check_entries(bundle: Bundle) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Every item entry, checked before anything is stored: (replies, team updates)."""
    replies, team = [], []
    try:
        for item in bundle.items:
            if team_relay.is_team_item(item.meta):
                team.append((item, team_relay.check_entry(dict(item.meta), item.size)))
            else:
                replies.append((item, *_check_reply_entry(dict(item.meta))))
        team_relay.acknowledged(bundle)  # a malformed one refuses the bundle up front
    except TeamRelayError as error:
        raise SyncError(str(error)) from None
    if len(team) > team_relay.MAX_UPDATES_IN:
        raise SyncError(
            f"a replies bundle carries at most {team_relay.MAX_UPDATES_IN} team updates"
        )
    return replies, team


def _relay_team_updates(
    session: Session, bundle: Bundle, team: list[tuple[Any, str]], account: ReviewerAccount
) -> dict[str, int]:
    """Store the bundle's team updates and move the account's team cursor."""
    try:
        stored, already = team_relay.store(session, bundle, team, account)
        cursor = team_relay.move_cursor(session, account, team_relay.acknowledged(bundle))
    except TeamRelayError as error:
        raise SyncError(str(error)) from None
    except BundleError as error:  # the file changed while it was read
        raise SyncError(error.diagnostics()) from None
    return {"team_imported": stored, "team_already": already, "team_cursor": cursor}


def _store_reply_blob(
    bundle: Bundle, item: Any, blobs: BlobStore, written: list[str]
) -> str | None:
    if item.size == 0:
        return None
    data = bundle.read_item(item)
    _check_reply_envelope(data)
    with blobs.writer() as pending:
        pending.write(data)
    written.append(pending.name)
    return pending.name


def _acknowledged(bundle: Bundle) -> Iterable[tuple[int, int]]:
    ranges = bundle.fields.get("acknowledges", [])
    if not isinstance(ranges, list) or not all(
        isinstance(r, list)
        and len(r) == 2
        and all(isinstance(c, int) and not isinstance(c, bool) for c in r)
        and 0 <= r[0] <= r[1]
        for r in ranges
    ):
        raise SyncError("the bundle's acknowledgements are malformed")
    return sorted((start, end) for start, end in ranges)
