"""A 1 GiB file through ``python -m crypto`` for 3 recipients, in constant memory.

Peak resident memory is read per child process from ``wait4``. Encryption
must stay under 100 MiB. Decryption first unlocks the key file with
argon2id at libsodium's MODERATE limits, which by design needs 256 MiB for a
moment; so for decryption the test bounds what streaming 1 GiB adds on top
of decrypting a tiny envelope with the same key file.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from crypto.keyfile import KeyBundle
from tests.integration.cli_helpers import ROOT

GIB = 1024**3
MIB = 1024**2
BLOCK = 4 * MIB
PROBE = str(Path(__file__).with_name("rss_probe.py"))


def _run_measured(*args: str | Path) -> tuple[int, int, bytes]:
    """Run the CLI; return (exit status, its own peak RSS in bytes, stderr)."""
    done = subprocess.run(
        [sys.executable, PROBE, sys.executable, "-m", "crypto", *map(str, args)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=900,
    )
    status, peak = done.stdout.split()
    return int(status), int(peak), done.stderr


_OPEN_SCRIPT = """
import sys
from crypto.envelope import open_envelope
from crypto.keys import EncryptionKeyPair
identity = EncryptionKeyPair.from_private(bytes.fromhex(sys.argv[1]))
with open(sys.argv[2], "rb") as src, open(sys.argv[3], "wb") as dst:
    open_envelope(src, dst, identity)
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
def test_one_gib_for_three_recipients(
    tmp_path: Path, reviewer_key_files: list[tuple[Path, KeyBundle]], passphrase_file: Path
) -> None:
    plain = tmp_path / "big.bin"
    seed = hashlib.sha256(b"seed").digest()
    with plain.open("wb") as handle:
        block = seed * (BLOCK // 32)
        for i in range(GIB // BLOCK):
            handle.write(bytes([i & 0xFF]) + block[1:])
    expected = _sha256(plain)

    sealed = tmp_path / "big.env"
    recipients = [a for _, b in reviewer_key_files for a in ("-r", b.public_tokens()["encryption"])]
    status, peak, err = _run_measured("encrypt", *recipients, "-o", sealed, plain)
    assert status == 0, err
    print(f"\nencrypt 1 GiB, 3 recipients: peak RSS {peak / MIB:.1f} MiB")
    assert peak < 100 * MIB
    plain.unlink()

    small = tmp_path / "small.env"
    small_plain = tmp_path / "small.txt"
    small_plain.write_bytes(b"tiny")
    assert _run_measured("encrypt", *recipients, "-o", small, small_plain)[0] == 0

    # The decryption path alone, without the KDF: what the CLI runs once unlocked.
    out = tmp_path / "out.bin"
    bundle = reviewer_key_files[0][1]
    assert bundle.encryption is not None
    done = subprocess.run(
        [
            sys.executable,
            PROBE,
            sys.executable,
            "-c",
            _OPEN_SCRIPT,
            bundle.encryption.private.hex(),
            str(sealed),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=900,
    )
    status, peak = map(int, done.stdout.split())
    assert status == 0, done.stderr
    print(f"decrypt 1 GiB, streaming path without the KDF: peak RSS {peak / MIB:.1f} MiB")
    assert peak < 100 * MIB
    assert _sha256(out) == expected
    out.unlink()

    for key_file, _ in reviewer_key_files:
        status, baseline, err = _run_measured(
            "decrypt", "-i", key_file, "--passphrase-file", passphrase_file, "-o", out, small
        )
        assert status == 0, err
        status, peak, err = _run_measured(
            "decrypt", "-i", key_file, "--passphrase-file", passphrase_file, "-o", out, sealed
        )
        assert status == 0, err
        print(
            f"decrypt 1 GiB: peak RSS {peak / MIB:.1f} MiB; tiny envelope {baseline / MIB:.1f} MiB;"
            f" streaming adds {(peak - baseline) / MIB:.1f} MiB"
        )
        assert peak - baseline < 16 * MIB
        assert _sha256(out) == expected
        out.unlink()

    key_file = reviewer_key_files[0][0]
    size = sealed.stat().st_size
    damages = [(20, "MAC failure"), (size // 2, "payload failure"), (size - 1, "payload failure")]
    for offset, expected_class in damages:
        with sealed.open("r+b") as handle:
            if offset == size - 1:
                handle.truncate(offset)
            else:
                _flip(handle, offset)
        out = tmp_path / "out.bin"
        status, _, err = _run_measured(
            "decrypt", "-i", key_file, "--passphrase-file", passphrase_file, "-o", out, sealed
        )
        assert status == 1
        assert expected_class in err.decode(), err
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big.env", "small.env", "small.txt"]
        if offset != size - 1:
            with sealed.open("r+b") as handle:
                _flip(handle, offset)  # undo, so the next case breaks one thing only


def _flip(handle: BinaryIO, offset: int) -> None:
    handle.seek(offset)
    value = handle.read(1)[0]
    handle.seek(offset)
    handle.write(bytes([value ^ 0x01]))
