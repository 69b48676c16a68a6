"""Response headers that keep the reporter's browser to this origin and this page.

The CSP is data: a mapping of directive to sources, starting from
``default-src 'none'``, serialised by :func:`csp_header`. Tests assert its
properties (no ``unsafe-*``, nothing from another origin), not a literal.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response

from portal.config import Config

CSP: Mapping[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
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
    """Add the headers to every response, and drop the Server header."""
    headers = security_headers(config)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response
