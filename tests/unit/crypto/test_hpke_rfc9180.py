"""pyca's HPKE suite, as the envelope uses it, against RFC 9180 / CFRG vectors.

pyca's single-shot API takes no AAD and picks its own ephemeral key, so the
vector ciphertexts (with AAD "Count-i") cannot be fed to it directly. We check
instead that (1) the vector's key schedule output (key, base_nonce) reproduces
every listed ciphertext, which pins the vector data, and (2) pyca opens
``enc ‖ Seal(key, base_nonce, "", pt)``, which is only possible if its
Decap and key schedule agree with the vector's for this ``enc``, ``skRm`` and
``info``.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import load_vectors

VECTORS = load_vectors("hpke-rfc9180.json")
AEADS = {1: hpke.AEAD.AES_128_GCM, 2: hpke.AEAD.AES_256_GCM}


def _cases() -> list[Any]:
    return [pytest.param(c, id=f"aead{c['aead_id']}") for c in VECTORS["cases"]]


def test_file_covers_both_aes_sizes() -> None:
    assert sorted(c["aead_id"] for c in VECTORS["cases"]) == [1, 2]
    assert all((c["mode"], c["kem_id"], c["kdf_id"]) == (0, 32, 1) for c in VECTORS["cases"])
    # RFC 9180 A.1.1's published encapsulation, as a guard against a stale file.
    a11 = next(c for c in VECTORS["cases"] if c["aead_id"] == 1)
    assert a11["enc"].startswith("37fda3567bdbd628e88668c3c8d7e97d")


@pytest.mark.parametrize("case", _cases())
def test_key_pairs_match(case: dict[str, Any]) -> None:
    for sk, pk in (("skRm", "pkRm"), ("skEm", "pkEm")):
        public = X25519PrivateKey.from_private_bytes(bytes.fromhex(case[sk])).public_key()
        assert public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == case[pk]
    assert case["enc"] == case["pkEm"]


@pytest.mark.parametrize("case", _cases())
def test_listed_ciphertexts_follow_from_key_schedule(case: dict[str, Any]) -> None:
    aead = AESGCM(bytes.fromhex(case["key"]))
    base = int(case["base_nonce"], 16)
    assert len(case["encryptions"]) == 257
    for seq, enc in enumerate(case["encryptions"]):
        nonce = (base ^ seq).to_bytes(12, "big")
        assert nonce.hex() == enc["nonce"]
        ct = aead.encrypt(nonce, bytes.fromhex(enc["pt"]), bytes.fromhex(enc["aad"]))
        assert ct.hex() == enc["ct"]


@pytest.mark.parametrize("case", _cases())
def test_pyca_single_shot_agrees_with_vector(case: dict[str, Any]) -> None:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, AEADS[case["aead_id"]])
    key = bytes.fromhex(case["key"])
    nonce = bytes.fromhex(case["base_nonce"])
    plaintext = b"single-shot, empty aad, sequence 0"
    sealed = bytes.fromhex(case["enc"]) + AESGCM(key).encrypt(nonce, plaintext, b"")
    recipient = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["skRm"]))
    assert suite.decrypt(sealed, recipient, bytes.fromhex(case["info"])) == plaintext
    with pytest.raises(InvalidTag):
        suite.decrypt(sealed, recipient, b"another info")
