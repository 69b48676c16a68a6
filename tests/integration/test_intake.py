"""The intake end to end through the app factory: both paths, and bad input.

Every refusal must be a 4xx with a message for the reporter, and must leave
nothing half-stored: no blob, no temporary file, no database row.
"""

from __future__ import annotations

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
from portal.models import Base, Part, Submission
from portal.pow import solve
from tests.conftest import DemoPortal

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
        "csrf_token": csrf_token(client),
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
    assert response.status_code == 200, response.data
    assert CANARY not in response.data.decode()  # the page echoes nothing back

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
    pytest.param({"perpetrators_min": "\u0663"}, "whole number", id="count-arabic-digit"),
    pytest.param({"latitude": "91"}, "decimal degrees", id="latitude-range"),
    pytest.param({"incident_local_time": "yesterday"}, "date and time", id="time-junk"),
    pytest.param({"perpetrators_min": "9", "perpetrators_max": "2"}, "lower number", id="min-max"),
    pytest.param({"narrative": "x" * 20001}, "at most", id="too-long"),
    pytest.param({"category": ""}, "choose one", id="no-category"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_FORMS)
def test_bad_form_values_are_refused_and_nothing_is_kept(
    app: Flask, client: FlaskClient, demo: DemoPortal, changes: dict[str, str], message: str
) -> None:
    form = {"csrf_token": csrf_token(client), "category": "stowaways", "narrative": "ok"}
    form.update(changes)
    response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in response.data.decode()
    assert stored_state(app, demo) == (0, 0, [])


def test_text_in_any_language_is_accepted(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    narrative = "هاجم أربعة لصوص السفينة · 四名劫匪登船 · Четверо грабителей · ‏עברית‏"
    form = {"csrf_token": csrf_token(client), "category": "other", "narrative": narrative}
    response = client.post("/submit-plain", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.data
    assert stored_state(app, demo)[:2] == (1, 1)


def test_invalid_utf8_in_a_field_is_refused(
    app: Flask, client: FlaskClient, demo: DemoPortal
) -> None:
    token = csrf_token(client)
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
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
    assert b"reload the page" in response.data
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
        token = csrf_token(client)  # issued longer ago than the window
    form = {"csrf_token": token, "category": "other", "narrative": "late"}
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


def test_oversized_plain_attachment_is_refused(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    app = make_app(PORTAL_MAX_PLAIN_UPLOAD_MIB="1")
    client = app.test_client()
    form = {
        "csrf_token": csrf_token(client),
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
    assert response.status_code == 413
    assert b"MiB" in response.data
    assert stored_state(app, demo) == (0, 0, [])


def test_without_a_directory_the_portal_says_so(
    demo: DemoPortal, make_app: Callable[..., Flask]
) -> None:
    (demo.data_dir / "key-directory.json").unlink()
    app = make_app()
    client = app.test_client()
    assert client.get("/keys/directory.json").status_code == 503
    form = {"csrf_token": csrf_token(client), "category": "other", "narrative": "x"}
    assert client.post("/submit-plain", data=form).status_code == 503


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
    from portal.receipts import receipt_index

    form = {"csrf_token": csrf_token(client), "category": "other", "narrative": "receipt test"}
    page = client.post("/submit-plain", data=form, content_type="multipart/form-data")
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
