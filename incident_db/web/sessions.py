"""Who is asking: the ``idb_session`` cookie, the sign-in guard and the role check.

A member's session lives in the database (``member_session``, only the
SHA-256 of the cookie): removing a member or signing out everywhere ends it
at once, on every worker. Every route needs a signed-in member unless its
view is marked :func:`public`; an anonymous request gets 401 and the sign-in
page in the same answer (the router never redirects, web_hardening.routing).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, render_template, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden

from incident_db.members import store
from incident_db.members.models import Member

COOKIE = "idb_session"
View = TypeVar("View", bound=Callable[..., Any])


def public(view: View) -> View:
    """Mark a view as open to anyone (sign-in, invitations, recovery)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def requires(role: str) -> Callable[[View], View]:
    """Let through members whose role is ``role`` or above (member < editor < admin); else 403."""
    needed = store.ROLES.index(role)

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            member = g.get("member")
            if member is None or store.ROLES.index(member.role) < needed:
                raise Forbidden(f"This page is for members with the {role} role.")
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def database() -> Session:
    """This request's database session (opened on first use, closed when the request ends)."""
    if "db" not in g:
        g.db = current_app.extensions["incident_db"]["sessions"]()
    return g.db  # type: ignore[no-any-return]


def member() -> Member:
    """The signed-in member of this request (the guard has made sure there is one)."""
    return g.member  # type: ignore[no-any-return]


def start(response: Response, token: str) -> Response:
    """Hand the browser its session cookie: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=current_app.extensions["incident_db"]["config"].https,
        path="/",
    )
    return response


def forget(response: Response) -> Response:
    """Tell the browser to drop its session cookie."""
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=current_app.extensions["incident_db"]["config"].https,
    )
    return response


def _is_public() -> bool:
    if request.endpoint is None or request.endpoint == "static":
        return True  # a 404 or 405 answers for itself; static files are public
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "public", False))


def install(app: Flask) -> None:
    """Find the member of every request; answer 401 with the sign-in page where one is needed.

    Installed before Flask-WTF's CSRF check, so that an anonymous request is
    told to sign in (401) rather than that its form is stale.
    """

    @app.before_request
    def _guard() -> Response | None:
        g.member = None
        token = request.cookies.get(COOKIE)
        if token and len(token) <= 200:
            db = database()
            g.member = store.session_member(db, token)
            db.commit()  # session_member may have refreshed last_seen_at
            if g.member is not None:
                g.session_token = token
        if g.member is None and not _is_public():
            page = render_template("sign_in.html", needed=True)
            response = Response(page, 401)
            return forget(response) if token else response
        return None

    @app.teardown_request
    def _close(_error: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()
