"""Issue 12, finding 7: invalid requests sent to empty the global budgets.

Sending without JavaScript and looking a receipt up draw on global budgets
that everyone shares. An attacker who posts junk (no CSRF token, a forged
one, an empty form, a malformed receipt, a missing field, an oversized
one) must not spend them: a request is checked for everything cheap before
it draws on a budget, so after any amount of junk every honest request the
budgets allow still gets through. Reports, follow-up messages and lookups
have budgets of their own, so emptying one leaves the others alone.

"Everything cheap" includes the attachments: a no-JavaScript form whose
photo is damaged, or a browser message whose envelope is truncated, is
refused before any budget is drawn. That makes the photo scrubber part of
the cheap check, so a photo built to make it slow must not be slow.
"""

from __future__ import annotations

import io
import itertools
import struct
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.envelope import seal_bytes
from crypto.receipt import Receipt, derive
from portal.web.scrub import ScrubError, scrub
from tests.conftest import DemoPortal
from tests.integration.portal_server import plain_form, send_plain
from tests.integration.test_intake import csrf_token, proof

JUNK_PER_ROUTE = 1_000
#: budgets of 8 an hour hold two requests at once (a quarter of the hour's),
#: and refill one every 450 s: nothing refills while this test runs
REPORTS, FOLLOWUPS, LOOKUPS = 2, 2, 4
SETTINGS = {"PORTAL_PLAIN_PER_HOUR": "8", "PORTAL_FOLLOWUPS_PER_HOUR": "8",
            "PORTAL_LOOKUPS_PER_HOUR": "16"}  # fmt: skip
RECEIPT = Receipt("7310" + "55523098716240986312")


@pytest.fixture
def database_url(tmp_path: object) -> str:
    """Budgets are the portal's, whatever the database: SQLite keeps 5,000 posts quick."""
    return f"sqlite:///{tmp_path}/portal.sqlite3"


def _sealed(demo: DemoPortal, data: bytes) -> bytes:
    return seal_bytes(data, [demo.identity(0).public, demo.identity(1).public])


def _junk(token: str, receipt: dict[str, str], once: str) -> dict[str, list[dict[str, Any]]]:
    """Per budgeted route, one invalid form of each kind (file parts added per post).

    The no-JavaScript report forms carry a valid one-time key, so that each is
    refused for the reason it names, not for the want of a key.
    """
    forged = {"csrf_token": "IjA1ZjQ.forged.token"}
    csrf = {"csrf_token": token}
    keyed = {**csrf, "once": once}
    malformed = {"receipt_locator": "73a0", "receipt_token": "zz" * 32}
    huge = "x" * 20_001
    return {
        "/submit-plain": [
            {"once": once, "category": "other", "narrative": "no token"},
            {**forged, "once": once, "category": "other", "narrative": "forged token"},
            keyed,
            {**keyed, "category": "no-such-category", "narrative": "malformed"},
            {**keyed, "narrative": "no category"},
            {**keyed, "category": "other", "narrative": huge},
        ],
        "/followup": [
            {"receipt": str(RECEIPT)},
            {**forged, "receipt": str(RECEIPT)},
            csrf,
            {**csrf, "receipt": "7310 5552 3098 7162 4098 631"},
            {**csrf, "receipt": ""},
            {**csrf, "receipt": "7" * 5_000},
        ],
        "/followup/lookup": [
            receipt,
            {**forged, **receipt},
            csrf,
            {**csrf, **malformed},
            {**csrf, "receipt_locator": receipt["receipt_locator"]},
            {**csrf, **receipt, "receipt_token": "ab" * 5_000},
        ],
        "/followup/send": [
            {**receipt, "message": "sealed"},
            {**forged, **receipt, "message": "sealed"},
            csrf,
            {**csrf, **malformed, "message": "sealed"},
            {**csrf, **receipt},  # no message and no proof of work
            {**csrf, **receipt, "message": "sealed", "proof": "p" * 5_000},
        ],
        "/followup/send-plain": [
            {**receipt, "message": "no token"},
            {**forged, **receipt, "message": "forged token"},
            csrf,
            {**csrf, **malformed, "message": "malformed receipt"},
            {**csrf, **receipt},  # no message
            {**csrf, **receipt, "message": huge},
        ],
    }


def _with_files(route: str, form: dict[str, Any], sealed: bytes) -> dict[str, Any]:
    """A fresh multipart body: the message of /followup/send is an encrypted file part."""
    data = dict(form)
    if route == "/followup/send" and data.get("message") == "sealed":
        data["message"] = (io.BytesIO(sealed), "message")
    return data


