"""The signed team update and its sealing (crypto/SPEC.md §17.1-§17.6).

A team update is one event about one report, made on one workstation::

    signed       = {"schema": "cso-team-signed/v1", "payload": b64url(update_bytes),
                    "signature": b64url(Ed25519(author, "cso-team update v1\\n" ‖ update_bytes))}
    update_bytes = {"schema": "cso-team-update/v1", "id", "author", "directory_serial",
                    "clock", "made_at", "report", "field", "value"}

The signature covers the payload bytes as sent, as in the key directory
(§10), so no JSON canonicalisation is needed. Both objects come from another
workstation, or from anyone who can write to the portal, so they are parsed
strictly: exactly the listed members, no repeated member, integers as plain
digits, every string checked. A writer refuses to sign what a reader would
refuse, so a reviewer learns of a problem when making the change, not when a
teammate imports it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from crypto import _base64url as base64url
from crypto.envelope import open_bytes, seal_bytes, sealed_size
from crypto.errors import CryptoError, KeyFormatError, NoMatchError
from crypto.keys import (
    EncryptionKeyPair,
    KeyKind,
    SigningKeyPair,
    parse_public_key,
    verify_signature,
)
from reviewer_tool.errors import ReviewerError

SIGNED_SCHEMA = "cso-team-signed/v1"
UPDATE_SCHEMA = "cso-team-update/v1"
SIGNING_CONTEXT = b"cso-team update v1\n"
#: §17.1: a reader refuses a signed document larger than this before parsing it
MAX_SIGNED_BYTES = 64 * 1024
#: §17.5: the portal relays envelopes up to this size; a writer keeps under it
MAX_ENVELOPE_BYTES = 64 * 1024
#: a key directory lists at most this many reviewers (crypto/directory.py)
MAX_RECIPIENTS = 64
MAX_INTEGER = 2**53 - 1
#: §17 Merge: the greatest clock; a writer at it gives its new updates this clock again
MAX_CLOCK = MAX_INTEGER
FIELDS = ("triage", "assignee", "label", "link", "note", "reply")
TRIAGE_STATUSES = ("confirmed", "unconfirmed", "rejected")
REPORTER_STATUSES = ("received", "under-review", "closed")
MAX_NOTE = 5000
MAX_MESSAGE = 20_000
MAX_LABEL_NAME = 40
SIGNED_MEMBERS = frozenset({"schema", "payload", "signature"})
UPDATE_MEMBERS = frozenset(
    {"schema", "id", "author", "directory_serial", "clock", "made_at", "report", "field", "value"}
)
VALUE_MEMBERS: dict[str, frozenset[str]] = {
    "triage": frozenset({"status", "grade", "duplicate_of"}),
    "assignee": frozenset({"label"}),
    "label": frozenset({"name", "present"}),
    "link": frozenset({"other", "present"}),
    "note": frozenset({"note_id", "text"}),
    "reply": frozenset({"reply_id", "status", "message", "written_on", "in_reply_to"}),
}
#: members a value may also carry; ``shortened`` is present only as true (§17, reply)
OPTIONAL_MEMBERS: dict[str, frozenset[str]] = {"reply": frozenset({"shortened"})}
_HEX32 = re.compile(r"[0-9a-f]{32}")
_GRADE = re.compile(r"[A-F][1-6]")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_DIGITS = re.compile(r"0|[1-9][0-9]{0,15}")
#: ASCII only: what counts as a Unicode letter changes between Python versions,
#: and two workstations must never disagree about which updates are well formed
LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,38}[A-Za-z0-9._-])?")
#: the key directory's label form (crypto/directory.py), which an assignee names
DIRECTORY_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
#: control characters other than tab and line breaks could drive a terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: §17.6: one message for every reason an envelope does not open
_CANNOT_OPEN = "a team update could not be opened"


class TeamUpdateError(ReviewerError):
    """A team update is malformed, badly signed, or cannot be opened or shared."""


class NotForYouError(TeamUpdateError):
    """A team update sealed to other keys (made before this workstation joined)."""


@dataclass(frozen=True)
class Update:
    """A team update whose shape is checked (and, from :func:`check_signed`, its signature)."""

    id: str
    author: str  # the csosig1 token that signed it
    directory_serial: int
    clock: int
    made_at: str
    report: str
    field: str
    value: dict[str, Any] = dataclass_field(hash=False)


def _refuse(message: str) -> NoReturn:
    raise TeamUpdateError(message)


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """§17.2: a repeated member would let two readers see two different updates."""
    value: dict[str, Any] = {}
    for name, member in pairs:
        if name in value:
            _refuse("a team update repeats a member")
        value[name] = member
    return value


def _plain_int(literal: str) -> int:
    if not _PLAIN_DIGITS.fullmatch(literal):
        _refuse("a team update has a number not written as plain digits")
    return int(literal)


def _not_a_number(literal: str) -> NoReturn:
    _refuse("a team update has a number not written as plain digits")


def _load(data: bytes, what: str, members: frozenset[str]) -> dict[str, Any]:
    """A JSON object with exactly ``members``, read strictly (§17.2)."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_repeats,
            parse_int=_plain_int,
            parse_float=_not_a_number,
            parse_constant=_not_a_number,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        _refuse(f"{what} is not JSON")
    if not isinstance(value, dict) or set(value) != members:
        _refuse(f"{what} does not have exactly the members of crypto/SPEC.md §17")
    return value


