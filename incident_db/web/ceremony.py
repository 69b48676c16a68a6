"""The two WebAuthn ceremonies, on py_webauthn: making a passkey and signing in with one.

A challenge is kept twice between the options and the answer. The database
holds its SHA-256 (``webauthn_challenge``: purpose, member, expiry), and the
answer deletes that row with a statement that must delete exactly one: so
each challenge is answered once, however often a captured answer is sent
again and however many workers it is raced to. Flask's signed session cookie
(``idb_pre``: HttpOnly, SameSite=Strict, Secure over https) holds the
challenge itself, so that an answer is checked against the challenge made
for this browser and this purpose. Both last :data:`CHALLENGE_SECONDS`.
Rows of abandoned ceremonies are swept each time a challenge is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import request, session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from incident_db.errors import IncidentDbError
from incident_db.members import store
from incident_db.members.models import Member, Passkey
from incident_db.web import sessions
from incident_db.web.config import WebConfig

#: how long a challenge stays good: the browser's own timeout (60 s) and some slack
CHALLENGE_SECONDS = int(store.CHALLENGE_LIFETIME.total_seconds())
#: deepest JSON an answer may nest (a real one nests three levels)
ANSWER_DEPTH = 8
TIMEOUT_MS = 60_000


class CeremonyError(IncidentDbError):
    """A passkey answer was refused; the message says what to do, never why in detail."""

    failure_class = "passkey failure"


class CounterWentBackError(CeremonyError):
    """A correctly signed answer whose counter did not advance: the key may have been copied."""

    failure_class = "passkey counter failure"

    def __init__(self, reported: int) -> None:
        super().__init__(
            "This passkey's counter went backwards, as a copied key's would, so it is now "
            "disabled. Sign in with a recovery code and tell an admin."
        )
        self.reported = reported


@dataclass(frozen=True)
class NewPasskey:
    """A verified new credential, ready for ``store.add_passkey``."""

    credential_id: bytes
    public_key: bytes
    sign_count: int


def _remember(purpose: str, challenge: bytes, member: Member | None) -> None:
    """Keep ``challenge`` for one answer: its hash in the database, itself in the cookie."""
    db = sessions.database()
    store.issue_challenge(db, challenge, purpose, member)
    db.commit()
    session["webauthn"] = {
        "purpose": purpose,
        "challenge": bytes_to_base64url(challenge),
        "at": int(time.time()),
    }


def forget() -> None:
    """Drop any challenge this browser holds (an answer was refused before it was checked)."""
    session.pop("webauthn", None)


def _take(purpose: str, member: Member | None) -> bytes:
    """The challenge made for ``purpose``, once; CeremonyError if absent, stale or another's.

    The database row is deleted and committed before the answer is checked:
    one try per challenge, whatever the answer.
    """
    kept = session.pop("webauthn", None)
    expired = CeremonyError("This passkey request has expired. Please try again.")
    if (
        not isinstance(kept, dict)
        or kept.get("purpose") != purpose
        or not isinstance(kept.get("at"), int)
        or not 0 <= time.time() - kept["at"] <= CHALLENGE_SECONDS
    ):
        raise expired
    try:
        challenge = base64url_to_bytes(str(kept["challenge"]))
    except ValueError:
        raise expired from None
    db = sessions.database()
    taken = store.take_challenge(db, challenge, purpose, member)
    db.commit()
    if not taken:
        raise expired
    return challenge


def _depth(value: object) -> int:
    """How deeply ``value`` nests, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= ANSWER_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                pending.extend((child, level + 1) for child in children)
    return deepest


def answer() -> dict[str, Any]:
    """The credential the browser sent (a JSON object), or CeremonyError."""
    unreadable = CeremonyError("The browser's answer could not be read. Please try again.")
    try:
        # Python's parser recurses: a deeply nested body raises RecursionError, not ValueError
        body = request.get_json(silent=True)
    except RecursionError:
        raise unreadable from None
    if not isinstance(body, dict) or _depth(body) > ANSWER_DEPTH:
        raise unreadable
    return body


def raw_id(credential: dict[str, Any]) -> bytes:
    """The credential id the answer names."""
    try:
        return base64url_to_bytes(str(credential["rawId"]))
    except (KeyError, ValueError, TypeError):
        raise CeremonyError("The browser's answer could not be read. Please try again.") from None


def registration_options(
    config: WebConfig, purpose: str, member: Member, existing: list[Passkey]
) -> str:
    """Options (JSON) for a new discoverable passkey of ``member``; remembers the challenge."""
    options = generate_registration_options(
        rp_id=config.rp_id,
        rp_name=config.rp_name,
        user_name=member.handle,
        user_id=bytes.fromhex(member.user_handle),
        user_display_name=member.handle,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in existing],
    )
    _remember(purpose, options.challenge, member)
    return options_to_json(options)


def verify_registration(
    config: WebConfig, purpose: str, member: Member, credential: dict[str, Any]
) -> NewPasskey:
    """Check a new passkey of ``member`` against the challenge made for ``purpose``.

    CeremonyError if it is wrong.
    """
    challenge = _take(purpose, member)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=config.rp_id,
            expected_origin=config.origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise CeremonyError("The passkey could not be verified. Please try again.") from None
    return NewPasskey(verified.credential_id, verified.credential_public_key, verified.sign_count)


def authentication_options(config: WebConfig) -> str:
    """Options (JSON) for signing in with any passkey of this site; remembers the challenge.

    No credentials are listed: the authenticator offers the discoverable
    passkeys it holds for this relying party, so no handle is asked for.
    """
    options = generate_authentication_options(
        rp_id=config.rp_id,
        timeout=TIMEOUT_MS,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    _remember("sign-in", options.challenge, None)
    return options_to_json(options)


def sign_count_advances(stored: int, new: int) -> bool:
    """Whether a signature counter may follow ``stored``.

    An authenticator that keeps no counter reports 0 every time; one that
    does must report more than last time, or it may be a clone of the key.
    """
    return new > stored or (stored == 0 and new == 0)


def verify_authentication(
    config: WebConfig, credential: dict[str, Any], passkey: Passkey, member: Member
) -> int:
    """Check a sign-in answer made with ``passkey``; return its new counter.

    CeremonyError if the answer is wrong; :class:`CounterWentBackError` if it is
    correctly signed but its counter does not advance.
    """
    challenge = _take("sign-in", None)
    handle = (credential.get("response") or {}).get("userHandle")
    if handle:
        try:
            stated = base64url_to_bytes(str(handle))
        except ValueError:
            stated = b""
        if stated != bytes.fromhex(member.user_handle):
            raise CeremonyError("This passkey is not known here.")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=config.rp_id,
            expected_origin=config.origin,
            credential_public_key=passkey.public_key,
            # ours is the rule that counts (sign_count_advances): give the library none to apply
            credential_current_sign_count=0,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError, AttributeError):
        raise CeremonyError("The passkey could not be verified. Please try again.") from None
    if not sign_count_advances(passkey.sign_count, verified.new_sign_count):
        raise CounterWentBackError(verified.new_sign_count)
    return verified.new_sign_count
