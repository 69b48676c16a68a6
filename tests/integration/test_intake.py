"""The intake end to end through the app factory: both paths, and bad input.

Every refusal must be a 4xx with a message for the reporter, and must leave
nothing half-stored: no blob, no temporary file, no database row.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from crypto.envelope import open_bytes, seal_bytes
from crypto.keys import EncryptionKeyPair
from crypto.manifest import parse_manifest
from portal.storage.models import Base, Part, Submission
from portal.web.pow import solve
from tests.conftest import DemoPortal
from tests.integration.portal_server import plain_form, send_plain

CANARY = "CANARY-7f3a9c-NARRATIVE"
# What a browser sends in place of its receipt (SPEC §14): a locator and a token.
RECEIPT_FIELDS = {"receipt_locator": "0042", "receipt_token": "ab" * 32}
IDENTITY_CANARY = "CANARY-7f3a9c-COMPANY"


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/").data.decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def proof(client: FlaskClient, purpose: str = "submit") -> str:
    """Ask the portal for a puzzle and solve it, as the browser does."""
    answer = client.get(f"/pow?for={purpose}").get_json()
    return solve(answer["puzzle"], answer["bits"])


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "CANARY-7f3a9c-MAKE"
    exif[0x0110] = "CANARY-7f3a9c-MODEL"
    exif[0xA431] = "CANARY-7f3a9c-SERIAL"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0), 3: "E", 4: (3.0, 22.0, 10.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"CANARY-7f3a9c-COMMENT")
    return out.getvalue()


def stored_state(app: Flask, demo: DemoPortal) -> tuple[int, int, list[str]]:
    """(submissions, parts, files in the blob directory, temporaries included)."""
    sessions = app.extensions["portal"]["sessions"]
    with sessions() as session:
        submissions = session.scalar(select(func.count()).select_from(Submission))
        parts = session.scalar(select(func.count()).select_from(Part))
    return submissions or 0, parts or 0, sorted(p.name for p in (demo.data_dir / "blobs").iterdir())


def database_text(app: Flask) -> str:
    """Every row of every table, as text: what a seized database shows."""
    engine = app.extensions["portal"]["engine"]
    with engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
        ]
    return "\n".join(rows)


def files_containing(marker: bytes, roots: list[Path], since: float) -> list[Path]:
    """Every file under ``roots`` (changed since ``since``) whose bytes contain ``marker``."""
    found = []
    for root in roots:
        # os.walk skips folders that vanish mid-walk (other processes share /tmp)
        for folder, _, names in os.walk(root):
            for path in (Path(folder) / name for name in names):
                try:
                    info = path.stat()
                    if not stat.S_ISREG(info.st_mode) or info.st_mtime < since:
                        continue  # a socket or pipe would block a read
                    if marker in path.read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found


def test_form_exposes_the_stable_field_names(client: FlaskClient) -> None:
    page = client.get("/").data.decode()
    for name in ("category", "narrative", "attachments", "identity_company", "identity_vessel"):
        assert f'name="{name}"' in page
    assert "never forwarded" in page
    assert "<script>" not in page  # only external module scripts: the CSP forbids inline


def test_plain_submission_keeps_only_ciphertext(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    started = time.time() - 1
    photo = photo_with_gps()
    form = {
        **plain_form(client, "piracy-or-armed-robbery"),
        "category": "piracy-or-armed-robbery",
        "incident_local_time": "2026-11-20T02:10",
        "incident_utc_offset": "+01:00",
        "place_name": "Lagos anchorage",
        "perpetrators_min": "3",
        "perpetrators_max": "6",
        "weapons": ["knives-or-machetes"],
        "narrative": f"{CANARY} four robbers came up the anchor chain",
        "identity_company": IDENTITY_CANARY,
        "attachments": [(io.BytesIO(photo), "IMG_0042.jpg", "image/jpeg")],
    }
    response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
    assert response.status_code == 303, response.data
    assert response.headers["Location"] == "/received"
    receipt_page = client.get("/received")
    assert receipt_page.status_code == 200
    assert re.search(r'id="receipt">[0-9 ]{29}<', receipt_page.data.decode())
    for page in (response, receipt_page):
        assert CANARY not in page.data.decode()  # neither page echoes anything back

    submissions, parts, blobs = stored_state(app, demo)
    assert (submissions, parts, len(blobs)) == (1, 2, 2)
    roots = [demo.data_dir, Path(tempfile.gettempdir())]
    assert files_containing(b"CANARY-7f3a9c", roots, started) == []

    with app.extensions["portal"]["sessions"]() as session:
        submission = session.scalars(select(Submission)).one()
        assert re.fullmatch(r"[0-9a-f]{32}", submission.id)
        part_blobs = [p.blob for p in submission.parts]
    report = json.loads(
        open_bytes((demo.data_dir / "blobs" / part_blobs[0]).read_bytes(), demo.identity(1))
    )
    assert report["encrypted_by"] == "server"
    assert report["report"]["narrative"].startswith(CANARY)
    assert report["report"]["perpetrators_max"] == 6
    assert report["identity"] == {"identity_company": IDENTITY_CANARY}
    entry = parse_manifest(report)[0]
    attachment = open_bytes(
        (demo.data_dir / "blobs" / part_blobs[1]).read_bytes(), demo.identity(0)
    )
    assert entry.scrubbed
    assert entry.name == "IMG_0042.jpg"
    assert entry.size == len(attachment)
    assert b"CANARY" not in attachment
    cleaned = Image.open(io.BytesIO(attachment))
    assert dict(cleaned.getexif()) == {}
    assert cleaned.size == (40, 30)


def test_browser_encrypted_submission_is_stored_as_sent(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    recipients = [demo.identity(0).public, demo.identity(1).public]
    report = seal_bytes(b'{"schema": "cso-report/v1"}', recipients)
    attachment = seal_bytes(b"x" * 200_000, recipients)
    response = client.post(
        "/submit",
        data={
            "csrf_token": csrf_token(client),
            "proof": proof(client),
            **RECEIPT_FIELDS,
            "report": (io.BytesIO(report), "report"),
            "attachment": [(io.BytesIO(attachment), "a1")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.data
    assert response.get_json() == {"stored": True, "parts": 2}
    _, _, blobs = stored_state(app, demo)
    stored = sorted((demo.data_dir / "blobs" / name).read_bytes() for name in blobs)
    assert stored == sorted([report, attachment])


def _envelope(demo: DemoPortal, data: bytes = b"report") -> bytes:
    return seal_bytes(data, [demo.identity(0).public, demo.identity(1).public])


STRANGER = EncryptionKeyPair.generate()
BAD_UPLOADS: list[Any] = [
    pytest.param(lambda d: {"report": (io.BytesIO(b"not an envelope at all" * 100), "r")},
                 "format marker", id="wrong-magic"),
    pytest.param(lambda d: {"report": (io.BytesIO(seal_bytes(b"r", [STRANGER.public])), "r")},
                 "current reviewers", id="wrong-recipients"),
    pytest.param(lambda d: {"report": (io.BytesIO(seal_bytes(b"r", [d.identity(0).public])), "r")},
                 "current reviewers", id="missing-a-reviewer"),
    pytest.param(lambda d: {"report": (io.BytesIO(_envelope(d)[:-7]), "r")},
                 "truncated", id="truncated-payload"),
    pytest.param(lambda d: {"report": (io.BytesIO(_envelope(d)[:300]), "r")},
                 "truncated", id="truncated-header"),
    pytest.param(lambda d: {"report": (io.BytesIO(_envelope(d) + b"\0"), "r")},
                 "malformed", id="appended-byte"),
    pytest.param(lambda d: {"attachment": (io.BytesIO(_envelope(d)), "a")},
                 "exactly one", id="no-report"),
    pytest.param(lambda d: {"report": [(io.BytesIO(_envelope(d)), "r"),
                                       (io.BytesIO(_envelope(d)), "r2")]},
                 "exactly one", id="two-reports"),
    pytest.param(lambda d: {"report": (io.BytesIO(_envelope(d)), "r"),
                            "attachment": (io.BytesIO(b"\0" * 5000), "a")},
                 "format marker", id="one-bad-attachment"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), BAD_UPLOADS)
def test_bad_uploads_are_refused_and_nothing_is_kept(
    app: Flask, client: FlaskClient, demo: DemoPortal, make: Any, message: str
) -> None:
    data = {
        "csrf_token": csrf_token(client),
        "proof": proof(client),
        **RECEIPT_FIELDS,
        **make(demo),
    }
    response = client.post("/submit", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in response.data.decode()
    assert "Nothing was stored" in response.data.decode()
    assert stored_state(app, demo) == (0, 0, [])


BAD_FORMS: list[Any] = [
    pytest.param({"category": "kidnapping-by-aliens"}, "listed choices", id="unknown-category"),
    pytest.param({"narrative": "a\x00b"}, "control characters", id="nul-in-narrative"),
    pytest.param({"place_name": "Lagos\x1b[31m"}, "control characters", id="escape-sequence"),
    pytest.param({"narrative": "x\ufffdy"}, "damaged encoding", id="replacement-character"),
    pytest.param({"narrative": "\U0010fffe"}, "control characters", id="noncharacter"),
    pytest.param({"place_name": "line\nbreak"}, "one line", id="newline-in-one-line-field"),
    pytest.param({"perpetrators_min": "3a"}, "whole number", id="count-junk"),
    pytest.param({"perpetrators_min": "\u00b3"}, "whole number", id="count-superscript-digit"),
    pytest.param({"latitude": "91"}, "decimal degrees", id="latitude-range"),
    pytest.param({"latitude": "22°60'N"}, "decimal degrees", id="latitude-minutes-60"),
    pytest.param({"longitude": "91.5N"}, "decimal degrees", id="longitude-wrong-letter"),
    pytest.param({"incident_local_time": "yesterday"}, "date and time", id="time-junk"),
    pytest.param(
        {"perpetrators_min": "9", "perpetrators_max": "2"}, "cannot be less", id="min-max"
    ),
    pytest.param({"narrative": "x" * 20001}, "at most", id="too-long"),
    pytest.param({"category": ""}, "choose one", id="no-category"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_FORMS)
def test_bad_form_values_are_refused_and_nothing_is_kept(
    app: Flask, client: FlaskClient, demo: DemoPortal, changes: dict[str, str], message: str
) -> None:
    form = {"category": "stowaways", "narrative": "ok", **changes}
    response = send_plain(client, form)
    assert response.status_code == 400
    assert message in response.data.decode()
    assert stored_state(app, demo) == (0, 0, [])


def test_text_in_any_language_is_accepted(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    narrative = "هاجم أربعة لصوص السفينة · 四名劫匪登船 · Четверо грабителей · ‏עברית‏"
    response = send_plain(client, {"category": "other", "narrative": narrative})
    assert response.status_code == 200, response.data
    assert stored_state(app, demo)[:2] == (1, 1)


def test_characters_newer_than_the_server_s_unicode_are_kept(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    """U+1FAE8 (Unicode 15) is unassigned to Python 3.11, and browsers accept it (issue 13, F4)."""
    narrative = "The crew were shaken \U0001fae8 after the boarding"
    response = send_plain(client, {"category": "other", "narrative": narrative})
    assert response.status_code == 200, response.data
    assert 'id="receipt"' in response.data.decode()
    with app.extensions["portal"]["sessions"]() as session:
        blob = session.scalars(select(Submission)).one().parts[0].blob
    report = json.loads(open_bytes((demo.data_dir / "blobs" / blob).read_bytes(), demo.identity()))
    assert report["report"]["narrative"] == narrative


@pytest.mark.parametrize("char", ["\ufdd0", "\uffff", "\U0001fffe", "\ue000"])
def test_noncharacters_and_private_use_are_refused(
    app: Flask, client: FlaskClient, demo: DemoPortal, char: str
) -> None:
    response = send_plain(client, {"category": "other", "narrative": f"robbed {char} at anchor"})
    assert response.status_code == 400
    assert "cannot be part of a text" in response.data.decode()
    assert stored_state(app, demo) == (0, 0, [])


@pytest.mark.parametrize(
    ("typed", "expected"),
    [({"latitude": "22°16.2'N", "longitude": "091°48.5'W"}, (22.27, -91.808333)),
     ({"latitude": "22 16.2S 091 48.5E"}, (-22.27, 91.808333)),
     ({"latitude": "-22.27", "longitude": "91.8083"}, (-22.27, 91.8083))],
    ids=["degrees-and-minutes", "whole-position-in-latitude", "decimal-degrees"],
)  # fmt: skip
def test_positions_are_read_as_seafarers_write_them(
    app: Flask, client: FlaskClient, demo: DemoPortal, typed: dict[str, str], expected: Any
) -> None:
    response = send_plain(client, {"category": "other", **typed})
    assert response.status_code == 200, response.data
    with app.extensions["portal"]["sessions"]() as session:
        blob = session.scalars(select(Submission)).one().parts[0].blob
    report = json.loads(open_bytes((demo.data_dir / "blobs" / blob).read_bytes(), demo.identity()))
    assert (report["report"]["latitude"], report["report"]["longitude"]) == expected


def test_invalid_utf8_in_a_field_is_refused(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    keys = plain_form(client)
    token, once = keys["csrf_token"], keys["once"]
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="once"\r\n\r\n{once}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\nother\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="narrative"\r\n\r\n'
        ).encode()
        + b"\xff\xfe\xc3("
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        "/submit-plain", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400
    assert stored_state(app, demo) == (0, 0, [])


@pytest.mark.parametrize("path", ["/submit", "/submit-plain"])
def test_malformed_multipart_is_a_clear_400(
    app: Flask, client: FlaskClient, demo: DemoPortal, path: str
) -> None:
    csrf_token(client)
    response = client.post(
        path, data=b"--zz\r\ngarbage\r\n\r\n", content_type="multipart/form-data; boundary=zz"
    )
    assert response.status_code == 400
    assert b"expired" in response.data
    assert b"Nothing was stored" in response.data
    assert stored_state(app, demo) == (0, 0, [])


@pytest.mark.parametrize("path", ["/submit", "/submit-plain"])
def test_missing_csrf_token_is_refused(
    app: Flask, client: FlaskClient, demo: DemoPortal, path: str
) -> None:
    client.get("/")
    data = {"category": "other", "narrative": "x", "report": (io.BytesIO(_envelope(demo)), "r")}
    response = client.post(path, data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert b"expired" in response.data
    assert stored_state(app, demo) == (0, 0, [])


def test_expired_csrf_token_is_refused(app: Flask, client: FlaskClient, demo: DemoPortal) -> None:
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    with mock.patch("time.time", return_value=time.time() - limit - 60):
        keys = plain_form(client)  # the form token was issued longer ago than the window
    form = {**keys, "category": "other", "narrative": "late"}
    response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert b"expired" in response.data
    assert stored_state(app, demo) == (0, 0, [])


def test_oversized_upload_is_refused(demo: DemoPortal, make_app: Callable[..., Flask]) -> None:
    app = make_app(PORTAL_MAX_UPLOAD_MIB="1")
    client = app.test_client()
    big = _envelope(demo, b"\x01" * (2 * 1024 * 1024))
    data = {
        "csrf_token": csrf_token(client),
        "proof": proof(client),
        **RECEIPT_FIELDS,
        "report": FileStorage(io.BytesIO(big), filename="r"),
    }
    body, _, boundary = stream_encode_multipart(data, use_tempfile=False)  # see below
    response = client.post(
        "/submit", data=body.read(), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert stored_state(app, demo) == (0, 0, [])


def test_oversized_plain_attachment_is_refused_and_the_form_kept(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    app = make_app(PORTAL_MAX_PLAIN_UPLOAD_MIB="1")
    client = app.test_client()
    form = {
        **plain_form(client),
        "category": "other",
        "narrative": "x",
        "attachments": FileStorage(io.BytesIO(b"\0" * (1024 * 1024 + 1)), filename="big.bin"),
    }
    # Encode in memory: the test client would otherwise spool this big body to
    # a client-side temporary file that the early 413 leaves unclosed.
    body, _, boundary = stream_encode_multipart(form, use_tempfile=False)
    response = client.post(
        "/submit-plain",
        data=body.read(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    page = response.data.decode()
    assert "larger than 1 MiB" in page
    assert "choose" in page.lower()  # the reporter is told to pick the files again
    assert re.search(r"<textarea id=\"f-narrative\"[^>]*>\s*x</textarea>", page)
    assert stored_state(app, demo) == (0, 0, [])


def test_without_a_directory_the_portal_says_so(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    (demo.data_dir / "key-directory.json").unlink()
    app = make_app()
    client = app.test_client()
    assert client.get("/keys/directory.json").status_code == 503
    answer = send_plain(client, {"category": "other", "narrative": CANARY})
    assert answer.status_code == 503
    assert "cannot accept reports right now" in answer.data.decode()
    assert CANARY in answer.data.decode()  # what was typed is not lost


@pytest.mark.parametrize(
    "fields",
    [{}, {"receipt_locator": "42", "receipt_token": "ab" * 32},
     {"receipt_locator": "0042", "receipt_token": "zz" * 32}],
    ids=["missing", "short-locator", "bad-token"],
)  # fmt: skip
def test_browser_submission_without_valid_receipt_fields_is_refused(
    app: Flask, client: FlaskClient, demo: DemoPortal, fields: dict[str, str]
) -> None:
    data = {
        "csrf_token": csrf_token(client),
        "proof": proof(client),
        **fields,
        "report": (io.BytesIO(_envelope(demo)), "r"),
    }
    response = client.post("/submit", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert b"receipt" in response.data
    assert stored_state(app, demo) == (0, 0, [])


def test_receipt_storage_keeps_only_locator_and_argon2id(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    """§14.3: the shown receipt works; only its locator and receipt index are kept."""
    from crypto.receipt import Receipt, derive
    from portal.storage.receipts import receipt_index

    page = send_plain(client, {"category": "other", "narrative": "receipt test"})
    assert page.status_code == 200
    match = re.search(r'id="receipt">([0-9 ]{29})<', page.data.decode())
    assert match is not None
    receipt = Receipt.parse(match.group(1))
    keys = derive(receipt)
    with app.extensions["portal"]["sessions"]() as session:
        submission = session.scalars(select(Submission)).one()
        locator, index = submission.receipt_locator, submission.receipt_index
        assert submission.receipt_hash == ""  # only reports from before the index have one
        blob = submission.parts[0].blob
    assert locator == receipt.locator
    assert index == receipt_index(receipt.locator, keys.lookup_token)
    report = json.loads(open_bytes((demo.data_dir / "blobs" / blob).read_bytes(), demo.identity()))
    assert report["reporter_key"] == str(keys.reporter.token)
    secrets_ = [receipt.digits[4:].encode(), keys.lookup_token, keys.lookup_token.hex().encode()]
    secrets_.append(str(keys.reporter.token).encode())
    for secret in secrets_:
        assert files_containing(secret, [demo.data_dir], 0) == []
    dump = database_text(app)
    assert receipt.digits[4:] not in dump
    assert keys.lookup_token.hex() not in dump


# --- the page: two steps, one set of rules ---------------------------------------------


def _outside(page: str, *elements: str) -> str:
    """``page`` without the content of the given elements (e.g. noscript, template)."""
    for element in elements:
        page = re.sub(rf"<{element}\b.*?</{element}>", "", page, flags=re.DOTALL)
    return page


def test_step_one_asks_the_category_and_carries_step_two_in_a_template(
    client: FlaskClient,
) -> None:
    page = client.get("/").data.decode()
    assert re.search(r'<form id="report" method="get" action="/" data-step="category">', page)
    template = re.search(r'<template id="details">(.*?)</template>', page, re.DOTALL)
    assert template is not None
    for part in ('name="csrf_token"', 'name="once"', 'id="js-send"', 'id="send-plain"',
                 'name="narrative"', 'name="attachments"', 'id="content-rule"'):  # fmt: skip
        assert part in template.group(1), part
    # With scripts on, only "Next" can submit anything, and it only asks for step 2.
    buttons = re.findall(r"<button[^>]*>[^<]*", _outside(page, "template", "noscript"))
    assert buttons == ['<button type="submit">Next']


@pytest.mark.parametrize("category", ["stowaways", "piracy-or-armed-robbery", "cyber-incident"])
def test_step_two_shows_only_the_category_s_questions(client: FlaskClient, category: str) -> None:
    from portal.web.fields import FIELDS, SECTIONS

    answer = client.get("/", query_string={"category": category})
    assert answer.status_code == 200
    page = answer.data.decode()
    assert 'method="post" action="/submit-plain" enctype="multipart/form-data"' in page
    assert f'<option value="{category}" selected>' in page
    for field in FIELDS:
        wrapper = re.search(rf'<div class="field" data-field="{field.name}"[^>]*>', page)
        assert wrapper is not None, field.name
        assert (" hidden" in wrapper.group(0)) == (category not in field.categories), field.name
    for key, _ in SECTIONS:
        members = [f for f in FIELDS if f.section == key and f.name != "category"]
        shown = any(category in f.categories for f in members)
        section = re.search(rf'<fieldset class="section" id="section-{key}"[^>]*>', page)
        assert section is not None
        assert (" hidden" in section.group(0)) != shown, key
    # No submit button but the one only shown with scripts off.
    assert "<button" not in _outside(page, "noscript").replace('<button type="button"', "")


def test_a_field_of_another_category_that_holds_a_value_stays_in_sight(
    client: FlaskClient,
) -> None:
    page = send_plain(client, {"category": "stowaways", "crew_injured": "x"}).data.decode()
    wrapper = re.search(r'<div class="field has-error" data-field="crew_injured"[^>]*>', page)
    assert wrapper is not None
    assert "hidden" not in wrapper.group(0)
    assert re.search(r'<div class="field" data-field="crew_killed"[^>]*hidden>', page)


@pytest.mark.parametrize("category", ["kidnapping-by-aliens", "", "<script>x</script>"])
def test_an_unknown_category_goes_back_to_step_one(client: FlaskClient, category: str) -> None:
    answer = client.get("/", query_string={"category": category})
    assert answer.status_code == 400
    page = answer.data.decode()
    assert 'data-step="category"' in page
    assert 'id="form-errors"' in page
    assert "choose the kind of incident" in page
    assert "aliens" not in page
    assert "<script>x" not in page


def test_the_page_announces_its_modules_rules_and_modes(client: FlaskClient) -> None:
    from portal.web.field_rules import form_rules
    from tests.conftest import ROOT

    response = client.get("/?category=other")
    page = response.data.decode()
    head = page.split("</head>")[0]
    # one request for all the page's code: the bundle of js/report-page.js and its imports
    # (scripts/bundle.py; tests/integration/test_bundles.py proves it a fresh build)
    scripts = re.findall(r'<script type="module" src="([^"]+)"></script>', page)
    assert scripts == ["/static/bundle/report-page.js"]
    assert "modulepreload" not in page
    # the stylesheets are written into the page (one round trip less before the first paint),
    # byte for byte the published files, and allowed by the CSP by their hashes alone
    nojs = (ROOT / "portal" / "web" / "static" / "css" / "nojs.css").read_text(encoding="utf-8")
    css = (ROOT / "portal" / "web" / "static" / "css" / "portal.css").read_text(encoding="utf-8")
    assert f"<noscript><style>{nojs}</style></noscript>" in head
    assert f"<style>{css}</style>" in head
    assert 'rel="stylesheet"' not in head
    policy = response.headers["Content-Security-Policy"]
    styles = re.search(r"style-src ([^;]*)", policy)
    assert styles is not None
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'"
              for t in (css, nojs)}  # fmt: skip
    assert set(styles.group(1).split()) == {"'self'", *hashes}
    rules = re.search(r'<script type="application/json" id="form-rules">(.*?)</script>', page)
    assert rules is not None
    config = client.application.extensions["portal"]["config"]
    from portal.web.attachment_limits import browser_attachment_limits, plain_attachment_limits

    plain_file, plain_total, plain_form = plain_attachment_limits(
        config.max_upload_bytes, config.max_plain_upload_bytes
    )
    expected = form_rules(
        *browser_attachment_limits(config.max_upload_bytes, config.max_attachments),
        plain_max_file_bytes=plain_file,
        plain_max_total_bytes=plain_total,
        plain_max_request_bytes=plain_form,
    )
    assert json.loads(rules.group(1)) == expected
    assert expected["content_rule"] in _outside(page, "script")  # the rule is on the form
    help_text = re.search(r'<p class="help" id="help-attachments">(.*?)</p>', page)
    assert help_text is not None
    limits = expected["attachments"]
    for figure in ("10 files", limits["max_total_text"], "25 MiB", limits["plain_max_total_text"],
                   limits["plain_max_request_text"]):  # fmt: skip
        assert figure in help_text.group(1)
    assert re.search(r"<noscript><p class=\"mode\">JavaScript is off", page)
    assert '<p id="mode" class="mode needs-js">' in page


def test_every_control_has_its_error_slot(client: FlaskClient) -> None:
    from portal.web.fields import FIELDS

    page = client.get("/?category=other").data.decode()
    for field in FIELDS:
        assert f'<p class="field-error" id="error-{field.name}" aria-live="polite">' in page
        assert re.search(rf'id="f-{field.name}"[^>]*aria-describedby="error-{field.name}', page)
    for name in ("latitude", "longitude"):
        control = re.search(rf'<input id="f-{name}"[^>]*>', page)
        assert control is not None
        assert 'type="text"' in control.group(0)
        assert 'inputmode="text"' in control.group(0)
        assert "pattern=" not in control.group(0)
