"""Copy the RFC 9180 base-mode X25519 cases out of the CFRG vector file, byte-exact.

The CFRG file (draft-irtf-cfrg-hpke `test-vectors.json`, the final RFC 9180
set) ships in pyca's `cryptography_vectors` package. To regenerate:

    pip download --no-deps cryptography_vectors==50.0.2 -d /tmp/cv
    unzip -o /tmp/cv/cryptography_vectors-50.0.2-py3-none-any.whl \
        'cryptography_vectors/HPKE/test-vectors.json' -d /tmp/cv
    python tests/vectors/extract_rfc9180.py /tmp/cv/cryptography_vectors/HPKE/test-vectors.json

Field values are copied unchanged; only `name` and `expect` are added.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

WANTED = {
    (0, 32, 1, 1): "RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base",
    (0, 32, 1, 2): "CFRG: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base",
}


def main(source: str) -> None:
    """Write hpke-rfc9180.json beside this script."""
    raw = Path(source).read_bytes()
    cases = []
    for entry in json.loads(raw):
        key = (entry["mode"], entry["kem_id"], entry["kdf_id"], entry["aead_id"])
        if key in WANTED:
            cases.append({"name": WANTED[key], "expect": "success", **entry})
    assert len(cases) == len(WANTED), "the source file lacks a wanted case"
    document = {
        "schema": "cso-hpke-vectors/v1",
        "source": (
            "CFRG draft-irtf-cfrg-hpke test-vectors.json (the RFC 9180 set) as shipped in the "
            "PyPI package cryptography_vectors 50.0.2, file cryptography_vectors/HPKE/"
            f"test-vectors.json, SHA-256 {hashlib.sha256(raw).hexdigest()}; the AES-128-GCM "
            "case is RFC 9180 Appendix A.1.1, the AES-256-GCM case is only in the CFRG file"
        ),
        "rationale": (
            "Pins both implementations' HPKE (DeriveKeyPair, Encap/Decap, key schedule, "
            "single-shot Seal/Open) to the standard for the KEM and KDF the envelope uses, "
            "with both AES-GCM key sizes; AES-256-GCM is the envelope's AEAD."
        ),
        "cases": cases,
    }
    out = Path(__file__).with_name("hpke-rfc9180.json")
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
