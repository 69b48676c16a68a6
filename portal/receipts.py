"""Keeping the least possible about a receipt (crypto/SPEC.md §14.3).

The portal stores a receipt's public locator and an argon2id hash of its
lookup token, with a fresh random salt per report (argon2-cffi's defaults,
RFC 9106's second recommendation: 64 MiB, 3 passes). It never stores or logs
the receipt, the token or the reporter's key.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher

_HASHER = PasswordHasher()
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