def _hex32(value: Any, name: str) -> str:
    if type(value) is not str or not _HEX32.fullmatch(value):
        _refuse(f"a team update's {name} is not 32 lower-case hex digits")
    return value


def _hex32_or_none(value: Any, name: str) -> str | None:
    return None if value is None else _hex32(value, name)


def _one_of(value: Any, choices: Sequence[str], name: str) -> str:
    if type(value) is not str or value not in choices:
        _refuse(f"a team update's {name} is not one of {', '.join(choices)}")
    return value


def _flag(value: Any, name: str) -> bool:
    if type(value) is not bool:
        _refuse(f"a team update's {name} is not true or false")
    return value


def _integer(value: Any, name: str, least: int) -> int:
    if type(value) is not int or not least <= value <= MAX_INTEGER:
        _refuse(f"a team update's {name} is not an integer from {least} to 2^53 - 1")
    return value


def _text(value: Any, name: str, limit: int) -> str:
    """Free text: 1 to ``limit`` characters, storable as UTF-8, no terminal controls."""
    if type(value) is not str or not value.strip() or len(value) > limit:
        _refuse(f"a team update's {name} is not text of 1 to {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _refuse(f"a team update's {name} holds a lone surrogate")
    if _CONTROL.search(value):
        _refuse(f"a team update's {name} holds a control character")
    return value


def _day(value: Any, name: str) -> str:
    if type(value) is not str or not _DAY.fullmatch(value):
        _refuse(f"a team update's {name} is not a YYYY-MM-DD date")
    try:
        date.fromisoformat(value)
    except ValueError:
        _refuse(f"a team update's {name} is not a YYYY-MM-DD date")
    return value


def _moment(value: Any) -> str:
    if type(value) is not str or not _TIME.fullmatch(value):
        _refuse("a team update's made_at is not a YYYY-MM-DDTHH:MM:SSZ time")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        _refuse("a team update's made_at is not a YYYY-MM-DDTHH:MM:SSZ time")
    return value


def _triage(value: dict[str, Any]) -> None:
    _one_of(value["status"], TRIAGE_STATUSES, "status")
    if type(value["grade"]) is not str or not _GRADE.fullmatch(value["grade"]):
        _refuse("a team update's grade is not a letter A-F and a digit 1-6")
    _hex32_or_none(value["duplicate_of"], "duplicate_of")


def _assignee(value: dict[str, Any]) -> None:
    label = value["label"]
    if label is not None and (type(label) is not str or not DIRECTORY_LABEL.fullmatch(label)):
        _refuse("a team update's assignee is not a key directory label")


def _label(value: dict[str, Any]) -> None:
    name = value["name"]
    if type(name) is not str or not LABEL_NAME.fullmatch(name):
        _refuse(
            f"a label is 1 to {MAX_LABEL_NAME} letters, digits, spaces, '-', '_' or '.'"
            " (ASCII), not starting or ending with a space"
        )
    _flag(value["present"], "present")


def _link(value: dict[str, Any]) -> None:
    _hex32(value["other"], "other")
    _flag(value["present"], "present")


def _note(value: dict[str, Any]) -> None:
    _hex32(value["note_id"], "note_id")
    _text(value["text"], "text", MAX_NOTE)


def _reply(value: dict[str, Any]) -> None:
    _hex32(value["reply_id"], "reply_id")
    if value["status"] is not None:
        _one_of(value["status"], REPORTER_STATUSES, "status")
    if value["message"] is not None:
        _text(value["message"], "message", MAX_MESSAGE)
    if value["status"] is None and value["message"] is None:
        _refuse("a reply update carries neither a message nor a status")
    _day(value["written_on"], "written_on")
    _hex32_or_none(value["in_reply_to"], "in_reply_to")
    if "shortened" in value and (value["shortened"] is not True or value["message"] is None):
        # one spelling only: absent when whole, true when cut (two forms would read alike)
        _refuse("a reply update's shortened is not true beside a message")


_VALUE_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "triage": _triage,
    "assignee": _assignee,
    "label": _label,
    "link": _link,
    "note": _note,
    "reply": _reply,
}


