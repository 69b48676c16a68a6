"""Receipts (SPEC §14): format, parsing, and the derivation."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from crypto.errors import KeyFormatError
from crypto.receipt import ITERATIONS, Receipt, derive
from tests.conftest import load_vectors


def test_generated_receipts_are_uniform_digits() -> None:
    """§14.1: 24 digits from a CSPRNG, every digit about equally common."""
    receipts = [Receipt.generate() for _ in range(500)]
    assert len({r.digits for r in receipts}) == 500
    counts = Counter("".join(r.digits for r in receipts))
    assert set(counts) == set("0123456789")
    assert all(1000 < n < 1400 for n in counts.values()), counts


def test_shown_and_typed_forms() -> None:
    receipt = Receipt("123456789012345678901234")
    assert str(receipt) == "1234 5678 9012 3456 7890 1234"
    assert receipt.locator == "1234"
    assert Receipt.parse(" 1234-5678 9012 3456 7890 1234\n") == receipt
    assert "5678" not in repr(receipt)


@pytest.mark.parametrize(
    "text",
    [
        "1234",
        "1234 5678 9012 3456 7890 12345",
        "x" * 24,
        "\u00b9\u00b2\u00b34 5678 9012 3456 7890 1234",  # superscript one, two, three
        "\u2460234 5678 9012 3456 7890 1234",  # circled digit one
        "\u4e00234 5678 9012 3456 7890 1234",  # CJK numeral one
        "1234 5678 9012 3456 7890 123\u0664\u0665",  # Arabic-Indic, but 25 digits
        "1234.5678 9012 3456 7890 1234",
    ],
)
def test_malformed_receipts_are_refused(text: str) -> None:
    """§14.1: only decimal digits, and 24 of them."""
    with pytest.raises(KeyFormatError):
        Receipt.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "\u0661\u0662\u0663\u0664 5678 9012 3456 7890 1234",  # Arabic-Indic
        "\u06f1\u06f2\u06f3\u06f4-\u06f5\u06f6\u06f7\u06f8 9012 3456 7890 1234",  # Persian
        "\u0967\u0968\u0969\u096a 5678 9012 3456 7890 1234",  # Devanagari
        "\u1041\u1042\u1043\u1044 5678 9012 3456 7890 1234",  # Myanmar
        "\uff11\uff12\uff13\uff14 5678 9012 3456 7890 1234",  # full-width
    ],
)
def test_digits_of_other_scripts_are_read_as_ascii(text: str) -> None:
    """§14.1: a reporter types the receipt with their own keyboard; it derives the same keys."""
    assert Receipt.parse(text) == Receipt("123456789012345678901234")


def test_derivation_agrees_with_an_independent_pbkdf2() -> None:
    """§14.2, against pyca's PBKDF2 rather than hashlib's."""
    receipt = Receipt("987654321098765432109876")
    keys = derive(receipt)
    material = PBKDF2HMAC(hashes.SHA256(), 64, b"cso-portal receipt v1\n9876", ITERATIONS).derive(
        receipt.digits.encode()
    )
    assert keys.reporter.private == material[:32]
    assert keys.lookup_token == material[32:]


def test_vectors_reproduce() -> None:
    """§14.2: the file the browser checks (tests/js/receipt.test.mjs)."""
    for case in load_vectors("receipt-py.json")["cases"]:
        keys = derive(Receipt(case["receipt"]))
        assert keys.reporter.private.hex() == case["private_key"]
        assert str(keys.reporter.token) == case["public_key"]
        assert keys.lookup_token.hex() == case["lookup_token"]
