"""gzip for the portal's pages, stylesheets, modules and JSON, by ``flask-compress``.

A reporter on a 64 kbit/s satellite link waits about a second for every
8 KB; everything is ``no-store`` (nothing may stay in a ship's shared
browser), so every visit downloads the whole page again and compression is
the cheapest second saved. The shipped nginx site compresses the same types
in front of gunicorn (portal/deploy/templates/nginx-site.conf.j2); this covers
``portal serve`` and any deployment without nginx.

Only gzip: it is what browsers offer over plain HTTP (onion services and
loopback included), and it matches what nginx sends.

BREACH: a compressed response that holds both a secret and text an attacker
chose leaks the secret through its length. So:

* a response to anything but GET is never compressed: every answer
  to a POST could echo what was just typed (the no-JavaScript form
  re-rendered after an error holds the report and a fresh form token), and
  those answers are short anyway;
* a view marks any other response that echoes what a reporter typed with the
  header ``X-Portal-No-Compress: 1``; such a response is sent as it is, and
  the header itself never leaves the application.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_compress import Compress

#: set by a view on a response that must go out uncompressed; removed before sending
NO_COMPRESS_HEADER = "X-Portal-No-Compress"

#: what is worth compressing: markup, styles, modules, JSON (images and envelopes are not)
COMPRESSED_TYPES = (
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
)

#: the one method whose answers may be compressed: it carries no body a reporter typed
#: (HEAD answers have no body to compress; labelling one gzip would misdescribe it)
_SAFE_METHODS = frozenset({"GET"})


def install(app: Flask) -> None:
    """Compress eligible responses of ``app`` with gzip; never those marked or answering a POST."""
    app.config.update(
        COMPRESS_REGISTER=False,  # called from the hook below, which decides first
        COMPRESS_MIMETYPES=list(COMPRESSED_TYPES),
        COMPRESS_ALGORITHM=["gzip"],
        COMPRESS_ALGORITHM_STREAMING=["gzip"],  # static files are streamed from disk
        COMPRESS_LEVEL=6,
        COMPRESS_MIN_SIZE=256,  # below this, gzip's own header costs more than it saves
    )
    compress = Compress(app)

    @app.after_request
    def _compress(response: Response) -> Response:
        refused = response.headers.pop(NO_COMPRESS_HEADER, None) is not None
        empty = not response.is_streamed and response.content_length == 0
        if refused or request.method not in _SAFE_METHODS or empty:
            return response  # (an empty body: flask-compress would still label it gzip)
        return compress.after_request(response)
