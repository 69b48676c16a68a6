"""The streaming envelope check, driven directly (the form parser hides its errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto.envelope import CHUNK_SIZE, payload_is_well_formed, seal_bytes, sealed_size
from crypto.keys import EncryptionKeyPair
from portal.storage.blobs import BlobStore
from portal.web.uploads import EnvelopeUpload, UploadRefusedError

KEYS = [EncryptionKeyPair.generate() for _ in range(2)]
RECIPIENTS = frozenset(k.public for k in KEYS)


def _feed(
    tmp_path: Path, data: bytes, piece: int, limit: int = 10**8
) -> tuple[EnvelopeUpload, BlobStore]:
    store = BlobStore(tmp_path / "blobs")
    upload = EnvelopeUpload(store, RECIPIENTS, limit)
    for i in range(0, len(data), piece):
        assert upload.write(data[i : i + piece]) == len(data[i : i + piece])
    return upload, store


@pytest.mark.parametrize("piece", [1, 7, 113, 4096, 10**6])
def test_a_good_envelope_in_any_pieces(tmp_path: Path, piece: int) -> None:
    envelope = seal_bytes(b"z" * 70_000, [k.public for k in KEYS])
    upload, store = _feed(tmp_path, envelope, piece)
    name = upload.finish()
    assert store.path(name).read_bytes() == envelope
    assert [p.name for p in store.root.iterdir()] == [name]


@pytest.mark.parametrize("piece", [1, 64, 10**6])
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a" + b"\0" * 500, "format marker"),
        (seal_bytes(b"r", [EncryptionKeyPair.generate().public]), "current reviewers"),
        (seal_bytes(b"r", [k.public for k in KEYS])[:200], "truncated"),
        (seal_bytes(b"r", [k.public for k in KEYS])[:-1], "truncated"),
    ],
    ids=["magic", "recipients", "header-cut", "payload-cut"],
)
def test_refusals_leave_no_file(tmp_path: Path, data: bytes, reason: str, piece: int) -> None:
    upload, store = _feed(tmp_path, data, piece)
    with pytest.raises(UploadRefusedError, match=reason):
        upload.finish()
    assert list(store.root.iterdir()) == []


def test_size_limit(tmp_path: Path) -> None:
    envelope = seal_bytes(b"z" * 300_000, [k.public for k in KEYS])
    upload, store = _feed(tmp_path, envelope, 65536, limit=100_000)
    with pytest.raises(UploadRefusedError, match="larger"):
        upload.finish()
    assert list(store.root.iterdir()) == []


def test_payload_lengths_match_the_spec() -> None:
    for length in (0, 1, 1023, CHUNK_SIZE, 5 * CHUNK_SIZE + 3, 10**7):
        payload = sealed_size(length, 1) - (50 + 112 + 32)
        assert payload_is_well_formed(payload)
        assert not payload_is_well_formed(payload - 1)
        assert not payload_is_well_formed(payload + 1)
