"""Server memory while a 1 GiB encrypted upload streams through gunicorn.

    python bench/upload_memory.py [--mib 1024]
    python bench/upload_memory.py --smoke          # a 32 MiB envelope

Seals a file of that size to the demo reviewers, starts the portal (`portal
serve`, one gunicorn worker) and, as the baseline of the same run, a bare
Flask endpoint under the same gunicorn configuration that copies the upload
to a file in 1 MiB pieces (bench/_bare_app.py: ``bare_stream``). Uploads the
envelope to each one's /submit over loopback without ever holding it in
the client's memory; the portal's upload carries the form's CSRF token and
a solved proof of work at the portal's default difficulty, as a browser's
does. Prints, for each, the worker's resident memory before the upload, its
high-water mark after, the growth and the upload rate; then the ratios
portal / bare (memory growth and time) and the portal's growth against the
64 MiB budget (at most 1.0 meets it). Any refused upload or dead server
ends it with exit status 1 and the server's log.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._demo import demo_portal
from bench._serve import Server, free_port, portal_server, serve
from bench.intake_throughput import fetch_proof, form_session
from crypto.envelope import seal
from portal.deploy.configs import GUNICORN_CONFIG

MIB = 1024 * 1024
BUDGET_MIB = 64


@dataclass(frozen=True)
class Upload:
    """One upload's figures: worker memory in KiB, seconds."""

    before: int
    peak: int
    seconds: float

    @property
    def growth_mib(self) -> float:
        """How far the worker's high-water mark rose above its resident size before."""
        return (self.peak - self.before) / 1024


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"upload_memory: FAILED: no {field} for process {pid}")


def worker_of(master: int) -> int:
    """The pid of the single gunicorn worker under ``master``."""
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
    raise SystemExit("upload_memory: FAILED: no gunicorn worker found")


class ZeroSource:
    """A readable stream of zeros of a given length, to seal without a file."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` zero bytes (all that are left if ``n`` is negative)."""
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def upload(server: Server, envelope: Path, portal: bool) -> Upload:
    """Stream ``envelope`` to ``server``'s /submit; exit 1 unless it is stored."""
    worker = worker_of(server.process.pid)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    if portal:  # /submit wants the form's token and a spent proof of work, as from a browser
        headers, token = form_session(connection)
        proof, _ = fetch_proof(connection, headers)
        fields = {"csrf_token": token, "proof": proof, "receipt_locator": "0042",
                  "receipt_token": secrets.token_hex(32)}  # fmt: skip
    before = status_kib(worker, "VmRSS")
    boundary = uuid.uuid4().hex
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
    try:
        connection.request("POST", "/submit", body=body(), headers={
            **headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length)})  # fmt: skip
        response = connection.getresponse()
        answer = response.read()
    except OSError as error:
        raise SystemExit(f"upload_memory: FAILED: {error}\n{server.log_tail()}") from None
    seconds = time.monotonic() - started
    if response.status != 200:
        raise SystemExit(f"upload_memory: FAILED: upload refused: {response.status} "
                         f"{answer[:300]!r}\n{server.log_tail()}")  # fmt: skip
    connection.close()
    return Upload(before, status_kib(worker, "VmHWM"), seconds)


def main() -> None:
    """Seal, upload to the bare endpoint and to the portal, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true", help="a 32 MiB envelope")
    args = parser.parse_args()
    mib = 32 if args.smoke else args.mib
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, recipients = demo_portal(tmp)
        envelope = Path(tmp) / "big.cso"
        with envelope.open("wb") as out:
            seal(ZeroSource(mib * MIB), out, recipients)  # type: ignore[arg-type]
        settings = {"PORTAL_WORKERS": "1", "PORTAL_THREADS": "2",
                    "PORTAL_MAX_UPLOAD_MIB": str(mib + 64)}  # fmt: skip
        env = {**os.environ, **settings, "BARE_STORE": f"{tmp}/bare"}
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
                   "--bind", f"127.0.0.1:{port}", "bench._bare_app:bare_stream"]  # fmt: skip
        with serve(command, port, Path(tmp) / "bare.log", env) as server:
            bare = upload(server, envelope, portal=False)
        shutil.rmtree(Path(tmp) / "bare")  # room on the disk for the portal's copy
        with portal_server(data_dir, Path(tmp) / "portal.log", settings) as server:
            portal = upload(server, envelope, portal=True)
    print(f"{mib} MiB envelope, one gunicorn worker, loopback")
    for name, figures in (("bare endpoint", bare), ("portal", portal)):
        print(f"{name:13s} {figures.seconds:6.1f} s ({mib / figures.seconds:5.0f} MiB/s); worker"
              f" RSS before {figures.before / 1024:.1f} MiB, peak {figures.peak / 1024:.1f} MiB,"
              f" growth {figures.growth_mib:.1f} MiB")  # fmt: skip
    floor = max(bare.growth_mib, 1.0)  # a growth under 1 MiB is noise, not a divisor
    print(
        f"ratio portal / bare endpoint: memory growth {portal.growth_mib / floor:.2f}"
        f" (bare growth counted as at least 1 MiB), time {portal.seconds / bare.seconds:.2f}"
    )
    print(
        f"budget {BUDGET_MIB} MiB of growth; ratio {portal.growth_mib / BUDGET_MIB:.2f}"
        " (at most 1.0 meets it)"
    )


if __name__ == "__main__":
    main()
