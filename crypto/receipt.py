"""Receipts: how an anonymous reporter comes back (SPEC.md §14).

A receipt is 24 decimal digits, shown as six groups of four. Digits read
the same in every language on board and pass for a phone number. The
first four are a public *locator* that lets the portal find candidate
reports; the other twenty (about 66 bits) are the secret.

From the whole receipt, PBKDF2-HMAC-SHA256 (600,000 iterations, salted with
a fixed label and the locator) derives 64 bytes: the first 32 are the
reporter's X25519 private key, whose public half travels inside the
encrypted report so that reviewers can answer; the last 32 are the lookup
token, of which the portal keeps only an argon2id hash. Browsers derive the
same bytes with WebCrypto's PBKDF2.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass

from crypto.errors import KeyFormatError
from crypto.keys import EncryptionKeyPair

DIGITS = 24
LOCATOR_DIGITS = 4
ITERATIONS = 600_000
SALT_LABEL = b"cso-portal receipt v1\n"
_SPACES = re.compile(r"[\s-]+")


@dataclass(frozen=True, repr=False)
class Receipt:
    """A receipt's digits; ``repr`` hides all but the locator."""

    digits: str

    def __post_init__(self) -> None:
        if len(self.digits) != DIGITS or not self.digits.isascii() or not self.digits.isdigit():
            raise KeyFormatError(f"a receipt is {DIGITS} digits")

    @classmethod
    def generate(cls) -> Receipt:
        """A fresh uniformly random receipt."""
        return cls(f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}")

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Read a typed receipt (SPEC.md §14.1): spaces and dashes between digits
        are ignored, and a decimal digit of any script (Unicode category Nd:
        Arabic-Indic, Devanagari, full-width...) counts as the ASCII digit of
        its value. Raises KeyFormatError for anything else."""
        digits = "".join(_ascii_digit(char) for char in _SPACES.sub("", text.strip()))
        if not digits.isascii():  # a number, letter or sign that is no decimal digit
            raise KeyFormatError(f"a receipt is {DIGITS} digits 0-9")
        return cls(digits)

    @property
    def locator(self) -> str:
        """The public part the portal uses to find the report."""
        return self.digits[:LOCATOR_DIGITS]

    def __str__(self) -> str:
        return " ".join(self.digits[i : i + 4] for i in range(0, DIGITS, 4))

    def __repr__(self) -> str:
        return f"Receipt(locator={self.locator!r}, …)"


def _ascii_digit(char: str) -> str:
    """A decimal digit of any script as its ASCII digit; any other character as it is.

    The portal reads digits the same way everywhere (portal/web/digits.py); this
    package imports nothing from the portal, so it has its own line for it.
    """
    value = unicodedata.decimal(char, None)  # set for exactly the Nd characters
    return char if value is None else str(value)


@dataclass(frozen=True, repr=False)
class ReceiptKeys:
    """What a receipt derives: the reporter's key pair and the lookup token."""

    reporter: EncryptionKeyPair
    lookup_token: bytes


def derive(receipt: Receipt, iterations: int = ITERATIONS) -> ReceiptKeys:
    """SPEC.md §14: PBKDF2-HMAC-SHA256 over the 24 digits; 64 bytes split in two."""
    salt = SALT_LABEL + receipt.locator.encode("ascii")
    material = hashlib.pbkdf2_hmac("sha256", receipt.digits.encode("ascii"), salt, iterations, 64)
    return ReceiptKeys(EncryptionKeyPair.from_private(material[:32]), material[32:])
