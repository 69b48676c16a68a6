"""Inbox bundles built the way the portal builds them, for reviewer tool tests and benches.

A follow-up message is an entry with a third member, the report it follows:
its parts then carry ``"thread"`` as the portal's inbox export writes them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crypto.bundle import BundleWriter
from crypto.envelope import seal_bytes
from crypto.keys import EncryptionKeyPair, SigningKeyPair

#: the portal's bundle-signing key in reviewer tool tests (workspaces pin it)
PORTAL = SigningKeyPair.generate()


def report_document(
    narrative: str,
    identity: dict[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    *,
    reporter_key: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """A cso-report/v1 document like the portal's form produces."""
    return {
        "schema": "cso-report/v1",
        "encrypted_by": "browser",
        "report": {"category": "piracy-or-armed-robbery", "narrative": narrative, **fields},
        "identity": identity or {},
        "attachments": [
            {
                "name": name,
                "media_type": media_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "scrubbed": False,
            }
            for name, media_type, data in attachments
        ],
        **({"reporter_key": str(EncryptionKeyPair.generate().token)} if reporter_key else {}),
    }


def _entry(name: str, media_type: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    return {"name": name, "media_type": media_type, "size": len(data), "sha256": digest,
            "scrubbed": False}  # fmt: skip


def followup_document(
    message: str, attachments: Sequence[tuple[str, str, bytes]] = ()
) -> dict[str, Any]:
    """A cso-followup/v1 document like the portal's follow-up form produces."""
    return {
        "schema": "cso-followup/v1",
        "encrypted_by": "browser",
        "message": message,
        "attachments": [_entry(name, media_type, data) for name, media_type, data in attachments],
    }


#: document (or raw bytes), attachments, and optionally the report it follows up:
#: an id, or the index of an entry of the same bundle (its own index makes a bad entry)
InboxEntry = (
    tuple[dict[str, Any] | bytes, Sequence[bytes]]
    | tuple[dict[str, Any] | bytes, Sequence[bytes], str | int]
)


def _target(thread: str | int, ids: Sequence[str]) -> str:
    return ids[thread] if isinstance(thread, int) else thread


def write_inbox(
    path: Path,
    signer: SigningKeyPair,
    recipients: Sequence[bytes],
    reports: Sequence[InboxEntry],
    *,
    received_on: str = "2026-11-20",
    cursor_from: int = 0,
) -> list[str]:
    """Write an inbox bundle of reports and follow-ups (see ``InboxEntry``); return their ids."""
    ids = [secrets.token_hex(16) for _ in reports]
    with path.open("wb") as out:
        writer = BundleWriter(
            out,
            signer,
            "inbox",
            {"cursor": {"from": cursor_from, "to": cursor_from + len(reports)}},
        )
        for submission, (document, attachments, *thread) in zip(ids, reports, strict=True):
            raw = document if isinstance(document, bytes) else json.dumps(document).encode()
            parts = [raw, *attachments]
            follows = {"thread": _target(thread[0], ids)} if thread else {}
            for position, data in enumerate(parts):
                kind = "attachment" if position else "report"
                meta = {"type": "part", "submission": submission, "received_on": received_on,
                        "position": position, "kind": kind, **follows}  # fmt: skip
                writer.add(meta, seal_bytes(data, recipients))
        writer.finish()
    return ids
