"""Envelope, key and directory vectors from both implementations (SPEC §3-§10).

``envelope-py.json`` is made by Python and ``envelope-js.json`` by the browser
code under Node; each holds one negative case per MUST. Python must agree
with every ``expect`` class in both.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from crypto.directory import verify_directory
from crypto.envelope import open_bytes
from crypto.errors import CryptoError, DirectoryError, KeyFormatError
from crypto.keys import EncryptionKeyPair, KeyKind, fingerprint, format_public_key, parse_public_key
from tests.conftest import load_vectors

EXPECT_CLASSES = {"success", "no match", "header failure", "MAC failure", "payload failure"}
# Reader rules that a malformed envelope can break. The writer rules (§4.1,
# §6.1) are pinned by exact sizes and by each side opening the other's output.
MUSTS = {"§3.1", "§3.2", "§3.3", "§3.4", "§4.2", "§5.1", "§6.2", "§7.1", "§7.2"}


def _envelope_cases(name: str) -> list[Any]:
    document = load_vectors(name)
    assert document["schema"] == "cso-envelope-vectors/v1"
    identities = {
        label: EncryptionKeyPair.from_private(bytes.fromhex(hex_key))
        for label, hex_key in document["identities"].items()
    }
    return [
        pytest.param(case, identities[case["identity"]], id=f"{name}:{case['name']}")
        for case in document["cases"]
    ]


@pytest.mark.parametrize("source", ["envelope-py.json", "envelope-js.json"])
def test_every_must_has_a_negative_vector(source: str) -> None:
    cases = load_vectors(source)["cases"]
    assert {c["expect"] for c in cases} == EXPECT_CLASSES
    covered = {c["spec"] for c in cases if c["expect"] != "success"}
    assert covered >= MUSTS, f"missing negative vectors for {sorted(MUSTS - covered)}"


@pytest.mark.parametrize(
    ("case", "identity"), _envelope_cases("envelope-py.json") + _envelope_cases("envelope-js.json")
)
def test_envelope_vector(case: dict[str, Any], identity: EncryptionKeyPair) -> None:
    envelope = base64.b64decode(case["envelope_b64"])
    if case["expect"] == "success":
        plaintext = open_bytes(envelope, identity)
        assert len(plaintext) == case["plaintext_length"]
        assert hashlib.sha256(plaintext).hexdigest() == case["plaintext_sha256"]
        return
    with pytest.raises(CryptoError) as failure:
        open_bytes(envelope, identity)
    assert failure.value.failure_class == case["expect"]
    # SPEC §9.1: nothing secret in the message.
    assert identity.private.hex() not in str(failure.value)


KEY_CASES = load_vectors("keys-py.json")["cases"]


@pytest.mark.parametrize("case", KEY_CASES, ids=[c["name"] for c in KEY_CASES])
def test_key_vector(case: dict[str, Any]) -> None:
    kind = KeyKind(case["kind"])
    if case["expect"] == "invalid":
        with pytest.raises(KeyFormatError):
            parse_public_key(case["token"], kind)
        return
    key = bytes.fromhex(case["key"])
    assert format_public_key(kind, key) == case["token"]
    assert parse_public_key(case["token"]).key == key
    assert fingerprint(kind, key) == case["fingerprint"]


DIRECTORY = load_vectors("directory-py.json")


@pytest.mark.parametrize("case", DIRECTORY["cases"], ids=[c["name"] for c in DIRECTORY["cases"]])
def test_directory_vector(case: dict[str, Any]) -> None:
    signer = parse_public_key(DIRECTORY["trusted_signer"], KeyKind.SIGNING)
    now = datetime.strptime(case["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    data = case["directory"].encode()
    if case["expect"] == "invalid":
        with pytest.raises(DirectoryError):
            verify_directory(data, signer, now)
        return
    directory = verify_directory(data, signer, now)
    assert directory.serial == case["serial"]
    assert [str(r.encryption_key) for r in directory.reviewers] == case["recipients"]
    if "signing_keys" in case:
        signing = [
            None if r.signing_key is None else str(r.signing_key) for r in directory.reviewers
        ]
        assert signing == case["signing_keys"]
