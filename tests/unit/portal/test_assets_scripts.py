"""``portal verify-assets`` reads every ``<script>`` of a page: data blocks pass, code fails."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from portal.deploy.assets import _page_findings, manifest_entries
from portal.deploy.findings import Status
from portal.web.security import CSP, csp_header
from portal.web.styles import style_text
from tests.integration.loopback import static_origin

MODULE = '<script type="module" src="/static/js/report-page.js"></script>'
DATA = '<script type="application/json" id="form-rules">{"fields": []}</script>'


def _verdicts(tmp_path: Path, body: str) -> list[tuple[bool, str]]:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><head>{body}</head><body></body></html>")
    manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
    with static_origin({"/": page}, csp_header(CSP)) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    return [(finding.status is Status.OK, finding.message) for finding in findings]


def test_a_json_data_block_is_not_an_inline_script(tmp_path: Path) -> None:
    verdicts = _verdicts(tmp_path, MODULE + DATA)
    assert all(ok for ok, _ in verdicts), verdicts
    assert any("JSON data block" in message for _, message in verdicts)


@pytest.mark.parametrize(
    "script",
    [
        "<script>alert(1)</script>",
        '<script type="text/javascript">alert(1)</script>',
        '<script type="module">import "/x.js"</script>',
        '<script type="application/json-x">{}</script>',
    ],
)
def test_code_beside_the_data_block_still_fails(tmp_path: Path, script: str) -> None:
    verdicts = _verdicts(tmp_path, MODULE + DATA + script)
    assert (False, "has an inline script") in verdicts, verdicts


def _style_verdicts(tmp_path: Path, css: str) -> list[tuple[bool, str]]:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><head><style>{css}</style>{MODULE}</head></html>")
    manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
    with static_origin({"/": page}, csp_header(CSP)) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    return [(finding.status is Status.OK, finding.message) for finding in findings]


def test_the_published_stylesheet_inline_passes(tmp_path: Path) -> None:
    verdicts = _style_verdicts(tmp_path, style_text("css/portal.css"))
    assert (True, "carries /static/css/portal.css inline (listed)") in verdicts, verdicts
    assert all(ok for ok, _ in verdicts), verdicts


def test_a_changed_inline_stylesheet_fails(tmp_path: Path) -> None:
    # a portal that hides the warnings the published page shows
    css = style_text("css/portal.css") + ".mode { display: none }"
    verdicts = _style_verdicts(tmp_path, css)
    assert (False, "carries a stylesheet that is not in the manifest") in verdicts, verdicts


# --- what a second review slipped past a pattern-matching check ---------------------------


@pytest.mark.parametrize(
    ("markup", "failure"),
    [
        # a ">" inside a quoted attribute: the browser applies "h1{color:red}", not the text
        ('<style data-x=">CSS</style>">h1{color:red}</style>', "not in the manifest"),
        ("<link rel=stylesheet href=https://evil.example/x.css>", "which is not in the manifest"),
        ('<link rel=" stylesheet" href="https://evil.example/x.css">', "not in the manifest"),
        ('<link rel="preload stylesheet" href="/static/x.css">', "not in the manifest"),
        ('<p style="display:none">', "style attributes"),
    ],
)
def test_markup_that_applies_unpublished_styles_fails(
    tmp_path: Path, markup: str, failure: str
) -> None:
    css = style_text("css/portal.css")
    markup = markup.replace("CSS", css)  # the published text, hidden in an attribute
    verdicts = _style_verdicts(tmp_path, css + "</style>" + markup + "<style>" + css)
    assert any(not ok and failure in message for ok, message in verdicts), verdicts


@pytest.mark.parametrize(
    "widened",
    [
        ("style-src", "'self' 'unsafe-inline'"),
        ("style-src", "'self' https://evil.example"),
        ("img-src", "'self' https://evil.example"),
        ("form-action", "'self' https://evil.example"),
        ("connect-src", "*"),
    ],
)
def test_a_policy_wider_than_the_release_fails(tmp_path: Path, widened: tuple[str, str]) -> None:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><head>{MODULE}<style>{style_text('css/portal.css')}</style>")
    name, sources = widened
    policy = {**CSP, name: tuple(sources.split())}
    manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
    with static_origin({"/": page}, csp_header(policy)) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    assert any(f.status is Status.FAIL and name in f.message for f in findings), findings


def test_the_portals_own_policy_passes(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><head>{MODULE}<style>{style_text('css/portal.css')}</style>")
    manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
    with static_origin({"/": page}, csp_header(CSP)) as origin:
        findings = _page_findings(origin, "/", manifest, None, None)
    assert all(f.status is Status.OK for f in findings), findings


def test_a_link_header_fails(tmp_path: Path) -> None:
    """Firefox, and so Tor Browser, applies a stylesheet named in a Link header."""
    body = f"<!doctype html><head>{MODULE}<style>{style_text('css/portal.css')}</style>".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", csp_header(CSP))
            self.send_header("Link", "<https://evil.example/x.css>; rel=stylesheet")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        manifest = {"static/js/report-page.js": "0" * 64, **manifest_entries()}
        findings = _page_findings(origin, "/", manifest, None, None)
    finally:
        server.shutdown()
        server.server_close()
    assert any(f.status is Status.FAIL and "Link header" in f.message for f in findings)
