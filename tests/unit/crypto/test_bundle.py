"""Bundles (SPEC.md §15): written once, verified whole before anything is used."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from crypto.bundle import END, MAGIC, BundleWriter, open_bundle
from crypto.errors import BundleError
from crypto.keys import SigningKeyPair

PORTAL = SigningKeyPair.generate()
ITEMS = [b"first envelope" * 100, b"", b"\x00" * 3_000_000]


def _write(path: Path, signer: SigningKeyPair = PORTAL, items: list[bytes] = ITEMS) -> Path:
    with path.open("wb") as out:
        writer = BundleWriter(out, signer, "inbox", {"cursor": {"from": 0, "to": len(items)}})
        for index, data in enumerate(items):
            source = io.BytesIO(data) if index % 2 else data
            writer.add({"type": "part", "position": index}, source)
        writer.finish()
    return path


def test_round_trip(tmp_path: Path) -> None:
    bundle = open_bundle(_write(tmp_path / "b"), {PORTAL.token})
    assert bundle.kind == "inbox"
    assert bundle.fields == {"cursor": {"from": 0, "to": 3}}
    assert [dict(item.meta) for item in bundle.items] == [
        {"type": "part", "position": i} for i in range(3)
    ]
    assert [bundle.read_item(item) for item in bundle.items] == ITEMS
    assert bundle.signer == PORTAL.token


def test_untrusted_signer_is_refused(tmp_path: Path) -> None:
    """§15.1: only a trusted key's bundles are read."""
    path = _write(tmp_path / "b", signer=SigningKeyPair.generate())
    with pytest.raises(BundleError, match="do not trust"):
        open_bundle(path, {PORTAL.token})


def _manifest_span(data: bytes) -> tuple[int, int]:
    length = int.from_bytes(data[-len(END) - 8 : -len(END)], "big")
    end = len(data) - len(END) - 8
    return end - length, end


def test_forged_manifest_is_refused(tmp_path: Path) -> None:
    """§15.1: the signature covers the payload bytes as sent."""
    path = _write(tmp_path / "b")
    data = path.read_bytes()
    start, end = _manifest_span(data)
    document = json.loads(data[start:end])
    document["payload"] = document["payload"][:-4] + "AAAA"
    forged = json.dumps(document).encode()
    path.write_bytes(data[:start] + forged + len(forged).to_bytes(8, "big") + END)
    with pytest.raises(BundleError):
        open_bundle(path, {PORTAL.token})


@pytest.mark.parametrize("cut", [1, 16, 30, 1000, 3_000_100])
def test_truncated_bundle_is_refused(tmp_path: Path, cut: int) -> None:
    """§15.1, §15.2: any truncation is caught, wherever it falls."""
    path = _write(tmp_path / "b")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    with pytest.raises(BundleError):
        open_bundle(path, {PORTAL.token})


def test_every_flipped_item_byte_is_refused(tmp_path: Path) -> None:
    """§15.2: one changed item byte refuses the whole bundle."""
    path = _write(tmp_path / "b", items=[b"abc", b"defgh"])
    data = path.read_bytes()
    for offset in range(len(MAGIC), len(MAGIC) + 8):
        tampered = bytearray(data)
        tampered[offset] ^= 1
        path.write_bytes(bytes(tampered))
        with pytest.raises(BundleError, match="does not match"):
            open_bundle(path, {PORTAL.token})


def test_items_must_fill_the_space_exactly(tmp_path: Path) -> None:
    """§15.2: bytes slipped in before the manifest are refused."""
    path = _write(tmp_path / "b", items=[b"abc"])
    data = path.read_bytes()
    start = _manifest_span(data)[0]
    path.write_bytes(data[:start] + b"extra" + data[start:])
    with pytest.raises(BundleError, match="add up"):
        open_bundle(path, {PORTAL.token})


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    """§15.1."""
    path = _write(tmp_path / "b")
    path.write_bytes(b"cso-bundle/v2\n" + path.read_bytes()[len(MAGIC) :])
    with pytest.raises(BundleError, match="not a cso-bundle"):
        open_bundle(path, {PORTAL.token})


def test_reread_item_is_hashed_again(tmp_path: Path) -> None:
    """§15.2: the file is checked again when an item is read later."""
    path = _write(tmp_path / "b", items=[b"abc"])
    bundle = open_bundle(path, {PORTAL.token})
    data = bytearray(path.read_bytes())
    data[len(MAGIC)] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="changed"):
        bundle.read_item(bundle.items[0])


def test_reserved_metadata_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "b").open("wb") as out:
        writer = BundleWriter(out, PORTAL, "replies")
        with pytest.raises(BundleError):
            writer.add({"size": 1}, b"x")
