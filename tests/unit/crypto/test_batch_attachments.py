"""Attachments bound to a signed batch (SPEC §16.9, §16.10), and batches from before them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest

from crypto.batch import Attachment, check_attachment, read_batch, sign_batch
from crypto.errors import BatchError
from crypto.keys import SigningKeyPair
from tests.conftest import ROOT

SIGNER = SigningKeyPair.from_seed(bytes(range(32)))
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PHOTO = b"\xff\xd8\xff not really a JPEG, which this layer does not care about"
ENTRY = Attachment(1, hashlib.sha256(PHOTO).hexdigest(), "image/jpeg", len(PHOTO), "a-1.jpg")
VECTORS = ROOT / "tests" / "vectors" / "batch-before-attachments.json"


def _sign(entries: list[Any], count: int = 2) -> bytes:
    return sign_batch([{"n": n} for n in range(count)], SIGNER, batch_id="c" * 32,
                      created_at=WHEN, attachments=entries)  # fmt: skip


def test_a_batch_from_before_attachments_still_verifies_and_is_reproduced() -> None:
    """§16.9: the header without `attachments` is the old one, byte for byte."""
    vector = json.loads(VECTORS.read_text(encoding="utf-8"))
    (case,) = vector["cases"]
    data = case["batch"].encode("utf-8")
    batch = read_batch(data, {SIGNER.token})
    assert batch.attachments == ()
    assert [record for _, record in batch.records] == [case["record"]]
    assert sign_batch([case["record"]], SIGNER, batch_id="b" * 32, created_at=WHEN) == data


def test_attachments_are_signed_in_the_header_and_read_back() -> None:
    """§16.9: the list is part of line 1, so the signature covers it."""
    data = _sign([ENTRY])
    header = json.loads(data.split(b"\n", 1)[0])
    assert header["attachments"] == [ENTRY.to_json()]
    assert read_batch(data, {SIGNER.token}).attachments == (ENTRY,)
    swapped = data.replace(ENTRY.sha256.encode(), b"0" * 64)
    with pytest.raises(BatchError, match="signature does not verify"):
        read_batch(swapped, {SIGNER.token})


def _with_header(change: dict[str, Any]) -> bytes:
    """A batch whose header holds ``change``, signed so that only the shape is at fault."""
    data = _sign([ENTRY])
    first, rest = data.split(b"\n", 1)
    header = {**json.loads(first), **change}
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + rest


BAD_ENTRIES = {
    "empty list": ([], "list of 1 to"),
    "not a list": ({}, "list of 1 to"),
    "extra member": ([{**ENTRY.to_json(), "path": "../x"}], "exactly"),
    "record 0": ([{**ENTRY.to_json(), "record": 0}], "record must"),
    "record past count": ([{**ENTRY.to_json(), "record": 3}], "record must"),
    "record true": ([{**ENTRY.to_json(), "record": True}], "record must"),
    "upper-case hash": ([{**ENTRY.to_json(), "sha256": ENTRY.sha256.upper()}], "sha256"),
    "short hash": ([{**ENTRY.to_json(), "sha256": "ab"}], "sha256"),
    "type with parameter": ([{**ENTRY.to_json(), "media_type": "text/html; x=1"}], "media_type"),
    "size 0": ([{**ENTRY.to_json(), "size": 0}], "size must"),
    "huge size": ([{**ENTRY.to_json(), "size": 2**40}], "size must"),
    "path as name": ([{**ENTRY.to_json(), "name": "../../etc/passwd"}], "name must"),
    "dot name": ([{**ENTRY.to_json(), "name": ".bashrc"}], "name must"),
    "escape in name": ([{**ENTRY.to_json(), "name": "a\x1b[2J.jpg"}], "name must"),
    "html in name": ([{**ENTRY.to_json(), "name": "<img src=x>.jpg"}], "name must"),
    "repeated file": ([ENTRY.to_json(), ENTRY.to_json()], "repeats"),
}


@pytest.mark.parametrize(("entries", "message"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_malformed_attachment_lists_are_refused_before_the_signature(
    entries: Any, message: str
) -> None:
    """§16.9: each entry's exact shape; a malformed header is not reported as a bad signature."""
    with pytest.raises(BatchError, match=message) as refused:
        read_batch(_with_header({"attachments": entries}), {SIGNER.token})
    assert str(refused.value).startswith("line 1:")


def test_the_writer_refuses_what_readers_refuse() -> None:
    """§16.9 through §16.7: a writer signs no list a reader would refuse."""
    with pytest.raises(BatchError, match="record must"):
        _sign([Attachment(3, ENTRY.sha256, "image/jpeg", 1, "a.jpg")])
    with pytest.raises(BatchError, match="name must"):
        _sign([Attachment(1, ENTRY.sha256, "image/jpeg", 1, "a/b.jpg")])


def test_the_same_file_may_serve_two_records() -> None:
    """§16.10: content-addressed, one file for every entry with its hash."""
    second = Attachment(2, ENTRY.sha256, ENTRY.media_type, ENTRY.size, "b-1.jpg")
    assert read_batch(_sign([ENTRY, second]), {SIGNER.token}).attachments == (ENTRY, second)


def test_a_file_must_match_its_hash_and_size() -> None:
    """§16.10: a reader refuses a file that differs from what was signed."""
    check_attachment(ENTRY, PHOTO)
    with pytest.raises(BatchError, match="content differs"):
        check_attachment(ENTRY, PHOTO[:-1] + b"!")
    with pytest.raises(BatchError, match="bytes, but the batch says"):
        check_attachment(ENTRY, PHOTO + b"\x00")
