"""Signed incident batches: reviewed records as signed JSON Lines (SPEC.md §16).

A batch is UTF-8 text, one JSON object per line, each line ending in a line
feed::

    {"schema":"cso-incident-batch/v1","batch_id":"…","created_at":"…","signer":"csosig1…","count":N}
    {…record 1…}
    …
    {…record N…}
    {"signature":"base64url(Ed25519(SIGNING_CONTEXT ‖ SHA-512(lines 1 … N+1)))"}

The header may also list attachments (§16.9): files that travel beside the
batch, each bound to a record by its SHA-256 and size. The batch layer
checks the list's shape and, given a file's bytes, that they are the ones
signed (:func:`check_attachment`); finding the files is the reader's job.

The batch layer checks framing, the header, the signer and the signature;
what a record means is the reader's business (``incident_db.record``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from crypto import _base64url as base64url
from crypto.errors import BatchError, KeyFormatError
from crypto.keys import KeyKind, PublicKeyToken, SigningKeyPair, parse_public_key, verify_signature

SCHEMA = "cso-incident-batch/v1"
SIGNING_CONTEXT = b"cso-incident-batch v1\n"
MAX_RECORDS = 1_000_000
#: SPEC.md §16.1: bounds the memory one line can take; a record's narrative is
#: at most 20,000 characters, far below this
MAX_LINE_BYTES = 1024 * 1024
HEADER_KEYS = frozenset({"schema", "batch_id", "created_at", "signer", "count"})
#: §16.9: the optional header member listing attachments, and each entry's members
ATTACHMENTS_KEY = "attachments"
ATTACHMENT_KEYS = frozenset({"record", "sha256", "media_type", "size", "name"})
MAX_ATTACHMENTS = 1000
#: §16.9: a bound on one file at the format level; a database may set a lower one
MAX_ATTACHMENT_BYTES = 64 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,30}/[a-z0-9][a-z0-9.+-]{0,30}")
_ATTACHMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
_BATCH_ID = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SIGNATURE_LENGTH = 64


@dataclass(frozen=True)
class Attachment:
    """One file bound to a record of a batch (§16.9); ``record`` counts records from 1."""

    record: int
    sha256: str
    media_type: str
    size: int
    name: str

    def to_json(self) -> dict[str, Any]:
        """The header entry for this attachment."""
        return {"record": self.record, "sha256": self.sha256, "media_type": self.media_type,
                "size": self.size, "name": self.name}  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """A verified batch: its header and its records with their line numbers."""

    batch_id: str
    created_at: datetime
    signer: PublicKeyToken
    records: tuple[tuple[int, dict[str, Any]], ...]
    #: §16.9: empty for a batch without attachments (every batch before them)
    attachments: tuple[Attachment, ...] = ()


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise BatchError("created_at must be an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_LINE_ENDS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _serialise(value: Mapping[str, Any]) -> bytes:
    """One line's bytes: the canonical-enough JSON the writer promises (§16.7)."""
    try:
        text = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise BatchError(f"record cannot be written as JSON: {error}") from None
    # NEL, LS and PS end a line for str.splitlines and for JavaScript; they can
    # stand only inside a string, where the escape is the same text
    return text.translate(_LINE_ENDS).encode("utf-8") + b"\n"


def sign_batch(
    records: Sequence[Mapping[str, Any]],
    signer: SigningKeyPair,
    *,
    batch_id: str,
    created_at: datetime,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """Serialise and sign ``records`` (and the list of ``attachments``); return the bytes.

    Raises :class:`BatchError` for anything a reader would refuse (§16.7).
    Without attachments the header is exactly as it was before §16.9.
    """
    if not _BATCH_ID.fullmatch(batch_id):
        raise BatchError("batch_id must be 32 lower-case hexadecimal digits")
    if not 1 <= len(records) <= MAX_RECORDS:
        raise BatchError(f"a batch holds 1 to {MAX_RECORDS:,} records")
    header: dict[str, Any] = {
        "schema": SCHEMA,
        "batch_id": batch_id,
        "created_at": _format_time(created_at),
        "signer": str(signer.token),
        "count": len(records),
    }
    if attachments:
        entries = [entry.to_json() for entry in attachments]
        # the writer refuses exactly what a reader would (§16.7)
        _check_attachments(entries, len(records))
        header[ATTACHMENTS_KEY] = entries
    lines = [_serialise(header)]
    for number, record in enumerate(records, start=2):
        if not isinstance(record, Mapping):
            raise BatchError(f"line {number}: a record must be a JSON object")
        lines.append(_serialise(record))
        if len(lines[-1]) > MAX_LINE_BYTES:
            raise BatchError(f"line {number}: record is longer than {MAX_LINE_BYTES} bytes")
    body = b"".join(lines)
    digest = hashlib.sha512(body).digest()
    signature = {"signature": base64url.encode(signer.sign(SIGNING_CONTEXT + digest))}
    return body + _serialise(signature)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a repeated member name is ambiguous, so refuse it (§16.1)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("repeated member name")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)


