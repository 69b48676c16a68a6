"""The signed key directory: which reviewer keys a browser may encrypt to (SPEC.md §10).

Wire form, UTF-8 JSON::

    {"schema": "cso-key-directory/v1",
     "signer": "csosig1…",                  # the organisation key
     "payload": base64url(payload bytes),   # no padding
     "signature": base64url(Ed25519(SIGNING_CONTEXT ‖ payload bytes))}

The signature covers the payload *bytes*, so no JSON canonicalisation is
needed to verify it in another language. The payload is JSON::

    {"schema": "cso-key-directory-payload/v1", "serial": 7,   # plain digits only
     "issued_at": "2026-11-21T08:00:00Z", "expires_at": "2027-02-19T08:00:00Z",
     "reviewers": [{"label": "reviewer-1", "encryption_key": "csoenc1…",
                    "signing_key": "csosig1…"}, …]}   # signing_key optional

An entry's ``signing_key`` is the reviewer's own Ed25519 key; workstations
use it to tell whose signed team updates to accept (SPEC.md §10.1, §17). The
browser never signs or checks those and ignores it. Neither object may have
any other field, and neither may nest deeper or hold a
longer number than :data:`MAX_DEPTH` and :data:`MAX_DIGITS` allow: JSON
parsers disagree beyond such limits, and the browser must accept exactly
what this module accepts (SPEC.md §10.5).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

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
#: SPEC.md §10.5: a payload nests three deep (object, reviewers, entry)
MAX_DEPTH = 4
#: SPEC.md §10.5: MAX_SERIAL has 16 digits
MAX_DIGITS = 16
DOCUMENT_FIELDS = frozenset({"schema", "signer", "payload", "signature"})
PAYLOAD_FIELDS = frozenset({"schema", "serial", "issued_at", "expires_at", "reviewers"})
#: the JSON tokens that matter to the limits: strings (skipped), brackets, numbers
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9][-+.eE0-9]*')
_PLAIN_DIGITS = re.compile(r"0|[1-9][0-9]*")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
ENTRY_FIELDS = frozenset({"label", "encryption_key"})
#: SPEC.md §10.1: the one optional member an entry may add
ENTRY_OPTIONAL = frozenset({"signing_key"})


@dataclass(frozen=True)
class DirectoryEntry:
    """One reviewer in the directory: a public label, an encryption key and,
    optionally, the key the reviewer signs team updates with."""

    label: str
    encryption_key: PublicKeyToken
    signing_key: PublicKeyToken | None = None


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


def _entry(reviewer: Sequence[Any]) -> dict[str, str]:
    """The wire form of one ``(label, encryption_key[, signing_key])`` tuple."""
    if len(reviewer) not in (2, 3):
        raise DirectoryError("a directory entry is (label, encryption key[, signing key])")
    entry = {"label": reviewer[0], "encryption_key": str(reviewer[1])}
    if len(reviewer) == 3 and reviewer[2] is not None:
        entry["signing_key"] = str(reviewer[2])
    return entry


def sign_directory(
    organisation: SigningKeyPair,
    reviewers: Sequence[
        tuple[str, PublicKeyToken] | tuple[str, PublicKeyToken, PublicKeyToken | None]
    ],
    *,
    serial: int,
    issued_at: datetime,
    valid_for: timedelta,
) -> bytes:
    """Build and sign a directory; return its wire form.

    Each reviewer is ``(label, encryption_key)`` or ``(label, encryption_key,
    signing_key)``; a ``None`` signing key is left out of the entry.
    """
    if not reviewers:
        raise DirectoryError("a directory lists at least one reviewer")
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "serial": serial,
        "issued_at": format_time(issued_at),
        "expires_at": format_time(issued_at + valid_for),
        "reviewers": [_entry(reviewer) for reviewer in reviewers],
    }
    payload_bytes = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    # refuse to sign what we would not accept
    _check_payload(_load_json(payload_bytes, "directory payload", PAYLOAD_FIELDS))
    document = {
        "schema": SCHEMA,
        "signer": str(organisation.token),
        "payload": base64url.encode(payload_bytes),
        "signature": base64url.encode(organisation.sign(SIGNING_CONTEXT + payload_bytes)),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _refuse_number(literal: str) -> NoReturn:
    raise DirectoryError("directory has a number not written as plain digits")


def _plain_int(literal: str) -> int:
    """SPEC.md §10.4: digits only. ``-0`` is refused too, as the browser refuses it."""
    if literal.startswith("-"):
        _refuse_number(literal)
    return int(literal)


def _load_json(data: bytes, what: str, fields: frozenset[str]) -> dict[str, Any]:
    """Decode a JSON object with exactly ``fields``, within the limits of SPEC.md §10.4-§10.5.

    JSON.parse reads ``1.0`` and ``1e3`` as the integers 1 and 1000, takes
    numbers of any length and nests as deep as its stack allows; Python's
    decoder refuses some of those and not others. So every number must be
    plain digits, at most :data:`MAX_DIGITS` of them, nothing may nest deeper
    than :data:`MAX_DEPTH`, and no field may be added, so that both refuse
    the same texts.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DirectoryError(f"{what} is too large")
    hooks: dict[str, Any] = {
        "parse_int": _plain_int,
        "parse_float": _refuse_number,
        "parse_constant": _refuse_number,
    }
    try:
        text = data.decode("utf-8")
        value = json.loads(text, **hooks)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DirectoryError(f"{what} is not JSON") from None
    _check_limits(text, what)  # on text json.loads accepted, so its tokens are well formed
    if not isinstance(value, dict) or set(value) != fields:
        raise DirectoryError(f"{what} does not have exactly the fields of SPEC.md §10")
    return value


