"""The signed key directory: which reviewer keys a browser may encrypt to (SPEC.md §10).

Wire form, UTF-8 JSON::

    {"schema": "cso-key-directory/v1",
     "signer": "csosig1…",                  # the organisation key
     "payload": base64url(payload bytes),   # no padding
     "signature": base64url(Ed25519(SIGNING_CONTEXT ‖ payload bytes))}

The signature covers the payload *bytes*, so no JSON canonicalisation is
needed to verify it in another language. The payload is JSON::

    {"schema": "cso-key-directory-payload/v1", "serial": 7,
     "issued_at": "2026-11-21T08:00:00Z", "expires_at": "2027-02-19T08:00:00Z",
     "reviewers": [{"label": "reviewer-1", "encryption_key": "csoenc1…"}, …]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crypto import _base64url as base64url
from crypto.errors import DirectoryError, KeyFormatError
from crypto.keys import KeyKind, PublicKeyToken, SigningKeyPair, parse_public_key, verify_signature

SCHEMA = "cso-key-directory/v1"
PAYLOAD_SCHEMA = "cso-key-directory-payload/v1"
SIGNING_CONTEXT = b"cso-portal key directory v1\n"
#: a directory issued this far in the future is refused (clock skew allowance)
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_REVIEWERS = 64
#: SPEC.md §10.2: a directory may be valid for at most this long, so that a
#: server replaying an old directory can keep a removed key alive only briefly
MAX_VALIDITY = timedelta(days=92)
MAX_SERIAL = 2**53 - 1  # the largest integer both JSON implementations agree on
MAX_DOCUMENT_BYTES = 64 * 1024
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


@dataclass(frozen=True)
class DirectoryEntry:
    """One reviewer in the directory: a public label and an encryption key."""

    label: str
    encryption_key: PublicKeyToken


@dataclass(frozen=True)
class KeyDirectory:
    """A verified key directory."""

    serial: int
    issued_at: datetime
    expires_at: datetime
    reviewers: tuple[DirectoryEntry, ...]
    signer: PublicKeyToken

    @property
    def recipient_keys(self) -> tuple[bytes, ...]:
        """The raw X25519 keys to seal envelopes to, in directory order."""
        return tuple(r.encryption_key.key for r in self.reviewers)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with whole seconds, the only form the directory uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise DirectoryError("directory has a malformed time")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise DirectoryError("directory has a malformed time") from None


def _unb64url(value: Any) -> bytes:
    decoded = base64url.decode(value)
    if decoded is None:
        raise DirectoryError("directory is malformed")
    return decoded


def sign_directory(
    organisation: SigningKeyPair,
    reviewers: Sequence[tuple[str, PublicKeyToken]],
    *,
    serial: int,
    issued_at: datetime,
    valid_for: timedelta,
) -> bytes:
    """Build and sign a directory; return its wire form."""
    if not reviewers:
        raise DirectoryError("a directory lists at least one reviewer")
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "serial": serial,
        "issued_at": format_time(issued_at),
        "expires_at": format_time(issued_at + valid_for),
        "reviewers": [{"label": label, "encryption_key": str(token)} for label, token in reviewers],
    }
    payload_bytes = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    _check_payload(json.loads(payload_bytes))  # refuse to sign what we would not accept
    document = {
        "schema": SCHEMA,
        "signer": str(organisation.token),
        "payload": base64url.encode(payload_bytes),
        "signature": base64url.encode(organisation.sign(SIGNING_CONTEXT + payload_bytes)),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _load_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DirectoryError(f"{what} is too large")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DirectoryError(f"{what} is not JSON") from None


def read_directory(data: bytes, trusted_signer: PublicKeyToken) -> KeyDirectory:
    """Check a directory's signature and payload, but not the clock.

    For the signer's own tools (re-signing an expired directory); anything
    that is about to trust the keys calls :func:`verify_directory`.
    """
    document = _load_json(data, "directory")
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise DirectoryError("not a cso-key-directory/v1 document")
    try:
        signer = parse_public_key(str(document.get("signer", "")), KeyKind.SIGNING)
    except KeyFormatError:
        raise DirectoryError("directory signer is malformed") from None
    if signer != trusted_signer:
        raise DirectoryError("directory is signed by an untrusted key")
    payload_bytes = _unb64url(document.get("payload"))
    signature = _unb64url(document.get("signature"))
    if not verify_signature(signer.key, SIGNING_CONTEXT + payload_bytes, signature):
        raise DirectoryError("directory signature does not verify")
    payload = _load_json(payload_bytes, "directory payload")
    return KeyDirectory(*_check_payload(payload), signer=signer)


def verify_directory(
    data: bytes, trusted_signer: PublicKeyToken, now: datetime, *, min_serial: int = 0
) -> KeyDirectory:
    """Verify a directory against the pinned organisation key at time ``now``.

    Raises :class:`DirectoryError` if it is malformed, signed by another key,
    badly signed, not yet valid, expired, or older than ``min_serial`` (a
    reviewer tool passes the highest serial it has seen, SPEC.md §10.4).
    """
    directory = read_directory(data, trusted_signer)
    if directory.serial < min_serial:
        raise DirectoryError("directory is older than one already seen (rollback?)")
    if directory.issued_at > now + MAX_CLOCK_SKEW:
        raise DirectoryError("directory is not valid yet (check the clock)")
    if now >= directory.expires_at:
        raise DirectoryError("directory has expired")
    return directory


def _check_payload(
    payload: Any,
) -> tuple[int, datetime, datetime, tuple[DirectoryEntry, ...]]:
    """Check a decoded payload; return serial, issue time, expiry and entries."""
    if not isinstance(payload, dict) or payload.get("schema") != PAYLOAD_SCHEMA:
        raise DirectoryError("directory payload has the wrong schema")
    serial = payload.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or not 0 <= serial <= MAX_SERIAL:
        raise DirectoryError("directory serial is malformed")
    issued_at = _parse_time(payload.get("issued_at"))
    expires_at = _parse_time(payload.get("expires_at"))
    if expires_at <= issued_at:
        raise DirectoryError("directory expires before it is issued")
    if expires_at - issued_at > MAX_VALIDITY:
        raise DirectoryError("directory is valid for longer than 92 days")
    entries = payload.get("reviewers")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_REVIEWERS:
        raise DirectoryError("directory must list 1 to 64 reviewers")
    reviewers = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"label", "encryption_key"}:
            raise DirectoryError("directory entry is malformed")
        label = entry["label"]
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise DirectoryError("directory entry label is malformed")
        try:
            key = parse_public_key(str(entry["encryption_key"]), KeyKind.ENCRYPTION)
        except KeyFormatError:
            raise DirectoryError("directory entry key is malformed") from None
        reviewers.append(DirectoryEntry(label, key))
    if len({r.encryption_key for r in reviewers}) != len(reviewers):
        raise DirectoryError("directory lists a key twice")
    return serial, issued_at, expires_at, tuple(reviewers)
