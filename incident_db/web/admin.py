"""Admin pages: the members (invite, change a role, remove) and the audit log.

Every change goes through ``incident_db.members.store``, which writes the
audit line in the same transaction. An admin cannot change or remove their
own membership here (a slip would end their own access mid-page), nor invite
themselves again; another admin can, or ``incident-db members`` on the
server. The store keeps the last admin from being removed or demoted, and
refuses to invite again a member who has signed up (whoever used the link
would sign in as them): here there is no way round that, the command has one.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import BadRequest

from incident_db.members import store
from incident_db.members.models import HANDLE_MAX
from incident_db.web import sessions
from incident_db.web.sessions import requires

admin = Blueprint("admin", __name__)

#: audit lines on one page
AUDIT_PAGE = 50


def _field(name: str) -> str:
    """A form field: at most a handle's length, no control characters."""
    value = request.form.get(name, "").strip()
    if (
        not value
        or len(value) > HANDLE_MAX
        or any(unicodedata.category(c) in ("Cc", "Cf") for c in value)
    ):
        raise BadRequest(f"Please give a valid {name} (1 to {HANDLE_MAX} characters).")
    return value


def _not_self(handle: str) -> None:
    target = store.member_by_handle(sessions.database(), handle)
    if target is not None and target.id == sessions.member().id:
        raise BadRequest("You cannot change your own membership here: ask another admin.")


def _members_page(status: int = 200, **shown: object) -> Response:
    db = sessions.database()
    members = store.members(db)
    counts = store.passkey_counts(db)
    page = render_template(
        "members.html", members=members, passkey_counts=counts, roles=store.ROLES, **shown
    )
    return Response(page, status)


@admin.get("/members")
@requires("admin")
def members() -> Response:
    """Every active member, with forms to invite, change a role and remove."""
    return _members_page()


@admin.post("/members/invite")
@requires("admin")
def invite() -> Response:
    """Invite a member (or invite one again): a one-time link, shown once."""
    handle, role = _field("handle"), _field("role")
    _not_self(handle)
    db = sessions.database()
    token = store.invite(db, handle, role, actor=sessions.member().handle)
    db.commit()
    origin = current_app.extensions["incident_db"]["config"].origin
    expires = dt.datetime.now(dt.UTC) + store.INVITATION_LIFETIME
    return _members_page(
        invited=handle,
        invited_role=role,
        link=f"{origin}/join/{token}",
        expires=expires.strftime("%Y-%m-%d %H:%M UTC"),
    )


@admin.post("/members/role")
@requires("admin")
def set_role() -> Response:
    """Give a member another role."""
    handle, role = _field("handle"), _field("role")
    _not_self(handle)
    db = sessions.database()
    store.set_role(db, handle, role, actor=sessions.member().handle)
    db.commit()
    return _members_page(notice=f"{handle} is now {role}.")


@admin.post("/members/remove")
@requires("admin")
def remove() -> Response:
    """Remove a member: their sessions, passkeys and codes end at once."""
    handle = _field("handle")
    if request.form.get("confirm") != "yes":
        raise BadRequest("Tick the box to confirm the removal.")
    _not_self(handle)
    db = sessions.database()
    store.remove(db, handle, actor=sessions.member().handle)
    db.commit()
    return _members_page(notice=f"{handle} was removed.")


@admin.get("/audit")
@requires("admin")
def audit() -> str:
    """The audit log, newest first, a page at a time (``?before=ID`` for older lines)."""
    raw = request.args.get("before", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequest("?before= takes an audit line number.")
    before = int(raw) if raw else None
    events = store.audit_events(sessions.database(), limit=AUDIT_PAGE + 1, before=before)
    # the next page starts below the last line shown here
    older = events[AUDIT_PAGE - 1].id if len(events) > AUDIT_PAGE else None
    return render_template("audit.html", events=events[:AUDIT_PAGE], older=older)
