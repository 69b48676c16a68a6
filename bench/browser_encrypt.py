"""Encrypting 100 MB in headless Chromium: the envelope against raw WebCrypto.

    python bench/browser_encrypt.py [--mb 100] [--rounds 5]

Serves the browser modules and bench/browser/ from loopback under the
portal's CSP and drives Debian's Chromium (same flags as the tests). Each
round times one raw AES-256-GCM encryption of the whole buffer with
WebCrypto, then sealing the same bytes, held as a Blob and read in 64 KiB
slices, to 3 recipients. Prints the best times and the median per-round
ratio raw / envelope (1.0 = as fast as raw).
"""

from __future__ import annotations

import argparse
import http.server
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.integration.chromium import chromium

ROOT = Path(__file__).resolve().parent.parent
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'"


class Handler(http.server.BaseHTTPRequestHandler):
    """The bench page and the modules; nothing logged."""

    def do_GET(self) -> None:
        here = Path(__file__).with_name("browser")
        routes = {"/": here / "bench.html", "/bench.js": here / "bench.js"}
        path = routes.get(self.path)
        if path is None and self.path.startswith("/static/js/"):
            path = ROOT / "portal" / self.path.lstrip("/")
        if path is None or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        kind = "text/html" if path.suffix == ".html" else "text/javascript"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as profile, chromium(Path(profile)) as context:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for_selector("#ready:has-text('ready')", state="attached")
            result = page.evaluate(f"window.bench({args.mb}, {args.rounds})")
    finally:
        server.shutdown()
    mb = args.mb
    print(f"{mb} MB, 3 recipients, {args.rounds} rounds, headless Chromium")
    print(f"raw WebCrypto AES-256-GCM, one buffer: {mb / result['bestRaw'] * 1000:7.1f} MB/s")
    print(f"envelope from a Blob:                  {mb / result['bestEnvelope'] * 1000:7.1f} MB/s")
    print(f"ratio raw / envelope (median): {result['median']:.2f}")


if __name__ == "__main__":
    main()
