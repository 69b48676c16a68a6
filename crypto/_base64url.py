"""Unpadded base64url, the one text form of signatures and payloads in signed documents."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode(value: Any) -> bytes | None:
    """The bytes of canonical unpadded base64url, or None for anything else.

    Canonical means re-encoding gives the same text: spare bits set in the
    last character would let two texts carry one signature.
    """
    if not isinstance(value, str) or not _ALPHABET.fullmatch(value):
        return None
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return decoded if encode(decoded) == value else None
