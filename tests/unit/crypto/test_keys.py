"""Public key tokens and fingerprints (SPEC §8.1-§8.2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import KeyFormatError
from crypto.keys import (
    EncryptionKeyPair,
    KeyKind,
    SigningKeyPair,
    fingerprint,
    format_public_key,
    parse_public_key,
    verify_signature,
)


@given(st.binary(min_size=32, max_size=32), st.sampled_from(list(KeyKind)))
def test_token_round_trip(key: bytes, kind: KeyKind) -> None:
    token = format_public_key(kind, key)
    assert len(token) == 65
    assert re.fullmatch(r"cso(enc|sig)1[a-z2-7]{58}", token)
    assert parse_public_key(token, kind).key == key
    assert parse_public_key(f"  {token.upper()}\n").key == key  # typed by hand


@given(st.binary(min_size=32, max_size=32), st.integers(min_value=7, max_value=64))
def test_any_single_character_typo_is_refused(key: bytes, position: int) -> None:
    token = format_public_key(KeyKind.ENCRYPTION, key)
    for replacement in "a7q":
        if token[position] == replacement:
            continue
        typo = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(KeyFormatError):
            parse_public_key(typo)
        break


def test_kind_is_enforced() -> None:
    token = str(SigningKeyPair.generate().token)
    with pytest.raises(KeyFormatError, match="csoenc1"):
        parse_public_key(token, KeyKind.ENCRYPTION)


def test_fingerprint_is_six_groups_of_five_digits() -> None:
    value = fingerprint(KeyKind.ENCRYPTION, bytes(32))
    assert re.fullmatch(r"(\d{5} ){5}\d{5}", value)
    assert value != fingerprint(KeyKind.SIGNING, bytes(32))  # kind is bound in


def test_repr_never_shows_private_halves() -> None:
    pair = EncryptionKeyPair.generate()
    signer = SigningKeyPair.generate()
    assert pair.private.hex() not in repr(pair)
    assert signer.seed.hex() not in repr(signer)


def test_signatures_verify_and_fail() -> None:
    signer = SigningKeyPair.generate()
    signature = signer.sign(b"message")
    assert verify_signature(signer.public, b"message", signature)
    assert not verify_signature(signer.public, b"messagE", signature)
    assert not verify_signature(signer.public, b"message", signature[:-1])


@pytest.mark.parametrize(
    "decorate",
    [
        lambda t: "\u00a0" + t,  # no-break space
        lambda t: t + "\u001c",  # a separator that str.strip() would remove
        lambda t: t.replace("k", "\u212a", 1),  # Kelvin sign, lower-cases to "k"
    ],
    ids=["nbsp", "file-separator", "kelvin-sign"],
)
def test_only_ascii_slips_are_forgiven(decorate: object) -> None:
    token = format_public_key(KeyKind.ENCRYPTION, bytes(range(32)))
    assert "k" in token
    with pytest.raises(KeyFormatError):
        parse_public_key(decorate(token))  # type: ignore[operator]
