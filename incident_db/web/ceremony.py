"""The two WebAuthn ceremonies, on py_webauthn: making a passkey and signing in with one.

Where the challenge is kept between the options and the answer: in Flask's
signed session cookie (``idb_pre``: HttpOnly, SameSite=Strict, Secure over
https), with its purpose and the time it was made, for
:data:`CHALLENGE_SECONDS` at most, and taken out when it is used. A table
would need a row for every visitor who merely opens the sign-in page, and
a purge for the abandoned ones; the cookie costs nothing, works on every
worker, and cannot be forged (it is signed with the service's key). What it
cannot do alone is forget a challenge the browser chooses to send back
again: replaying a captured cookie with its captured assertion is refused
by the signature counter where the authenticator keeps one, and needs the
TLS stream (or the browser) in the first place, by which point the session
cookie itself would be the prize. The window is two minutes.
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
from incident_db.members.models import Member, Passkey
from incident_db.web.config import WebConfig

#: how long a challenge stays good: the browser's own timeout (60 s) and some slack
CHALLENGE_SECONDS = 120
TIMEOUT_MS = 60_000


class CeremonyError(IncidentDbError):
    """A passkey answer was refused; the message says what to do, never why in detail."""

    failure_class = "passkey failure"


@dataclass(frozen=True)
class NewPasskey:
    """A verified new credential, ready for ``store.add_passkey``."""

    credential_id: bytes
    public_key: bytes
    sign_count: int


def _remember(purpose: str, challenge: bytes) -> None:
    session["webauthn"] = {
        "purpose": purpose,
        "challenge": bytes_to_base64url(challenge),
        "at": int(time.time()),
    }


def forget() -> None:
    """Drop any challenge this browser holds (an answer was refused before it was checked)."""
    session.pop("webauthn", None)


def _take(purpose: str) -> bytes:
    """The challenge made for ``purpose``, once; CeremonyError if absent, stale or another's."""
    kept = session.pop("webauthn", None)
    if (
        not isinstance(kept, dict)
        or kept.get("purpose") != purpose
        or not isinstance(kept.get("at"), int)
        or not 0 <= time.time() - kept["at"] <= CHALLENGE_SECONDS
    ):
        raise CeremonyError("This passkey request has expired. Please try again.")
    return base64url_to_bytes(str(kept["challenge"]))


def answer() -> dict[str, Any]:
    """The credential the browser sent (a JSON object), or CeremonyError."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise CeremonyError("The browser's answer could not be read. Please try again.")
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
    _remember(purpose, options.challenge)
    return options_to_json(options)


def verify_registration(config: WebConfig, purpose: str, credential: dict[str, Any]) -> NewPasskey:
    """Check a new passkey against the challenge made for ``purpose``; CeremonyError if wrong."""
    challenge = _take(purpose)
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
    _remember("sign-in", options.challenge)
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
    """Check a sign-in answer made with ``passkey``; return its new counter, or CeremonyError."""
    challenge = _take("sign-in")
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
        raise CeremonyError(
            "This passkey's counter went backwards, as a copied key's would. "
            "Sign in with a recovery code and tell an admin."
        )
    return verified.new_sign_count
