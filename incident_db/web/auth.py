"""Signing in and out: passkeys, invitations, recovery codes.

Public: the sign-in page and its two passkey endpoints, an invitation's
page and its two endpoints, and recovery-code sign-in. Everything else here
needs a signed-in member. Every POST carries the CSRF token (a form field,
or the ``X-CSRFToken`` header that static/js/passkey.js sends).
"""

from __future__ import annotations

import hashlib
import unicodedata

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from flask import session as browser_state
from werkzeug.exceptions import BadRequest

from incident_db.members import store
from incident_db.members.models import HANDLE_MAX, Member
from incident_db.web import ceremony, sessions
from incident_db.web.config import WebConfig
from incident_db.web.sessions import public

auth = Blueprint("auth", __name__)


def _config() -> WebConfig:
    return current_app.extensions["incident_db"]["config"]  # type: ignore[no-any-return]


def _json(text: str) -> Response:
    return Response(text, 200, mimetype="application/json")


def _join_purpose(token: str) -> str:
    # the challenge is bound to this invitation, never to another one
    return "join:" + hashlib.sha256(token.encode()).hexdigest()


def _fresh_browser_state() -> None:
    """Start Flask's cookie (``idb_pre``: CSRF token, pending challenge) afresh."""
    browser_state.clear()
    g.pop("csrf_token", None)  # Flask-WTF's copy of the old token for this request


def _start(member: Member, method: str) -> str:
    """Start a session for ``member``, log the sign-in, commit; return the cookie value.

    Flask's own cookie (``idb_pre``: the CSRF token) starts afresh, so that
    nothing a browser held before signing in is good after it; sessions over
    by time are swept while we are writing anyway.
    """
    db = sessions.database()
    store.end_stale_sessions(db)
    token = store.start_session(db, member)
    store.audit(db, member.handle, "sign-in", member.handle, {"method": method})
    db.commit()
    _fresh_browser_state()
    return token


def _signed_in(member: Member, method: str, next_page: str, **shown: object) -> Response:
    """Sign ``member`` in (:func:`_start`); JSON naming the next page."""
    token = _start(member, method)
    return sessions.start(jsonify(next=next_page, **shown), token)


@auth.get("/sign-in")
@public
def sign_in() -> str:
    """The sign-in page: a passkey button, and a way in with a recovery code."""
    return render_template("sign_in.html")


@auth.post("/sign-in/options")
@public
def sign_in_options() -> Response:
    """A fresh challenge for any passkey of this site."""
    return _json(ceremony.authentication_options(_config()))


@auth.post("/sign-in/verify")
@public
def sign_in_verify() -> Response:
    """Check the passkey's answer; on success a session cookie and the home page's address."""
    db = sessions.database()
    credential = ceremony.answer()
    passkey = store.passkey_by_id(db, ceremony.raw_id(credential))
    member = db.get(Member, passkey.member_id) if passkey is not None else None
    if passkey is None or member is None or not member.active:
        ceremony.forget()  # one try per challenge, whatever the answer
        raise ceremony.CeremonyError(
            "This passkey is not known here. Sign in with a recovery code, or ask an admin."
        )
    if not passkey.usable:
        ceremony.forget()
        raise ceremony.CeremonyError(
            "This passkey was disabled because its counter went backwards. "
            "Sign in with a recovery code and add a new passkey."
        )
    try:
        count = ceremony.verify_authentication(_config(), credential, passkey, member)
    except ceremony.CounterWentBackError as copied:
        # the refusal is the request's answer; the disabling must outlive it
        store.suspect_passkey(db, passkey, copied.reported)
        db.commit()
        raise
    store.record_passkey_use(db, passkey, count)
    return _signed_in(member, "passkey", "/")


@auth.get("/join/<token>")
@public
def join(token: str) -> tuple[str, int] | str:
    """An invitation: make a first passkey. Nothing is used up by looking."""
    try:
        member = store.invitation_member(sessions.database(), token)
    except store.MemberError as error:
        return render_template("join.html", problem=error.diagnostics()), 410
    return render_template("join.html", member=member, token=token)


@auth.post("/join/<token>/options")
@public
def join_options(token: str) -> Response:
    """Options for the invited member's first passkey."""
    db = sessions.database()
    member = store.invitation_member(db, token)
    options = ceremony.registration_options(
        _config(), _join_purpose(token), member, store.passkeys_of(db, member)
    )
    return _json(options)


