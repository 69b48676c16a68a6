"""The envelope header: layout, strict parsing, HPKE stanzas and the MAC.

Layout (SPEC.md §3), all integers big-endian::

    magic    16 bytes   "cso-envelope/v1\\n"
    salt     32 bytes   random, per envelope (payload key derivation)
    count     2 bytes   number of stanzas, 1..MAX_STANZAS
    stanzas  count × 112 bytes: recipient(32) ‖ enc(32) ‖ sealed data key(48)
    mac      32 bytes   HMAC-SHA256(mac_key, all of the above)
"""

from __future__ import annotations

import hmac
import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto._streams import read_up_to
from crypto.errors import HeaderError, HeaderMACError, KeyFormatError, NoMatchError
from crypto.keys import KEY_LENGTH, EncryptionKeyPair

MAGIC = b"cso-envelope/v1\n"
SALT_LENGTH = 32
DATA_KEY_LENGTH = 32
MAC_LENGTH = 32
MAX_STANZAS = 64
ENC_LENGTH = 32
SEALED_KEY_LENGTH = DATA_KEY_LENGTH + 16
STANZA_LENGTH = KEY_LENGTH + ENC_LENGTH + SEALED_KEY_LENGTH
_COUNT = struct.Struct(">H")

#: SPEC.md §4: fixed, versioned HPKE info string for sealing the data key
HPKE_INFO = b"cso-envelope/v1 data key"
#: SPEC.md §5: HKDF info strings for the two keys derived from the data key
MAC_INFO = b"cso-envelope/v1 header mac"
PAYLOAD_INFO = b"cso-envelope/v1 payload"

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class Stanza:
    """One recipient's sealed copy of the data key (SPEC.md §4)."""

    recipient: bytes
    enc: bytes
    sealed_key: bytes

    def to_bytes(self) -> bytes:
        """The 112-byte wire form."""
        return self.recipient + self.enc + self.sealed_key


@dataclass(frozen=True)
class Header:
    """A parsed envelope header. Build one with :func:`parse_header`."""

    salt: bytes
    stanzas: tuple[Stanza, ...]
    mac: bytes

    def body(self) -> bytes:
        """The bytes the MAC covers: everything before the MAC."""
        parts = [MAGIC, self.salt, _COUNT.pack(len(self.stanzas))]
        parts.extend(s.to_bytes() for s in self.stanzas)
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        """The complete wire form of the header."""
        return self.body() + self.mac

    @property
    def recipients(self) -> tuple[bytes, ...]:
        """The raw X25519 public keys named by the stanzas, in order."""
        return tuple(s.recipient for s in self.stanzas)


def header_length(stanza_count: int) -> int:
    """Wire length of a header with ``stanza_count`` stanzas."""
    return len(MAGIC) + SALT_LENGTH + _COUNT.size + stanza_count * STANZA_LENGTH + MAC_LENGTH


def read_header(src: BinaryIO) -> Header:
    """Read and strictly parse a header from ``src`` (SPEC.md §3).

    Raises :class:`HeaderError` for a wrong magic, a count of zero or above
    :data:`MAX_STANZAS`, a repeated recipient, or a truncated header.
    """
    fixed = read_up_to(src, len(MAGIC) + SALT_LENGTH + _COUNT.size)
    if fixed[: len(MAGIC)] != MAGIC:
        raise HeaderError("header failure: not a cso-envelope/v1 file")
    if len(fixed) < len(MAGIC) + SALT_LENGTH + _COUNT.size:
        raise HeaderError("header failure: truncated header")
    salt = fixed[len(MAGIC) : len(MAGIC) + SALT_LENGTH]
    (count,) = _COUNT.unpack(fixed[-_COUNT.size :])
    if not 1 <= count <= MAX_STANZAS:
        raise HeaderError("header failure: bad number of recipients")
    rest = read_up_to(src, count * STANZA_LENGTH + MAC_LENGTH)
    if len(rest) != count * STANZA_LENGTH + MAC_LENGTH:
        raise HeaderError("header failure: truncated header")
    stanzas = []
    for i in range(count):
        raw = rest[i * STANZA_LENGTH : (i + 1) * STANZA_LENGTH]
        stanzas.append(
            Stanza(
                recipient=raw[:KEY_LENGTH],
                enc=raw[KEY_LENGTH : KEY_LENGTH + ENC_LENGTH],
                sealed_key=raw[KEY_LENGTH + ENC_LENGTH :],
            )
        )
    if len({s.recipient for s in stanzas}) != count:
        raise HeaderError("header failure: a recipient appears twice")
    return Header(salt=salt, stanzas=tuple(stanzas), mac=rest[-MAC_LENGTH:])