def _check_limits(text: str, what: str) -> None:
    """Refuse JSON text nested deeper than MAX_DEPTH or with a number over MAX_DIGITS."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise DirectoryError(f"{what} nests too deep")
        elif token in ("]", "}"):
            depth -= 1
        elif not token.startswith('"'):
            if not _PLAIN_DIGITS.fullmatch(token):
                _refuse_number(token)
            if len(token) > MAX_DIGITS:
                raise DirectoryError(f"{what} has a number of more than {MAX_DIGITS} digits")


def read_directory(data: bytes, trusted_signer: PublicKeyToken) -> KeyDirectory:
    """Check a directory's signature and payload, but not the clock.

    For the signer's own tools (re-signing an expired directory); anything
    that is about to trust the keys calls :func:`verify_directory`.
    """
    document = _load_json(data, "directory", DOCUMENT_FIELDS)
    if document["schema"] != SCHEMA:
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
    payload = _load_json(payload_bytes, "directory payload", PAYLOAD_FIELDS)
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
    reviewers = tuple(_check_entry(entry) for entry in entries)
    if len({r.encryption_key for r in reviewers}) != len(reviewers):
        raise DirectoryError("directory lists a key twice")
    signing = [r.signing_key for r in reviewers if r.signing_key is not None]
    if len(set(signing)) != len(signing):
        raise DirectoryError("directory lists a signing key twice")
    return serial, issued_at, expires_at, reviewers


def _check_entry(entry: Any) -> DirectoryEntry:
    """One entry: exactly label and encryption key, plus at most a signing key."""
    if (
        not isinstance(entry, dict)
        or not ENTRY_FIELDS <= set(entry)
        or not set(entry) <= ENTRY_FIELDS | ENTRY_OPTIONAL
    ):
        raise DirectoryError("directory entry is malformed")
    label = entry["label"]
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise DirectoryError("directory entry label is malformed")
    try:
        key = parse_public_key(str(entry["encryption_key"]), KeyKind.ENCRYPTION)
    except KeyFormatError:
        raise DirectoryError("directory entry key is malformed") from None
    signing_key = None
    if "signing_key" in entry:
        try:
            signing_key = parse_public_key(str(entry["signing_key"]), KeyKind.SIGNING)
        except KeyFormatError:
            raise DirectoryError("directory entry signing key is malformed") from None
    return DirectoryEntry(label, key, signing_key)
