"""gzip at every front: ``portal serve`` and the rendered nginx site, as they really answer.

A reporter on a 64 kbit/s link pays about a second for every 8 KB, and
every visit downloads everything again (no-store), so pages, the stylesheet,
the modules and the key directory must arrive compressed. But a compressed
answer that holds both a secret (a form token, the report) and text an
attacker chose leaks the secret through its length (BREACH): the
no-JavaScript form re-rendered after an error echoes what was typed, so it,
and every answer to a POST, goes out uncompressed, from either front.
"""

from __future__ import annotations

import gzip
import http.client
import re
import secrets
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response

from portal.web import compression, security
from tests.conftest import ROOT, DemoPortal
from tests.deploy.stack import render_host, running_stack, start_nginx, stop
from tests.integration.portal_server import serve_portal

CANARY = "CANARY-7a41-BREACH"
STATIC = ROOT / "portal" / "web" / "static"


class Answer:
    """A response as it came over the wire: status, headers, and the raw (maybe gzip) body."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.raw = response.read()

    @property
    def encoding(self) -> str:
        """The Content-Encoding, or "" for none."""
        return self.headers.get("Content-Encoding", "")

    def text(self) -> str:
        """The body decoded: gunzipped if it came compressed."""
        body = gzip.decompress(self.raw) if self.encoding == "gzip" else self.raw
        return body.decode()


def ask(url: str, path: str, method: str = "GET", body: bytes | None = None,
        **headers: str) -> Answer:  # fmt: skip
    """One request that offers gzip, as every browser does."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        names = {k.replace("_", "-"): v for k, v in headers.items()}
        connection.request(method, path, body=body, headers={"Accept-Encoding": "gzip", **names})
        return Answer(connection.getresponse())
    finally:
        connection.close()


def page_assets(page: str) -> list[str]:
    """The modules a page loads with JavaScript on (their same-origin paths), and the
    stylesheet, which the page carries inline (portal/web/styles.py) but is still published."""
    scripted = re.sub(r"<noscript>.*?</noscript>", "", page, flags=re.S)
    paths = re.findall(r'<(?:link rel="(?:stylesheet|modulepreload)"|script type="module")'
                       r'[^>]*?(?:href|src)="(/static/[^"]+)"', scripted)  # fmt: skip
    assert "<style>" in scripted, page[:400]
    assert any(p.endswith(".js") for p in paths), page[:400]
    return [*paths, "/static/css/portal.css"]


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields, and its Content-Type."""
    boundary = secrets.token_hex(12)
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def refused_plain_form(url: str) -> Answer:
    """Send the no-JavaScript form with a typed place and an impossible latitude."""
    page = ask(url, "/?category=piracy-or-armed-robbery")
    assert page.status == 200
    text = page.text()
    cookie = page.headers.get("Set-Cookie", "").split(";", 1)[0]
    fields = {
        name: match.group(1)
        for name in ("csrf_token", "once")
        if (match := re.search(rf'name="{name}" value="([^"]+)"', text))
    }
    assert "csrf_token" in fields
    fields |= {"category": "piracy-or-armed-robbery", "place_name": CANARY, "latitude": "95"}
    body, content_type = multipart(fields)
    return ask(url, "/submit-plain", "POST", body, Cookie=cookie, Content_Type=content_type)


def assert_gzip_everywhere_a_visit_goes(url: str) -> None:
    """The page, each asset it names, and the key directory come gzip-compressed."""
    page = ask(url, "/")
    assert page.status == 200
    assert page.encoding == "gzip"
    assert "Accept-Encoding" in page.headers.get("Vary", "")
    for path in [*page_assets(page.text()), "/keys/directory.json"]:
        answer = ask(url, path)
        assert answer.status == 200, path
        if len(answer.text()) >= 256:  # smaller, gzip's own framing would cost more
            assert answer.encoding == "gzip", path
            assert len(answer.raw) < len(answer.text().encode()), path


# --- portal serve ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``portal serve`` on a copy of the demo data directory."""
    folder = tmp_path_factory.mktemp("compression")
    shutil.copytree(demo_template.data_dir, folder / "var")
    demo = DemoPortal(folder / "var", demo_template.reviewers, demo_template.passphrase)
    with serve_portal(demo, folder) as running:
        yield running


def test_portal_serve_sends_gzip_for_pages_modules_styles_and_json(
    server: dict[str, Any],
) -> None:
    assert_gzip_everywhere_a_visit_goes(server["url"])


def test_portal_serve_sends_plain_bytes_to_whoever_does_not_offer_gzip(
    server: dict[str, Any],
) -> None:
    compressed = ask(server["url"], "/static/css/portal.css")
    plain = ask(server["url"], "/static/css/portal.css", Accept_Encoding="identity")
    assert plain.encoding == ""
    assert plain.raw == compressed.text().encode() == (STATIC / "css/portal.css").read_bytes()


def test_portal_serve_never_compresses_the_filled_form_after_an_error(
    server: dict[str, Any],
) -> None:
    answer = refused_plain_form(server["url"])
    assert 400 <= answer.status < 500
    assert answer.encoding == ""
    assert "X-Portal-No-Compress" not in answer.headers
    assert CANARY in answer.text()  # the premise: the answer echoes what was typed


@pytest.mark.parametrize(
    "path",
    ["/?category=CANARY", "/?category=piracy-or-armed-robbery&place_name=CANARY",
     "/followup?receipt=CANARY", "/pow?for=CANARY", "/keys/directory.json?CANARY",
     "/form-token?CANARY", "/static/js/CANARY.js", "/CANARY"],
)  # fmt: skip
def test_no_compressed_answer_to_a_get_echoes_what_it_carried(
    server: dict[str, Any], path: str
) -> None:
    """GET answers are compressed: none may hold text the request chose (BREACH)."""
    answer = ask(server["url"], path.replace("CANARY", CANARY))
    assert answer.encoding == "" or CANARY not in answer.text(), path


