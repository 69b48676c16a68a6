"""A static file server on 127.0.0.1 for browser tests and benchmarks.

It serves a few named pages plus the browser modules from
portal/web/static/js/, all with the given Content-Security-Policy, and logs
nothing.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STATIC_JS = Path(__file__).resolve().parents[2] / "portal" / "web" / "static" / "js"


@contextmanager
def static_origin(pages: Mapping[str, Path], csp: str) -> Iterator[str]:
    """Serve ``pages`` (URL path → file) and /static/js/*; yield the origin URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = pages.get(self.path)
            name = self.path.removeprefix("/static/js/")
            if path is None and name != self.path and "/" not in name:
                path = STATIC_JS / name
            if path is None or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            kind = "text/html" if path.suffix == ".html" else "text/javascript"
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep quiet: a test server has nothing to log."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
