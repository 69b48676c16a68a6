"""The application factory: ``create_app(config)``.

Everything the portal needs is set up here from one :class:`Config`. Nothing
about a reporter is logged: werkzeug's request log (which carries the client
address) is silenced, the app logs no request data, and error pages say what
went wrong without echoing input.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from portal.config import Config
from portal.storage import pending, pending_cleanup
from portal.storage.blobs import BlobStore
from portal.storage.db import make_engine, make_sessions
from portal.storage.disk import is_disk_full
from portal.storage.reconcile import reconcile
from portal.storage.runtime import RuntimeStore
from portal.web import security
from portal.web.faults import (
    DATABASE_DOWN,
    DISK_FULL,
    RETRY_AFTER,
    DatabaseDownError,
    StorageFullError,
    database_disk_full,
    database_unreachable,
)
from portal.web.request import PortalRequest
from portal.web.reviewers import DirectoryCache, NoDirectoryError, pinned_organisation_key

csrf = CSRFProtect()

#: error pages in plain words; the status code picks the text
_MESSAGES = {
    400: _l("The request could not be understood."),
    403: _l("This action is not allowed."),
    404: _l("There is no such page."),
    405: _l("That is not how this page is used."),
    413: _l("The upload is larger than this portal accepts."),
    429: _l("Too many reports are arriving right now. Please try again in a few minutes."),
    503: _l("The portal cannot accept reports right now."),
}


ROLES = ("intake", "sync")
#: public endpoints that scripts call and that answer in JSON, errors included
JSON_PATHS = frozenset(
    {"/followup/lookup", "/pow", "/form-token", "/submit/begin", "/submit/finish", "/uploads"}
)
#: the tus uploads (portal/web/tus.py), like the sync API: JSON too
JSON_PREFIXES = ("/reviewer-sync/", "/uploads/")
#: form posts made by scripts: an expired form token is answered in JSON, so that the
#: page renews it in place (GET /form-token) and sends again, losing nothing typed
SCRIPT_FORMS = frozenset({"/submit", "/submit/begin", "/submit/finish"})
CSRF_MESSAGE = _l(
    "This form has expired or was opened in another browser session. "
    "Nothing was stored. Please reload the page and send it again."
)


def create_app(config: Config, role: str = "intake") -> Flask:
    """Build the portal from ``config``: the public intake, or the reviewer sync API.

    The intake also serves the sync API when ``PORTAL_SYNC=same``.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    app = security.PortalFlask(__name__)  # a router that never redirects
    app.request_class = PortalRequest
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=config.max_upload_bytes + 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=256 * 1024,
        MAX_FORM_PARTS=config.max_attachments + 200,
        WTF_CSRF_TIME_LIMIT=config.csrf_time_limit,
        WTF_CSRF_SSL_STRICT=config.https,
        SESSION_COOKIE_NAME="csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.https,
        PERMANENT_SESSION_LIFETIME=config.csrf_time_limit,
        TEMPLATES_AUTO_RELOAD=False,
        PORTAL_ROLE=role,
    )
    _quiet_logs()
    engine = make_engine(config.database_url)
    app.extensions["portal"] = {
        "config": config,
        "engine": engine,
        "sessions": make_sessions(engine),
        # anti-abuse state that needs the time: off the data directory (runtime.py);
        # the intake uses it, so an unsafe runtime directory stops it from starting
        "runtime": RuntimeStore(config.runtime_dir, prepare=role == "intake"),
        "directory": _directory_cache(config),
    }
    app.extensions["portal"]["blobs"] = _tidied_blobs(
        config, app.extensions["portal"]["runtime"] if role == "intake" else None
    )
    reconcile_at_start(app.extensions["portal"]["sessions"], app.extensions["portal"]["blobs"])
    csrf.init_app(app)
    security.install(app, config)
    from portal.web import plain_intake  # noqa: F401 - adds /submit-plain and /received to intake
    from portal.web.followup import followup
    from portal.web.intake import intake
    from portal.web.resumable import drafts
    from portal.web.sync import sync
    from portal.web.tus import tus

    csrf.exempt(sync)  # bearer tokens, never cookies: nothing for CSRF to ride on
    csrf.exempt(tus)  # the upload id is the capability; begin and finish take the form token
    if role == "intake":
        app.register_blueprint(intake)
        app.register_blueprint(followup)
        app.register_blueprint(drafts)
        app.register_blueprint(tus)
    if role == "sync" or config.sync_mode == "same":
        app.register_blueprint(sync)
    from portal.web import i18n

    # after the blueprints: it adds /<code>/ to the report form
    i18n.install(app, pages=role == "intake")
    _error_pages(app)
    _fault_pages(app)
    return app


def _tidied_blobs(config: Config, runtime: RuntimeStore | None) -> BlobStore:
    """The blob store, with what an interrupted upload left removed and the spares refilled.

    A leftover counts as abandoned once nothing has been written to it for as
    long as a form stays valid (PORTAL_CSRF_HOURS): an upload still going
    writes to its file far more often than that. The intake also removes
    expired resumable uploads and partial files that its runtime store no
    longer knows (``pending.py``): after a restart, all of them. A runtime
    store that stays locked only postpones that tidy; it never stops the start.
    """
    store = BlobStore(config.blob_dir)
    if runtime is not None:
        try:
            pending_cleanup.tidy(runtime.sessions, store, pending.today())
        except SQLAlchemyError as failure:
            # a store held by busy workers past the busy timeout: a worker that
            # raised here would make gunicorn stop every worker (a boot error halts
            # the master), so the tidy waits for the next start or the daily purge
            logging.getLogger(__name__).warning(
                "start-up upload tidy skipped: %s", type(failure).__name__
            )
    store.tidy(timedelta(seconds=config.csrf_time_limit))
    return store