class _Lines:
    """Numbered lines of a batch, each checked for framing (§16.1)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.number = 0

    def next(self) -> bytes | None:
        """The next complete line with its line feed, or None at the end of input."""
        line = self._stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        self.number += 1
        if len(line) > MAX_LINE_BYTES:
            raise BatchError(f"line {self.number}: longer than {MAX_LINE_BYTES} bytes")
        if not line.endswith(b"\n"):
            raise BatchError(f"line {self.number}: no line feed at the end (truncated?)")
        if b"\r" in line:
            raise BatchError(f"line {self.number}: carriage return (lines end in LF only)")
        return line

    def parse(self, line: bytes) -> dict[str, Any]:
        """Decode one line as exactly one JSON object."""
        try:
            value = _DECODER.decode(line[:-1].decode("utf-8"))
        except UnicodeDecodeError:
            raise BatchError(f"line {self.number}: not UTF-8") from None
        except (ValueError, RecursionError) as error:
            reason = str(error).split(":", 1)[0]
            raise BatchError(f"line {self.number}: not JSON ({reason})") from None
        if not isinstance(value, dict):
            raise BatchError(f"line {self.number}: not a JSON object")
        return value


def _check_header(header: dict[str, Any]) -> tuple[str, datetime, PublicKeyToken, int]:
    """§16.2: the header's exact shape; returns id, time, signer and count."""
    if header.get("schema") != SCHEMA:
        raise BatchError(f"line 1: not a {SCHEMA} batch")
    if set(header) - {ATTACHMENTS_KEY} != HEADER_KEYS:
        raise BatchError(
            "line 1: header must have exactly " + ", ".join(sorted(HEADER_KEYS))
            + f" (and optionally {ATTACHMENTS_KEY})"
        )  # fmt: skip
    batch_id = header["batch_id"]
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise BatchError("line 1: batch_id must be 32 lower-case hexadecimal digits")
    created = header["created_at"]
    try:
        if not isinstance(created, str) or not _TIME.fullmatch(created):
            raise ValueError
        created_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise BatchError("line 1: created_at must be YYYY-MM-DDTHH:MM:SSZ") from None
    raw_signer = header["signer"]
    try:
        if not isinstance(raw_signer, str):
            raise KeyFormatError("not a string")
        signer = parse_public_key(raw_signer, KeyKind.SIGNING)
    except KeyFormatError:
        raise BatchError("line 1: signer is not a csosig1 public key") from None
    if str(signer) != raw_signer:
        raise BatchError("line 1: signer is not in canonical form")
    count = header["count"]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_RECORDS:
        raise BatchError(f"line 1: count must be a whole number from 1 to {MAX_RECORDS:,}")
    return batch_id, created_at, signer, count


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _attachment(entry: Any, count: int) -> Attachment:
    """§16.9: one entry of the header's attachment list, checked member by member."""
    if not isinstance(entry, dict) or set(entry) != ATTACHMENT_KEYS:
        raise ValueError("must be an object with exactly " + ", ".join(sorted(ATTACHMENT_KEYS)))
    if not _whole(entry["record"], 1, count):
        raise ValueError(f"record must be a whole number from 1 to the count ({count})")
    if not isinstance(entry["sha256"], str) or not _SHA256.fullmatch(entry["sha256"]):
        raise ValueError("sha256 must be 64 lower-case hexadecimal digits")
    media_type = entry["media_type"]
    if not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type):
        raise ValueError("media_type must be a lower-case type/subtype without parameters")
    if not _whole(entry["size"], 1, MAX_ATTACHMENT_BYTES):
        raise ValueError(f"size must be a whole number from 1 to {MAX_ATTACHMENT_BYTES:,}")
    name = entry["name"]
    if not isinstance(name, str) or not _ATTACHMENT_NAME.fullmatch(name):
        raise ValueError("name must be 1 to 120 of A-Z a-z 0-9 . _ - not starting with . _ -")
    return Attachment(entry["record"], entry["sha256"], media_type, entry["size"], name)


def _check_attachments(entries: Any, count: int) -> tuple[Attachment, ...]:
    """§16.9: the header's attachment list; raises :class:`BatchError` naming the entry."""
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ATTACHMENTS:
        raise BatchError(f"line 1: attachments must be a list of 1 to {MAX_ATTACHMENTS} entries")
    checked: list[Attachment] = []
    seen: set[tuple[int, str]] = set()
    for position, entry in enumerate(entries, start=1):
        try:
            attachment = _attachment(entry, count)
        except ValueError as error:
            raise BatchError(f"line 1: attachment {position}: {error}") from None
        if (attachment.record, attachment.sha256) in seen:
            raise BatchError(f"line 1: attachment {position}: repeats a file of the same record")
        seen.add((attachment.record, attachment.sha256))
        checked.append(attachment)
    return tuple(checked)


