"""Forwarding: from confirmed, redacted reports to a signed batch on disk.

``reviewer forward`` and the desk's forward page both go through here, in
two steps so that every refusal comes before anything is written:

1. :func:`build_records` builds each report's record with
   reviewer_tool/forwarding.py, which refuses (one ReviewerError naming the
   report and the fields) any record that still holds an identity value;
2. :func:`write_batch` cleans the chosen attachments in memory (any that
   cannot be cleaned or is of a type the shared database does not take
   refuses the whole batch), signs the batch, writes the attachment files
   first and the batch last (a batch is never on disk without the files it
   lists), and only then marks the reports forwarded.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from crypto.batch import Attachment, sign_batch
from reviewer_tool.cli_queue import write_new_file
from reviewer_tool.errors import ReviewerError
from reviewer_tool.forwarding import build_record, incident_id
from reviewer_tool.redaction import AttachmentRefused, clean_attachment
from reviewer_tool.redaction.attachments import sniff
from reviewer_tool.workspace import Item, Workspace

#: what the shared database accepts (crypto/SPEC.md §16.11), by the cleaned content's kind
SHARED_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
#: where the desk puts a batch's attachments, beside the batch file
ATTACHMENTS_FOLDER = "attachments"


def forwardable(ws: Workspace, include_forwarded: bool = False) -> tuple[list[Item], list[str]]:
    """Confirmed reports that are redacted (ready), and the ids of those that are not yet.

    Reports forwarded before are left out unless ``include_forwarded``.
    """
    ready: list[Item] = []
    waiting: list[Item] = []
    for item_id, summary in ws.summaries():
        if summary["status"] != "confirmed":
            continue
        item = ws.item(item_id)
        if item.record.get("forwarded") and not include_forwarded:
            continue
        (ready if item.record.get("redaction") else waiting).append(item)
    return ready, [item.id for item in waiting]


def chosen_count(items: Iterable[Item]) -> int:
    """How many attachments the reviewer chose to forward, over ``items``."""
    return sum(len(item.record["redaction"].get("attachments", [])) for item in items)


def incident_links(ws: Workspace) -> dict[str, str]:
    """The incident id each report of the workspace would be forwarded under, by report
    id: a record names the report it duplicates by that id (forwarding.build_record)."""
    return {item_id: incident_id(ws, Item(item_id, {}, {})) for item_id in ws.item_ids()}


def build_records(ws: Workspace, items: Iterable[Item]) -> list[dict[str, Any]]:
    """Each item's record; the first that may not be signed raises ReviewerError."""
    links = incident_links(ws)
    return [build_record(ws, item, links) for item in items]


def cleaned_attachments(
    ws: Workspace, items: list[Item]
) -> tuple[list[Attachment], dict[str, bytes]]:
    """Every chosen attachment, cleaned, in memory, with its entry for the batch header
    (§16.9): refused before anything is written. ``items`` are in record order."""
    entries_out: list[Attachment] = []
    files: dict[str, bytes] = {}
    for record, item in enumerate(items, start=1):
        entries = item.record["report"].get("attachments", [])
        incident = incident_id(ws, item)
        for position in item.record["redaction"].get("attachments", []):
            entry = entries[position - 1]
            where = f"report {item.id[:12]} attachment {position}"
            try:
                # the name is made from the record id: the reporter's file name is never sent
                name, data = clean_attachment(
                    f"{incident}-{position}", entry["media_type"], ws.attachment(item.id, position)
                )
            except AttachmentRefused as error:
                raise ReviewerError(f"{where}: {error}; nothing written") from None
            media_type = SHARED_TYPES.get(sniff(data) or "")
            if media_type is None:
                raise ReviewerError(
                    f"{where}: the shared database takes JPEG, PNG and PDF only; leave it out "
                    "with `reviewer redact` or send it another way. Nothing written."
                )
            digest = hashlib.sha256(data).hexdigest()
            files[digest] = data
            entries_out.append(Attachment(record, digest, media_type, len(data), name))
    return entries_out, files


