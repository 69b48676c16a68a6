"""Envelope throughput against raw AES-256-GCM over the same data, in one run.

    python bench/envelope.py [--mib 256] [--repeat 3]

Prints MB/s for sealing and opening an envelope (3 recipients) from and to
in-memory streams, next to pyca's one-shot AES-256-GCM over the same bytes,
and the ratio (raw time / envelope time: 1.0 means as fast as raw). A
second, harder baseline encrypts the same bytes in 64 KiB pieces into one
reused buffer: the fastest pyca can go, with no allocation at all. The
machines are shared and noisy, so each figure is the best of ``--repeat``
runs and only the ratios are worth comparing.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

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


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """The shortest wall time of ``repeat`` runs of ``action``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    data = os.urandom(size)
    keys = [EncryptionKeyPair.generate() for _ in range(3)]
    recipients = [k.public for k in keys]

    raw = AESGCM(AESGCM.generate_key(256))
    nonce = os.urandom(12)
    raw_ct = raw.encrypt(nonce, data, None)
    raw_seal = best_of(args.repeat, lambda: raw.encrypt(nonce, data, None))
    raw_open = best_of(args.repeat, lambda: raw.decrypt(nonce, raw_ct, None))
    pieces_seal = best_of(args.repeat, lambda: _raw_pieces(raw, data))
    sealed_pieces = _sealed_pieces(raw, data)
    pieces_open = best_of(args.repeat, lambda: _raw_open_pieces(raw, sealed_pieces))

    sealed = io.BytesIO()
    seal(io.BytesIO(data), sealed, recipients)
    envelope = sealed.getvalue()
    env_seal = best_of(args.repeat, lambda: seal(io.BytesIO(data), Sink(), recipients))
    env_open = best_of(args.repeat, lambda: open_envelope(io.BytesIO(envelope), Sink(), keys[2]))

    def rate(seconds: float) -> float:
        return size / seconds / 1e6

    print(f"data: {args.mib} MiB, 3 recipients, best of {args.repeat}")
    print(f"raw AES-256-GCM encrypt: {rate(raw_seal):8.1f} MB/s")
    print(f"envelope encrypt:        {rate(env_seal):8.1f} MB/s  ratio {raw_seal / env_seal:.2f}")
    print(
        f"raw AES-256-GCM, 64 KiB pieces, no allocation: {rate(pieces_seal):8.1f} MB/s;"
        f" envelope encrypt ratio {pieces_seal / env_seal:.2f}"
    )
    print(f"raw AES-256-GCM decrypt: {rate(raw_open):8.1f} MB/s")
    print(f"envelope decrypt:        {rate(env_open):8.1f} MB/s  ratio {raw_open / env_open:.2f}")
    print(
        f"raw AES-256-GCM, 64 KiB pieces, no allocation: {rate(pieces_open):8.1f} MB/s;"
        f" envelope decrypt ratio {pieces_open / env_open:.2f}"
    )


if __name__ == "__main__":
    main()
