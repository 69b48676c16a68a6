"""The incident page and its editing forms, on SQLite and PostgreSQL, via Flask's test client."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pikepdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from crypto.batch import Attachment, sign_batch
from incident_db import history
from incident_db.attachments import MAX_BYTES, NAME, AttachmentContent, IncidentAttachment
from incident_db.db import open_database
from incident_db.ingest import ingest_batch
from incident_db.models import Incident, IncidentChange
from incident_db.web.app import MAX_REQUEST_BYTES, create_app
from incident_db.web.config import WebConfig
from tests.integration.test_members_web import (
    HOSTILE,
    ORIGIN,
    audit_actions,
    csrf_token,
    signed_in,
)
from tests.unit.incident_db.factories import REVIEWER, WHEN, batch, record, snapshot

TRUSTED = frozenset({REVIEWER.token})
ONE, TWO = f"{1:032x}", f"{2:032x}"
BATCH = "a" * 32
#: every editing form: path suffix and a valid form for it
EDITS = {
    "verification": {"level": "unverified", "reason": "single source"},
    "grade": {"grade": "C3", "reason": "source unknown"},
    "note": {"note": "asked the agent for the port log"},
    "merge": {"into": TWO, "reason": "one robbery, two reports"},
    "link": {"other": TWO, "relation": "corroborates", "reason": "same night"},
    "unlink": {"other": TWO, "relation": "possible-duplicate", "reason": "other ships"},
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


@pytest.fixture
def app(engine: Engine, database_url: str) -> Iterator[Flask]:
    config = WebConfig(database_url=database_url, secret_key=secrets.token_bytes(32),
                       origin=ORIGIN, rp_id="localhost", testing=True)  # fmt: skip
    made = create_app(config)
    yield made
    made.extensions["incident_db"]["engine"].dispose()


@pytest.fixture
def stored(engine: Engine) -> Engine:
    long_word = "W" * 3000
    records = [record(1, narrative=f"{HOSTILE} {long_word}", place=HOSTILE[:150]), record(2)]
    ingest_batch(engine, batch(records, batch_id=BATCH), TRUSTED)
    return engine


def test_a_member_reads_everything_and_gets_no_forms(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "reader@example.org", "member")
    response = client.get(f"/incidents/{ONE}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert" in page
    for shown in ("Piracy", "Boarded", "Bulk carrier", "Knives", "Forecastle", "B2",
                  "confirmed", BATCH, REVIEWER.token.fingerprint, f"/incidents/{TWO}",
                  "possible duplicate"):  # fmt: skip
        assert shown.lower() in page.lower(), shown
    assert 'action="/incidents/' not in page
    assert client.get("/incidents/" + "f" * 32).status_code == 404
    assert client.get("/incidents/not-an-id").status_code == 404


def test_a_member_gets_403_on_every_edit(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "reader@example.org", "member")
    token = csrf_token(client, f"/incidents/{ONE}")
    before = snapshot(stored)
    for name, form in EDITS.items():
        response = client.post(f"/incidents/{ONE}/{name}", data={**form, "csrf_token": token})
        assert response.status_code == 403, name
    assert snapshot(stored) == before


def test_every_edit_refuses_a_missing_csrf_token(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    before = snapshot(stored)
    for name, form in EDITS.items():
        response = client.post(f"/incidents/{ONE}/{name}", data=form)
        assert response.status_code == 400, name
        assert "expired" in response.get_data(as_text=True)
    assert snapshot(stored) == before


def test_an_editors_change_shows_in_the_history_and_the_audit_log(
    app: Flask, stored: Engine
) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    page = client.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert f'action="/incidents/{ONE}/grade"' in page
    token = csrf_token(client, f"/incidents/{ONE}")
    reason = "Source not known to us <b>before</b>"
    response = client.post(
        f"/incidents/{ONE}/grade", data={"grade": "c3", "reason": reason, "csrf_token": token}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Grade set to C3." in page
    history_part = page[page.index("<h2>History</h2>") :]
    assert "Grade changed" in history_part
    assert "editor@example.org" in history_part
    assert "Source not known to us &lt;b&gt;before&lt;/b&gt;" in history_part
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", history_part)
    assert ("editor@example.org", "incident.grade") in [(a, b) for a, b, _ in audit_actions(stored)]
    with Session(stored) as session:
        assert session.get(Incident, ONE).grade == "C3"
        assert [c.action for c in history.history(session, ONE)] == ["grade"]


def test_a_refused_edit_says_why_and_changes_nothing(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{ONE}")
    before = snapshot(stored)
    for name, form in (("grade", {"grade": "C3", "reason": " "}),
                       ("grade", {"grade": "Z9", "reason": "x"}),
                       ("merge", {"into": ONE, "reason": "x"}),
                       ("link", {"other": "f" * 32, "relation": "corroborates", "reason": "x"}),
                       ("note", {"note": "x" * 5000})):  # fmt: skip
        response = client.post(f"/incidents/{ONE}/{name}", data={**form, "csrf_token": token})
        assert response.status_code == 400, name
        assert 'class="problem" role="alert"' in response.get_data(as_text=True)
    assert snapshot(stored) == before


def test_a_merge_from_the_page_keeps_both_incidents(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{TWO}")
    form = {"into": ONE, "reason": "same robbery", "csrf_token": token}
    response = client.post(f"/incidents/{TWO}/merge", data=form)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Merged into" in page
    assert f'href="/incidents/{ONE}"' in page
    assert f'action="/incidents/{TWO}/merge"' not in page  # merged: no second merge offered
    with Session(stored) as session:
        rows = {i: m for i, m in session.execute(select(Incident.id, Incident.merged_into))}
    assert rows == {ONE: None, TWO: ONE}
    kept = client.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert f'first stored as <a class="link" href="/incidents/{TWO}">' in kept
    assert ("editor@example.org", "incident.merge") in [(a, b) for a, b, _ in audit_actions(stored)]


# --- attaching a photo or document ------------------------------------------------------


def test_a_version_shows_which_fields_changed_never_the_old_words(
    app: Flask, engine: Engine
) -> None:
    named = "Master Zqxjkv Petrov"
    ingest_batch(engine, batch([record(1, narrative=f"Boarded. {named}", place="Berth 4")]),
                 TRUSTED)  # fmt: skip
    corrected = record(1, narrative="Boarded. [name removed]", place="Berth 4",
                       perpetrators_max=7)  # fmt: skip
    ingest_batch(engine, sign_batch([corrected], REVIEWER, batch_id=secrets.token_hex(16),
                                    created_at=WHEN + dt.timedelta(hours=1)), TRUSTED)  # fmt: skip
    # a history row written before versions kept only names: shown by name as well
    legacy = {"incident": {"narrative": f"Old {named}", "grade": "B2"}, "tags": [], "links": []}
    with engine.begin() as connection:
        connection.execute(
            insert(IncidentChange),
            {"incident_id": ONE, "at": WHEN, "actor": "batch:" + "c" * 32,
             "action": "record-version", "before": json.dumps(legacy),
             "after": json.dumps({**legacy, "incident": {"narrative": "New", "grade": "B2"}}),
             "reason": "a new version of the record"},
        )  # fmt: skip
    for role in ("member", "editor"):
        client = signed_in(app, engine, f"{role}@example.org", role)
        page = client.get(f"/incidents/{ONE}").get_data(as_text=True)
        history_part = page[page.index("<h2>History</h2>") :]
        assert "Fields changed: narrative, perpetrators_max" in history_part
        assert "Fields changed: narrative<" in history_part  # the legacy row
        assert "Zqxjkv" not in page
        assert "sha256" not in history_part


def _jpeg_with_gps() -> bytes:
    """A 40×20 JPEG saying where and with what it was taken, turned a quarter by EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Industries"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (22.0, 12.0, 36.0), 3: "E", 4: (91.0, 42.0, 36.0)})
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes(),
                                                   comment=b"taken by the second mate")  # fmt: skip
    return out.getvalue()


