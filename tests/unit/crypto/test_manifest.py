"""The report manifest and attachment checks (SPEC §11)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from crypto.errors import ManifestError
from crypto.manifest import AttachmentCheck, entry_for, manifest_json, parse_manifest

PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg"


def _entry(**changes: Any) -> dict[str, Any]:
    entry = entry_for(1, "skiff.jpg", "image/jpeg", PHOTO, scrubbed=True).to_json()
    entry.update(changes)
    return entry


def test_round_trip_and_check() -> None:
    entries = parse_manifest({"attachments": [_entry()]})
    assert entries[0].sha256 == hashlib.sha256(PHOTO).hexdigest()
    check = AttachmentCheck(entries[0])
    check.write(PHOTO[:5])
    check.write(memoryview(PHOTO)[5:])
    check.verify()
    assert manifest_json(entries) == [_entry()]


def test_names_in_any_script_are_fine() -> None:
    for name in ("صورة القارب.jpg", "照片.png", "фото skiff.jpg", "x" * 255):
        assert parse_manifest({"attachments": [_entry(name=name)]})[0].name == name


def test_no_attachments_is_an_empty_manifest() -> None:
    assert parse_manifest({"narrative": "x"}) == ()


@pytest.mark.parametrize(
    "data", [PHOTO + b"!", PHOTO[:-1], b"\x00" + PHOTO[1:]], ids=["longer", "shorter", "changed"]
)
def test_mismatching_attachment_is_rejected(data: bytes) -> None:
    check = AttachmentCheck(parse_manifest({"attachments": [_entry()]})[0])
    check.write(data)
    with pytest.raises(ManifestError):  # SPEC §11.2
        check.verify()


@pytest.mark.parametrize(
    "entry",
    [
        _entry(name=""),
        _entry(name="../etc/passwd"),
        _entry(name="a\\b.jpg"),
        _entry(name="a\x00.jpg"),
        _entry(name="line\nbreak.jpg"),
        _entry(name="x" * 256),
        _entry(name="é" * 128),  # 128 characters but 256 bytes
        _entry(name="invoice\u202egpj.exe"),  # bidi override: shows as "invoiceexe.jpg"
        _entry(name="a\u0085b.jpg"),  # C1 control
        _entry(name="a\u2028b.jpg"),  # line separator
        _entry(name="a\ud800.jpg"),  # lone surrogate
        _entry(name="cafe\u0301.jpg"),  # not NFC
        _entry(media_type="IMAGE/JPEG"),
        _entry(media_type="jpeg"),
        _entry(size=-1),
        _entry(size=True),
        _entry(size="12"),
        _entry(sha256="A" * 64),
        _entry(sha256="ab"),
        _entry(scrubbed="yes"),
        {**_entry(), "extra": 1},
        {k: v for k, v in _entry().items() if k != "sha256"},
        "not an object",
    ],
)
def test_malformed_entries_are_rejected(entry: Any) -> None:  # §11.1
    with pytest.raises(ManifestError):
        parse_manifest({"attachments": [entry]})


def test_duplicate_names_and_too_many_are_rejected() -> None:
    with pytest.raises(ManifestError):
        parse_manifest({"attachments": [_entry(), _entry()]})
    many = [_entry(name=f"{i}.jpg") for i in range(65)]
    with pytest.raises(ManifestError):
        parse_manifest({"attachments": many})
