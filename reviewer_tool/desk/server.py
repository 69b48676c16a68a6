"""``reviewer desk``: open the workspace, index it, and serve the desk on 127.0.0.1.

The listener is bound to the literal address 127.0.0.1 and nothing else:
not ``0.0.0.0`` or another interface (the desk would be on the network), and
not even ``localhost``, which needs a name lookup and may mean ``::1`` or, on
a badly configured machine, another address. The socket is made and bound
here, before werkzeug sees it, so that a port already in use is a one-line
error and werkzeug makes no name lookup of its own (its ``server_bind``
would ask for the host's fully qualified name). The process's only socket
operations are that socket's (bind, listen, accept) and werkzeug's
``getaddrinfo("127.0.0.1")``, which the C library answers from the digits
without asking a resolver; tests/integration/test_desk_shell.py holds the
process to that with an audit hook.

A random token (``secrets.token_urlsafe(24)``, 192 bits) starts every
address; it is printed once, with the address, and lives only in this
process. The server answers one request at a time, in the thread that holds
the workspace's SQLite connection. werkzeug's request log is kept quiet: each
of its lines names the client and a path that holds the token.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import time
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from reviewer_tool.errors import ReviewerError
from reviewer_tool.session import open_workspace
from reviewer_tool.terminal import say

if TYPE_CHECKING:
    import socket

#: the one address the desk listens on (see the module's docstring)
LOOPBACK = "127.0.0.1"
#: how long the server waits on a connection that sends nothing (a browser's
#: speculative connection holds up the one request at a time otherwise)
IDLE_SECONDS = 5


def check_host(host: str) -> str:
    """``host`` if it is exactly 127.0.0.1; raises ReviewerError for anything else."""
    if host != LOOPBACK:
        raise ReviewerError(
            f"the desk listens on {LOOPBACK} only, so that nothing else on the network "
            "can reach it (not even 'localhost', which needs a name lookup)"
        )
    return host


def check_port(port: int) -> int:
    """``port`` if it is 0 (any free port) or 1024-65535."""
    if port != 0 and not 1024 <= port <= 65535:
        raise ReviewerError("--port must be 0 (any free port) or a number from 1024 to 65535")
    return port


def has_display(environ: Mapping[str, str]) -> bool:
    """Whether a graphical session exists that a browser could open in."""
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _listen(port: int) -> tuple[socket.socket, int]:
    """A listening TCP socket on 127.0.0.1:``port`` and the port it got."""
    import socket  # the desk's only networking: a listener on loopback

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(64)
    except OSError as error:
        listener.close()
        raise ReviewerError(f"cannot listen on {LOOPBACK}:{port}: {error.strerror}") from None
    return listener, int(listener.getsockname()[1])


def _quiet_werkzeug() -> type[Any]:
    """A request handler that logs nothing; werkzeug's own log at warnings, redacted.

    Every request line names the client and a path that holds the token, and
    an error line quotes what the client sent.
    """
    from werkzeug.serving import WSGIRequestHandler

    from web_hardening.logs import LogRedaction

    log = logging.getLogger("werkzeug")
    log.setLevel(logging.WARNING)
    log.addFilter(LogRedaction())

    class QuietHandler(WSGIRequestHandler):
        timeout = IDLE_SECONDS

        def log(self, type: str, message: str, *args: Any) -> None:
            """Say nothing about a request."""

        def version_string(self) -> str:
            """No software versions in the ``Server`` header."""
            return "reviewer-desk"

    return QuietHandler


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # serve_forever stops on it and the workspace closes


def cmd_desk(args: argparse.Namespace) -> None:
    """Serve the desk until Ctrl-C; print its address, and how long opening took."""
    check_host(args.host)
    check_port(args.port)
    ws = open_workspace(args)
    try:
        started = time.monotonic()
        from werkzeug.serving import make_server

        from reviewer_tool.desk.app import create_app
        from reviewer_tool.desk.index import DeskIndex

        listener, port = _listen(args.port)  # first: a port in use fails before the long part
        index = DeskIndex(ws)
        took = time.monotonic() - started
        say(
            f"desk: {index.reports} report(s) and {index.messages} conversation message(s) "
            f"indexed in {took:.1f} s, in memory only"
        )
        token = secrets.token_urlsafe(24)
        app = create_app(ws, token, port=port, index=index)
        handler = _quiet_werkzeug()
        try:
            server = make_server(
                LOOPBACK, port, app, threaded=False, request_handler=handler,
                fd=listener.fileno(),
            )  # fmt: skip
        finally:
            listener.close()  # werkzeug holds a copy of its own
        url = f"http://{LOOPBACK}:{port}/{token}/"
        say(f"desk: {url}")
        say("desk: stop it with Ctrl-C")
        if not args.no_open and has_display(os.environ):
            import webbrowser

            webbrowser.open(url)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        # a shell without job control starts background commands with SIGINT ignored, and
        # Python then leaves it ignored: Ctrl-C (or a script's SIGINT) must still stop the desk
        signal.signal(signal.SIGINT, signal.default_int_handler)
        server.serve_forever()  # returns on Ctrl-C, having closed the listener
        say("desk: stopped")
    finally:
        ws.close()