def _pdf_with_author() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Author"] = "Captain Secret"
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = ["Captain Secret"]
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _post_multipart(client: FlaskClient, path: str, fields: dict[str, Any]) -> Any:
    """POST a multipart form built in memory (the test client spools big ones to a file
    it never closes); a ``(bytes, name)`` value is a file."""
    values = {
        key: FileStorage(io.BytesIO(value[0]), filename=value[1])
        if isinstance(value, tuple) else value
        for key, value in fields.items()
    }  # fmt: skip
    boundary, body = encode_multipart(values)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _attach(client: FlaskClient, content: bytes, filename: str, token: str, **form: str) -> Any:
    fields = {"file": (content, filename), "reason": "from the agent", "csrf_token": token, **form}
    return _post_multipart(client, f"/incidents/{ONE}/attachments", fields)


def _stored_files(engine: Engine) -> list[tuple[str, str, bytes, str | None]]:
    with engine.connect() as connection:
        return [
            (name, media_type, bytes(content), batch_id)
            for name, media_type, content, batch_id in connection.execute(
                select(IncidentAttachment.name, IncidentAttachment.media_type,
                       AttachmentContent.content, IncidentAttachment.batch_id)
                .join(AttachmentContent, AttachmentContent.sha256 == IncidentAttachment.sha256)
                .where(IncidentAttachment.incident_id == ONE)
            )
        ]  # fmt: skip