def _honest(client: FlaskClient, demo: DemoPortal, route: str, fields: dict[str, str]) -> int:
    if route == "/submit-plain":
        fields = {"category": "other", "narrative": "a skiff came alongside at night"}
        return int(send_plain(client, fields).status_code)
    data: dict[str, Any] = {"csrf_token": csrf_token(client), **fields}
    if route == "/followup/send-plain":
        data["message"] = "the skiff had a blue hull"
    if route == "/followup/send":
        data["proof"] = proof(client, "followup")
        data["message"] = (io.BytesIO(_sealed(demo, b'{"schema": "cso-followup/v1"}')), "m")
    return client.post(route, data=data, content_type="multipart/form-data").status_code


def test_invalid_posts_never_spend_a_budget(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    app = make_app(**SETTINGS)
    client = app.test_client()
    receipt = _filed(client, demo)

    sealed = _sealed(demo, b'{"schema": "cso-followup/v1"}')
    for route, forms in _junk(csrf_token(client), receipt, plain_form(client)["once"]).items():
        for form in itertools.islice(itertools.cycle(forms), JUNK_PER_ROUTE):
            data = _with_files(route, form, sealed)
            response = client.post(route, data=data, content_type="multipart/form-data")
            assert 400 <= response.status_code < 500, (route, form)
            assert response.status_code != 429, (route, sorted(form))

    # Every budget is still full: as many honest requests as each holds get through.
    plain = [_honest(client, demo, "/submit-plain", {}) for _ in range(REPORTS + 1)]
    assert plain == [200] * REPORTS + [429]
    messages = [_honest(client, demo, "/followup/send-plain", receipt) for _ in range(FOLLOWUPS)]
    assert messages == [200] * FOLLOWUPS  # the reports' budget is not theirs
    lookups = [_honest(client, demo, "/followup/lookup", receipt)
               for _ in range(LOOKUPS - FOLLOWUPS + 1)]  # fmt: skip
    assert lookups == [200] * (LOOKUPS - FOLLOWUPS) + [429]


#: photos that claim to be JPEG or PNG and do not parse: the scrubber refuses them
DAMAGED_IMAGES = [
    (b"\xff\xd8\xff\xe0 not really a jpeg", "photo.jpg", "image/jpeg"),
    (b"\xff\xd8\xff\xdb\x00\x43" + bytes(65) + b"\xff\xda\x00\x02scan never ends", "a.jpg", ""),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR cut short", "photo.png", "image/png"),
]
JUNK_WITH_PHOTOS = 30


def _damaged(index: int) -> tuple[io.BytesIO, str, str]:
    data, name, media_type = DAMAGED_IMAGES[index % len(DAMAGED_IMAGES)]
    return io.BytesIO(data), name, media_type


def _filed(client: FlaskClient, demo: DemoPortal) -> dict[str, str]:
    """File a report from a browser; the receipt fields that find it."""
    keys = derive(RECEIPT)
    receipt = {"receipt_locator": RECEIPT.locator, "receipt_token": keys.lookup_token.hex()}
    report = (io.BytesIO(_sealed(demo, b'{"schema": "cso-report/v1"}')), "r")
    filed = {"csrf_token": csrf_token(client), "proof": proof(client, "submit"), **receipt,
             "report": report}  # fmt: skip
    assert client.post("/submit", data=filed, content_type="multipart/form-data").status_code == 200
    return receipt


def _lookups_left(client: FlaskClient, demo: DemoPortal, receipt: dict[str, str]) -> list[int]:
    """Spend the lookup budget with honest lookups: the answers, up to the first 429."""
    answers = [_honest(client, demo, "/followup/lookup", receipt) for _ in range(LOOKUPS + 1)]
    return answers[: answers.index(429) + 1] if 429 in answers else answers


def test_damaged_images_never_spend_the_no_javascript_budget(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    client = make_app(**SETTINGS).test_client()
    keys = plain_form(client)
    for i in range(JUNK_WITH_PHOTOS):
        form = {**keys, "category": "other", "narrative": "a valid report",
                "attachments": _damaged(i)}  # fmt: skip
        response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
        assert response.status_code == 400, response.status_code
    plain = [_honest(client, demo, "/submit-plain", {}) for _ in range(REPORTS + 1)]
    assert plain == [200] * REPORTS + [429]


def test_damaged_images_never_spend_the_no_javascript_follow_up_budgets(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    client = make_app(**SETTINGS).test_client()
    receipt = _filed(client, demo)
    token = csrf_token(client)
    for i in range(JUNK_WITH_PHOTOS):
        form = {"csrf_token": token, **receipt, "message": "a valid message",
                "attachments": _damaged(i)}  # fmt: skip
        response = client.post(
            "/followup/send-plain", data=form, content_type="multipart/form-data"
        )
        assert response.status_code == 400, response.status_code
    # Neither the follow-up budget nor the lookup budget was touched.
    messages = [_honest(client, demo, "/followup/send-plain", receipt) for _ in range(FOLLOWUPS)]
    assert messages == [200] * FOLLOWUPS
    assert _lookups_left(client, demo, receipt) == [200] * (LOOKUPS - FOLLOWUPS) + [429]


def test_truncated_envelopes_never_spend_the_lookup_budget(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    client = make_app(**SETTINGS).test_client()
    receipt = _filed(client, demo)
    token = csrf_token(client)
    message = _sealed(demo, b'{"schema": "cso-followup/v1"}')
    truncated = _sealed(demo, bytes(5_000))[:-7]
    for _ in range(JUNK_WITH_PHOTOS):
        form = {"csrf_token": token, **receipt, "proof": proof(client, "followup"),
                "message": (io.BytesIO(message), "message"),
                "attachment": (io.BytesIO(truncated), "attachment")}  # fmt: skip
        response = client.post("/followup/send", data=form, content_type="multipart/form-data")
        assert response.status_code == 400, response.status_code
    assert _lookups_left(client, demo, receipt) == [200] * LOOKUPS + [429]


def test_messages_refused_as_too_many_never_spend_the_lookup_budget(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    """Once the follow-up budget is spent, retries must not empty the lookups too."""
    client = make_app(**SETTINGS).test_client()
    receipt = _filed(client, demo)
    messages = [_honest(client, demo, "/followup/send-plain", receipt) for _ in range(20)]
    assert messages == [200] * FOLLOWUPS + [429] * (20 - FOLLOWUPS)
    # Only the messages that were stored looked the receipt up.
    assert _lookups_left(client, demo, receipt) == [200] * (LOOKUPS - FOLLOWUPS) + [429]


def test_messages_to_a_wrong_receipt_never_spend_the_follow_up_budget(
    make_app: Callable[..., Flask], demo: DemoPortal
) -> None:
    """A wrong receipt costs a lookup (the server did the work), and only that."""
    client = make_app(**{**SETTINGS, "PORTAL_LOOKUPS_PER_HOUR": "40"}).test_client()
    receipt = _filed(client, demo)
    wrong = {**receipt, "receipt_token": "ab" * 32}
    assert [_honest(client, demo, "/followup/send-plain", wrong) for _ in range(4)] == [404] * 4
    messages = [_honest(client, demo, "/followup/send-plain", receipt) for _ in range(3)]
    assert messages == [200] * FOLLOWUPS + [429]


#: what a no-JavaScript attachment may weigh by default (PORTAL_MAX_PLAIN_UPLOAD_MIB)
PHOTO_BYTES = 8 * 1024 * 1024


def _slow_photos(size: int) -> dict[str, bytes]:
    """Photos built from the smallest pieces the scrubber walks one at a time."""
    png_chunk = struct.pack(">I", 0) + b"IDAT" + bytes(4)
    return {
        "JPEG fill bytes": b"\xff\xd8" + b"\xff" * size + b"\xff\xd9",
        "JPEG restart markers": b"\xff\xd8" + b"\xff\xd0" * (size // 2) + b"\xff\xd9",
        "JPEG comments": b"\xff\xd8" + b"\xff\xfe\x00\x02" * (size // 4) + b"\xff\xd9",
        "JPEG stuffed scan": b"\xff\xd8\xff\xda\x00\x02" + b"\xff\x00" * (size // 2) + b"\xff\xd9",
        "PNG empty chunks": b"\x89PNG\r\n\x1a\n" + png_chunk * (size // 12) + png_chunk[:4]
        + b"IEND" + bytes(4),
    }  # fmt: skip


def test_photos_built_to_slow_the_scrubber_are_cheap_to_refuse() -> None:
    """The scrub runs before any budget is drawn, so its work must be bounded by the size."""
    for what, photo in _slow_photos(PHOTO_BYTES).items():
        started = time.process_time()
        try:
            scrub(photo, "image/jpeg")
        except ScrubError:
            pass
        assert time.process_time() - started < 0.2, what
    for what, photo in _slow_photos(PHOTO_BYTES // 16).items():
        tracemalloc.start()
        try:
            scrub(photo, "image/jpeg")
        except ScrubError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 3 * len(photo), what
