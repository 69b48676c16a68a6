"""The desk's Flask application: ``create_app(ws, token, port=...)``.

Built on :mod:`web_hardening` like the portal and the members' service: a
router that never redirects, the shared CSP (``default-src 'none'``; scripts,
styles and images from this origin only; nothing inline; ``img-src 'self'``
because the cleaned previews come from the desk itself, never ``data:`` or
``blob:``), the same headers on every response, error pages that cannot
raise, and the log filter that keeps addresses and exception text out. In
front of it all stands :class:`reviewer_tool.desk.guard.DeskGuard`.

The desk sets no cookie and keeps no session: the token in every address is
its only credential, and what a page needs to say after a change travels in
the page it answers with.

No POST is answered with a page (:func:`_no_post_pages`): a browser keeps
the form data of a POST that led to a page in its session files on disk,
to send it again on reload or restore, and a desk form may hold a
reporter's words (words to remove, a reply refused). Such a page is kept in
memory and the browser sent to it with a 303, so that its history holds GET
addresses only, none with a word anybody typed.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

from flask import Flask, Response, redirect, request, url_for
from werkzeug.exceptions import HTTPException

from reviewer_tool.desk import forward, queue, redact, report
from reviewer_tool.desk.display import shown_value
from reviewer_tool.desk.guard import DeskGuard
from reviewer_tool.desk.index import DeskIndex
from reviewer_tool.desk.state import DeskState
from reviewer_tool.errors import ReviewerError
from reviewer_tool.workspace import Workspace
from web_hardening import errors, headers, routing
from web_hardening.logs import LogRedaction

#: the shared policy as it stands: nothing inline, nothing from another origin, and
#: images (the cleaned previews) from the desk only
CSP = headers.BASE_CSP
#: the largest request: a reply of 20,000 characters, URL-encoded as four UTF-8 bytes
#: each at worst, with room for the rest of its form; the import page posts a path
MAX_REQUEST_BYTES = 512 * 1024
#: pages answered to a POST, kept for the GET the browser is sent to (the oldest forgotten)
KEPT_PAGES = 16


def create_app(ws: Workspace, token: str, *, port: int, index: DeskIndex | None = None) -> Flask:
    """The desk over the open workspace ``ws``, answering only at ``/<token>/`` on ``port``.

    ``index`` is built from ``ws`` unless one is given (the server builds it
    first to time it).
    """
    app = routing.HardenedFlask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        TEMPLATES_AUTO_RELOAD=False,
        # no SECRET_KEY: the desk has no session, so nothing could be signed with it
    )
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.logger.addFilter(LogRedaction())
    app.extensions["desk"] = DeskState(ws, index or DeskIndex(ws), token)
    security = headers.security_headers(CSP, https=False)
    headers.install_headers(app, security)
    for blueprint in (queue.queue, report.bp, redact.bp, forward.bp):
        app.register_blueprint(blueprint)
    _no_post_pages(app)  # after install_headers: Flask runs it first, the headers then
    app.jinja_env.globals["has_endpoint"] = lambda endpoint: _has_endpoint(app, endpoint)
    # a category by its words ("Piracy or armed robbery"), not its slug
    app.jinja_env.filters["category"] = lambda value: shown_value("category", value)
    _error_pages(app)
    app.wsgi_app = DeskGuard(app.wsgi_app, token=token, port=port, headers=security)  # type: ignore[method-assign]
    return app


def _has_endpoint(app: Flask, endpoint: str) -> bool:
    """Whether ``endpoint`` exists, so that a template links only to pages that do."""
    return endpoint in app.view_functions


def _no_post_pages(app: Flask) -> None:
    """Turn a page answered to a POST into a 303 to ``/shown/<key>``, which shows it."""
    kept: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    @app.after_request
    def _to_get(response: Response) -> Response:
        if request.method != "POST" or response.status_code // 100 == 3:
            return response
        if response.mimetype != "text/html":
            return response
        key = secrets.token_urlsafe(12)
        kept[key] = (response.status_code, response.get_data())
        while len(kept) > KEPT_PAGES:
            kept.popitem(last=False)
        return redirect(url_for("shown", key=key), 303)  # type: ignore[return-value]

    @app.get("/shown/<key>")
    def shown(key: str) -> Response:
        """A page a POST was answered with, with its status (a refusal stays a 400)."""
        if key not in kept:
            message = "That page is no longer kept: go back and send its form again."
            return errors.error_page(404, message)
        status, body = kept[key]
        return Response(body, status, mimetype="text/html")


def _error_pages(app: Flask) -> None:
    @app.errorhandler(ReviewerError)
    def _refused(error: ReviewerError) -> Response:
        # ReviewerError messages never hold report plaintext (reviewer_tool/errors.py)
        return errors.error_page(400, error.diagnostics())

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        answer = errors.error_page(status, _MESSAGES.get(status, "That did not work."))
        for name, value in error.get_headers():
            if name == "Allow":  # what a 405 tells the client to do instead
                answer.headers[name] = value
        return answer

    @app.errorhandler(Exception)
    def _failure(error: Exception) -> Response:
        # the class only: an exception's text can quote a report
        app.logger.error("request failed: %s", type(error).__name__)
        return errors.error_page(500, errors.LAST_RESORT)


_MESSAGES = {
    400: "The desk could not use what this page sent.",
    404: "There is no such page on the desk.",
    405: "That page does not take this kind of request.",
    413: "What this page sent is too large.",
}