def test_an_editor_attaches_a_photo_without_its_exif(app: Flask, stored: Engine) -> None:
    original = _jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as shown:
        assert shown.getexif().get_ifd(0x8825)  # the test photo does carry a position
    assert b"SpyCam" in original
    assert b"second mate" in original
    client = signed_in(app, stored, "editor@example.org", "editor")
    page = client.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert f'action="/incidents/{ONE}/attachments" enctype="multipart/form-data"' in page
    assert '<label for="attach-file">' in page
    assert "Up to 10 MB" in page
    token = csrf_token(client, f"/incidents/{ONE}")
    response = _attach(client, original, f"../../{HOSTILE} Brücke photo.PNG", token)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    page = response.get_data(as_text=True)
    [(name, media_type, content, batch_id)] = _stored_files(stored)
    assert (media_type, batch_id) == ("image/jpeg", None)
    assert name.endswith(".jpg")
    assert NAME.fullmatch(name)
    assert "<script" not in name
    assert "/" not in name
    # the name is one a signed batch could carry (crypto/SPEC.md §16.9)
    digest = hashlib.sha256(content).hexdigest()
    sign_batch([{"x": 1}], REVIEWER, batch_id=BATCH, created_at=dt.datetime.now(dt.UTC),
               attachments=[Attachment(1, digest, media_type, len(content), name)])  # fmt: skip
    assert b"SpyCam" not in content
    assert b"second mate" not in content
    with Image.open(io.BytesIO(content)) as cleaned:
        assert dict(cleaned.getexif()) == {}
        assert cleaned.size == (20, 40)  # turned as the EXIF said, before the EXIF went
        assert "comment" not in cleaned.info
        assert "exif" not in cleaned.info
    assert f'<img src="/attachments/{digest}"' in page
    assert f"Attached {name}, cleaned of metadata." in page
    assert "added by an editor" in page
    served = client.get(f"/attachments/{digest}")
    assert (served.status_code, served.mimetype, served.data) == (200, "image/jpeg", content)
    with Session(stored) as session:
        [change] = history.history(session, ONE)
        assert (change.action, change.actor, change.reason) == (
            "attachment",
            "editor@example.org",
            "from the agent",
        )
        assert json.loads(change.after)["attachment"]["sha256"] == digest
    assert ("editor@example.org", "incident.attachment") in [
        (a, b) for a, b, _ in audit_actions(stored)
    ]
    again = _attach(client, original, "again.jpg", token)
    assert again.status_code == 400
    assert "already holds the same file" in again.get_data(as_text=True)