def check_value(field: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``value`` if it is exactly the shape ``field`` takes (§17.3).

    Raises :class:`TeamUpdateError` naming the member that is wrong, never its content.
    """
    if type(field) is not str or field not in _VALUE_CHECKS:
        _refuse(f"a team update's field is not one of {', '.join(FIELDS)}")
    required, optional = VALUE_MEMBERS[field], OPTIONAL_MEMBERS.get(field, frozenset())
    if not isinstance(value, dict) or not required <= set(value) <= required | optional:
        _refuse(f"a {field} update does not have exactly the members of crypto/SPEC.md §17")
    _VALUE_CHECKS[field](value)
    return dict(value)


def _update(payload: dict[str, Any]) -> Update:
    """The checked update from a decoded payload (§17.2, §17.3)."""
    if payload["schema"] != UPDATE_SCHEMA:
        _refuse("not a cso-team-update/v1 payload")
    author = payload["author"]
    try:
        token = parse_public_key(author if type(author) is str else "", KeyKind.SIGNING)
    except KeyFormatError:
        _refuse("a team update's author is not a csosig1 key")
    if str(token) != author:
        _refuse("a team update's author is not written in canonical form")
    update = Update(
        id=_hex32(payload["id"], "id"),
        author=author,
        directory_serial=_integer(payload["directory_serial"], "directory_serial", 0),
        clock=_integer(payload["clock"], "clock", 1),
        made_at=_moment(payload["made_at"]),
        report=_hex32(payload["report"], "report"),
        field=payload["field"],
        value=check_value(payload["field"], payload["value"]),
    )
    points_at = {"triage": "duplicate_of", "link": "other"}.get(update.field)
    if points_at and update.value[points_at] == update.report:
        _refuse("a team update links a report to itself")
    return update


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_signed(
    signer: SigningKeyPair,
    *,
    report: str,
    field: str,
    value: dict[str, Any],
    clock: int,
    directory_serial: int,
    made_at: str | datetime | None = None,
    update_id: str | None = None,
) -> bytes:
    """Build and sign one update; return the signed document's bytes.

    Raises :class:`TeamUpdateError` for anything a reader would refuse, and
    for an update too large to reach every teammate (§17.5): check before
    acting on anything else.
    """
    if isinstance(made_at, datetime):
        made_at = made_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = {
        "schema": UPDATE_SCHEMA,
        "id": update_id if update_id is not None else secrets.token_hex(16),
        "author": str(signer.token),
        "directory_serial": directory_serial,
        "clock": clock,
        "made_at": made_at if made_at is not None else _now(),
        "report": report,
        "field": field,
        "value": value,
    }
    _update(payload)  # refuse to sign what a reader would refuse
    update_bytes = _json(payload)
    signed = _document(update_bytes, signer.sign(SIGNING_CONTEXT + update_bytes))
    if not _can_seal(signed):
        _refuse("this change is too large to share with the team; shorten its text")
    return signed


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _document(update_bytes: bytes, signature: bytes) -> bytes:
    document = {
        "schema": SIGNED_SCHEMA,
        "payload": base64url.encode(update_bytes),
        "signature": base64url.encode(signature),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _can_seal(signed: bytes) -> bool:
    """§17.5: whether the envelope of ``signed`` to 64 recipients stays within the relay's cap."""
    return sealed_size(len(signed), MAX_RECIPIENTS) <= MAX_ENVELOPE_BYTES


def shareable(author: str, report: str, field: str, value: dict[str, Any]) -> bool:
    """Whether an update of ``author`` with this ``field`` and ``value`` fits §17.5, whatever
    id, clock, serial and time it is later given (each is measured at its longest)."""
    payload = {"schema": UPDATE_SCHEMA, "id": "0" * 32, "author": author,
               "directory_serial": MAX_INTEGER, "clock": MAX_CLOCK,
               "made_at": "2000-01-01T00:00:00Z", "report": report, "field": field,
               "value": value}  # fmt: skip
    return _can_seal(_document(_json(payload), bytes(64)))


def check_signed(signed: bytes) -> Update:
    """Parse a signed document strictly and verify its signature by its ``author``.

    The shape is checked before the signature (§17.2), so a malformed update
    is reported as malformed; admission against the key directories is
    reviewer_tool/team/directories.py's. Raises :class:`TeamUpdateError`.
    """
    if not isinstance(signed, bytes):
        _refuse("a team update is not a byte string")
    if len(signed) > MAX_SIGNED_BYTES:
        _refuse("a team update is larger than 64 KiB")
    document = _load(signed, "a team update", SIGNED_MEMBERS)
    if document["schema"] != SIGNED_SCHEMA:
        _refuse("not a cso-team-signed/v1 document")
    update_bytes = base64url.decode(document["payload"])
    signature = base64url.decode(document["signature"])
    if update_bytes is None or signature is None or len(signature) != 64:
        _refuse("a team update's payload or signature is not canonical base64url")
    update = _update(_load(update_bytes, "a team update's payload", UPDATE_MEMBERS))
    author = parse_public_key(update.author, KeyKind.SIGNING)
    if not verify_signature(author.key, SIGNING_CONTEXT + update_bytes, signature):
        _refuse("a team update's signature does not verify")
    return update


def seal_update(signed: bytes, recipients: Sequence[bytes]) -> bytes:
    """Seal a signed document to the raw X25519 keys of a key directory (§17.5)."""
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        _refuse("a team update is sealed to 1 to 64 reviewer keys")
    if len(signed) > MAX_SIGNED_BYTES:
        _refuse("a team update is larger than 64 KiB")
    return seal_bytes(signed, list(recipients))


def open_update(envelope: bytes, identity: EncryptionKeyPair) -> bytes:
    """The signed document inside an envelope; not checked (call :func:`check_signed`).

    Raises :class:`NotForYouError` when no stanza is for ``identity``, and
    :class:`TeamUpdateError` with one message for every other failure (§17.6).
    """
    if len(envelope) > MAX_ENVELOPE_BYTES:
        _refuse(_CANNOT_OPEN)
    try:
        signed = open_bytes(envelope, identity)
    except NoMatchError:
        raise NotForYouError("a team update is not sealed to this workstation's key") from None
    except CryptoError:
        _refuse(_CANNOT_OPEN)
    if len(signed) > MAX_SIGNED_BYTES:
        _refuse(_CANNOT_OPEN)
    return signed
