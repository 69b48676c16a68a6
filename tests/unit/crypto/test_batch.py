"""Signed incident batches (SPEC §16): framing, header, trust, count, signature."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto.batch import (
    MAX_LINE_BYTES,
    SIGNING_CONTEXT,
    read_batch,
    read_trusted_reviewers,
    sign_batch,
)
from crypto.errors import BatchError, CryptoError
from crypto.keys import EncryptionKeyPair, SigningKeyPair

WHEN = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
BATCH_ID = "0123456789abcdef0123456789abcdef"
REVIEWER = SigningKeyPair.from_seed(bytes(range(32)))
STRANGER = SigningKeyPair.from_seed(bytes(range(1, 33)))
RECORDS = [{"id": "a" * 32, "narrative": "Räuber an Bord\u2028"}, {"id": "b" * 32, "n": 2}]


def _batch(records: list[dict[str, object]] = RECORDS, signer: SigningKeyPair = REVIEWER) -> bytes:
    return sign_batch(records, signer, batch_id=BATCH_ID, created_at=WHEN)


def _resign(lines: list[bytes], signer: SigningKeyPair = REVIEWER) -> bytes:
    """Sign already-framed header and record lines, as a careless writer could."""
    body = b"".join(lines)
    signature = signer.sign(SIGNING_CONTEXT + hashlib.sha512(body).digest())
    encoded = base64.urlsafe_b64encode(signature).decode().rstrip("=")
    return body + json.dumps({"signature": encoded}).encode() + b"\n"


def _refused(data: bytes, match: str) -> None:
    with pytest.raises(BatchError, match=match):
        read_batch(data, {REVIEWER.token})


def test_round_trip_keeps_records_and_line_numbers() -> None:
    batch = read_batch(_batch(), {REVIEWER.token, STRANGER.token})
    assert batch.batch_id == BATCH_ID
    assert batch.created_at == WHEN
    assert batch.signer == REVIEWER.token
    assert batch.records == ((2, RECORDS[0]), (3, RECORDS[1]))


def test_reads_from_a_stream() -> None:
    assert read_batch(io.BytesIO(_batch()), {REVIEWER.token}).records[1][0] == 3


def test_signature_checks_out_with_an_independent_implementation() -> None:
    """§16.7: the layout is exactly as specified, checked with pyca instead of PyNaCl."""
    data = _batch()
    lines = data.split(b"\n")
    assert lines[-1] == b""  # the last line ends with a line feed too
    header = json.loads(lines[0])
    assert header == {
        "schema": "cso-incident-batch/v1",
        "batch_id": BATCH_ID,
        "created_at": "2026-11-21T08:30:00Z",
        "signer": str(REVIEWER.token),
        "count": 2,
    }
    assert lines[1].decode() == json.dumps(
        RECORDS[0], ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).replace("\u2028", "\\u2028")  # §16.7: the line ends of str.splitlines escaped
    signed = b"".join(line + b"\n" for line in lines[:3])
    signature = base64.urlsafe_b64decode(json.loads(lines[3])["signature"] + "==")
    Ed25519PublicKey.from_public_bytes(REVIEWER.public).verify(
        signature, b"cso-incident-batch v1\n" + hashlib.sha512(signed).digest()
    )


def test_batch_error_is_a_crypto_error_with_its_class() -> None:
    assert issubclass(BatchError, CryptoError)
    assert BatchError.failure_class == "batch failure"


# --- §16.1 framing ---------------------------------------------------------


def test_a_missing_final_line_feed_is_truncation() -> None:
    """§16.1: the last line must end with a line feed."""
    _refused(_batch()[:-1], r"^line 4: no line feed")


def test_carriage_returns_are_refused() -> None:
    """§16.1: LF only, so that the signed bytes are the bytes a reader sees."""
    _refused(_batch().replace(b"\n", b"\r\n", 1), r"^line 1: carriage return")


def test_a_line_that_is_not_a_json_object_is_refused() -> None:
    """§16.1: one JSON object per line."""
    lines = _batch().splitlines(keepends=True)
    for bad in (b"[1, 2]\n", b"not json\n", b"\n", b'{"a":1} {"b":2}\n', b"\xff\xfe{}\n"):
        _refused(_resign([lines[0], lines[1], bad]), r"^line 3: not (a JSON object|JSON|UTF-8)")


def test_repeated_members_and_non_finite_numbers_are_refused() -> None:
    """§16.1: ambiguous JSON never reaches the database."""
    lines = _batch().splitlines(keepends=True)
    _refused(_resign([lines[0], lines[1], b'{"id":"x","id":"y"}\n']), r"^line 3: not JSON")
    _refused(_resign([lines[0], lines[1], b'{"n":NaN}\n']), r"^line 3: not JSON")
    _refused(_resign([lines[0], lines[1], b'{"n":-Infinity}\n']), r"^line 3: not JSON")


def test_overlong_lines_are_refused() -> None:
    """§16.1: a line has at most 1 MiB, so one line cannot exhaust memory."""
    lines = _batch().splitlines(keepends=True)
    huge = json.dumps({"narrative": "x" * MAX_LINE_BYTES}).encode() + b"\n"
    _refused(_resign([lines[0], lines[1], huge]), r"^line 3: longer than")


# --- §16.2 header -----------------------------------------------------------


def _with_header(**changes: object) -> bytes:
    lines = _batch().splitlines(keepends=True)
    header = json.loads(lines[0]) | changes
    header = {k: v for k, v in header.items() if v is not None}
    return _resign([json.dumps(header).encode() + b"\n", *lines[1:3]])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema": "cso-incident-batch/v2"}, "not a cso-incident-batch/v1 batch"),
        ({"extra": 1}, "header must have exactly"),
        ({"count": None}, "header must have exactly"),
        ({"batch_id": "0123456789ABCDEF0123456789ABCDEF"}, "batch_id"),
        ({"batch_id": "0123"}, "batch_id"),
        ({"created_at": "2026-11-21 08:30:00"}, "created_at"),
        ({"created_at": "2026-02-30T08:30:00Z"}, "created_at"),
        ({"signer": str(REVIEWER.token).upper()}, "canonical"),
        ({"signer": str(EncryptionKeyPair.generate().token)}, "signer is not a csosig1"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"count": 2.0}, "count"),
        ({"count": 1_000_001}, "count"),
    ],
)
def test_malformed_headers_are_refused(changes: dict[str, object], message: str) -> None:
    """§16.2: the header has one exact shape."""
    _refused(_with_header(**changes), rf"^line 1: .*{message}")


def test_empty_input_is_refused() -> None:
    _refused(b"", r"^line 1: empty input")


# --- §16.3 trust ------------------------------------------------------------


def test_an_untrusted_signer_is_refused_from_the_header_alone() -> None:
    """§16.3: the refusal names the line and the key's fingerprint, and needs no record."""
    data = _batch(signer=STRANGER)
    header_only = data.split(b"\n", 1)[0] + b"\n" + b"garbage that is never parsed"
    for candidate in (data, header_only):
        with pytest.raises(BatchError, match=r"^line 1: signer .* not in the trusted") as caught:
            read_batch(candidate, {REVIEWER.token})
        assert STRANGER.token.fingerprint in str(caught.value)


