"""The signed key directory (SPEC §10); the vector file covers the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crypto.directory import sign_directory, verify_directory
from crypto.errors import DirectoryError
from crypto.keys import EncryptionKeyPair, SigningKeyPair

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _sign(org: SigningKeyPair, count: int = 2, **kwargs: object) -> tuple[bytes, list]:
    reviewers = [(f"reviewer-{i}", EncryptionKeyPair.generate().token) for i in range(count)]
    options = {"serial": 1, "issued_at": NOW, "valid_for": timedelta(days=30)} | kwargs
    return sign_directory(org, reviewers, **options), reviewers  # type: ignore[arg-type]


def test_round_trip_keeps_order_and_keys() -> None:
    org = SigningKeyPair.generate()
    data, reviewers = _sign(org, 3)
    directory = verify_directory(data, org.token, NOW + timedelta(days=1))
    assert directory.recipient_keys == tuple(t.key for _, t in reviewers)
    assert [r.label for r in directory.reviewers] == ["reviewer-0", "reviewer-1", "reviewer-2"]
    assert directory.expires_at == NOW + timedelta(days=30)


def test_expiry_boundary() -> None:
    org = SigningKeyPair.generate()
    data, _ = _sign(org)
    verify_directory(data, org.token, NOW + timedelta(days=30, seconds=-1))
    with pytest.raises(DirectoryError, match="expired"):
        verify_directory(data, org.token, NOW + timedelta(days=30))


def test_clock_skew_allowance() -> None:
    org = SigningKeyPair.generate()
    data, _ = _sign(org)
    verify_directory(data, org.token, NOW - timedelta(minutes=9))
    with pytest.raises(DirectoryError, match="not valid yet"):
        verify_directory(data, org.token, NOW - timedelta(minutes=11))


def test_signer_must_refuse_what_verifiers_refuse() -> None:
    org = SigningKeyPair.generate()
    with pytest.raises(DirectoryError):
        _sign(org, 0)
    with pytest.raises(DirectoryError):
        _sign(org, 65)
    with pytest.raises(DirectoryError):
        sign_directory(
            org,
            [("bad/label", EncryptionKeyPair.generate().token)],
            serial=1,
            issued_at=NOW,
            valid_for=timedelta(days=1),
        )


def _tamper(data: bytes, **changes: str) -> bytes:
    import json

    return json.dumps(json.loads(data) | changes).encode()


def test_non_ascii_digits_in_times_are_refused() -> None:
    import base64
    import json

    from crypto.directory import SIGNING_CONTEXT

    org = SigningKeyPair.generate()
    data, _ = _sign(org)
    document = json.loads(data)
    payload = json.loads(base64.urlsafe_b64decode(document["payload"] + "=="))
    payload["issued_at"] = "\u0662\u0660\u0662\u0666-11-21T07:00:00Z"  # Arabic-Indic digits
    raw = json.dumps(payload).encode()
    signed = _tamper(
        data,
        payload=base64.urlsafe_b64encode(raw).decode().rstrip("="),
        signature=base64.urlsafe_b64encode(org.sign(SIGNING_CONTEXT + raw)).decode().rstrip("="),
    )
    with pytest.raises(DirectoryError, match="time"):
        verify_directory(signed, org.token, NOW)


def test_non_canonical_base64url_is_refused() -> None:
    import json

    org = SigningKeyPair.generate()
    data, _ = _sign(org)
    signature = json.loads(data)["signature"]  # 86 characters: the last carries 2 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    assert last % 16 == 0
    loose = signature[:-1] + alphabet[last + 1]  # same bytes once decoded, spare bit set
    with pytest.raises(DirectoryError, match="malformed"):
        verify_directory(_tamper(data, signature=loose), org.token, NOW)


def test_validity_is_capped_at_92_days() -> None:
    """§10.2: neither signed nor accepted when valid for longer."""
    from crypto.directory import MAX_VALIDITY

    org = SigningKeyPair.generate()
    data, _ = _sign(org, valid_for=MAX_VALIDITY)
    verify_directory(data, org.token, NOW)
    with pytest.raises(DirectoryError, match="92 days"):
        _sign(org, valid_for=MAX_VALIDITY + timedelta(seconds=1))


def test_rollback_below_a_seen_serial_is_refused() -> None:
    """§10.4: a tool that remembers serial 9 refuses a replayed serial 5."""
    org = SigningKeyPair.generate()
    old, _ = _sign(org, serial=5)
    assert verify_directory(old, org.token, NOW, min_serial=5).serial == 5
    with pytest.raises(DirectoryError, match="rollback"):
        verify_directory(old, org.token, NOW, min_serial=9)


def test_absurd_json_is_a_directory_error() -> None:
    org = SigningKeyPair.generate()
    for data in (b"[" * 100_000, b"{" + b" " * 70_000 + b"}"):
        with pytest.raises(DirectoryError):
            verify_directory(data, org.token, NOW)


def test_optional_signing_key_round_trips_and_may_be_left_out() -> None:
    org = SigningKeyPair.generate()
    signer = SigningKeyPair.generate().token
    reviewers = [
        ("with", EncryptionKeyPair.generate().token, signer),
        ("none", EncryptionKeyPair.generate().token, None),
        ("pair", EncryptionKeyPair.generate().token),
    ]
    data = sign_directory(org, reviewers, serial=2, issued_at=NOW, valid_for=timedelta(days=9))
    directory = verify_directory(data, org.token, NOW)
    assert [r.signing_key for r in directory.reviewers] == [signer, None, None]
    assert directory.recipient_keys == tuple(r[1].key for r in reviewers)
    # a None signing key is omitted, not written as null (§10.1)
    assert b"null" not in base64url_payload(data)


def base64url_payload(data: bytes) -> bytes:
    """The payload bytes of a directory's wire form."""
    import base64
    import json

    return base64.urlsafe_b64decode(json.loads(data)["payload"] + "==")


def test_signing_key_must_be_a_signing_token_and_unique() -> None:
    org = SigningKeyPair.generate()
    signer = SigningKeyPair.generate().token
    encryption = EncryptionKeyPair.generate().token
    twice = [
        ("a", EncryptionKeyPair.generate().token, signer),
        ("b", EncryptionKeyPair.generate().token, signer),
    ]
    options = {"serial": 1, "issued_at": NOW, "valid_for": timedelta(days=1)}
    with pytest.raises(DirectoryError, match="signing key twice"):
        sign_directory(org, twice, **options)  # type: ignore[arg-type]
    with pytest.raises(DirectoryError, match="signing key is malformed"):
        sign_directory(org, [("a", encryption, encryption)], **options)  # type: ignore[arg-type]
    with pytest.raises(DirectoryError, match="label, encryption key"):
        sign_directory(org, [("a",)], **options)  # type: ignore[arg-type, list-item]
