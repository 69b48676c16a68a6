"""Keeping the least possible about a receipt (crypto/SPEC.md §14.3).

The portal stores a receipt's public locator and its *receipt index*:
argon2id of the lookup token, salted with a fixed label and the locator.
The index is deterministic, so a lookup costs one argon2id computation and
one indexed query whoever filed what under the same locator: stuffing a
locator with reports makes its lookups no slower. The portal never stores
or logs the receipt, the token or the reporter's key.

Parameters: argon2id, 19 MiB, 2 passes, 1 lane (OWASP's minimum profile),
about 35 ms here. The token already stands for 66 secret bits stretched by
600,000 PBKDF2 iterations, so this layer only has to make every guess cost
memory as well; heavier settings (argon2-cffi's default costs 190 ms and
64 MiB) would mostly hand anyone who floods the intake a lever on the CPU.

Reports filed before the index existed (migration 0005) hold instead an
argon2id hash of the token with a random salt of their own;
:func:`verify_lookup_token` checks a token against one of those. argon2-cffi
verifies with whatever memory and passes a hash names, so a planted row (a
forged backup, a tampered database) could make every lookup under its
locator cost gigabytes: a hash is only ever computed if it names exactly the
server's own parameters (:func:`is_lookup_hash`), and any other never matches.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw

TIME_COST = 2
MEMORY_KIB = 19 * 1024
PARALLELISM = 1
INDEX_SALT = b"cso-portal receipt index v1\n"
_LEGACY = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)
#: the one shape of hash _LEGACY makes: argon2id, v19, these costs, its salt and hash lengths
_LEGACY_HASH = re.compile(
    rf"\$argon2id\$v={ARGON2_VERSION}\$m={MEMORY_KIB},t={TIME_COST},p={PARALLELISM}"
    rf"\$[A-Za-z0-9+/]{{{-(-4 * _LEGACY.salt_len // 3)}}}"
    rf"\$[A-Za-z0-9+/]{{{-(-4 * _LEGACY.hash_len // 3)}}}"
)
_LOCATOR = re.compile(r"[0-9]{4}")
_TOKEN = re.compile(r"[0-9a-f]{64}")


class BadReceiptError(ValueError):
    """The browser sent a malformed locator or token."""


def receipt_index(locator: str, token: bytes) -> str:
    """The receipt index of SPEC §14.3: argon2id(token, label ‖ locator), hex."""
    if not _LOCATOR.fullmatch(locator) or len(token) != 32:
        raise BadReceiptError("a locator is 4 digits and a lookup token 32 bytes")
    raw = hash_secret_raw(
        token,
        INDEX_SALT + locator.encode("ascii"),
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )
    return raw.hex()


def parse_browser_receipt(locator: str, token_hex: str) -> tuple[str, bytes]:
    """Check what a browser sends in place of its receipt: locator and token."""
    if not _LOCATOR.fullmatch(locator) or not _TOKEN.fullmatch(token_hex):
        raise BadReceiptError("malformed receipt fields")
    return locator, bytes.fromhex(token_hex)


def is_lookup_hash(stored: str) -> bool:
    """Whether ``stored`` is a per-report hash with exactly the server's parameters."""
    return _LEGACY_HASH.fullmatch(stored) is not None


def verify_lookup_token(stored: str, token: bytes) -> bool:
    """Whether ``token`` matches the per-report hash of a report filed before 0005.

    A hash that names other parameters than the server's is refused unread.
    """
    if not is_lookup_hash(stored):
        return False
    try:
        return bool(_LEGACY.verify(stored, token))
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False