def parse_header(data: bytes) -> Header:
    """Parse a header that must occupy exactly ``data``."""
    stream = io.BytesIO(data)
    header = read_header(stream)
    if stream.read(1):
        raise HeaderError("header failure: trailing bytes after header")
    return header


def derive_keys(data_key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """Return ``(mac_key, payload_key)`` for a data key (SPEC.md §5)."""
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=MAC_INFO).derive(data_key)
    payload_key = HKDF(hashes.SHA256(), 32, salt=salt, info=PAYLOAD_INFO).derive(data_key)
    return mac_key, payload_key


def header_mac(mac_key: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 over the header body (SPEC.md §5)."""
    return hmac.digest(mac_key, body, "sha256")


def seal_data_key(data_key: bytes, recipient: bytes) -> Stanza:
    """HPKE-seal ``data_key`` to one recipient (SPEC.md §4)."""
    if len(recipient) != KEY_LENGTH:
        raise KeyFormatError("a recipient key is 32 bytes")
    try:
        sealed = _SUITE.encrypt(data_key, X25519PublicKey.from_public_bytes(recipient), HPKE_INFO)
    except ValueError:
        # pyca refuses keys whose shared secret would be all zeros.
        raise KeyFormatError("unusable recipient key") from None
    return Stanza(recipient, sealed[:ENC_LENGTH], sealed[ENC_LENGTH:])


def build_header(recipients: Sequence[bytes]) -> tuple[Header, bytes]:
    """Make a header for a fresh data key; return it with the payload key."""
    if not 1 <= len(recipients) <= MAX_STANZAS:
        raise KeyFormatError(f"an envelope has 1 to {MAX_STANZAS} recipients")
    if len(set(recipients)) != len(recipients):
        raise KeyFormatError("a recipient is listed twice")
    data_key = os.urandom(DATA_KEY_LENGTH)
    salt = os.urandom(SALT_LENGTH)
    stanzas = tuple(seal_data_key(data_key, r) for r in recipients)
    mac_key, payload_key = derive_keys(data_key, salt)
    unsigned = Header(salt=salt, stanzas=stanzas, mac=b"")
    header = Header(salt=salt, stanzas=stanzas, mac=header_mac(mac_key, unsigned.body()))
    return header, payload_key


def open_header(header: Header, identity: EncryptionKeyPair) -> bytes:
    """Unwrap the data key for ``identity`` and check the MAC; return the payload key.

    Raises :class:`NoMatchError` when no stanza names this identity or it does
    not open, and :class:`HeaderMACError` when the MAC does not verify.
    """
    data_key = None
    for stanza in header.stanzas:
        if not hmac.compare_digest(stanza.recipient, identity.public):
            continue
        try:
            data_key = _SUITE.decrypt(
                stanza.enc + stanza.sealed_key, identity.private_key(), HPKE_INFO
            )
        except (InvalidTag, ValueError):
            data_key = None
        break
    if data_key is None or len(data_key) != DATA_KEY_LENGTH:
        raise NoMatchError("no match: this key cannot open the envelope")
    mac_key, payload_key = derive_keys(data_key, header.salt)
    if not hmac.compare_digest(header_mac(mac_key, header.body()), header.mac):
        raise HeaderMACError("MAC failure: the header does not verify")
    return payload_key