def test_static_files_carry_only_the_headers_a_script_or_stylesheet_uses(
    server: dict[str, Any],
) -> None:
    """About 450 bytes less on each of some twenty modules; the page keeps every header."""
    page = ask(server["url"], "/")
    for path in page_assets(page.text()):
        headers = ask(server["url"], path).headers
        for name in (*security.DOCUMENT_ONLY, *security.CACHE_ONLY):
            assert name not in headers, (path, name)
        # nosniff guards every script and style; CORP keeps them this origin's
        assert headers["Cross-Origin-Resource-Policy"] == "same-origin", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Cache-Control"] == "no-store", path
    for name in ("Cross-Origin-Opener-Policy", "Permissions-Policy", "X-Frame-Options"):
        assert name in page.headers, name


# --- the application's rule, on its own ----------------------------------------------


@pytest.fixture
def marked_app() -> Flask:
    """A bare Flask app with the portal's compression: one marked page, one not."""
    app = Flask(__name__)
    compression.install(app)
    page = "<p>" + "the same words again " * 100 + "</p>"

    @app.route("/plain", methods=["GET", "POST"])
    def plain() -> str:
        return page

    @app.get("/echo")
    def echo() -> Response:
        return Response(page, headers={compression.NO_COMPRESS_HEADER: "1"})

    return app


def test_a_marked_answer_goes_out_whole_and_without_its_mark(marked_app: Flask) -> None:
    client = marked_app.test_client()
    offered = {"Accept-Encoding": "gzip"}
    assert client.get("/plain", headers=offered).headers.get("Content-Encoding") == "gzip"
    echoed = client.get("/echo", headers=offered)
    assert "Content-Encoding" not in echoed.headers
    assert compression.NO_COMPRESS_HEADER not in echoed.headers
    assert echoed.data.startswith(b"<p>the same words")
    posted = client.post("/plain", headers=offered)
    assert "Content-Encoding" not in posted.headers
    assert posted.data.startswith(b"<p>the same words")


# --- the rendered nginx site ------------------------------------------------------------


class _Origin(BaseHTTPRequestHandler):
    """An application that never compresses: what nginx gets is what nginx must gzip."""

    def do_GET(self) -> None:
        """Real files for /static/…, the key directory, and a page for anything else."""
        directory = self.server.directory  # type: ignore[attr-defined]
        if self.path.startswith("/static/"):
            path = STATIC / self.path.removeprefix("/static/")
            kind = {".css": "text/css", ".js": "text/javascript"}[path.suffix]
            self.answer(path.read_bytes(), f"{kind}; charset=utf-8")
        elif self.path == "/keys/directory.json":
            self.answer(directory, "application/json")
        else:
            page = b"<!doctype html><style>p { margin: 0 }</style>"
            page += b'<script type="module" src="/static/js/report-page.js"></script>'
            self.answer(page + b"<p>words</p>" * 100, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        """Echo the body back next to a secret, as a re-rendered form would."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        kind = "application/json" if self.path.startswith("/submit/") else "text/html"
        self.answer(b"token=" + secrets.token_hex(16).encode() + body * 20, kind)

    def answer(self, body: bytes, kind: str) -> None:
        """200 with ``body``, uncompressed."""
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _UnixOrigin(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def nginx_before_plain_origin(demo: DemoPortal) -> Iterator[str]:
    """The rendered nginx.conf and site, with an uncompressing origin on the intake socket."""
    root = Path(tempfile.mkdtemp(prefix="cso-gzip-"))
    root.chmod(0o755)  # nginx's workers run as www-data
    try:
        host = render_host(root / "host")
        sock = host.path("/run/cso-portal/intake.sock")
        origin = _UnixOrigin(str(sock), _Origin)
        origin.directory = (demo.data_dir / "key-directory.json").read_bytes()  # type: ignore[attr-defined]
        sock.chmod(0o666)
        thread = threading.Thread(target=origin.serve_forever, daemon=True)
        thread.start()
        nginx = start_nginx(host)
        try:
            yield host.onion_url
        finally:
            stop(nginx)
            origin.shutdown()
            origin.server_close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_rendered_nginx_site_gzips_text_and_never_an_answer_to_a_post(
    demo_template: DemoPortal,
) -> None:
    with nginx_before_plain_origin(demo_template) as url:
        assert_gzip_everywhere_a_visit_goes(url)
        body, content_type = multipart({"place_name": CANARY})
        for path in ("/submit-plain", "/followup", "/followup/send-plain", "/submit/begin",
                     "/submit/finish", "/followup/lookup", "/submit"):  # fmt: skip
            answer = ask(url, path, "POST", body, Content_Type=content_type)
            assert answer.status == 200, path
            assert answer.encoding == "", path
            assert CANARY in answer.text(), path
        # the same echo to a GET is compressed: the refusal above is the location's doing
        assert ask(url, "/").encoding == "gzip"


def test_nginx_in_front_of_the_portal_sends_gzip_and_not_the_filled_form(
    demo_template: DemoPortal,
) -> None:
    """The whole rendered stack, as on a host: nginx, then gunicorn with the portal."""
    root = Path(tempfile.mkdtemp(prefix="cso-gzip-stack-"))
    root.chmod(0o755)
    try:
        with running_stack(root / "host", demo_template) as stack:
            url = stack.host.onion_url
            assert_gzip_everywhere_a_visit_goes(url)
            answer = refused_plain_form(url)
            assert 400 <= answer.status < 500
            assert answer.encoding == ""
            assert CANARY in answer.text()
    finally:
        shutil.rmtree(root, ignore_errors=True)
