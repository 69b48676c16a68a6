"""Encrypted submissions per second through gunicorn, against bare endpoints.

    python bench/intake_throughput.py [--seconds 15] [--clients 8]
    python bench/intake_throughput.py --smoke     # 1.5 s per server, 2 clients

Starts the portal (`portal serve`, gunicorn with portal/deploy/gunicorn_conf.py)
on a demo data directory, and the baselines from bench/_bare_app.py under the
same gunicorn configuration, all on loopback. Each client thread posts a
10 KB encrypted report (a real envelope to the demo reviewers) over a
keep-alive connection for a fixed time. Prints submissions per second for
each and the ratios portal / baseline, measured in the same run.

Every portal submission fetches a puzzle from /pow and spends its proof of
work, as a browser does (the same puzzle format and rule as
portal/web/static/js/pow.js, solved by portal.web.pow.solve). The
difficulty is set to the least the portal accepts (PORTAL_POW_BITS=1, and
the load step out of reach), and the output says so: what is measured is
the portal's own work, not the client's hashing. Any client's failure, or
a server that dies, ends the benchmark with exit status 1 and every reason;
no rate is printed from a broken run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

if not __package__:  # run as `python bench/x.py`: import from the repository root, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._demo import demo_portal
from bench._serve import Server, free_port, portal_server, serve
from crypto.envelope import seal_bytes
from portal.deploy.configs import GUNICORN_CONFIG
from portal.web.pow import solve

#: the least difficulty portal/config.py accepts for PORTAL_POW_BITS
POW_BITS = 1
SETTINGS = {"PORTAL_WORKERS": "2", "PORTAL_THREADS": "8", "PORTAL_POW_BITS": str(POW_BITS),
            "PORTAL_POW_BURST": "100000"}  # fmt: skip


class ClientError(Exception):
    """A request of the benchmark got an answer it should not have."""


def multipart(fields: dict[str, str], report: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and ``report`` as the file part."""
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


def form_session(connection: http.client.HTTPConnection) -> tuple[dict[str, str], str]:
    """Open the form as a browser does: its cookie header and CSRF token."""
    connection.request("GET", "/")
    response = connection.getresponse()
    page = response.read().decode()
    if response.status != 200:
        raise ClientError(f"GET / answered {response.status}")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise ClientError("the form has no csrf_token field")
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    return {"Cookie": cookie}, match.group(1)


def fetch_proof(connection: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[str, int]:
    """A puzzle from GET /pow, solved (what a browser sends with its report), and its bits."""
    connection.request("GET", "/pow?for=submit", headers=headers)
    response = connection.getresponse()
    text = response.read()
    if response.status != 200:
        raise ClientError(f"GET /pow answered {response.status}: {text[:200]!r}")
    puzzle = json.loads(text)
    bits = int(puzzle["bits"])
    return solve(puzzle["puzzle"], bits), bits


def client(port: int, report: bytes, until: float, portal: bool, bits: list[int]) -> int:
    """Post reports until ``until`` (at least one); the number stored. Raises on any other answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    if portal:
        headers, token = form_session(connection)
        fields = {"csrf_token": token, "receipt_locator": "0042",
                  "receipt_token": secrets.token_hex(32)}  # fmt: skip
    done = 0
    while not done or time.monotonic() < until:  # at least one, however slow the start
        if portal:
            fields["proof"], asked = fetch_proof(connection, headers)
            bits.append(asked)
        body, kind = multipart(fields, report)
        connection.request("POST", "/submit", body=body, headers={**headers, "Content-Type": kind})
        response = connection.getresponse()
        text = response.read()
        if response.status != 200:
            raise ClientError(f"POST /submit answered {response.status}: {text[:200]!r}")
        done += 1
    connection.close()
    return done


def measure(server: Server, report: bytes, seconds: float, clients: int, portal: bool,
            bits: list[int]) -> float:  # fmt: skip
    """Submissions per second of ``clients`` threads for ``seconds``; exit 1 on any failure."""
    counts: list[int] = []
    failures: list[str] = []
    until = time.monotonic() + seconds

    def run() -> None:
        try:
            counts.append(client(server.port, report, until, portal, bits))
        except BaseException as failure:  # a thread's exception would end only the thread
            failures.append(f"{type(failure).__name__}: {failure}")

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if not failures and sum(counts) == 0:
        failures.append("no submission was stored in the time given")
    if failures:
        state = "died" if server.process.poll() is not None else "is running"
        raise SystemExit(f"intake_throughput: FAILED ({server.url}):\n" + "\n".join(failures)
                         + f"\nthe server {state}; its log ends:\n{server.log_tail()}")  # fmt: skip
    return sum(counts) / elapsed


def main() -> None:
    """Start the three servers, measure each in turn, print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="1.5 s per server, 2 clients")
    args = parser.parse_args()
    seconds, clients, warm_up = (1.5, 2, 0.5) if args.smoke else (args.seconds, args.clients, 2.0)
    bits: list[int] = []
    rates = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        data_dir, recipients = demo_portal(tmp)
        report = seal_bytes(os.urandom(10_000), recipients)
        servers = {"portal": stack.enter_context(
            portal_server(data_dir, Path(tmp) / "portal.log", SETTINGS, wait=False))}  # fmt: skip
        env = {**os.environ, **SETTINGS, "BARE_STORE": f"{tmp}/bare"}
        for name in ("bare", "bare_argon2"):
            port = free_port()
            command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
                       "--bind", f"127.0.0.1:{port}", f"bench._bare_app:{name}"]  # fmt: skip
            servers[name] = stack.enter_context(
                serve(command, port, Path(tmp) / f"{name}.log", env, wait=False)
            )
        for server in servers.values():  # started together, waited for once
            server.wait_until_listening()
        for name, server in servers.items():
            measure(server, report, warm_up, clients, name == "portal", [])
            rates[name] = measure(server, report, seconds, clients, name == "portal", bits)
    if set(bits) != {POW_BITS}:
        raise SystemExit(f"intake_throughput: FAILED: puzzles asked for {sorted(set(bits))} bits, "
                         f"not the {POW_BITS} set")  # fmt: skip
    print(f"10 KB encrypted report, {clients} clients, {seconds:g} s each, gunicorn "
          "2 workers x 8 threads, loopback")  # fmt: skip
    print(f"proof of work: PORTAL_POW_BITS={POW_BITS} (the least the portal accepts), fetched "
          "from /pow and solved for every portal submission")  # fmt: skip
    for name, rate in rates.items():
        print(f"{name:12s} {rate:8.1f} submissions/s")
    print(f"ratio portal / bare endpoint:          {rates['portal'] / rates['bare']:.2f}")
    print(f"ratio portal / bare endpoint + argon2: {rates['portal'] / rates['bare_argon2']:.2f}")


if __name__ == "__main__":
    main()