def test_a_pdf_loses_its_author_and_downloads_only(app: Flask, stored: Engine) -> None:
    original = _pdf_with_author()
    assert original.count(b"Captain Secret") >= 2  # in the info dictionary and the XMP
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{ONE}")
    assert _attach(client, original, "port log.pdf", token).status_code == 200
    [(name, media_type, content, _)] = _stored_files(stored)
    assert (name, media_type) == ("port-log.pdf", "application/pdf")
    assert b"Captain Secret" not in content
    with pikepdf.open(io.BytesIO(content)) as pdf:
        assert len(pdf.pages) == 1
        assert "/Author" not in pdf.docinfo
    served = client.get(f"/attachments/{hashlib.sha256(content).hexdigest()}")
    assert served.headers["Content-Disposition"] == 'attachment; filename="port-log.pdf"'


def test_a_file_outside_the_allow_list_is_refused(app: Flask, stored: Engine) -> None:
    client = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(client, f"/incidents/{ONE}")
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    broken_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
    before = snapshot(stored)
    for content, filename, why in (
        (gif.getvalue(), "photo.gif", "only JPEG and PNG photos and PDF documents"),
        (f"<html>{HOSTILE}</html>".encode(), "photo.png", "only JPEG and PNG photos"),
        (broken_png, "photo.png", "not a valid image/png file"),
        (b"", "empty.png", "the file is empty"),
        (_pdf_with_author(), "log.pdf", "reason is required"),
    ):
        reason = " " if filename == "log.pdf" else "from the agent"
        response = _attach(client, content, filename, token, reason=reason)
        assert response.status_code == 400, filename
        page = response.get_data(as_text=True)
        assert 'class="problem" role="alert"' in page, filename
        assert why in page, filename
    assert snapshot(stored) == before


def test_only_an_editor_may_attach_and_only_with_the_token(app: Flask, stored: Engine) -> None:
    photo = _jpeg_with_gps()
    reader = signed_in(app, stored, "reader@example.org", "member")
    editor = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(reader, f"/incidents/{ONE}")
    before = snapshot(stored)
    assert 'action="/incidents/' not in reader.get(f"/incidents/{ONE}").get_data(as_text=True)
    assert _attach(reader, photo, "p.jpg", token).status_code == 403
    response = _post_multipart(editor, f"/incidents/{ONE}/attachments",
                               {"file": (photo, "p.jpg"), "reason": "x"})  # fmt: skip
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    anonymous = app.test_client()
    assert _attach(anonymous, photo, "p.jpg", "x").status_code == 401
    assert snapshot(stored) == before


def test_only_the_upload_may_be_large(app: Flask, stored: Engine) -> None:
    """A 1 MB photo goes through; any other form, or a member's upload, keeps the 64 KiB cap."""
    noise = Image.frombytes("RGB", (600, 600), secrets.token_bytes(600 * 600 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    big = out.getvalue()
    assert MAX_REQUEST_BYTES * 10 < len(big) < MAX_BYTES
    editor = signed_in(app, stored, "editor@example.org", "editor")
    token = csrf_token(editor, f"/incidents/{ONE}")
    note = editor.post(f"/incidents/{ONE}/note", data={"note": "n" * 100_000, "csrf_token": token})
    assert note.status_code == 413
    multipart = _post_multipart(
        editor,
        f"/incidents/{ONE}/note",
        {"note": "n", "csrf_token": token, "file": (big, "big.png")},
    )
    assert multipart.status_code == 413
    reader = signed_in(app, stored, "reader@example.org", "member")
    reader_token = csrf_token(reader, f"/incidents/{ONE}")
    assert _attach(reader, big, "big.png", reader_token).status_code == 413
    huge = _attach(editor, b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES + 70_000), "huge.png", token)
    assert huge.status_code == 413
    assert "over the limit of 10 MB" in huge.get_data(as_text=True)
    assert _stored_files(stored) == []
    response = _attach(editor, big, "big.png", token)
    assert response.status_code == 200, response.get_data(as_text=True)
    [(name, media_type, content, _)] = _stored_files(stored)
    assert (name, media_type) == ("big.png", "image/png")
    with Image.open(io.BytesIO(content)) as cleaned:
        assert cleaned.tobytes() == noise.tobytes()  # the pixels, exactly
