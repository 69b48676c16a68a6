"""Inbox bundles built the way the portal builds them, for reviewer tool tests and benches."""

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


def write_inbox(
    path: Path,
    signer: SigningKeyPair,
    recipients: Sequence[bytes],
    reports: Sequence[tuple[dict[str, Any] | bytes, Sequence[bytes]]],
    *,
    received_on: str = "2026-11-20",
    cursor_from: int = 0,
) -> list[str]:
    """Write an inbox bundle of ``reports`` (document or raw bytes, attachments); return ids."""
    ids = []
    with path.open("wb") as out:
        writer = BundleWriter(
            out,
            signer,
            "inbox",
            {"cursor": {"from": cursor_from, "to": cursor_from + len(reports)}},
        )
        for document, attachments in reports:
            submission = secrets.token_hex(16)
            ids.append(submission)
            raw = document if isinstance(document, bytes) else json.dumps(document).encode()
            parts = [raw, *attachments]
            for position, data in enumerate(parts):
                kind = "attachment" if position else "report"
                meta = {"type": "part", "submission": submission, "received_on": received_on,
                        "position": position, "kind": kind}  # fmt: skip
                writer.add(meta, seal_bytes(data, recipients))
        writer.finish()
    return ids
