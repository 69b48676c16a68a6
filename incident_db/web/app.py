"""The members' web service: ``create_app(config)``.

Built on :mod:`web_hardening` like the portal: a router that never
redirects, the shared CSP (``default-src 'none'``, everything else from this
origin only, nothing inline) and headers on every response, error pages
that cannot raise, and the log filter that keeps addresses and exception
text out. Flask's own session cookie (``idb_pre``) carries only the CSRF
token and a pending WebAuthn challenge; who is signed in is the
``idb_session`` cookie and the database (sessions.py).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException

from incident_db.db import make_engine
from incident_db.errors import IncidentDbError
from incident_db.members import store
from incident_db.web import ceremony, sessions
from incident_db.web.config import WebConfig
from web_hardening import errors, headers, routing
from web_hardening.logs import LogRedaction

#: the shared policy as it stands: scripts, styles, images and fetches from this origin only
CSP = headers.BASE_CSP
#: requests are small: a form, or a passkey's answer (an editor's upload is let
#: through up to incidents.UPLOAD_REQUEST_BYTES by incidents.allow_upload)
MAX_REQUEST_BYTES = 64 * 1024

csrf = CSRFProtect()


def create_app(config: WebConfig) -> Flask:
    """Build the members' service over the (already migrated) database of ``config``."""
    app = routing.HardenedFlask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        SESSION_COOKIE_NAME="idb_pre",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.https,
        PERMANENT_SESSION_LIFETIME=store.SESSION_MAX,
        WTF_CSRF_TIME_LIMIT=int(store.SESSION_MAX.total_seconds()),
        # the referrer check needs a Referer, and every page says Referrer-Policy:
        # no-referrer; the token and the SameSite=Strict cookie carry the protection
        WTF_CSRF_SSL_STRICT=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.logger.addFilter(LogRedaction())
    logging.getLogger("werkzeug").disabled = True  # its request lines name the client
    engine = make_engine(config.database_url)
    app.extensions["incident_db"] = {
        "config": config,
        "engine": engine,
        "sessions": sessionmaker(engine, expire_on_commit=False),
    }
    headers.install_headers(app, headers.security_headers(CSP, https=config.https))
    sessions.install(app)  # before the CSRF check: anonymous requests get 401 first
    from incident_db.web.incidents import allow_upload

    app.before_request(allow_upload)  # an editor's upload alone may exceed MAX_REQUEST_BYTES
    csrf.init_app(app)

    from incident_db.web.admin import admin
    from incident_db.web.attachments import attachments
    from incident_db.web.auth import auth
    from incident_db.web.exports import exports
    from incident_db.web.home import home
    from incident_db.web.incidents import incidents
    from incident_db.web.map import map_page
    from incident_db.web.places import places
    from incident_db.web.taxii import taxii
    from incident_db.web.voyage import voyage

    app.register_blueprint(home)
    app.register_blueprint(auth)
    app.register_blueprint(map_page)
    app.register_blueprint(admin)
    app.register_blueprint(incidents)
    app.register_blueprint(attachments)
    app.register_blueprint(exports)
    app.register_blueprint(places)
    app.register_blueprint(voyage)
    # partners' TAXII 2.1 pulls: their own credential on every request, no cookie to forge
    csrf.exempt(taxii)
    app.register_blueprint(taxii)
    app.context_processor(lambda: {"roles": store.ROLES})
    _error_pages(app)
    return app


def _wants_json() -> bool:
    """Whether the request came from passkey.js (which sends and expects JSON)."""
    return request.is_json


def _refusal(status: int, message: str) -> Any:
    if _wants_json():
        return jsonify(error=message), status
    return errors.error_page(status, message)


def _error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> Any:
        return _refusal(
            400,
            "This page has expired or was opened in another browser session. "
            "Nothing was changed. Please reload the page and try again.",
        )

    @app.errorhandler(ceremony.CeremonyError)
    @app.errorhandler(store.MemberError)
    def _refused(error: IncidentDbError) -> Any:
        return _refusal(400, error.diagnostics())

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        answer = app.make_response(_refusal(status, error.description or ""))
        for name, value in error.get_headers():
            if name in ("Retry-After", "Allow"):  # what the refusal tells the client to do
                answer.headers[name] = value
        return answer

    @app.errorhandler(Exception)
    def _failure(error: Exception) -> Response:
        app.logger.error("request failed: %s", type(error).__name__)
        return errors.error_page(500, errors.LAST_RESORT)
