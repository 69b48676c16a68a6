"""How a report travels: one envelope per part, and the manifest (SPEC.md §11).

Part 0 is the report's JSON; parts 1…n are its attachments, each in its own
envelope, in manifest order. The manifest is the ``attachments`` list inside
the encrypted report JSON; each entry gives the attachment's file name, media
type, size, SHA-256 of its plaintext, and whether its metadata was already
scrubbed in the browser. A reviewer checks every attachment against its entry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crypto.characters import unsafe_category
from crypto.errors import ManifestError

MAX_ATTACHMENTS = 64
MAX_NAME_LENGTH = 255
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset({"name", "media_type", "size", "sha256", "scrubbed"})


@dataclass(frozen=True)
class AttachmentEntry:
    """One manifest line: what attachment part ``index`` must contain."""

    index: int
    name: str
    media_type: str
    size: int
    sha256: str
    scrubbed: bool

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in the report JSON."""
        return {
            "name": self.name,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "scrubbed": self.scrubbed,
        }


#: A file name must not contain characters of the categories
#: crypto/characters.py calls unsafe: controls, format characters (bidi
#: overrides can disguise "gpj.exe" as "exe.jpg"), surrogates, private use,
#: unassigned (in Unicode 14, on every Python), and line or paragraph separators.


def check_name(name: Any) -> str:
    """SPEC.md §11.1: a plain, visible, NFC file name of 1 to 255 UTF-8 bytes."""
    if not isinstance(name, str) or not name:
        raise ManifestError("attachment name must not be empty")
    if any(unsafe_category(c) for c in name):
        raise ManifestError("attachment name must not contain control or invisible characters")
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        raise ManifestError("attachment name must be at most 255 bytes of UTF-8")
    if unicodedata.normalize("NFC", name) != name:
        raise ManifestError("attachment name must be in Unicode NFC form")
    if any(c in name for c in "/\\") or name in {".", ".."}:
        raise ManifestError("attachment name must not contain a path")
    return name


def parse_manifest(report: Mapping[str, Any]) -> tuple[AttachmentEntry, ...]:
    """Read and check the ``attachments`` list of a decrypted report."""
    entries = report.get("attachments", [])
    if not isinstance(entries, list) or len(entries) > MAX_ATTACHMENTS:
        raise ManifestError(f"a report has at most {MAX_ATTACHMENTS} attachments")
    parsed = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != _FIELDS:
            raise ManifestError(f"attachment {number}: entry must have exactly {sorted(_FIELDS)}")
        media_type = entry["media_type"]
        if not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type):
            raise ManifestError(f"attachment {number}: malformed media type")
        size = entry["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"attachment {number}: malformed size")
        digest = entry["sha256"]
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ManifestError(f"attachment {number}: sha256 must be 64 lower-case hex digits")
        if not isinstance(entry["scrubbed"], bool):
            raise ManifestError(f"attachment {number}: scrubbed must be true or false")
        parsed.append(
            AttachmentEntry(
                number, check_name(entry["name"]), media_type, size, digest, entry["scrubbed"]
            )
        )
    if len({e.name for e in parsed}) != len(parsed):
        raise ManifestError("two attachments share a name")
    return tuple(parsed)


class AttachmentCheck:
    """Accumulates an attachment's plaintext and checks it against its entry."""

    def __init__(self, entry: AttachmentEntry) -> None:
        self.entry = entry
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Absorb plaintext (a file-like ``write``, so it can be a tee target)."""
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def verify(self) -> None:
        """Raise :class:`ManifestError` unless size and digest match the entry."""
        if self._size != self.entry.size or not hmac.compare_digest(
            self._hash.hexdigest(), self.entry.sha256
        ):
            raise ManifestError(f"attachment {self.entry.index} does not match the manifest")


def entry_for(
    index: int, name: str, media_type: str, data: bytes, scrubbed: bool
) -> AttachmentEntry:
    """Describe attachment bytes held in memory (the no-JavaScript path)."""
    return AttachmentEntry(
        index, check_name(name), media_type, len(data), hashlib.sha256(data).hexdigest(), scrubbed
    )


def manifest_json(entries: Sequence[AttachmentEntry]) -> list[dict[str, Any]]:
    """The ``attachments`` list for a report JSON."""
    return [e.to_json() for e in entries]