def reconcile_at_start(sessions: Any, store: BlobStore) -> None:
    """Remove what crashed workers left: orphan blobs and unfinished uploads.

    Every worker runs this as it starts (a worker killed and replaced, too);
    the locks in ``portal/storage/blob_locks.py`` make that safe beside workers
    already serving. A database that cannot be reached must not stop the
    worker from starting (it answers 503 until the database is back): the
    orphans are then left for the next start or the daily purge.
    """
    try:
        found = reconcile(sessions, store)
    except (SQLAlchemyError, OSError) as failure:
        logging.getLogger(__name__).warning(
            "start-up reconcile skipped: %s", type(failure).__name__
        )
        return
    if found.orphan_blobs or found.stale_temps:
        logging.getLogger(__name__).warning("start-up reconcile removed %s", found.line())
    if found.missing_blobs:
        logging.getLogger(__name__).error(
            "%d stored part(s) have lost their blob file", found.missing_blobs
        )


def _directory_cache(config: Config) -> DirectoryCache | None:
    try:
        organisation = pinned_organisation_key(config.organisation_key, config.data_dir)
    except NoDirectoryError:
        return None  # intake answers 503 with the reason until the operator sets one
    return DirectoryCache(config.directory_file, organisation)


def _quiet_logs() -> None:
    """Keep client addresses out of every log this process writes."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").disabled = True


def _is_api() -> bool:
    """Whether errors go out as JSON: anything the sync application or API answers."""
    return (
        current_app.config["PORTAL_ROLE"] == "sync"
        or request.path.startswith(JSON_PREFIXES)
        or request.path in JSON_PATHS
    )


#: the page of an unexpected failure. It may come after a commit, so it must not
#: say nothing was kept; a report sent again from the same page is stored once
#: (``intake.stored_before``, the no-JavaScript form's one-time key)
INTERNAL_ERROR = _l(
    "Something went wrong on our side, and what you sent may or may not have been kept. "
    "If you were sending a report, go back and send it again: a report sent again from "
    "the same page is stored only once."
)


def _error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        if request.path in SCRIPT_FORMS:
            return jsonify({"error": str(CSRF_MESSAGE), "renew_token": True}), 400
        if request.path == "/submit-plain":
            from portal.web.plain_intake import plain_form_after_error

            return plain_form_after_error(CSRF_MESSAGE)  # the filled form again: nothing lost
        message = _(
            "This form has expired or was opened in another browser session. "
            "Nothing was stored. Please go back, reload the page and send it again."
        )
        return security.error_page(400, message)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        message = error.description if getattr(error, "portal_message", False) else None
        if _is_api():
            answer = jsonify(
                {"error": str(message or _MESSAGES.get(status) or _("request refused"))}
            )
            answer.status_code = status
        else:
            text = message or _MESSAGES.get(status) or _("The request could not be handled.")
            answer = security.error_page(status, str(text))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            # RFC 9110 section 15.5.6: a 405 MUST list the methods the resource takes
            answer.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return answer

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Any:
        # Log the type only: messages can carry user input.
        app.logger.error("internal error: %s", type(error).__name__)
        if _is_api():
            return jsonify({"error": _("internal error")}), 500
        return security.error_page(500, str(INTERNAL_ERROR))


def _fault_answer(status: int, text: Any, retry_after: int | None = None) -> Any:
    """An answer for a fault of the host, not the request, in the style of ``_error_pages``.

    ``text`` may be a lazy translation: it is read now, in the request's language.
    """
    text = str(text)
    answer = jsonify({"error": text}) if _is_api() else security.error_page(status, text)
    answer.status_code = status
    if retry_after is not None:
        answer.headers["Retry-After"] = str(retry_after)
    return answer


def _fault_pages(app: Flask) -> None:
    """507 on a full disk and 503 with ``Retry-After`` while the database is unreachable."""

    def crash(error: Exception) -> Any:
        app.logger.error("internal error: %s", type(error).__name__)
        if _is_api():
            return jsonify({"error": _("internal error")}), 500
        return security.error_page(500, str(INTERNAL_ERROR))

    @app.errorhandler(DatabaseDownError)
    def _database_down(error: DatabaseDownError) -> Any:
        return _fault_answer(503, DATABASE_DOWN, RETRY_AFTER)

    @app.errorhandler(StorageFullError)
    def _storage_full(error: StorageFullError) -> Any:
        return _fault_answer(507, DISK_FULL)

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError) -> Any:
        if database_disk_full(error):
            app.logger.error("the database's disk is full")
            return _fault_answer(507, DISK_FULL)
        if database_unreachable(error):
            app.logger.error("the database cannot be reached: %s", type(error).__name__)
            return _fault_answer(503, DATABASE_DOWN, RETRY_AFTER)
        return crash(error)

    @app.errorhandler(OSError)
    def _os(error: OSError) -> Any:
        if is_disk_full(error):
            app.logger.error("the data directory's disk is full")
            return _fault_answer(507, DISK_FULL)
        return crash(error)