# --- §16.4 count ------------------------------------------------------------


def test_a_truncated_batch_is_refused() -> None:
    """§16.4: a batch cut after a record line."""
    data = _batch()
    cut = b"".join(data.splitlines(keepends=True)[:2])
    _refused(cut, r"^line 3: input ends after 1 of 2 records")
    _refused(
        b"".join(data.splitlines(keepends=True)[:3]), r"^line 4: the signature line is missing"
    )


def test_fewer_records_than_the_count_is_refused() -> None:
    """§16.4: the count says 3, the file has 2 and then its signature."""
    lines = _batch().splitlines(keepends=True)
    header = json.loads(lines[0]) | {"count": 3}
    data = _resign([json.dumps(header).encode() + b"\n", lines[1], lines[2]])
    _refused(data, r"^line 4: signature line after 2 records, but the header says 3")


def test_an_extra_record_is_refused() -> None:
    """§16.4: the count says 2, the file carries 3 records."""
    lines = _batch().splitlines(keepends=True)
    _refused(_resign([*lines[0:3], lines[1]]), r"^line 4: expected the signature line")


# --- §16.5 signature line -----------------------------------------------------


def _with_signature(text: object) -> bytes:
    lines = _batch().splitlines(keepends=True)
    return b"".join(lines[:3]) + json.dumps({"signature": text}).encode() + b"\n"


