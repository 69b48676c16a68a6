"""Private key files, encrypted at rest under a passphrase (SPEC.md §8.3).

A key file is UTF-8 JSON::

    {"schema": "cso-key-file/v1", "kind": "reviewer" | "organisation" | "sync",
     "public": {"encryption": "csoenc1…", "signing": "csosig1…"},
     "kdf": {"algorithm": "argon2id13", "opslimit": N, "memlimit": M,
             "salt": base64},
     "box": base64(XSalsa20-Poly1305 secretbox: nonce ‖ ciphertext)}

The box key is argon2id(passphrase, salt) via PyNaCl; the box holds the
private halves (reviewer: X25519 key ‖ Ed25519 seed; organisation and sync:
an Ed25519 seed). Files asking for less than libsodium's MODERATE limits are refused,
so a swapped file cannot quietly weaken the passphrase protection. The
public halves are recomputed on opening and must match the listed ones.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from crypto.errors import KeyFileError
from crypto.keys import KEY_LENGTH, EncryptionKeyPair, KeyKind, SigningKeyPair, format_public_key

SCHEMA = "cso-key-file/v1"
KDF_ALGORITHM = "argon2id13"
MIN_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MIN_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
#: a swapped-in file must not be able to demand more than SENSITIVE (1 GiB, 4 passes)
MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
MAX_FILE_BYTES = 16 * 1024
MIN_PASSPHRASE_CHARACTERS = 10
#: one message for every reason the box does not open (SPEC.md §8.3.2)
_CANNOT_OPEN = "wrong passphrase, or the key file is damaged"
_KINDS = ("reviewer", "organisation", "sync")


@dataclass(frozen=True, repr=False)
class KeyBundle:
    """The private keys one key file protects."""

    kind: str
    signing: SigningKeyPair
    encryption: EncryptionKeyPair | None = None

    @classmethod
    def new_reviewer(cls) -> KeyBundle:
        """A reviewer identity: an X25519 key to decrypt, an Ed25519 key to sign."""
        return cls("reviewer", SigningKeyPair.generate(), EncryptionKeyPair.generate())

    @classmethod
    def new_organisation(cls) -> KeyBundle:
        """An organisation identity: an Ed25519 key that signs key directories."""
        return cls("organisation", SigningKeyPair.generate())

    @classmethod
    def new_sync(cls) -> KeyBundle:
        """A transfer machine's login key for the reviewer sync API (no decryption key)."""
        return cls("sync", SigningKeyPair.generate())

    def public_tokens(self) -> dict[str, str]:
        """The public halves as tokens, by role."""
        tokens = {"signing": str(self.signing.token)}
        if self.encryption is not None:
            tokens["encryption"] = str(self.encryption.token)
        return tokens

    def _secret(self) -> bytes:
        if self.encryption is None:
            return self.signing.seed
        return self.encryption.private + self.signing.seed

    def __repr__(self) -> str:
        return f"KeyBundle(kind={self.kind!r}, public={self.public_tokens()!r})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, failure: str = "key file is damaged") -> bytes:
    if not isinstance(text, str):
        raise KeyFileError(failure)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(failure) from None


def _box_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
        )
    )


def encrypt_key_file(
    bundle: KeyBundle,
    passphrase: bytes,
    *,
    opslimit: int = MIN_OPSLIMIT,
    memlimit: int = MIN_MEMLIMIT,
) -> bytes:
    """Serialise ``bundle`` encrypted under ``passphrase``; return the file bytes."""
    if len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE_CHARACTERS:
        raise KeyFileError(
            f"choose a passphrase of at least {MIN_PASSPHRASE_CHARACTERS} characters"
        )
    if opslimit < MIN_OPSLIMIT or memlimit < MIN_MEMLIMIT:
        raise KeyFileError("key file KDF limits below the MODERATE minimum")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_box_key(passphrase, salt, opslimit, memlimit))
    document = {
        "schema": SCHEMA,
        "kind": bundle.kind,
        "public": bundle.public_tokens(),
        "kdf": {
            "algorithm": KDF_ALGORITHM,
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": _b64(salt),
        },
        "box": _b64(bytes(box.encrypt(bundle._secret()))),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _parse_document(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_FILE_BYTES:
        raise KeyFileError("not a key file (too large)")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise KeyFileError("not a key file") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise KeyFileError("not a cso-key-file/v1 key file")
    if document.get("kind") not in _KINDS:
        raise KeyFileError("key file is damaged")
    return document


def read_public_tokens(data: bytes) -> dict[str, str]:
    """The public tokens a key file lists, without the passphrase (unverified)."""
    public = _parse_document(data).get("public")
    if not isinstance(public, dict) or not all(isinstance(v, str) for v in public.values()):
        raise KeyFileError("key file is damaged")
    return dict(public)


def decrypt_key_file(data: bytes, passphrase: bytes) -> KeyBundle:
    """Open a key file; raise :class:`KeyFileError` on a wrong passphrase or damage."""
    document = _parse_document(data)
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("algorithm") != KDF_ALGORITHM:
        raise KeyFileError("key file uses an unknown KDF")
    opslimit, memlimit = kdf.get("opslimit"), kdf.get("memlimit")
    if not isinstance(opslimit, int) or not isinstance(memlimit, int):
        raise KeyFileError("key file is damaged")
    if opslimit < MIN_OPSLIMIT or memlimit < MIN_MEMLIMIT:
        raise KeyFileError("key file KDF limits are below the MODERATE minimum; refusing it")
    if opslimit > MAX_OPSLIMIT or memlimit > MAX_MEMLIMIT:
        raise KeyFileError("key file KDF limits are above the SENSITIVE maximum; refusing it")
    salt = _unb64(kdf.get("salt"))
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise KeyFileError("key file is damaged")
    box = nacl.secret.SecretBox(_box_key(passphrase, salt, opslimit, memlimit))
    sealed = _unb64(document.get("box"), _CANNOT_OPEN)
    try:
        secret = bytes(box.decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError):
        raise KeyFileError(_CANNOT_OPEN) from None
    bundle = _bundle_from_secret(document["kind"], secret)
    if bundle.public_tokens() != document.get("public"):
        raise KeyFileError("key file public keys do not match its private keys")
    return bundle


def _bundle_from_secret(kind: str, secret: bytes) -> KeyBundle:
    if kind in ("organisation", "sync") and len(secret) == KEY_LENGTH:
        return KeyBundle(kind, SigningKeyPair.from_seed(secret))
    if kind == "reviewer" and len(secret) == 2 * KEY_LENGTH:
        return KeyBundle(
            kind,
            SigningKeyPair.from_seed(secret[KEY_LENGTH:]),
            EncryptionKeyPair.from_private(secret[:KEY_LENGTH]),
        )
    raise KeyFileError("key file is damaged")


__all__ = [
    "KeyBundle",
    "KeyKind",
    "decrypt_key_file",
    "encrypt_key_file",
    "format_public_key",
    "read_public_tokens",
]