def check_attachment(attachment: Attachment, content: bytes) -> None:
    """§16.10: refuse ``content`` unless it is exactly the file the batch signed.

    Raises :class:`BatchError` naming the attachment by its hash; the caller
    refuses the whole batch.
    """
    if len(content) != attachment.size:
        raise BatchError(
            f"attachment {attachment.sha256[:16]}: {len(content):,} bytes, "
            f"but the batch says {attachment.size:,}"
        )
    if hashlib.sha256(content).hexdigest() != attachment.sha256:
        raise BatchError(f"attachment {attachment.sha256[:16]}: content differs from its SHA-256")


def _signature(value: dict[str, Any], number: int) -> bytes:
    """§16.5: the signature line's one member, canonical base64url of 64 bytes."""
    if set(value) != {"signature"}:
        raise BatchError(f"line {number}: expected the signature line (count mismatch?)")
    raw = base64url.decode(value["signature"])
    if raw is None or len(raw) != _SIGNATURE_LENGTH:
        raise BatchError(f"line {number}: signature is not canonical base64url of 64 bytes")
    return raw


def read_batch(data: bytes | BinaryIO, trusted: Collection[PublicKeyToken]) -> Batch:
    """Check a batch's framing, header, signer and signature; return its records.

    Raises :class:`BatchError`, whose message starts with the line number.
    No record is returned unless the signature verifies (§16.6).
    """
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    lines = _Lines(stream)
    digest = hashlib.sha512()
    first = lines.next()
    if first is None:
        raise BatchError("line 1: empty input, not a batch")
    header = lines.parse(first)
    batch_id, created_at, signer, count = _check_header(header)
    attachments: tuple[Attachment, ...] = ()
    if ATTACHMENTS_KEY in header:
        attachments = _check_attachments(header[ATTACHMENTS_KEY], count)
    if signer not in trusted:  # §16.3: refuse before reading what it signed
        raise BatchError(
            f"line 1: signer {signer.fingerprint} is not in the trusted reviewers file"
        )
    digest.update(first)
    records: list[tuple[int, dict[str, Any]]] = []
    for _ in range(count):
        line = lines.next()
        if line is None:
            raise BatchError(_early_end(lines.number, records, count))
        records.append((lines.number, lines.parse(line)))
        digest.update(line)
    last = lines.next()
    if last is None:
        raise BatchError(_early_end(lines.number, records, count))
    signature = _signature(lines.parse(last), lines.number)
    if lines.next() is not None:
        raise BatchError(f"line {lines.number}: data after the signature line")
    if not verify_signature(signer.key, SIGNING_CONTEXT + digest.digest(), signature):
        raise BatchError(f"line {count + 2}: signature does not verify")
    return Batch(batch_id, created_at, signer, tuple(records), attachments)


def _early_end(last_line: int, records: list[tuple[int, dict[str, Any]]], count: int) -> str:
    """Explain an input that ended before its ``count`` records and signature line."""
    if records and set(records[-1][1]) == {"signature"}:
        return (
            f"line {last_line}: signature line after {len(records) - 1} records, "
            f"but the header says {count} (count mismatch)"
        )
    if len(records) == count:
        return f"line {last_line + 1}: the signature line is missing (truncated?)"
    return f"line {last_line + 1}: input ends after {len(records)} of {count} records (truncated)"


def read_trusted_reviewers(text: str) -> frozenset[PublicKeyToken]:
    """Parse a trusted-reviewers file: one ``csosig1…`` key per line (§16.8).

    Blank lines and ``#`` comments (whole-line or after the key) are ignored.
    Raises :class:`BatchError` naming the first malformed line, or if no key
    is listed.
    """
    keys: set[PublicKeyToken] = set()
    # split on LF only, so line numbers match what an editor shows
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip(" \t\r")
        if not line:
            continue
        if line.lower().startswith(KeyKind.ENCRYPTION.prefix):
            # `reviewer pubkey` prints the encryption key too: say which line to keep
            raise BatchError(
                f"line {number}: an encryption key; list the reviewer's signing key (csosig1…)"
            )
        try:
            keys.add(parse_public_key(line, KeyKind.SIGNING))
        except KeyFormatError as error:
            raise BatchError(f"line {number}: {error.diagnostics()}") from None
    if not keys:
        raise BatchError("the trusted reviewers file lists no csosig1 key")
    return frozenset(keys)