@auth.post("/join/<token>/verify")
@public
def join_verify(token: str) -> Response:
    """Keep the new passkey, use up the invitation, sign in, hand out recovery codes once.

    The invitation is consumed only once the passkey has verified: a failed
    attempt leaves the link usable.
    """
    db = sessions.database()
    invited = store.invitation_member(db, token)  # expired or used: refused before anything else
    inviter = store.invitation_inviter(db, token)
    new = ceremony.verify_registration(_config(), _join_purpose(token), invited, ceremony.answer())
    if store.passkey_by_id(db, new.credential_id) is not None:
        raise ceremony.CeremonyError("This passkey is already registered.")
    member = store.consume_invitation(db, token)
    store.add_passkey(db, member, new.credential_id, new.public_key, new.sign_count)
    detail = {"via": "invitation", "invited_by": inviter}
    store.audit(db, member.handle, "passkey.add", member.handle, detail)
    codes = store.new_recovery_codes(db, member)
    return _signed_in(member, "passkey", "/", recovery_codes=codes)


@auth.get("/recover")
@public
def recover_page() -> str:
    """Sign in with the handle and one unused recovery code."""
    return render_template("recover.html")


def _form_text(name: str, longest: int) -> str:
    value = request.form.get(name, "")
    if len(value) > longest or any(unicodedata.category(c) == "Cc" for c in value):
        raise BadRequest(f"The {name} is not valid.")
    return value.strip()


@auth.post("/recover")
@public
def recover() -> Response:
    """Use up a recovery code: signed in, and asked to add a new passkey at once."""
    handle = _form_text("handle", HANDLE_MAX * 2)
    code = _form_text("code", 100)
    db = sessions.database()
    member = store.use_recovery_code(db, handle, code) if handle and code else None
    if member is None:
        db.rollback()
        page = render_template(
            "recover.html",
            handle=handle,
            problem="That handle and code do not match an unused recovery code.",
        )
        return Response(page, 400)
    token = _start(member, "recovery")
    g.member = member
    page = render_template("passkeys.html", passkeys=store.passkeys_of(db, member), recovered=True)
    return sessions.start(Response(page, 200), token)


@auth.get("/passkeys")
def passkeys() -> str:
    """The member's passkeys, and a button to add one."""
    db = sessions.database()
    return render_template("passkeys.html", passkeys=store.passkeys_of(db, sessions.member()))


@auth.post("/passkeys/options")
def passkey_options() -> Response:
    """Options for another passkey of the signed-in member."""
    db = sessions.database()
    member = sessions.member()
    purpose = f"add:{member.user_handle}"
    return _json(
        ceremony.registration_options(_config(), purpose, member, store.passkeys_of(db, member))
    )


@auth.post("/passkeys/verify")
def passkey_verify() -> Response:
    """Keep another passkey of the signed-in member."""
    db = sessions.database()
    member = sessions.member()
    new = ceremony.verify_registration(
        _config(), f"add:{member.user_handle}", member, ceremony.answer()
    )
    if store.passkey_by_id(db, new.credential_id) is not None:
        raise ceremony.CeremonyError("This passkey is already registered.")
    store.add_passkey(db, member, new.credential_id, new.public_key, new.sign_count)
    store.audit(db, member.handle, "passkey.add", member.handle, {"via": "signed-in"})
    db.commit()
    return jsonify(next="/passkeys")


@auth.post("/passkeys/remove")
def passkey_remove() -> Response:
    """Remove one of the member's passkeys (never the last working one)."""
    raw = request.form.get("passkey", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequest("Choose a passkey to remove.")
    db = sessions.database()
    member = sessions.member()
    store.remove_passkey(db, member, int(raw), actor=member.handle)
    db.commit()
    page = render_template(
        "passkeys.html", passkeys=store.passkeys_of(db, member), notice="The passkey was removed."
    )
    return Response(page, 200)


@auth.post("/recovery-codes")
def recovery_codes() -> str:
    """A new set of recovery codes, shown once; the old ones stop working."""
    db = sessions.database()
    member = sessions.member()
    codes = store.new_recovery_codes(db, member)
    store.audit(db, member.handle, "recovery-codes.new", member.handle)
    db.commit()
    return render_template("recovery_codes.html", codes=codes)


@auth.post("/sign-out")
def sign_out() -> Response:
    """End this browser's session."""
    db = sessions.database()
    member = sessions.member()
    store.end_session(db, g.session_token)
    store.audit(db, member.handle, "sign-out", member.handle)
    db.commit()
    _fresh_browser_state()
    g.member = None
    page = render_template("sign_in.html", notice="You are signed out.")
    return sessions.forget(Response(page, 200))


@auth.post("/sign-out-everywhere")
def sign_out_everywhere() -> Response:
    """End every session of this member, on every device."""
    db = sessions.database()
    member = sessions.member()
    ended = store.end_all_sessions(db, member)
    store.audit(db, member.handle, "sign-out-everywhere", member.handle, {"sessions": ended})
    db.commit()
    _fresh_browser_state()
    g.member = None
    page = render_template("sign_in.html", notice=f"You are signed out on every device ({ended}).")
    return sessions.forget(Response(page, 200))
