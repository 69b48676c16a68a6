"""Envelope throughput against raw AES-256-GCM over the same data, in one run.

    python bench/envelope.py [--mib 256] [--repeat 7]
    python bench/envelope.py --smoke     # 8 MiB, 3 pairs

Prints MB/s for sealing and opening an envelope (3 recipients) from and to
in-memory streams, next to pyca's one-shot AES-256-GCM over the same bytes,
and the ratio (raw time / envelope time: 1.0 means as fast as raw). A
second, harder baseline encrypts the same bytes in 64 KiB pieces into one
reused buffer: the fastest pyca can go, with no allocation and no reading.
The machines are shared and noisy, so baseline and envelope runs alternate
and the ratio is the median of the pairs; MB/s figures are the best runs.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.envelope import CHUNK_SIZE, open_envelope, seal
from crypto.keys import EncryptionKeyPair


class Sink(io.RawIOBase):
    """A writable stream that only counts, so no copy is timed."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


def paired(
    repeat: int, baseline: Callable[[], object], measured: Callable[[], object]
) -> tuple[float, float, float]:
    """Alternate the two actions ``repeat`` times.

    Returns (best baseline seconds, best measured seconds, median of the
    per-pair ratios baseline/measured). Pairing makes each ratio compare two
    runs made moments apart, so a noisy neighbour moves both.
    """
    base_times, measured_times, ratios = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        baseline()
        base = time.perf_counter() - start
        start = time.perf_counter()
        measured()
        taken = time.perf_counter() - start
        base_times.append(base)
        measured_times.append(taken)
        ratios.append(base / taken)
    return min(base_times), min(measured_times), statistics.median(ratios)


def _raw_pieces(aead: AESGCM, data: bytes) -> None:
    """AES-256-GCM over ``data`` in 64 KiB pieces into one reused buffer."""
    view = memoryview(data)
    out = bytearray(CHUNK_SIZE + 16)
    nonce = bytes(12)
    for start in range(0, len(view), CHUNK_SIZE):
        aead.encrypt_into(nonce, view[start : start + CHUNK_SIZE], None, out)


def _sealed_pieces(aead: AESGCM, data: bytes) -> list[bytes]:
    """``data`` sealed in 64 KiB pieces, each under its own counter nonce."""
    return [
        aead.encrypt(i.to_bytes(12, "big"), data[start : start + CHUNK_SIZE], None)
        for i, start in enumerate(range(0, len(data), CHUNK_SIZE))
    ]


def _raw_open_pieces(aead: AESGCM, pieces: list[bytes]) -> None:
    """Open each piece into one reused buffer."""
    out = bytearray(CHUNK_SIZE)
    for i, piece in enumerate(pieces):
        aead.decrypt_into(i.to_bytes(12, "big"), piece, None, out)


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="8 MiB, 3 pairs")
    args = parser.parse_args()
    if args.smoke:
        args.mib, args.repeat = 8, 3
    size = args.mib * 1024 * 1024
    data = os.urandom(size)
    keys = [EncryptionKeyPair.generate() for _ in range(3)]
    recipients = [k.public for k in keys]

    raw = AESGCM(AESGCM.generate_key(256))
    nonce = os.urandom(12)
    raw_ct = raw.encrypt(nonce, data, None)
    sealed_pieces = _sealed_pieces(raw, data)
    sealed = io.BytesIO()
    seal(io.BytesIO(data), sealed, recipients)
    envelope = sealed.getvalue()

    def env_seal() -> None:
        seal(io.BytesIO(data), Sink(), recipients)

    def env_open() -> None:
        open_envelope(io.BytesIO(envelope), Sink(), keys[2])

    rows = [
        ("encrypt", "one-shot", lambda: raw.encrypt(nonce, data, None), env_seal),
        ("encrypt", "64 KiB pieces, no allocation", lambda: _raw_pieces(raw, data), env_seal),
        ("decrypt", "one-shot", lambda: raw.decrypt(nonce, raw_ct, None), env_open),
        (
            "decrypt",
            "64 KiB pieces, no allocation",
            lambda: _raw_open_pieces(raw, sealed_pieces),
            env_open,
        ),
    ]
    print(f"data: {args.mib} MiB, 3 recipients, {args.repeat} alternating pairs per row")
    for verb, baseline_name, baseline, measured in rows:
        base, taken, ratio = paired(args.repeat, baseline, measured)
        print(
            f"{verb}: envelope {size / taken / 1e6:7.1f} MB/s; raw AES-256-GCM {baseline_name}"
            f" {size / base / 1e6:7.1f} MB/s; ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
