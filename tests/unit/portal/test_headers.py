"""Security headers, asserted as properties rather than as one literal string."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from portal.web.security import CACHE_ONLY, DOCUMENT_ONLY

STATIC = ["/static/css/portal.css", "/static/js/envelope.js"]
DOCUMENTS = ["/", "/nope"]
#: answers no browser renders as a page: JSON a script reads, the empty favicon
ANSWERS = ["/keys/directory.json", "/favicon.ico"]
PATHS = DOCUMENTS + ANSWERS + STATIC
JS = Path(__file__).resolve().parents[3] / "portal" / "web" / "static" / "js"


def _headers(client: FlaskClient, path: str) -> Headers:
    response = client.get(path)
    response.close()  # static files are streamed
    return response.headers


def _csp(value: str) -> dict[str, list[str]]:
    directives = {}
    for part in value.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.mark.parametrize("path", DOCUMENTS)
def test_csp_properties(client: FlaskClient, path: str) -> None:
    csp = _csp(_headers(client, path)["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    for sources in csp.values():
        for source in sources:
            assert "unsafe" not in source
            assert not source.startswith(("http:", "https:", "ws:", "data:", "*"))


@pytest.mark.parametrize("path", PATHS)
def test_other_headers(client: FlaskClient, path: str) -> None:
    headers = _headers(client, path)
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "no-store" in headers["Cache-Control"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in headers
    assert "Strict-Transport-Security" not in headers  # plain HTTP here
    assert "Onion-Location" not in headers
    if path in STATIC:
        # a module or stylesheet acts on none of these; each is bytes on a slow link
        for name in (*DOCUMENT_ONLY, *CACHE_ONLY):
            assert name not in headers, name
        return
    if path in ANSWERS:
        # the tightest policy, and none of what only a page acts on
        csp = _csp(headers["Content-Security-Policy"])
        assert csp == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}
        for name in DOCUMENT_ONLY:
            assert name == "Content-Security-Policy" or name not in headers, name
        return
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    policy = headers["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "usb"):
        assert f"{feature}=()" in policy


#: what would start a script that acts on its own response's CSP and COEP
_WORKER = re.compile(r"\b(?:Shared)?Worker\s*\(|serviceWorker|importScripts|Worklet")


def test_no_module_starts_a_worker() -> None:
    """Static files go without CSP and COEP, which only documents and workers act on."""
    modules = sorted(JS.glob("*.js"))
    assert len(modules) > 10
    starting = [m.name for m in modules if _WORKER.search(m.read_text(encoding="utf-8"))]
    assert starting == [], "a worker's script needs CSP and COEP: see DOCUMENT_ONLY"


def test_hsts_and_onion_location_when_configured(make_app: Callable[..., Flask]) -> None:
    onion = "a" * 56 + ".onion"
    app = make_app(PORTAL_HTTPS="1", PORTAL_ONION_ADDRESS=onion)
    headers = app.test_client().get("/").headers
    assert "max-age=" in headers["Strict-Transport-Security"]
    assert headers["Onion-Location"] == f"http://{onion}"


def test_only_cookie_is_the_strict_csrf_session(client: FlaskClient) -> None:
    response = client.get("/")
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    cookie = cookies[0].lower()
    assert cookie.startswith("csrf=")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_secure_cookie_on_https(make_app: Callable[..., Flask]) -> None:
    client = make_app(PORTAL_HTTPS="1").test_client()
    cookie = client.get("/", base_url="https://portal.example").headers["Set-Cookie"]
    assert "secure" in cookie.lower()
