"""Server memory while a 1 GiB encrypted upload streams through gunicorn.

    python -m bench.upload_memory [--mib 1024]

Seals a file of that size to the demo reviewers, starts the portal (one
gunicorn worker), and uploads the envelope to /submit over loopback without
ever holding it in the client's memory. Prints the worker's resident memory
before the upload and its high-water mark after, the growth, and the ratio
of the growth to the 64 MiB budget (at most 1.0 meets it).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench._demo import ROOT, demo_portal
from bench.intake_throughput import fetch_proof, free_port, wait_for
from crypto.envelope import seal

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for {pid}")


def worker_of(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    return int(entry.name)
        time.sleep(0.2)
    raise SystemExit("no gunicorn worker found")


class ZeroSource:
    """A readable stream of zeros of a given length, to seal without a file."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, recipients = demo_portal(tmp)
        envelope = Path(tmp) / "big.cso"
        with envelope.open("wb") as out:
            seal(ZeroSource(args.mib * MIB), out, recipients)  # type: ignore[arg-type]
        port = free_port()
        env = dict(os.environ, PORTAL_WORKERS="1", PORTAL_THREADS="2",
                   PORTAL_MAX_UPLOAD_MIB=str(args.mib + 64))  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "portal", "--data-dir", str(data_dir), "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(port)
            worker = worker_of(server.pid)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            connection.request("GET", "/")
            response = connection.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            before = status_kib(worker, "VmRSS")
            boundary = uuid.uuid4().hex
            # /submit spends a proof of work, as the browser's form does
            proof = fetch_proof(connection, {"Cookie": cookie})
            fields = {"csrf_token": token.group(1), "proof": proof, "receipt_locator": "0042",
                      "receipt_token": secrets.token_hex(32)}  # fmt: skip
            head = b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                for k, v in fields.items()
            ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="report"; filename="r"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
            tail = f"\r\n--{boundary}--\r\n".encode()

            def body() -> Iterator[bytes]:
                yield head
                with envelope.open("rb") as handle:
                    while block := handle.read(MIB):
                        yield block
                yield tail

            length = len(head) + envelope.stat().st_size + len(tail)
            started = time.monotonic()
            connection.request("POST", "/submit", body=body(), headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length), "Cookie": cookie})  # fmt: skip
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.monotonic() - started
            if response.status != 200:
                raise SystemExit(f"upload refused: {response.status} {answer[:200]!r}")
            peak = status_kib(worker, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=30)
    growth = (peak - before) / 1024
    print(f"{args.mib} MiB envelope uploaded in {elapsed:.1f} s ({args.mib / elapsed:.0f} MiB/s)")
    print(f"worker RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB,"
          f" growth {growth:.1f} MiB; budget 64 MiB; ratio {growth / 64:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
