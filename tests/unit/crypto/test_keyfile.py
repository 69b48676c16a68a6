"""Passphrase-protected private key files (SPEC §8.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto.errors import KeyFileError
from crypto.keyfile import (
    MIN_MEMLIMIT,
    MIN_OPSLIMIT,
    KeyBundle,
    decrypt_key_file,
    encrypt_key_file,
    read_public_tokens,
)
from tests.conftest import PASSPHRASE


def test_reviewer_file_round_trip(reviewer_key_files: list[tuple[Path, KeyBundle]]) -> None:
    path, bundle = reviewer_key_files[0]
    opened = decrypt_key_file(path.read_bytes(), PASSPHRASE)
    assert opened.encryption is not None
    assert bundle.encryption is not None
    assert opened.encryption.private == bundle.encryption.private
    assert opened.signing.seed == bundle.signing.seed
    assert read_public_tokens(path.read_bytes()) == bundle.public_tokens()


def test_file_holds_no_private_bytes(reviewer_key_files: list[tuple[Path, KeyBundle]]) -> None:
    path, bundle = reviewer_key_files[1]
    text = path.read_bytes()
    assert bundle.encryption is not None
    for secret in (bundle.encryption.private, bundle.signing.seed):
        assert secret not in text
        assert secret.hex().encode() not in text


def test_wrong_passphrase_and_damage_give_the_same_error(
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:
    data = reviewer_key_files[0][0].read_bytes()
    with pytest.raises(KeyFileError) as wrong:
        decrypt_key_file(data, b"not the passphrase")
    document = json.loads(data)
    box = bytearray(document["box"].encode())
    box[-5] = ord("A") if box[-5] != ord("A") else ord("B")
    document["box"] = box.decode()
    with pytest.raises(KeyFileError) as damaged:
        decrypt_key_file(json.dumps(document).encode(), PASSPHRASE)
    assert str(wrong.value) == str(damaged.value)  # SPEC §8.3.2


def test_weak_kdf_limits_are_refused(reviewer_key_files: list[tuple[Path, KeyBundle]]) -> None:
    """§8.3.1 for writers and §8.3.2 for readers: nothing below MODERATE."""
    document = json.loads(reviewer_key_files[0][0].read_bytes())
    document["kdf"]["opslimit"] = MIN_OPSLIMIT - 1
    with pytest.raises(KeyFileError, match="below"):
        decrypt_key_file(json.dumps(document).encode(), PASSPHRASE)
    with pytest.raises(KeyFileError, match="below"):
        encrypt_key_file(KeyBundle.new_organisation(), PASSPHRASE, memlimit=MIN_MEMLIMIT // 2)


def test_swapped_public_key_is_detected(reviewer_key_files: list[tuple[Path, KeyBundle]]) -> None:
    document = json.loads(reviewer_key_files[0][0].read_bytes())
    document["public"] = reviewer_key_files[1][1].public_tokens()
    with pytest.raises(KeyFileError, match="do not match"):
        decrypt_key_file(json.dumps(document).encode(), PASSPHRASE)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xfe", b"[]", b'{"schema": "other"}', b'{"schema": "cso-key-file/v1"}'],
)
def test_not_a_key_file(data: bytes) -> None:
    with pytest.raises(KeyFileError):
        decrypt_key_file(data, PASSPHRASE)


def test_organisation_file_round_trip() -> None:
    bundle = KeyBundle.new_organisation()
    opened = decrypt_key_file(encrypt_key_file(bundle, PASSPHRASE), PASSPHRASE)
    assert opened.kind == "organisation"
    assert opened.encryption is None
    assert opened.signing.public == bundle.signing.public


def test_empty_passphrase_is_refused() -> None:  # §8.3.1
    with pytest.raises(KeyFileError):
        encrypt_key_file(KeyBundle.new_organisation(), b"")


def test_every_box_failure_gives_one_message(
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:
    """§8.3.2: missing, undecodable or wrong: the same words."""
    document = json.loads(reviewer_key_files[0][0].read_bytes())
    messages = set()
    for box in (None, "***not base64***", document["box"][:-8]):
        damaged = dict(document, box=box)
        with pytest.raises(KeyFileError) as failure:
            decrypt_key_file(json.dumps(damaged).encode(), PASSPHRASE)
        messages.add(str(failure.value))
    with pytest.raises(KeyFileError) as wrong:
        decrypt_key_file(reviewer_key_files[0][0].read_bytes(), b"a wrong passphrase")
    messages.add(str(wrong.value))
    assert len(messages) == 1


def test_excessive_kdf_limits_and_huge_files_are_refused(
    reviewer_key_files: list[tuple[Path, KeyBundle]],
) -> None:
    document = json.loads(reviewer_key_files[0][0].read_bytes())
    document["kdf"]["memlimit"] = 4 * 1024**3
    with pytest.raises(KeyFileError, match="SENSITIVE"):
        decrypt_key_file(json.dumps(document).encode(), PASSPHRASE)
    for data in (b"[" * 100_000, b" " * 20_000):
        with pytest.raises(KeyFileError, match="not a key file"):
            decrypt_key_file(data, PASSPHRASE)


def test_short_passphrases_are_refused_for_new_files() -> None:
    with pytest.raises(KeyFileError, match="at least 10"):
        encrypt_key_file(KeyBundle.new_organisation(), b"short")