def test_non_canonical_base64_is_refused() -> None:
    """§16.5: padding, the standard alphabet, spare bits, other lengths."""
    good = json.loads(_batch().splitlines()[3])["signature"]
    raw = base64.urlsafe_b64decode(good + "==")
    spare = good[:-1] + ("B" if good[-1] == "A" else chr(ord(good[-1]) ^ 1))
    variants = [
        good + "==",
        base64.b64encode(raw).decode().rstrip("=") if b"+" in base64.b64encode(raw) else None,
        spare,
        good[:-4],
        12,
    ]
    for text in [v for v in variants if v is not None]:
        _refused(_with_signature(text), r"^line 4: signature is not")


def test_anything_after_the_signature_line_is_refused() -> None:
    """§16.5: nothing may follow the signature."""
    _refused(_batch() + b"\n", r"^line 5: ")
    _refused(_batch() + b"{}\n", r"^line 5: data after the signature line")


def test_a_signature_line_with_more_members_is_refused() -> None:
    """§16.5: the last line has exactly one member."""
    lines = _batch().splitlines(keepends=True)
    signature = json.loads(lines[3]) | {"by": "me"}
    _refused(b"".join(lines[:3]) + json.dumps(signature).encode() + b"\n", "^line 4: expected")


# --- §16.6 verification ---------------------------------------------------------


def test_a_changed_record_fails_the_signature() -> None:
    """§16.6: every byte of lines 1..N+1 is covered."""
    data = _batch().replace(b'"n":2', b'"n":3')
    _refused(data, r"^line 4: signature does not verify")


def test_a_signature_by_another_key_fails() -> None:
    """§16.6: a trusted header cannot borrow another key's signature."""
    forged = (
        _batch()[: _batch().rindex(b'{"signature"')]
        + _batch(signer=STRANGER).splitlines(keepends=True)[3]
    )
    _refused(forged, r"^line 4: signature does not verify")


def test_structure_is_checked_before_the_signature() -> None:
    """§16.6: a malformed record is reported as such even though the signature is bad too."""
    lines = _batch().splitlines(keepends=True)
    _refused(b"".join([lines[0], lines[1], b"oops\n", lines[3]]), r"^line 3: not JSON")


# --- §16.7 writer ---------------------------------------------------------------


def test_the_writer_refuses_what_readers_refuse() -> None:
    """§16.7: no empty batch, no bad id, no non-finite number, no naive time."""
    with pytest.raises(BatchError):
        _batch([])
    with pytest.raises(BatchError):
        sign_batch(RECORDS, REVIEWER, batch_id="X" * 32, created_at=WHEN)
    with pytest.raises(BatchError):
        _batch([{"n": float("nan")}])
    with pytest.raises(BatchError):
        _batch([{"narrative": "x" * MAX_LINE_BYTES}])
    with pytest.raises(BatchError):
        sign_batch(RECORDS, REVIEWER, batch_id=BATCH_ID, created_at=datetime(2026, 1, 1))


def test_the_writer_is_reproducible() -> None:
    """§16.7: the same records give the same bytes (Ed25519 is deterministic)."""
    assert _batch() == _batch([dict(reversed(list(r.items()))) for r in RECORDS])


# --- §16.8 trusted reviewers file ------------------------------------------------


def test_trusted_reviewers_file() -> None:
    """§16.8: tokens as the reviewer tool prints them, with comments and blank lines."""
    text = (
        "# reviewers of the shared database\n\n"
        f"{REVIEWER.token}  # reviewer-1\n"
        f"  {str(STRANGER.token).upper()}\r\n"
    )
    assert read_trusted_reviewers(text) == {REVIEWER.token, STRANGER.token}


def test_a_malformed_trusted_line_names_its_line() -> None:
    """§16.8: a typo, an encryption key, or no key at all refuses the file."""
    typo = str(REVIEWER.token)[:-1] + ("a" if str(REVIEWER.token)[-1] != "a" else "b")
    with pytest.raises(BatchError, match=r"^line 3: .*checksum"):
        read_trusted_reviewers(f"{REVIEWER.token}\n\n{typo}\n")
    with pytest.raises(BatchError, match=r"^line 2: an encryption key; list the .* signing key"):
        read_trusted_reviewers(f"#\n{EncryptionKeyPair.generate().token}\n")
    with pytest.raises(BatchError, match=r"^line 1: not a public key token"):
        read_trusted_reviewers("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n")
    with pytest.raises(BatchError, match="lists no"):
        read_trusted_reviewers("# nobody yet\n")
