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


def _signed_in(member: Member, method: str, next_page: str, **shown: object) -> Response:
    """Start a session for ``member``, log the sign-in, commit; JSON naming the next page."""
    db = sessions.database()
    token = store.start_session(db, member)
    store.audit(db, member.handle, "sign-in", member.handle, {"method": method})
    db.commit()
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
    count = ceremony.verify_authentication(_config(), credential, passkey, member)
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
    store.invitation_member(db, token)  # expired or used: refused before anything else
    new = ceremony.verify_registration(_config(), _join_purpose(token), ceremony.answer())
    if store.passkey_by_id(db, new.credential_id) is not None:
        raise ceremony.CeremonyError("This passkey is already registered.")
    member = store.consume_invitation(db, token)
    store.add_passkey(db, member, new.credential_id, new.public_key, new.sign_count)
    store.audit(db, member.handle, "passkey.add", member.handle, {"via": "invitation"})
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
    token = store.start_session(db, member)
    store.audit(db, member.handle, "sign-in", member.handle, {"method": "recovery"})
    db.commit()
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
    new = ceremony.verify_registration(_config(), f"add:{member.user_handle}", ceremony.answer())
    if store.passkey_by_id(db, new.credential_id) is not None:
        raise ceremony.CeremonyError("This passkey is already registered.")
    store.add_passkey(db, member, new.credential_id, new.public_key, new.sign_count)
    store.audit(db, member.handle, "passkey.add", member.handle, {"via": "signed-in"})
    db.commit()
    return jsonify(next="/passkeys")


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
    g.member = None
    page = render_template("sign_in.html", notice=f"You are signed out on every device ({ended}).")
    return sessions.forget(Response(page, 200))