def write_attachments(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write each file under its SHA-256 (§16.10) and return the ones written here.

    One already there under that name is the same file, but is checked anyway,
    every one before any is written. Nothing is written through a symbolic
    link: not into a linked folder, not over a linked name.
    """
    if directory.is_symlink():
        raise ReviewerError(
            f"{directory} is a symbolic link; choose a real folder. Nothing written."
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ReviewerError(f"cannot make {directory}: {error.strerror or 'refused'}") from None
    if directory.is_symlink() or not directory.is_dir():
        raise ReviewerError(f"{directory} is not a folder; nothing written")
    new = {digest: data for digest, data in files.items() if not _holds(directory / digest, data)}
    written: list[Path] = []
    try:
        for digest, data in new.items():
            write_new_file(directory / digest, data)
            written.append(directory / digest)
    except ReviewerError:
        remove(written)
        raise
    return written


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is already a plain file holding ``data``; False when there is
    nothing there; ReviewerError when something else is."""
    try:
        seen = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(seen.st_mode):
        raise ReviewerError(f"{path} exists and is not a plain file; remove it first")
    if seen.st_size == len(data) and _read_plain(path, len(data) + 1) == data:
        return True
    raise ReviewerError(f"{path} exists with other content; remove it first")


def _read_plain(path: Path, most: int) -> bytes | None:
    """At most ``most`` bytes of the plain file ``path``, never through a link; None if
    it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(most)


def remove(paths: Iterable[Path]) -> None:
    """Remove files this run wrote, when what they belong to could not be written."""
    for path in paths:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Forwarded:
    """What :func:`write_batch` wrote, for the closing message."""

    out: Path
    records: int
    batch_id: str
    signer: str  # the fingerprint of the key that signed the batch
    attachments: int
    attachments_dir: Path | None


def write_batch(
    ws: Workspace,
    items: list[Item],
    records: list[dict[str, Any]],
    out: Path,
    attachments_dir: Path | None,
) -> Forwarded:
    """Sign ``records`` (built from ``items`` by :func:`build_records`) into ``out``.

    With ``attachments_dir`` the chosen attachments are cleaned, listed in the
    batch and written there; without it none travels. Raises ReviewerError,
    with nothing written, when ``out`` exists or an attachment is refused.
    """
    attachments: list[Attachment] = []
    files: dict[str, bytes] = {}
    if attachments_dir is not None:
        attachments, files = cleaned_attachments(ws, items)
    batch_id = secrets.token_hex(16)
    data = sign_batch(records, ws.keys.signing, batch_id=batch_id,
                      created_at=datetime.now(UTC), attachments=attachments)  # fmt: skip
    if os.path.lexists(out):  # a link there, even one pointing nowhere, is refused too
        raise ReviewerError(f"{out} exists; choose another name")
    written: list[Path] = []
    if files:
        # the files first: a batch is never on disk without the files it lists
        written = write_attachments(attachments_dir or out.parent, files)
    try:
        write_new_file(out, data)
    except ReviewerError:
        remove(written)  # nor files left without their batch
        raise
    today = datetime.now(UTC).date().isoformat()
    with ws.transaction():
        for item in items:
            item.record["forwarded"] = {
                "batch": batch_id, "on": today, "id": incident_id(ws, item),
            }  # fmt: skip
            ws.put_item(item)
    fingerprint = ws.keys.signing.token.fingerprint
    return Forwarded(out, len(records), batch_id, fingerprint, len(attachments), attachments_dir)


def batch_file_name(day: date | None = None) -> str:
    """A new batch file's name: ``batch-YYYY-MM-DD-<8 hex>.jsonl`` (the day is UTC)."""
    day = day or datetime.now(UTC).date()
    return f"batch-{day.isoformat()}-{secrets.token_hex(4)}.jsonl"
