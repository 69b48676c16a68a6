"""The Content Security Policy as data, and the headers every response carries.

A CSP is a mapping of directive to sources, starting from
``default-src 'none'`` and serialised by :func:`csp_header`. Tests assert its
properties (no ``unsafe-*``, nothing from another origin), not a literal.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, request

from web_hardening.routing import same_origin_location

Policy = Mapping[str, tuple[str, ...]]

#: the strictest useful starting point: everything from this origin, nothing inline
BASE_CSP: Policy = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'",),
    "connect-src": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
}

#: every powerful browser feature, refused to the page and anything it frames
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

#: headers that only a document (or a worker) acts on, not a module or stylesheet it
#: loads (nor the plain text a browser shows for one opened on its own, where no script
#: runs); each costs a reader on a slow link bytes on every static file. A worker's
#: script would act on its CSP and COEP: an application that starts workers must not
#: strip these from its worker scripts.
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


def csp_header(policy: Policy) -> str:
    """Serialise a CSP mapping, in a stable order."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


def security_headers(
    policy: Policy, *, https: bool, onion_address: str | None = None
) -> dict[str, str]:
    """The headers every response carries, for a CSP ``policy``.

    ``https`` adds HSTS (two years, subdomains included); ``onion_address``
    adds ``Onion-Location`` so that Tor Browser offers the onion service.
    """
    headers = {
        "Content-Security-Policy": csp_header(policy),
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
    if https:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if onion_address:
        headers["Onion-Location"] = f"http://{onion_address}"
    return headers


def install_headers(app: Flask, headers: Mapping[str, str]) -> None:
    """Set ``headers`` on every response of ``app``, drop ``Server``, keep redirects local.

    Static files go without the headers that only a document acts on, and
    without cache validators.
    """
    fixed = dict(headers)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in fixed.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        if request.endpoint == "static":
            for name in (*DOCUMENT_ONLY, *CACHE_ONLY):
                response.headers.pop(name, None)
        if "Location" in response.headers:
            response.headers["Location"] = same_origin_location(response.headers["Location"])
        return response
