"""Response headers, error pages and log redaction shared by the portal's applications.

The CSP is data: a mapping of directive to sources, starting from
``default-src 'none'``, serialised by :func:`csp_header`. Tests assert its
properties (no ``unsafe-*``, nothing from another origin), not a literal.

* No redirect is ever built from the request's ``Host`` header: the router
  never redirects (``/static//x`` and a missing trailing slash are 404s, not
  308s to ``http://HOST/…``), and any ``Location`` that names a host is cut
  down to its path before it leaves.
* An error page cannot raise: if its template fails, a fixed plain-text 500
  goes out instead, and only the exception's class is logged.
* :class:`LogRedaction` rewrites every log record that could carry a client
  address or exception text (a traceback, gunicorn's ``Invalid request from
  ip=…``) into one line naming the exception class. Flask's logger uses it
  here; gunicorn's through ``logger_class`` in deploy/gunicorn.conf.py.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, render_template, request
from werkzeug.routing import Map

from portal import compression, styles
from portal.config import Config

CSP: Mapping[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'", *styles.csp_hashes()),  # the inlined stylesheets (styles.py)
    "img-src": ("'self'", "blob:"),  # blob: for the page's own image previews
    "connect-src": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "worker-src": ("'self'",),
}

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "interest-cohort",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
)


def csp_header(policy: Mapping[str, tuple[str, ...]] = CSP) -> str:
    """Serialise a CSP mapping, in a stable order."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


#: headers that only a document (or a worker) acts on, not a module or stylesheet it
#: loads (nor the plain text a browser shows for one opened on its own, where no script
#: runs); each costs a reporter on a satellite link bytes on every one of some twenty
#: modules, about a second of waiting in all at 64 kbit/s. A worker's script would act
#: on its CSP and COEP: the portal starts no worker, and a test
#: (tests/unit/portal/test_headers.py) fails if a module ever does.
DOCUMENT_ONLY = (
    "Content-Security-Policy",
    "Cross-Origin-Embedder-Policy",
    "Cross-Origin-Opener-Policy",
    "Permissions-Policy",
    "X-Frame-Options",  # frame-ancestors in the CSP says the same
    "Onion-Location",
)
#: what static files carry for caches, and Pragma for HTTP/1.0 ones: with no-store
#: nothing is cached, so these are only bytes on the wire
CACHE_ONLY = ("ETag", "Last-Modified", "Accept-Ranges", "Content-Disposition", "Pragma")


def security_headers(config: Config) -> dict[str, str]:
    """The headers every response carries."""
    headers = {
        "Content-Security-Policy": csp_header(),
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
    if config.https:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if config.onion_address:
        headers["Onion-Location"] = f"http://{config.onion_address}"
    return headers


def install(app: Flask, config: Config) -> None:
    """Add the headers to every response, drop the Server header, redact the app's log.

    Static files (the page's modules and stylesheets) go without the headers
    that only a document acts on, and without cache validators.

    Also compresses what is worth compressing (portal/compression.py). Its
    hook is registered first so that Flask runs it last, on the finished
    response, after every other hook has had its say.
    """
    headers = security_headers(config)
    app.logger.addFilter(LogRedaction())
    app.jinja_env.globals["inline_style"] = styles.inline_style
    compression.install(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        if request.endpoint == "static":
            for name in (*DOCUMENT_ONLY, *CACHE_ONLY):
                response.headers.pop(name, None)
        if "Location" in response.headers:
            response.headers["Location"] = same_origin_location(response.headers["Location"])
        return response


class RedirectFreeMap(Map):
    """A URL map whose router never redirects.

    werkzeug answers ``/static//x`` (merged slashes), a missing trailing slash
    and a default-valued URL with a 308 to an absolute URL built from the
    request's Host header, which anyone can forge. Here they are 404s.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(strict_slashes=False, merge_slashes=False, redirect_defaults=False)
        super().__init__(*args, **kwargs)


class PortalFlask(Flask):
    """Flask with the :class:`RedirectFreeMap` router (it must be chosen before the first rule)."""

    url_map_class = RedirectFreeMap


def same_origin_location(location: str) -> str:
    """``location`` without scheme or host: a redirect can only stay on this site."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")  # never "//host": browsers read that as another site
    return urlunsplit(("", "", path, parts.query, parts.fragment))


#: said instead of an error page that could not be made
LAST_RESORT = "Something went wrong on our side. Nothing you sent was kept.\n"


def error_page(status: int, message: str) -> Response:
    """The error page; if even that fails, a fixed plain-text 500 (it cannot raise)."""
    try:
        return Response(render_template("error.html", status=status, message=message), status)
    except Exception as failure:  # the page of last resort must not fail, whatever broke
        current_app.logger.error("the error page failed: %s", type(failure).__name__)
        return Response(LAST_RESORT, 500, mimetype="text/plain")


# --- logs -----------------------------------------------------------------------------

_ADDRESS_LIKE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")


def names_an_address(text: str) -> bool:
    """Whether ``text`` holds an IPv4 or IPv6 address anywhere (a port may follow)."""
    for token in _ADDRESS_LIKE.findall(text):
        for candidate in (token.strip(":."), token.rpartition(":")[0]):
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            return True
    return False


class LogRedaction(logging.Filter):
    """Rewrites records that could carry a client address or exception text.

    A record with exception information, a traceback in its text, or
    gunicorn's ``Invalid request from ip=…`` becomes one line naming the
    exception's class; any other record that names an address is withheld
    whole. Messages are never passed through: an exception's text or a
    request line can hold whatever a client sent.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place when it needs it; never drop it."""
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        failure = record.exc_info[1] if record.exc_info else sys.exception()
        name = type(failure).__name__ if failure is not None else "no exception"
        if record.exc_info or "Traceback" in text:
            _rewrite(record, "failed (details withheld from the log): %s", name)
        elif text.startswith("Invalid request from"):
            _rewrite(record, "invalid request refused: %s", name)
        elif names_an_address(text):
            _rewrite(record, "a message naming a network address was withheld", None)
        return True


def _rewrite(record: logging.LogRecord, message: str, argument: str | None) -> None:
    record.msg = message
    record.args = () if argument is None else (argument,)
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
