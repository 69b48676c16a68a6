"""Nothing typed is lost on a recoverable error, and a report is stored once (issue 13).

Without JavaScript, every refusal the reporter can put right draws the
filled form again: every typed value back in its control, each message
beside its field, a summary at the top, a word that files must be chosen
again, and the same one-time key, so that the report is still stored only
once. The values are read back from the re-drawn HTML as a browser would
(and once from real Chromium's DOM with JavaScript off).

Sending is POST-redirect-GET: the receipt is shown once by ``/received``;
a reload there, or the same form sent again, stores nothing more.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from portal.storage.models import Submission
from portal.web import form_keys
from portal.web.attachment_limits import MIB, plain_attachment_limits, size_text
from portal.web.field_rules import MESSAGES, message
from portal.web.fields import BY_NAME
from tests.conftest import DemoPortal
from tests.integration.chromium import chromium
from tests.integration.portal_server import form_keys as scraped_keys
from tests.integration.portal_server import plain_form, serve_portal

HOSTILE = "</textarea><script>alert('x')</script> \"quoted\" \u202eevil\u202c"
#: a report filled everywhere a reporter can type or choose, hostile text included
TYPED: dict[str, Any] = {
    "category": "piracy-or-armed-robbery",
    "report_type": "initial-alert",
    "incident_local_time": "2026-11-20T02:10",
    "incident_utc_offset": "+01:00",
    "place_name": f"Lagos anchorage {HOSTILE}",
    "location_type": "outer-anchorage",
    "latitude": "6°26.5'N",
    "longitude": "003°22.1'E",
    "vessel_status": "anchored",
    "vessel_type": "product-tanker",
    "incident_type": "boarded",
    "perpetrators_min": "3",
    "perpetrators_max": "6",
    "weapons": ["knives-or-machetes", "guns"],
    "boarding_method": "anchor-chain-or-hawse-pipe",
    "stolen": ["ship-s-stores", "paint"],
    "crew_threatened": "2",
    "actions_taken": ["alarm-raised", "crew-mustered"],
    "suspect_craft_description": 'white skiff, 2 outboards, "no" markings',
    "reported_to": ["imb-prc"],
    "narrative": f"\nFour robbers came up the anchor chain.\n{HOSTILE}\nThey left at 02:40.",
    "identity_company": "O'Brien & Söhne <Shipping>",
    "identity_vessel": "MV \u05e2\u05d1\u05e8\u05d9\u05ea \u202eSTAR",
    "identity_contact": "ask the CSO, 'Ahmed'",
}
#: three bad fields at once, each with the message it must get beside it
BAD = {
    "latitude": ("95°10'N", message("coordinate", BY_NAME["latitude"])),
    "crew_threatened": ("3a", message("count", BY_NAME["crew_threatened"])),
    "perpetrators_max": (
        "2",
        message("order", BY_NAME["perpetrators_max"], other=BY_NAME["perpetrators_min"].label),
    ),
}


class FormValues(HTMLParser):
    """What a browser would show in each control of ``<form id="report">`` (outside templates)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}
        self._in_form = False
        self._template = 0
        self._select: str | None = None
        self._option: tuple[str, bool] | None = None
        self._text: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "report":
            self._in_form = True
        if tag == "template":
            self._template += 1
        if not self._in_form or self._template:
            return
        if tag == "input" and a.get("type") not in ("hidden", "file"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values.setdefault(a["name"], []).append(a["value"])
            elif a.get("value"):
                self.values.setdefault(a["name"], []).append(a["value"])
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select:
            self._option = (a.get("value", ""), "selected" in a)
        elif tag == "textarea":
            self._text = (a["name"], [])
        elif tag == "p" and a.get("class") == "field-error":
            self._text = ("error:" + a["id"].removeprefix("error-"), [])

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._template -= 1
        elif tag == "form":
            self._in_form = False
        elif tag == "option" and self._option and self._select:
            if self._option[1] and self._option[0]:
                self.values.setdefault(self._select, []).append(self._option[0])
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag in ("textarea", "p") and self._text is not None:
            name, pieces = self._text
            content = "".join(pieces)
            if name.startswith("error:"):
                self.errors[name.removeprefix("error:")] = content
            else:
                # the HTML parser drops one newline right after <textarea>
                content = content.removeprefix("\n")
                if content:
                    self.values.setdefault(name, []).append(content)
            self._text = None


def read_form(page: str) -> FormValues:
    parser = FormValues()
    parser.feed(page)
    parser.close()
    return parser


def as_lists(values: dict[str, Any]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in values.items() if v != ""}


def submissions(app: Flask) -> int:
    with app.extensions["portal"]["sessions"]() as session:
        return session.scalar(select(func.count()).select_from(Submission)) or 0


def junk_image() -> tuple[io.BytesIO, str, str]:
    return (
        io.BytesIO(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 20),
        "IMG_1.jpg",
        "image/jpeg",
    )


def photo() -> tuple[io.BytesIO, str, str]:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    out.seek(0)
    return (out, "deck.png", "image/png")


def post(client: FlaskClient, form: dict[str, Any]) -> Any:
    """Send the form as a browser that takes gzip would."""
    return client.post(
        "/submit-plain",
        data=form,
        content_type="multipart/form-data",
        headers={"Accept-Encoding": "gzip"},
    )


def assert_refilled(page: Any, status: int, typed: dict[str, Any], lead: str) -> FormValues:
    """The page is step 2 again with ``status``, every typed value back, and ``lead`` on top."""
    assert page.status_code == status, page.data[:2000]
    assert page.headers.get("X-Portal-No-Compress") is None  # stripped before it leaves
    assert page.headers.get("Content-Encoding") is None  # never compressed: BREACH
    html = page.data.decode()
    form = read_form(html)
    assert form.values == as_lists(typed)
    assert 'id="form-errors"' in html
    assert lead in html
    assert "<script>alert" not in html  # hostile text is escaped, never markup
    assert 'data-step="details"' in html
    return form


def test_several_bad_fields_keep_every_value_and_mark_each(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    keys = plain_form(client, "piracy-or-armed-robbery")
    typed = {**TYPED, **{name: value for name, (value, _) in BAD.items()}}
    page = post(client, {**keys, **typed})
    form = assert_refilled(page, 400, typed, MESSAGES["not_stored"])
    assert {name: text for name, text in form.errors.items() if text} == {
        name: words for name, (_, words) in BAD.items()
    }
    html = page.data.decode()
    for name in BAD:  # the summary links to each field
        assert f'href="#f-{name}"' in html
    assert scraped_keys(html)["once"] == keys["once"]  # still one report however often sent
    assert submissions(app) == 0


def test_an_empty_report_is_refused_with_the_content_rule(client: FlaskClient) -> None:
    page = post(client, {**plain_form(client), "category": "stowaways", "identity_company": "X"})
    form = assert_refilled(page, 400, {"category": "stowaways", "identity_company": "X"},
                           MESSAGES["not_stored"])  # fmt: skip
    assert MESSAGES["content"] in page.data.decode()
    assert 'href="#content-rule"' in page.data.decode()
    assert not any(form.errors.values())  # the rule is about the whole form, not a field


def test_a_damaged_image_keeps_every_value(app: Flask, client: FlaskClient) -> None:
    page = post(client, {**plain_form(client), **TYPED, "attachments": [photo(), junk_image()]})
    form = assert_refilled(page, 400, TYPED, MESSAGES["not_stored"])
    assert "file 2 looks like a damaged image" in form.errors["attachments"]
    assert MESSAGES["files_again"] in form.errors["attachments"]
    assert submissions(app) == 0


def test_too_many_files_keep_every_value(app: Flask, client: FlaskClient) -> None:
    files = [photo() for _ in range(11)]
    page = post(client, {**plain_form(client), **TYPED, "attachments": files})
    form = assert_refilled(page, 400, TYPED, MESSAGES["not_stored"])
    assert "at most 10 files" in form.errors["attachments"]
    assert MESSAGES["files_again"] in form.errors["attachments"]
    assert submissions(app) == 0


def test_an_expired_form_token_keeps_every_value(app: Flask, client: FlaskClient) -> None:
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    with mock.patch("time.time", return_value=time.time() - limit - 60):
        keys = plain_form(client)  # the form token was issued longer ago than the window
    page = post(client, {**keys, **TYPED, "attachments": [photo()]})
    form = assert_refilled(page, 400, TYPED, "expired")
    assert MESSAGES["files_again"] in form.errors["attachments"]
    fresh = scraped_keys(page.data.decode())
    assert fresh["csrf_token"] != keys["csrf_token"]
    assert fresh["once"] == keys["once"]
    assert submissions(app) == 0
    # The re-drawn form can be sent as it stands.
    assert post(client, {**fresh, **TYPED}).status_code == 303
    assert submissions(app) == 1


def _old_key(app: Flask) -> str:
    """A key drawn five days ago: past its expiry day."""
    runtime = app.extensions["portal"]["runtime"].sessions
    return form_keys.issue(
        runtime, app.config["SECRET_KEY"], today=datetime.now(UTC).date() - timedelta(5)
    )


def _forged_key(app: Flask) -> str:
    """A well-formed key whose MAC is not the portal's."""
    good = form_keys.issue(app.extensions["portal"]["runtime"].sessions, app.config["SECRET_KEY"])
    return good[:-32] + "0" * 32


@pytest.mark.parametrize(
    "make",
    [lambda app: "", lambda app: "junk", _old_key, _forged_key],
    ids=["missing", "junk", "expired", "forged"],
)
def test_a_bad_one_time_key_keeps_every_value_and_gets_a_fresh_one(
    app: Flask, client: FlaskClient, make: Callable[[Flask], str]
) -> None:
    keys = plain_form(client)
    once = make(app)
    page = post(client, {**keys, "once": once, **TYPED})
    assert_refilled(page, 400, TYPED, MESSAGES["form_expired"])
    fresh = scraped_keys(page.data.decode())["once"]
    assert fresh not in (once, keys["once"])
    assert submissions(app) == 0
    assert post(client, {**keys, "once": fresh, **TYPED}).status_code == 303
    assert submissions(app) == 1


def test_a_key_is_spent_once_and_can_be_given_back(app: Flask) -> None:
    runtime = app.extensions["portal"]["runtime"].sessions
    secret = app.config["SECRET_KEY"]
    key = form_keys.check(runtime, secret, form_keys.issue(runtime, secret))
    assert form_keys.state(runtime, key) is form_keys.KeyState.FREE
    assert form_keys.spend(runtime, key)
    assert not form_keys.spend(runtime, key)
    form_keys.give_back(runtime, key)
    assert form_keys.spend(runtime, key)
    # A spent key is forgotten once its expiry day has passed (it no longer verifies then).
    later = datetime.now(UTC).date() + timedelta(days=form_keys.KEY_DAYS + 1)
    other = form_keys.check(runtime, secret, form_keys.issue(runtime, secret, today=later), later)
    assert form_keys.spend(runtime, other, today=later)
    assert form_keys.state(runtime, key) is form_keys.KeyState.FREE
    with pytest.raises(form_keys.FormKeyError):
        form_keys.check(runtime, b"\x02" * 32, form_keys.issue(runtime, secret))


def test_a_spent_budget_keeps_every_value_and_the_key(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(PORTAL_PLAIN_PER_HOUR="1")
    client = app.test_client()
    assert post(client, {**plain_form(client), **TYPED}).status_code == 303
    keys = plain_form(client)
    page = post(client, {**keys, **TYPED})
    assert_refilled(page, 429, TYPED, MESSAGES["busy"])
    assert scraped_keys(page.data.decode())["once"] == keys["once"]
    runtime = app.extensions["portal"]["runtime"].sessions
    key = form_keys.check(runtime, app.config["SECRET_KEY"], keys["once"])
    assert (
        form_keys.state(runtime, key) is form_keys.KeyState.FREE
    )  # given back: it can still be sent
    assert submissions(app) == 1


def test_a_failure_to_store_gives_the_key_back(app: Flask, client: FlaskClient) -> None:
    with app.extensions["portal"]["engine"].begin() as connection:
        connection.execute(text("DROP TABLE inbox_entry"))
    keys = plain_form(client)
    page = post(client, {**keys, **TYPED})
    assert_refilled(page, 500, TYPED, MESSAGES["failed"])
    runtime = app.extensions["portal"]["runtime"].sessions
    key = form_keys.check(runtime, app.config["SECRET_KEY"], keys["once"])
    assert form_keys.state(runtime, key) is form_keys.KeyState.FREE


def test_the_receipt_is_shown_once_and_a_reload_stores_nothing(
    app: Flask, client: FlaskClient
) -> None:
    keys = plain_form(client)
    answer = post(client, {**keys, **TYPED})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/received"
    assert b"receipt" not in answer.data.lower()  # the receipt travels only in the session
    first = client.get("/received")
    assert first.status_code == 200
    html = first.data.decode()
    assert re.search(r'id="receipt">[0-9]{4}( [0-9]{4}){5}<', html)
    assert "<title>Report received" in html
    assert 'id="receipt-heading"' in html
    assert "Lagos" not in html
    again = client.get("/received")
    assert again.status_code == 200
    assert 'id="receipt"' not in again.data.decode()
    assert "Report already received" in again.data.decode()
    assert submissions(app) == 1


def test_the_same_form_sent_again_stores_nothing(app: Flask, client: FlaskClient) -> None:
    keys = plain_form(client)
    assert post(client, {**keys, **TYPED}).status_code == 303
    repeat = post(client, {**keys, **TYPED})  # a resend before the receipt was seen
    assert repeat.status_code == 303
    assert repeat.headers["Location"] == "/received"
    assert 'id="receipt">' in client.get("/received").data.decode()  # still shown, once
    elsewhere = app.test_client()  # the same form from another session: nothing either
    assert (
        post(elsewhere, {**plain_form(elsewhere), "once": keys["once"], **TYPED}).status_code == 303
    )
    assert "already received" in elsewhere.get("/received").data.decode()
    assert submissions(app) == 1


def test_a_sent_form_s_key_sealed_by_another_portal_shows_nothing(
    app: Flask, client: FlaskClient
) -> None:
    """The session carries the sent form's key sealed with this portal's secret; nothing else."""
    keys = plain_form(client)
    assert post(client, {**keys, **TYPED}).status_code == 303
    key = _key(app, keys["once"])
    with client.session_transaction() as session:
        session[form_keys.SESSION_FIELD] = form_keys.seal_for_session(b"\x01" * 32, key)
    page = client.get("/received").data.decode()
    assert 'id="receipt"' not in page
    assert "already received" in page
    assert form_keys.state(_runtime(app), key) is form_keys.KeyState.STORED  # not taken
    assert _receipt(post(client, {**keys, **TYPED}), client) is not None  # the form itself opens it


# --- one report however the link behaves (issue 13, second review: F1, F2, F5, F8) -------

RECEIPT = re.compile(r'id="receipt">([0-9]{4}(?: [0-9]{4}){5})<')


def _runtime(app: Flask) -> Any:
    return app.extensions["portal"]["runtime"].sessions


def _key(app: Flask, once: str) -> form_keys.FormKey:
    return form_keys.check(_runtime(app), app.config["SECRET_KEY"], once)


def _receipt(answer: Any, client: FlaskClient) -> str | None:
    """Follow a 303 to the receipt page as a browser would: the receipt on it, if any."""
    assert answer.status_code == 303, answer.data[:2000]
    assert answer.headers["Location"] == "/received"
    match = RECEIPT.search(client.get("/received").data.decode())
    return match.group(1) if match else None


def _runtime_bytes(app: Flask) -> bytes:
    directory = app.extensions["portal"]["runtime"].directory
    return b"".join(path.read_bytes() for path in sorted(Path(directory).iterdir()))


def test_a_resend_after_a_lost_answer_shows_the_receipt_once(
    app: Flask, client: FlaskClient
) -> None:
    keys = plain_form(client)
    cookie = client.get_cookie("csrf").value
    assert post(client, {**keys, **TYPED}).status_code == 303
    client.set_cookie("csrf", cookie)  # the 303 and its cookie were lost on the link
    resend = post(client, {**keys, **TYPED})
    assert "Set-Cookie" in resend.headers  # the cookie comes again
    assert _receipt(resend, client) is not None
    assert RECEIPT.search(client.get("/received").data.decode()) is None  # a reload: once
    client.set_cookie("csrf", cookie)
    page = client.get("/received").data.decode()  # the old cookie, replayed
    assert 'id="receipt"' not in page
    assert "Report already received" in page
    assert _receipt(post(client, {**keys, **TYPED}), client) is None  # once shown, never again
    assert submissions(app) == 1


def test_the_receipt_is_sealed_under_the_form_s_key_and_nothing_else(
    app: Flask, client: FlaskClient
) -> None:
    keys = plain_form(client)
    answer = post(client, {**keys, **TYPED})
    key = _key(app, keys["once"])
    with _runtime(app)() as session:
        row = session.get(form_keys.SpentFormKey, key.digest)
        assert row is not None
        assert row.stored
        assert row.storing_since is None  # a stored report's row holds no time
        assert row.receipt is not None
    # The session cookie carries the form's key, sealed, and not the receipt.
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    content = serializer.loads(client.get_cookie("csrf").value)
    assert set(content) == {"csrf_token", form_keys.SESSION_FIELD}
    secret = app.config["SECRET_KEY"]
    assert form_keys.open_from_session(secret, content[form_keys.SESSION_FIELD]) == keys["once"]
    # Neither the portal's secret nor the key's digest opens the row: only the key itself.
    impostor = form_keys.FormKey(form_keys.issue(_runtime(app), secret), key.digest, key.expires_on)
    assert form_keys.take_receipt(_runtime(app), impostor) is None
    stored = _runtime_bytes(app)
    receipt = _receipt(answer, client)
    assert receipt is not None
    for form in (receipt, receipt.replace(" ", "")):
        assert form.encode() not in stored
    assert keys["once"].encode() not in stored
    with _runtime(app)() as session:
        row = session.get(form_keys.SpentFormKey, key.digest)
        assert row is not None
        assert row.receipt is None  # shown: the sealed copy is gone too


def test_the_sent_form_s_cookie_opens_the_receipt_once_and_is_then_deleted(
    app: Flask, client: FlaskClient
) -> None:
    keys = plain_form(client)
    answer = post(client, {**keys, **TYPED})
    left = client.get_cookie("csrf").value
    assert _receipt(answer, client) is not None
    assert client.get_cookie("csrf") is None  # nothing of the send is left in the browser
    for _ in range(2):  # someone else at the same computer, with a copy of the cookie
        other = app.test_client()
        other.set_cookie("csrf", left)
        page = other.get("/received").data.decode()
        assert 'id="receipt"' not in page
        assert "already received" in page


def test_a_cookie_left_behind_expires_within_minutes(app: Flask, client: FlaskClient) -> None:
    keys = plain_form(client)
    assert post(client, {**keys, **TYPED}).status_code == 303  # /received is never loaded
    later = time.time() + form_keys.COOKIE_SECONDS + 1
    with mock.patch.object(form_keys.time, "time", return_value=later):
        page = client.get("/received").data.decode()
    assert 'id="receipt"' not in page
    assert form_keys.COOKIE_SECONDS <= 15 * 60
    # The reporter who never saw it sends the form again, and sees it.
    assert _receipt(post(client, {**keys, **TYPED}), client) is not None
    assert submissions(app) == 1


def test_the_session_seal_lasts_its_seconds_and_no_longer(app: Flask) -> None:
    secret = app.config["SECRET_KEY"]
    key = _key(app, form_keys.issue(_runtime(app), secret))
    sealed = form_keys.seal_for_session(secret, key, now=1_000_000)
    last = 1_000_000 + form_keys.COOKIE_SECONDS
    assert form_keys.open_from_session(secret, sealed, now=last) == key.text
    assert form_keys.open_from_session(secret, sealed, now=last + 1) is None
    assert form_keys.open_from_session(b"\x01" * 32, sealed, now=last) is None
    assert form_keys.open_from_session(secret, sealed[:-4] + "AAAA", now=last) is None
    assert form_keys.open_from_session(secret, "not base64 !", now=last) is None


class GatedStore:
    """``seal_and_store`` whose first call waits at a gate, then fails or goes on."""

    def __init__(self, *, fail_first: bool) -> None:
        from portal.web import plain_intake

        self.real = plain_intake.seal_and_store
        self.fail_first = fail_first
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.started.set()
            assert self.release.wait(60)
            if self.fail_first:
                raise OSError("No space left on device")
        return self.real(*args, **kwargs)


def _in_thread(answers: dict[str, Any], name: str, send: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.__setitem__(name, send()), daemon=True)
    thread.start()
    return thread


def _waiting_for_storing() -> tuple[threading.Event, Callable[..., form_keys.KeyState]]:
    """An event set once some request has found a key being stored (and so waits)."""
    seen = threading.Event()
    real = form_keys.state

    def state(*args: Any, **kwargs: Any) -> form_keys.KeyState:
        found = real(*args, **kwargs)
        if found is form_keys.KeyState.STORING:
            seen.set()
        return found

    return seen, state


def test_a_resend_while_the_first_send_is_storing_is_stored_if_that_fails(
    app: Flask, client: FlaskClient
) -> None:
    from portal.web import plain_intake

    keys = plain_form(client)
    cookie = client.get_cookie("csrf").value
    resender = app.test_client()
    resender.set_cookie("csrf", cookie)  # the same browser, Send pressed again
    gate = GatedStore(fail_first=True)
    waiting, state = _waiting_for_storing()
    answers: dict[str, Any] = {}
    with (
        mock.patch.object(plain_intake, "seal_and_store", gate),
        mock.patch.object(form_keys, "state", state),
    ):
        first = _in_thread(answers, "first", lambda: post(client, {**keys, **TYPED}))
        assert gate.started.wait(60)
        second = _in_thread(answers, "second", lambda: post(resender, {**keys, **TYPED}))
        assert waiting.wait(60)  # the resend found the key being stored, and waits
        gate.release.set()
        first.join(60)
        second.join(60)
    assert answers["first"].status_code == 500  # (its answer lost on the link)
    assert _receipt(answers["second"], resender) is not None
    assert submissions(app) == 1


def test_a_resend_while_the_first_send_is_storing_gets_the_receipt_it_stores(
    app: Flask, client: FlaskClient
) -> None:
    from portal.web import plain_intake

    keys = plain_form(client)
    cookie = client.get_cookie("csrf").value
    resender = app.test_client()
    resender.set_cookie("csrf", cookie)
    gate = GatedStore(fail_first=False)
    waiting, state = _waiting_for_storing()
    answers: dict[str, Any] = {}
    with (
        mock.patch.object(plain_intake, "seal_and_store", gate),
        mock.patch.object(form_keys, "state", state),
    ):
        first = _in_thread(answers, "first", lambda: post(client, {**keys, **TYPED}))
        assert gate.started.wait(60)
        second = _in_thread(answers, "second", lambda: post(resender, {**keys, **TYPED}))
        assert waiting.wait(60)
        gate.release.set()
        first.join(60)
        second.join(60)
    assert answers["first"].status_code == 303  # (lost on the link)
    assert _receipt(answers["second"], resender) is not None
    assert gate.calls == 1
    assert submissions(app) == 1


def test_a_resend_while_the_first_send_is_still_storing_keeps_every_value(
    app: Flask, client: FlaskClient
) -> None:
    from portal.web import plain_intake

    keys = plain_form(client)
    cookie = client.get_cookie("csrf").value
    resender = app.test_client()
    resender.set_cookie("csrf", cookie)
    gate = GatedStore(fail_first=False)
    answers: dict[str, Any] = {}
    with (
        mock.patch.object(plain_intake, "seal_and_store", gate),
        mock.patch.object(plain_intake, "WAIT_SECONDS", 0.5),
    ):
        first = _in_thread(answers, "first", lambda: post(client, {**keys, **TYPED}))
        assert gate.started.wait(60)
        page = post(resender, {**keys, **TYPED})
        gate.release.set()
        first.join(60)
    assert_refilled(page, 409, TYPED, MESSAGES["still_storing"])
    assert scraped_keys(page.data.decode())["once"] == keys["once"]
    assert answers["first"].status_code == 303  # (lost on the link)
    # Sent again a moment later, as the page says: the receipt, and one report.
    assert _receipt(post(resender, {**keys, **TYPED}), resender) is not None
    assert submissions(app) == 1


def test_a_key_left_storing_by_a_dead_worker_is_taken_over_in_time(app: Flask) -> None:
    runtime, secret = _runtime(app), app.config["SECRET_KEY"]
    key = _key(app, form_keys.issue(runtime, secret))
    assert form_keys.spend(runtime, key, now=1_000_000)
    soon = 1_000_000 + form_keys.STALE_SECONDS
    assert form_keys.state(runtime, key, now=soon) is form_keys.KeyState.STORING
    assert not form_keys.spend(runtime, key, now=soon)
    late = soon + 1
    assert form_keys.state(runtime, key, now=late) is form_keys.KeyState.FREE
    assert form_keys.spend(runtime, key, now=late)  # taken over: the report is not lost
    assert not form_keys.spend(runtime, key, now=late + 1)  # and by one request only


def test_a_request_whose_key_was_taken_over_cannot_mark_it_nor_give_it_back(
    app: Flask,
) -> None:
    """The slow first store and the resend that took its key over never both keep a report."""
    runtime, secret = _runtime(app), app.config["SECRET_KEY"]
    key = _key(app, form_keys.issue(runtime, secret))
    first = form_keys.spend(runtime, key, now=1_000_000)
    late = 1_000_000 + form_keys.STALE_SECONDS + 1
    second = form_keys.spend(runtime, key, now=late)
    assert first is not None
    assert second is not None
    assert first != second
    form_keys.give_back(runtime, key, first)  # the slow one fails: the taker's claim stands
    assert form_keys.state(runtime, key, now=late) is form_keys.KeyState.STORING
    form_keys.mark_stored(runtime, key, {"receipt": "r"}, second)
    with pytest.raises(form_keys.LostKeyError):  # the slow one stored too: it must undo
        form_keys.mark_stored(runtime, key, {"receipt": "s"}, first)
    assert form_keys.take_receipt(runtime, key) == {"receipt": "r"}


def test_a_store_overtaken_by_a_resend_keeps_one_report(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store slower than the stale limit: the resend takes over, and only one copy stays."""
    from portal.web import plain_intake

    app = make_app()
    first_client, second_client = app.test_client(), app.test_client()
    keys = plain_form(first_client)
    cookie = first_client.get_cookie("csrf")
    assert cookie is not None
    second_client.set_cookie("csrf", cookie.value)  # the same browser, sending again
    real_store = plain_intake.seal_and_store
    overtaken = threading.Event()

    def slow_then_overtaken(*args: Any, **kwargs: Any) -> Any:
        stored = real_store(*args, **kwargs)
        if not overtaken.is_set():  # the first request: the resend comes while it "stalls"
            overtaken.set()
            monkeypatch.setattr(form_keys, "STALE_SECONDS", -(10**9))  # its claim is stale now
            resent = second_client.post(
                "/submit-plain", data={**keys, **TYPED}, content_type="multipart/form-data"
            )
            assert resent.status_code == 303
        return stored

    monkeypatch.setattr(plain_intake, "seal_and_store", slow_then_overtaken)
    answer = first_client.post(
        "/submit-plain", data={**keys, **TYPED}, content_type="multipart/form-data"
    )
    assert answer.status_code == 303
    assert submissions(app) == 1


def test_the_budget_is_drawn_before_the_key_is_spent_and_not_for_a_resend(
    make_app: Callable[..., Flask],
) -> None:
    from portal.web import plain_intake

    app = make_app(PORTAL_PLAIN_PER_HOUR="1")
    client = app.test_client()
    keys = plain_form(client)
    cookie = client.get_cookie("csrf").value
    found: list[form_keys.KeyState] = []
    real = plain_intake.require_budget

    def watching(*args: Any, **kwargs: Any) -> None:
        found.append(form_keys.state(_runtime(app), _key(app, keys["once"])))
        real(*args, **kwargs)

    with mock.patch.object(plain_intake, "require_budget", watching):
        assert post(client, {**keys, **TYPED}).status_code == 303
    assert found == [form_keys.KeyState.FREE]
    # The hour's budget is spent, yet the resend of the stored form gets its receipt.
    client.set_cookie("csrf", cookie)
    assert _receipt(post(client, {**keys, **TYPED}), client) is not None
    assert submissions(app) == 1


# --- attachments over the limits without JavaScript (F3) --------------------------------


def _encoded_post(client: FlaskClient, form: dict[str, Any], **kwargs: Any) -> Any:
    """Post ``form`` encoded in memory (the test client would spool a big body to a file)."""
    body, _, boundary = stream_encode_multipart(form, use_tempfile=False)
    return client.post(
        "/submit-plain",
        data=body.read(),
        content_type=f"multipart/form-data; boundary={boundary}",
        **kwargs,
    )


def _files(*kib: int) -> list[FileStorage]:
    return [
        FileStorage(io.BytesIO(os.urandom(n * 1024)), f"log{i}.pdf", content_type="application/pdf")
        for i, n in enumerate(kib, start=1)
    ]


@pytest.mark.parametrize(
    ("kib", "expected"),
    [
        ((800, 800, 800), ["total_too_large"]),
        # more than the portal's request limit for encrypted uploads (3 MiB here)
        ((900, 900, 900, 900), ["total_too_large"]),
        ((1100, 500, 800), ["file_too_large", "total_too_large"]),
    ],
    ids=["over the stated total", "over the limit for encrypted uploads", "a file and the total"],
)
def test_files_over_the_stated_total_keep_every_value(
    make_app: Callable[..., Flask], kib: tuple[int, ...], expected: list[str]
) -> None:
    app = make_app(PORTAL_MAX_UPLOAD_MIB="2", PORTAL_MAX_PLAIN_UPLOAD_MIB="1")
    client = app.test_client()
    keys = plain_form(client)
    page = _encoded_post(client, {**keys, **TYPED, "attachments": _files(*kib)})
    form = assert_refilled(page, 400, TYPED, MESSAGES["not_stored"])
    words = {
        "total_too_large": message("total_too_large", limit="2 MiB"),
        "file_too_large": message("file_too_large", index=1, limit="1 MiB"),
    }
    for key, words_for_key in words.items():
        assert (words_for_key in form.errors["attachments"]) == (key in expected), key
    assert MESSAGES["files_again"] in form.errors["attachments"]
    assert scraped_keys(page.data.decode())["once"] == keys["once"]
    assert form_keys.state(_runtime(app), _key(app, keys["once"])) is form_keys.KeyState.FREE
    assert submissions(app) == 0


def test_a_form_over_its_hard_limit_is_refused_saying_what_to_do(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(PORTAL_MAX_UPLOAD_MIB="2", PORTAL_MAX_PLAIN_UPLOAD_MIB="1")
    client = app.test_client()
    _, total, whole = plain_attachment_limits(2 * MIB, MIB)
    assert whole >= total + 256 * MIB  # room for a video chosen by mistake
    page = client.get("/?category=other").data.decode()
    assert f"a form of more than {size_text(whole)} in all cannot be read at all" in page
    form = {**plain_form(client), "category": "other", "narrative": "x"}
    answer = _encoded_post(client, form, environ_overrides={"CONTENT_LENGTH": str(whole + 1)})
    assert answer.status_code == 413
    text = answer.data.decode()
    assert f"more than {size_text(whole)}" in text
    assert "go back" in text
    assert submissions(app) == 0


# --- the category changed without JavaScript (F6.1) -------------------------------------


def test_the_questions_follow_a_new_category_without_javascript_storing_nothing(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(PORTAL_PLAIN_PER_HOUR="1")
    client = app.test_client()
    step_two = client.get("/?category=piracy-or-armed-robbery").data.decode()
    button = (
        '<noscript><p class="update-step"><button type="submit" id="update-plain" '
        'name="action" value="update" formnovalidate>'
    )
    assert step_two.count(button) == 1
    assert button not in client.get("/").data.decode()  # step 1 has its own Next button
    keys = scraped_keys(step_two)
    typed = {**TYPED, "category": "stowaways", "latitude": "95°10'N"}  # judged only on Send
    page = post(client, {**keys, **typed, "action": "update", "attachments": [photo()]})
    assert page.status_code == 200
    assert page.headers.get("Content-Encoding") is None
    html = page.data.decode()
    assert read_form(html).values == as_lists(typed)
    assert 'id="form-errors"' not in html
    assert MESSAGES["updated"] in html
    assert MESSAGES["files_again"] in html
    sections = dict(re.findall(r'<fieldset class="section" id="section-(\w+)"([^>]*)>', html))
    assert "hidden" not in sections["stowaway"]  # the new category's questions
    assert "hidden" not in sections["attack"]  # the old one's, which hold values
    assert "hidden" in sections["cyber"]
    assert scraped_keys(html)["once"] == keys["once"]
    assert form_keys.state(_runtime(app), _key(app, keys["once"])) is form_keys.KeyState.FREE
    assert submissions(app) == 0
    # No budget was drawn: the hour's only send still goes through.
    valid = {**typed, "latitude": TYPED["latitude"]}
    assert _receipt(post(client, {**scraped_keys(html), **valid}), client) is not None


def test_the_questions_follow_a_new_category_after_the_form_token_expired(
    app: Flask, client: FlaskClient
) -> None:
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    with mock.patch("time.time", return_value=time.time() - limit - 60):
        keys = plain_form(client)
    typed = {**TYPED, "category": "stowaways"}
    page = post(client, {**keys, **typed, "action": "update"})
    assert page.status_code == 200
    html = page.data.decode()
    assert read_form(html).values == as_lists(typed)
    assert MESSAGES["updated"] in html
    assert 'id="form-errors"' not in html
    assert scraped_keys(html)["csrf_token"] != keys["csrf_token"]
    assert _receipt(post(client, {**scraped_keys(html), **typed}), client) is not None


# --- in a real browser with JavaScript off ---------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the browser is the point
def test_chromium_without_javascript_keeps_every_value(demo: DemoPortal, tmp_path: Path) -> None:
    typed = {
        "place_name": f"Lagos {HOSTILE}",
        "latitude": "95°10'N",
        "perpetrators_min": "9",
        "perpetrators_max": "2",
        "narrative": f"Robbers {HOSTILE}\nsecond line",
        "identity_vessel": "MV \u202eSTAR",
    }
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "p", javascript=False) as ctx:
        page = ctx.new_page()
        page.goto(server["url"] + "/")
        page.select_option("#f-category", "piracy-or-armed-robbery")
        page.click("#next-step button")
        page.wait_for_selector('form[data-step="details"]')
        # On a phone: one choice a line, each line a 44 px touch target (second review, F6.2).
        page.set_viewport_size({"width": 375, "height": 740})
        boxes = page.eval_on_selector_all(
            "fieldset.choices label",
            """labels => labels.filter((l) => l.offsetParent).map((l) => {
                 const box = l.getBoundingClientRect();
                 return [l.closest('fieldset').id, Math.round(box.top), box.height];
               })""",
        )
        assert len(boxes) > 10
        assert min(height for _, _, height in boxes) >= 44
        assert len({(group, top) for group, top, _ in boxes}) == len(boxes)
        # Changing the category redraws its questions, keeping what was typed (F6.1).
        page.fill("#f-narrative", "typed before the change")
        page.select_option("#f-category", "stowaways")
        page.click("#update-plain")
        page.wait_for_selector("#form-notice")
        assert page.is_visible("#section-stowaway")
        assert not page.is_visible("#section-attack")
        assert page.input_value("#f-narrative") == "typed before the change"
        page.select_option("#f-category", "piracy-or-armed-robbery")
        page.click("#update-plain")
        page.wait_for_selector("#section-attack:not([hidden])")
        assert not page.is_visible("#section-stowaway")
        for name, value in typed.items():
            page.fill(f"#f-{name}", value)
        page.select_option("#f-vessel_type", "bulk-carrier")
        page.check('input[name="weapons"][value="guns"]')
        page.click("#send-plain")
        page.wait_for_selector("#form-errors")
        for name, value in typed.items():
            assert page.input_value(f"#f-{name}") == value.replace("\r\n", "\n"), name
        assert page.input_value("#f-vessel_type") == "bulk-carrier"
        assert page.is_checked('input[name="weapons"][value="guns"]')
        assert not page.is_checked('input[name="weapons"][value="none"]')
        assert "cannot be less than" in page.text_content("#error-perpetrators_max")
        assert page.text_content("#error-latitude")
        # Put it right and send: the receipt once, then "already received" on reload.
        page.fill("#f-latitude", "6°26.5'N 003°22.1'E")
        page.fill("#f-perpetrators_max", "12")
        page.click("#send-plain")
        page.wait_for_selector("#receipt")
        assert page.title().startswith("Report received")
        page.reload()
        page.wait_for_selector("#already")
        engine = create_engine(demo.database_url)
        try:
            with Session(engine) as session:
                assert session.scalar(select(func.count()).select_from(Submission)) == 1
        finally:
            engine.dispose()
