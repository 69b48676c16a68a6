"""Public keys as one-token text, fingerprints, and key pairs (SPEC.md §8).

A public key token is ``PREFIX`` followed by lower-case RFC 4648 base32
(no padding) of ``key ‖ check``, where ``check`` is the first four bytes of
SHA-256(``PREFIX`` ‖ key). A mistyped token fails the check and is refused.

* ``csoenc1…`` — an X25519 encryption key (reviewers, reporters);
* ``csosig1…`` — an Ed25519 signing key (the organisation, reviewers).

A fingerprint is 30 decimal digits in six groups of five, read from
SHA-256(``"cso-portal fingerprint v1" ‖ PREFIX ‖ key``), so two people can
compare keys over a phone line in any language.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from crypto.errors import KeyFormatError

KEY_LENGTH = 32
_CHECK_LENGTH = 4
_FINGERPRINT_LABEL = b"cso-portal fingerprint v1"


class KeyKind(Enum):
    """The two kinds of public key the system passes around."""

    ENCRYPTION = "csoenc1"
    SIGNING = "csosig1"

    @property
    def prefix(self) -> str:
        """The token prefix for this kind."""
        return self.value


@dataclass(frozen=True)
class PublicKeyToken:
    """A raw 32-byte public key together with its kind."""

    kind: KeyKind
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_LENGTH:
            raise KeyFormatError("a public key is 32 bytes")

    def __str__(self) -> str:
        return format_public_key(self.kind, self.key)

    @property
    def fingerprint(self) -> str:
        """The grouped-digit fingerprint of this key."""
        return fingerprint(self.kind, self.key)


def _check(prefix: str, key: bytes) -> bytes:
    return hashlib.sha256(prefix.encode("ascii") + key).digest()[:_CHECK_LENGTH]


def format_public_key(kind: KeyKind, key: bytes) -> str:
    """Return the one-token text form of a raw public key."""
    if len(key) != KEY_LENGTH:
        raise KeyFormatError("a public key is 32 bytes")
    body = base64.b32encode(key + _check(kind.prefix, key)).decode("ascii")
    return kind.prefix + body.rstrip("=").lower()


def parse_public_key(token: str, kind: KeyKind | None = None) -> PublicKeyToken:
    """Parse a one-token public key, refusing a wrong kind or a bad checksum.

    Surrounding white space is ignored and letters may be in either case,
    since people copy these by hand; nothing else is tolerated.
    """
    # ASCII only: Unicode case folding would let look-alikes through (the
    # Kelvin sign lower-cases to "k"), and Unicode spaces are not typing slips.
    text = token.strip(" \t\n\r\x0b\x0c")  # the same set as keys.js
    if not text.isascii():
        raise KeyFormatError("public key token has characters outside base32")
    text = text.lower()
    kinds = [kind] if kind is not None else list(KeyKind)
    for candidate in kinds:
        if text.startswith(candidate.prefix):
            body = text[len(candidate.prefix) :]
            break
    else:
        expected = " or ".join(k.prefix for k in kinds)
        raise KeyFormatError(f"not a public key token (expected {expected}…)")
    raw_length = KEY_LENGTH + _CHECK_LENGTH
    if len(body) != -(-raw_length * 8 // 5):
        raise KeyFormatError("public key token has the wrong length")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except ValueError:
        raise KeyFormatError("public key token has characters outside base32") from None
    key, check = raw[:KEY_LENGTH], raw[KEY_LENGTH:]
    if not hmac.compare_digest(check, _check(candidate.prefix, key)):
        raise KeyFormatError("public key token checksum does not match (mistyped?)")
    if format_public_key(candidate, key) != text:
        raise KeyFormatError("public key token is not in canonical form")
    return PublicKeyToken(candidate, key)


def fingerprint(kind: KeyKind, key: bytes) -> str:
    """Return 30 digits in six groups of five identifying ``key``."""
    digest = hashlib.sha256(_FINGERPRINT_LABEL + kind.prefix.encode("ascii") + key).digest()
    groups = []
    for i in range(6):
        value = int.from_bytes(digest[i * 5 : i * 5 + 5], "big") % 100_000
        groups.append(f"{value:05d}")
    return " ".join(groups)


@dataclass(frozen=True, repr=False)
class EncryptionKeyPair:
    """An X25519 key pair; ``repr`` never shows the private half."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> EncryptionKeyPair:
        """Make a fresh random key pair."""
        return cls.from_private(
            X25519PrivateKey.generate().private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption()
            )
        )

    @classmethod
    def from_private(cls, private: bytes) -> EncryptionKeyPair:
        """Rebuild the pair from the 32 private bytes."""
        if len(private) != KEY_LENGTH:
            raise KeyFormatError("an X25519 private key is 32 bytes")
        public = (
            X25519PrivateKey.from_private_bytes(private)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(private, public)

    def private_key(self) -> X25519PrivateKey:
        """The private key as a pyca object."""
        return X25519PrivateKey.from_private_bytes(self.private)

    def public_key(self) -> X25519PublicKey:
        """The public key as a pyca object."""
        return X25519PublicKey.from_public_bytes(self.public)

    @property
    def token(self) -> PublicKeyToken:
        """The public half as a token."""
        return PublicKeyToken(KeyKind.ENCRYPTION, self.public)

    def __repr__(self) -> str:
        return f"EncryptionKeyPair(public={self.token})"


@dataclass(frozen=True, repr=False)
class SigningKeyPair:
    """An Ed25519 key pair (PyNaCl); ``repr`` never shows the seed."""

    seed: bytes
    public: bytes

    @classmethod
    def generate(cls) -> SigningKeyPair:
        """Make a fresh random key pair."""
        return cls.from_seed(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKeyPair:
        """Rebuild the pair from the 32-byte seed."""
        if len(seed) != KEY_LENGTH:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        public = bytes(nacl.signing.SigningKey(seed).verify_key)
        return cls(seed, public)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached signature of ``message``."""
        return bytes(nacl.signing.SigningKey(self.seed).sign(message).signature)

    @property
    def token(self) -> PublicKeyToken:
        """The public half as a token."""
        return PublicKeyToken(KeyKind.SIGNING, self.public)

    def __repr__(self) -> str:
        return f"SigningKeyPair(public={self.token})"


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` is a valid Ed25519 signature by ``public``."""
    import nacl.exceptions

    if len(public) != KEY_LENGTH or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
