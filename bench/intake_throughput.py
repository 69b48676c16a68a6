"""Encrypted submissions per second through gunicorn, against bare endpoints.

    python bench/intake_throughput.py [--seconds 15] [--clients 8]

Starts the portal (`portal serve`, gunicorn with portal/deploy/gunicorn_conf.py) on
a demo data directory, and the baselines from bench/_bare_app.py under the
same gunicorn settings, all on loopback. Each client thread posts a 10 KB
encrypted report (a real envelope to the demo reviewers) over a keep-alive
connection for a fixed time. Prints submissions per second for each and the
ratios portal / baseline, measured in the same run.

Every portal submission fetches and spends a proof of work, as a browser
does; the difficulty is set to one bit (and the load step out of reach), so
what is measured is the portal's own work, not the client's hashing. A
client that fails stops the benchmark with the reason.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from bench._demo import ROOT, demo_portal
from crypto.envelope import seal_bytes
from portal.web.pow import solve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listening on {port}")


def multipart(fields: dict[str, str], report: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="report"; filename="r"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + report
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def client(port: int, report: bytes, until: float, counts: list[int], portal: bool) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    if portal:
        connection.request("GET", "/")
        response = connection.getresponse()
        page = response.read().decode()
        headers["Cookie"] = response.getheader("Set-Cookie", "").split(";", 1)[0]
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match is not None
        fields = {"csrf_token": match.group(1), "receipt_locator": "0042",
                  "receipt_token": secrets.token_hex(32)}  # fmt: skip
    done = 0
    while time.monotonic() < until:
        if portal:
            fields["proof"] = fetch_proof(connection, headers)
        body, kind = multipart(fields, report)
        connection.request("POST", "/submit", body=body, headers={**headers, "Content-Type": kind})
        response = connection.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /submit answered {response.status}: {text[:200]!r}")
        done += 1
    counts.append(done)
    connection.close()


def fetch_proof(connection: http.client.HTTPConnection, headers: dict[str, str]) -> str:
    """A puzzle from GET /pow, solved: what a browser sends with its report."""
    connection.request("GET", "/pow?for=submit", headers=headers)
    response = connection.getresponse()
    text = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET /pow answered {response.status}: {text[:200]!r}")
    puzzle = json.loads(text)
    return solve(puzzle["puzzle"], int(puzzle["bits"]))


def measure(port: int, report: bytes, seconds: float, clients: int, portal: bool) -> float:
    counts: list[int] = []
    failures: list[BaseException] = []
    until = time.monotonic() + seconds

    def run() -> None:
        try:
            client(port, report, until, counts, portal)
        except BaseException as failure:  # a thread's exception ends only the thread
            failures.append(failure)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a client failed: {failures[0]}")
    return sum(counts) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, recipients = demo_portal(tmp)
        report = seal_bytes(os.urandom(10_000), recipients)
        env = dict(os.environ, PORTAL_WORKERS="2", PORTAL_THREADS="8", BARE_STORE=f"{tmp}/bare",
                   PORTAL_POW_BITS="1", PORTAL_POW_BURST="100000",
                   PORTAL_RUNTIME_DIR=f"{tmp}/run")  # fmt: skip
        config = str(ROOT / "deploy" / "gunicorn.conf.py")
        servers = {}
        ports = {}
        for name in ("portal", "bare", "bare_argon2"):
            ports[name] = free_port()
            if name == "portal":
                command = [sys.executable, "-m", "portal", "--data-dir", str(data_dir), "serve",
                           "--port", str(ports[name])]  # fmt: skip
            else:
                command = [sys.executable, "-m", "gunicorn", "--config", config, "--bind",
                           f"127.0.0.1:{ports[name]}", f"bench._bare_app:{name}"]  # fmt: skip
            servers[name] = subprocess.Popen(command, cwd=ROOT, env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            rates = {}
            for name, port in ports.items():
                wait_for(port)
                measure(port, report, 2, args.clients, name == "portal")  # warm up
                rates[name] = measure(port, report, args.seconds, args.clients, name == "portal")
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)
    print(f"10 KB encrypted report, {args.clients} clients, {args.seconds:.0f} s each, gunicorn "
          "2 workers x 8 threads, loopback")  # fmt: skip
    for name, rate in rates.items():
        print(f"{name:12s} {rate:8.1f} submissions/s")
    print(f"ratio portal / bare endpoint:          {rates['portal'] / rates['bare']:.2f}")
    print(f"ratio portal / bare endpoint + argon2: {rates['portal'] / rates['bare_argon2']:.2f}")


if __name__ == "__main__":
    main()
