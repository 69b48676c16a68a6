"""Keeping the least possible about a receipt (crypto/SPEC.md §14.3).

The portal stores a receipt's public locator and an argon2id hash of its
lookup token, with a fresh random salt per report. It never stores or logs
the receipt, the token or the reporter's key.

Parameters: argon2id, 19 MiB, 2 passes, 1 lane (OWASP's minimum profile),
about 35 ms here. The token already stands for 66 secret bits stretched by
600,000 PBKDF2 iterations, so this layer only has to make every guess cost
memory per report; heavier settings (argon2-cffi's default costs 190 ms and
64 MiB) would mostly hand anyone who floods the intake a lever on the CPU.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_LOCATOR = re.compile(r"[0-9]{4}")
_TOKEN = re.compile(r"[0-9a-f]{64}")


class BadReceiptError(ValueError):
    """The browser sent a malformed locator or token."""


def hash_lookup_token(token: bytes) -> str:
    """argon2id of the 32-byte lookup token, with its own random salt."""
    if len(token) != 32:
        raise BadReceiptError("a lookup token is 32 bytes")
    return _HASHER.hash(token)


def parse_browser_receipt(locator: str, token_hex: str) -> tuple[str, bytes]:
    """Check what a browser sends in place of its receipt: locator and token."""
    if not _LOCATOR.fullmatch(locator) or not _TOKEN.fullmatch(token_hex):
        raise BadReceiptError("malformed receipt fields")
    return locator, bytes.fromhex(token_hex)


def verify_lookup_token(stored: str, token: bytes) -> bool:
    """Whether ``token`` matches an argon2id hash made by :func:`hash_lookup_token`."""
    try:
        return bool(_HASHER.verify(stored, token))
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False
