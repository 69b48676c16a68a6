"""Signed incident batches: reviewed records as signed JSON Lines (SPEC.md §16).

A batch is UTF-8 text, one JSON object per line, each line ending in a line
feed::

    {"schema":"cso-incident-batch/v1","batch_id":"…","created_at":"…","signer":"csosig1…","count":N}
    {…record 1…}
    …
    {…record N…}
    {"signature":"base64url(Ed25519(SIGNING_CONTEXT ‖ SHA-512(lines 1 … N+1)))"}

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
_BATCH_ID = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SIGNATURE_LENGTH = 64


@dataclass(frozen=True)
class Batch:
    """A verified batch: its header and its records with their line numbers."""

    batch_id: str
    created_at: datetime
    signer: PublicKeyToken
    records: tuple[tuple[int, dict[str, Any]], ...]


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
) -> bytes:
    """Serialise and sign ``records``; return the batch's bytes.

    Raises :class:`BatchError` for anything a reader would refuse (§16.7).
    """
    if not _BATCH_ID.fullmatch(batch_id):
        raise BatchError("batch_id must be 32 lower-case hexadecimal digits")
    if not 1 <= len(records) <= MAX_RECORDS:
        raise BatchError(f"a batch holds 1 to {MAX_RECORDS:,} records")
    header = {
        "schema": SCHEMA,
        "batch_id": batch_id,
        "created_at": _format_time(created_at),
        "signer": str(signer.token),
        "count": len(records),
    }
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
    if set(header) != HEADER_KEYS:
        raise BatchError("line 1: header must have exactly " + ", ".join(sorted(HEADER_KEYS)))
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
    batch_id, created_at, signer, count = _check_header(lines.parse(first))
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
    return Batch(batch_id, created_at, signer, tuple(records))


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
