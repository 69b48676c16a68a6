"""The portal's own hardening, on the project's shared :mod:`web_hardening`.

The CSP is data (:data:`CSP`): the shared base, plus the inlined stylesheets'
hashes, ``blob:`` images for the page's own previews and same-origin workers.
Tests assert its properties (no ``unsafe-*``, nothing from another origin),
not a literal. Everything else (the headers, the redirect-free router, the
error page that cannot raise, the log filter) is :mod:`web_hardening`'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response

from portal.config import Config
from portal.web import compression, styles
from web_hardening import errors, headers, routing
from web_hardening.headers import CACHE_ONLY, DOCUMENT_ONLY, csp_header
from web_hardening.logs import LogRedaction

__all__ = ["CACHE_ONLY", "CSP", "DOCUMENT_ONLY", "LogRedaction", "PortalFlask", "csp_header"]

CSP: Mapping[str, tuple[str, ...]] = {
    **headers.BASE_CSP,
    "style-src": ("'self'", *styles.csp_hashes()),  # the inlined stylesheets (styles.py)
    "img-src": ("'self'", "blob:"),  # blob: for the page's own image previews
    "worker-src": ("'self'",),
}

#: the policy of an answer that is not a page (JSON a script reads, an empty 204): nothing
#: may load into it or frame it. Tighter than the page's, and a fifth of its bytes.
NOT_A_PAGE_CSP: Mapping[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "frame-ancestors": ("'none'",),
}

#: the portal's Flask: a router that never redirects
PortalFlask = routing.HardenedFlask


def security_headers(config: Config) -> dict[str, str]:
    """The headers every portal response carries."""
    return headers.security_headers(CSP, https=config.https, onion_address=config.onion_address)


def install(app: Flask, config: Config) -> None:
    """Add the headers to every response, drop the Server header, redact the app's log.

    Also compresses what is worth compressing (portal/web/compression.py). Its
    hook is registered first so that Flask runs it last, on the finished
    response, after every other hook has had its say.
    """
    app.logger.addFilter(LogRedaction())
    app.jinja_env.globals["inline_style"] = styles.inline_style
    compression.install(app)
    app.after_request(_not_a_page)  # Flask runs hooks last-registered first: after the headers
    headers.install_headers(app, security_headers(config))


def _not_a_page(response: Response) -> Response:
    """A JSON answer or an empty one: the tightest CSP, none of the other page-only headers.

    A browser never renders such an answer as a page that runs or loads
    anything (``nosniff`` stays: JSON is never read as HTML), so COOP, COEP,
    the Permissions-Policy and X-Frame-Options have nothing to act on; each
    costs a reporter on a 64 kbit/s link bytes on every key, puzzle and
    upload answer. Every HTML page, error pages included, keeps them all.
    """
    if response.mimetype == "application/json" or response.status_code == 204:
        for name in headers.DOCUMENT_ONLY:
            response.headers.pop(name, None)
        response.headers["Content-Security-Policy"] = csp_header(NOT_A_PAGE_CSP)
    return response


def error_page(status: int, message: str) -> Response:
    """The portal's error page; if even that fails, a fixed plain-text 500."""
    return errors.error_page(status, message)
