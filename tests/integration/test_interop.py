"""Python and the browser modules (under Node) read each other's envelopes.

The vector files pin fixed bytes; this test runs both implementations live
on fresh keys and data, in both directions, through files and Blob slices.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from crypto.envelope import CHUNK_SIZE, open_envelope, seal
from crypto.keys import EncryptionKeyPair
from tests.integration.node import run_node

NODE_HELPER = Path(__file__).with_name("node_envelope.mjs")
SIZES = [0, 1, 1023, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 3, 3_000_000]


def _node(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_node(NODE_HELPER, *args)


def _data(length: int) -> bytes:
    block = hashlib.sha256(length.to_bytes(8, "big")).digest()
    return (block * (length // 32 + 1))[:length]


@pytest.mark.parametrize("length", SIZES)
def test_python_seals_browser_opens(
    tmp_path: Path, identities: list[EncryptionKeyPair], length: int
) -> None:
    plain, sealed, out = tmp_path / "plain", tmp_path / "sealed", tmp_path / "out"
    plain.write_bytes(_data(length))
    with plain.open("rb") as src, sealed.open("wb") as dst:
        seal(src, dst, [k.public for k in identities])
    for identity in identities:
        done = _node("open", sealed, out, identity.private.hex())
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == plain.read_bytes()


@pytest.mark.parametrize("length", SIZES)
def test_browser_seals_python_opens(
    tmp_path: Path, identities: list[EncryptionKeyPair], length: int
) -> None:
    plain, sealed, out = tmp_path / "plain", tmp_path / "sealed", tmp_path / "out"
    plain.write_bytes(_data(length))
    done = _node("seal", plain, sealed, *(k.public.hex() for k in identities))
    assert done.returncode == 0, done.stderr
    for identity in identities:
        with sealed.open("rb") as src, out.open("wb") as dst:
            assert open_envelope(src, dst, identity) == length
        assert out.read_bytes() == plain.read_bytes()


def test_browser_refuses_a_python_envelope_with_a_flipped_byte(
    tmp_path: Path, identities: list[EncryptionKeyPair]
) -> None:
    plain, sealed, out = tmp_path / "plain", tmp_path / "sealed", tmp_path / "out"
    plain.write_bytes(_data(2 * CHUNK_SIZE))
    with plain.open("rb") as src, sealed.open("wb") as dst:
        seal(src, dst, [identities[0].public])
    data = bytearray(sealed.read_bytes())
    data[-CHUNK_SIZE] ^= 0x10
    sealed.write_bytes(bytes(data))
    done = _node("open", sealed, out, identities[0].private.hex())
    assert done.returncode == 1
    assert done.stderr.strip() == "payload failure"
    assert not out.exists()
