"""The desk's gate: a WSGI middleware that refuses every request not from the desk's own page.

The listener is bound to 127.0.0.1, but every program on the computer, and
every web page open in its browsers, can reach 127.0.0.1. So before Flask
sees a request the guard asks, in this order:

1. ``Host`` is exactly ``127.0.0.1:PORT``. A page on another site that has
   its own name resolve to 127.0.0.1 (DNS rebinding) sends its own name
   here, so it is refused even though the browser thinks it is same-origin.
   A missing or malformed ``Host`` is a 400.
2. ``Origin``, when the browser sends one, is exactly ``http://127.0.0.1:PORT``
   (or ``null``, which a browser sends with the desk's own form posts under
   ``Referrer-Policy: no-referrer``, accepted only with ``Sec-Fetch-Site:
   same-origin``), and ``Sec-Fetch-Site`` is not ``cross-site`` or
   ``same-site``: another origin (another port of 127.0.0.1 is ``same-site``)
   may not even read a refusal from the desk.
3. The path starts with ``/<token>/``, the random token printed at start
   (compared in constant time). The token then moves from ``PATH_INFO`` to
   ``SCRIPT_NAME``, so the application sees ordinary paths and ``url_for``
   puts the token back into every link it makes, static files included.
   The token is what a page elsewhere cannot know, so it is also what
   protects the desk's POST forms from being submitted by one.

A refusal is a fixed plain-text answer with the same strict headers as every
page and nothing in it about why, and it is never logged (the path holds a
guessed token, or the real one).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: a Host header that parses at all: a name or IPv4 address, or a bracketed IPv6, and a port
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_REFUSED_SITES = frozenset({"cross-site", "same-site"})
_ANSWERS = {400: b"Bad request\n", 403: b"Forbidden\n"}
_REASONS = {400: "400 Bad Request", 403: "403 Forbidden"}


class DeskGuard:
    """Wraps the desk's WSGI application; see the module's docstring for what it refuses."""

    def __init__(
        self, app: WSGIApplication, *, token: str, port: int, headers: Mapping[str, str]
    ) -> None:
        self.app = app
        self.prefix = f"/{token}/".encode()
        self.host = f"127.0.0.1:{port}"
        self.origin = f"http://{self.host}"
        self.headers = dict(headers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Pass the request on with the token moved into ``SCRIPT_NAME``, or refuse it."""
        status = self.refusal(environ)
        if status is not None:
            return self._refuse(status, start_response)
        path = environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + path[: len(self.prefix) - 1]
        environ["PATH_INFO"] = path[len(self.prefix) - 1 :]
        return self.app(environ, start_response)

    def refusal(self, environ: Mapping[str, Any]) -> int | None:
        """The status to refuse the request with (400 or 403), or None to let it through."""
        host = environ.get("HTTP_HOST")
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            return 400
        if host != self.host:
            return 403
        origin = environ.get("HTTP_ORIGIN")
        site = environ.get("HTTP_SEC_FETCH_SITE", "").lower()
        if site in _REFUSED_SITES:
            return 403
        # Under ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` with the
        # desk's own form posts; a sandboxed frame elsewhere sends it too, but marked
        # cross-site. So "null" passes only when the browser itself says same-origin.
        if origin == "null" and site != "same-origin":
            return 403
        if origin not in (None, "null", self.origin):
            return 403
        if environ.get("REMOTE_ADDR", "127.0.0.1") != "127.0.0.1":
            return 403  # the listener is on loopback; anything else is a misconfiguration
        # WSGI gives PATH_INFO as latin-1 text of the raw bytes: encode it back the same way
        path = environ.get("PATH_INFO", "").encode("latin-1", "replace")
        if not hmac.compare_digest(path[: len(self.prefix)], self.prefix):
            return 403
        return None

    def _refuse(self, status: int, start_response: StartResponse) -> Iterable[bytes]:
        body = _ANSWERS[status]
        headers = [
            *self.headers.items(),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        start_response(_REASONS[status], headers)
        return [body]
