"""Photos and documents forwarded with a batch (SPEC §16.9-§16.11), on SQLite and PostgreSQL.

From the signed batch and its directory of files to the database, the
members' service and the exports: a file that is missing, altered, of a
refused type, too large or not what it claims refuses the whole batch, and
the database (every table) and the directory are then exactly as before.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import incident_db.attachments as attachment_store
from crypto.batch import Attachment, read_batch, sign_batch
from incident_db.attachments import AttachmentContent, IncidentAttachment, load_attachments
from incident_db.cli import main as incident_db_main
from incident_db.db import open_database
from incident_db.errors import IngestError
from incident_db.exports import iter_incidents
from incident_db.exports.geojson import write_geojson
from incident_db.exports.stix import write_stix
from incident_db.exports.table import write_csv
from incident_db.ingest import ingest_batch
from incident_db.members import store
from incident_db.web.app import create_app
from incident_db.web.config import WebConfig
from incident_db.web.sessions import COOKIE
from tests.conftest import ROOT
from tests.unit.incident_db.factories import REVIEWER, WHEN, record, snapshot

TRUSTED = frozenset({REVIEWER.token})
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _image(kind: str, colour: tuple[int, int, int] = (10, 90, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, kind)
    return out.getvalue()


JPEG, PNG = _image("JPEG"), _image("PNG")


def _entry(record_number: int, content: bytes, media_type: str, name: str) -> Attachment:
    return Attachment(record_number, hashlib.sha256(content).hexdigest(), media_type,
                      len(content), name)  # fmt: skip


def _forward(directory: Path, files: list[tuple[int, bytes, str, str]], records: int = 2) -> bytes:
    """A signed batch with ``files`` (record, content, type, name), written as forward does."""
    directory.mkdir(exist_ok=True)
    entries = []
    for number, content, media_type, name in files:
        entry = _entry(number, content, media_type, name)
        (directory / entry.sha256).write_bytes(content)
        entries.append(entry)
    return sign_batch([record(n) for n in range(1, records + 1)], REVIEWER,
                      batch_id=secrets.token_hex(16), created_at=WHEN,
                      attachments=entries)  # fmt: skip


def _listing(directory: Path) -> dict[str, bytes]:
    # a named pipe is listed, never read: reading one would wait for a writer
    return {
        p.name: p.read_bytes() if p.is_file() else b"<not a file>"
        for p in sorted(directory.iterdir())
    }


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = open_database(database_url)
    yield made
    made.dispose()


def test_attachments_are_stored_by_hash_and_bound_to_their_incidents(
    engine: Engine, tmp_path: Path
) -> None:
    """§16.10: each file once under its hash; the same photo in two records is one content row."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "one-1.jpg"),
                            (2, JPEG, "image/jpeg", "two-1.jpg"),
                            (2, PDF, "application/pdf", "two-2.pdf")])  # fmt: skip
    (files / ("f" * 64)).write_bytes(b"a file the batch does not list is ignored")
    report = ingest_batch(engine, data, TRUSTED, attachments=files)
    assert (report.added, report.attachments_added) == (2, 3)
    with engine.connect() as connection:
        query = select(AttachmentContent.sha256, AttachmentContent.content)
        stored = {row.sha256: row.content for row in connection.execute(query)}
        bound = connection.execute(
            select(IncidentAttachment.incident_id, IncidentAttachment.name,
                   IncidentAttachment.media_type, IncidentAttachment.size,
                   IncidentAttachment.batch_id).order_by(IncidentAttachment.name)
        ).all()  # fmt: skip
    assert {bytes(v) for v in stored.values()} == {JPEG, PDF}
    assert {k: hashlib.sha256(bytes(v)).hexdigest() for k, v in stored.items()} == {
        k: k for k in stored
    }
    batch_id = read_batch(data, TRUSTED).batch_id
    assert [tuple(row) for row in bound] == [
        (f"{1:032x}", "one-1.jpg", "image/jpeg", len(JPEG), batch_id),
        (f"{2:032x}", "two-1.jpg", "image/jpeg", len(JPEG), batch_id),
        (f"{2:032x}", "two-2.pdf", "application/pdf", len(PDF), batch_id),
    ]
    before = snapshot(engine)
    assert ingest_batch(engine, data, TRUSTED, attachments=files).batch_seen_before
    assert snapshot(engine) == before


def _tampered(directory: Path, data: bytes) -> None:
    name = read_batch(data, TRUSTED).attachments[-1].sha256
    content = bytearray((directory / name).read_bytes())
    content[-3] ^= 1
    (directory / name).write_bytes(bytes(content))


def _missing(directory: Path, data: bytes) -> None:
    (directory / read_batch(data, TRUSTED).attachments[-1].sha256).unlink()


def _longer(directory: Path, data: bytes) -> None:
    name = read_batch(data, TRUSTED).attachments[-1].sha256
    (directory / name).write_bytes((directory / name).read_bytes() + b"\x00")


def _a_link(directory: Path, data: bytes) -> None:
    name = read_batch(data, TRUSTED).attachments[-1].sha256
    (directory / "real").write_bytes((directory / name).read_bytes())
    (directory / name).unlink()
    (directory / name).symlink_to(directory / "real")


def _a_pipe(directory: Path, data: bytes) -> None:
    name = read_batch(data, TRUSTED).attachments[-1].sha256
    (directory / name).unlink()
    os.mkfifo(directory / name)  # opening one for reading would wait for a writer


FAULTS = {
    "a named pipe": (_a_pipe, "not a regular file"),
    "tampered": (_tampered, "differs from the one the batch signed"),
    "missing": (_missing, "is missing"),
    "longer": (_longer, "differs from the one the batch signed"),
    "a symbolic link": (_a_link, "cannot be read"),
}


@pytest.mark.parametrize(("fault", "message"), FAULTS.values(), ids=FAULTS.keys())
def test_a_bad_attachment_refuses_the_whole_batch(
    engine: Engine, tmp_path: Path, fault: Any, message: str
) -> None:
    """§16.10: refused whole; no table changes and no file appears or goes."""
    files = tmp_path / "files"
    ingest_batch(engine, _forward(files, [(1, PNG, "image/png", "earlier.png")], records=1),
                 TRUSTED, attachments=files)  # fmt: skip
    data = _forward(files, [(1, JPEG, "image/jpeg", "a.jpg"), (2, PDF, "application/pdf", "b.pdf")],
                    records=3)  # fmt: skip
    fault(files, data)
    database, directory = snapshot(engine), _listing(files)
    with pytest.raises(IngestError, match=message):
        ingest_batch(engine, data, TRUSTED, attachments=files)
    assert snapshot(engine) == database
    assert _listing(files) == directory


def test_a_batch_listing_attachments_needs_their_directory(engine: Engine, tmp_path: Path) -> None:
    """§16.10: without the files there is nothing to check, so nothing is stored."""
    data = _forward(tmp_path / "files", [(1, JPEG, "image/jpeg", "a.jpg")])
    before = snapshot(engine)
    with pytest.raises(IngestError, match="--attachments DIR"):
        ingest_batch(engine, data, TRUSTED)
    assert snapshot(engine) == before


def _huge_picture() -> bytes:
    """A few kilobytes of PNG that decode to 16.4 million pixels (a browser's 66 MB)."""
    out = io.BytesIO()
    Image.new("1", (4100, 4000)).save(out, format="PNG")
    return out.getvalue()


POLICY = {
    "a small file of a huge picture": (_huge_picture(), "image/png", "not a valid image/png"),
    "a type outside the list": (b"GIF89a" + bytes(40), "image/gif", "not accepted"),
    "HTML": (b"<script>alert(1)</script>", "text/html", "not accepted"),
    "a JPEG that is a PNG": (PNG, "image/jpeg", "not a valid image/jpeg"),
    "a PNG that is a PDF": (PDF, "image/png", "not a valid image/png"),
    "a PDF that is HTML": (b"<html><script>x</script></html>", "application/pdf", "not a valid"),
    "a broken JPEG": (JPEG[:4] + b"\x00" * 60, "image/jpeg", "not a valid image/jpeg"),
}


@pytest.mark.parametrize(("content", "media_type", "message"), POLICY.values(), ids=POLICY.keys())
def test_the_database_keeps_its_own_policy(
    engine: Engine, tmp_path: Path, content: bytes, media_type: str, message: str
) -> None:
    """§16.11: a signature does not make a file acceptable: types, and content that matches."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "fine.jpg"), (2, content, media_type, "x.bin")])
    before = snapshot(engine)
    with pytest.raises(IngestError, match=message):
        ingest_batch(engine, data, TRUSTED, attachments=files)
    assert snapshot(engine) == before


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """§16.11: the database's own size limit, checked against the signed size."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "a.jpg")])
    batch = read_batch(data, TRUSTED)
    assert load_attachments(batch, files, max_bytes=len(JPEG)) == {
        batch.attachments[0].sha256: JPEG
    }
    with pytest.raises(IngestError, match="over the limit"):
        load_attachments(batch, files, max_bytes=len(JPEG) - 1)
    assert attachment_store.MAX_BYTES == 10 * 1024 * 1024


def test_a_batch_from_before_attachments_is_still_ingested(engine: Engine) -> None:
    """§16.9: old batches stay valid; the vector was signed by the writer before attachments."""
    vector = json.loads((ROOT / "tests/vectors/batch-before-attachments.json").read_text())
    (case,) = vector["cases"]
    report = ingest_batch(engine, case["batch"].encode("utf-8"), TRUSTED)
    assert (report.added, report.attachments_added) == (1, 0)


def test_exports_name_each_attachment_by_hash(engine: Engine, tmp_path: Path) -> None:
    """CSV, GeoJSON and STIX carry the attachments' SHA-256 and names."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "one-1.jpg"), (1, PDF, "application/pdf",
                                                                    "one-2.pdf")])  # fmt: skip
    ingest_batch(engine, data, TRUSTED, attachments=files)
    jpeg, pdf = hashlib.sha256(JPEG).hexdigest(), hashlib.sha256(PDF).hexdigest()
    with engine.connect() as connection:
        table, geo, bundle = io.StringIO(), io.StringIO(), io.StringIO()
        write_csv(iter_incidents(connection), table)
        write_geojson(iter_incidents(connection), geo)
        write_stix(iter_incidents(connection), bundle, "amber")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(table.getvalue()))}
    assert rows[f"{1:032x}"]["attachments"] == f"{jpeg} one-1.jpg; {pdf} one-2.pdf"
    assert rows[f"{2:032x}"]["attachments"] == ""
    features = {f["id"]: f for f in json.loads(geo.getvalue())["features"]}
    assert [a["sha256"] for a in features[f"{1:032x}"]["properties"]["attachments"]] == [jpeg, pdf]
    parsed = stix2.parse(bundle.getvalue(), allow_custom=True)
    hashes = [
        ref["hashes"]["SHA-256"]
        for obj in parsed.objects
        if obj.type == "incident"
        for ref in obj.get("external_references", [])
        if ref["source_name"] == "cso-attachment"
    ]
    assert sorted(hashes) == sorted([jpeg, pdf])


def test_the_cli_takes_the_directory_the_reviewer_wrote(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """§16.10: `incident-db ingest B.jsonl --attachments D`."""
    files = tmp_path / "files"
    (tmp_path / "batch.jsonl").write_bytes(_forward(files, [(1, PNG, "image/png", "a.png")]))
    (tmp_path / "trusted").write_text(f"{REVIEWER.token}\n")
    trusted = ["--trusted", str(tmp_path / "trusted"), "--db", database_url]
    code = incident_db_main(["ingest", str(tmp_path / "batch.jsonl"), *trusted,
                             "--attachments", str(files)])  # fmt: skip
    assert code == 0
    assert "1 attachment(s) stored" in capsys.readouterr().out
    again = _forward(tmp_path / "other", [(1, PNG, "image/png", "b.png")])
    (tmp_path / "again.jsonl").write_bytes(again)
    (files / hashlib.sha256(PNG).hexdigest()).write_bytes(PNG[:-1] + b"!")
    code = incident_db_main(["ingest", str(tmp_path / "again.jsonl"), *trusted,
                             "--attachments", str(files)])  # fmt: skip
    assert code != 0
    assert "differs from the one the batch signed" in capsys.readouterr().err


# --- the members' service -------------------------------------------------------------


@pytest.fixture
def app(engine: Engine, database_url: str) -> Iterator[Flask]:
    config = WebConfig(database_url=database_url, secret_key=secrets.token_bytes(32),
                       origin="http://localhost", rp_id="localhost", testing=True)  # fmt: skip
    made = create_app(config)
    yield made
    made.extensions["incident_db"]["engine"].dispose()


def _member(app: Flask, engine: Engine, role: str = "member") -> FlaskClient:
    with Session(engine) as session:
        token = store.invite(session, f"{role}@example.org", role, actor="cli")
        cookie = store.start_session(session, store.consume_invitation(session, token))
        session.commit()
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, domain="localhost")
    return client


def test_members_get_images_inline_and_documents_as_downloads(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    """Sandboxed, nosniff, never executed; a PDF only downloads, and that is audited."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "one-1.jpg"), (1, PDF, "application/pdf",
                                                                    "one-2.pdf")])  # fmt: skip
    ingest_batch(engine, data, TRUSTED, attachments=files)
    jpeg, pdf = hashlib.sha256(JPEG).hexdigest(), hashlib.sha256(PDF).hexdigest()
    assert app.test_client().get(f"/attachments/{jpeg}").status_code == 401
    client = _member(app, engine)
    photo = client.get(f"/attachments/{jpeg}")
    assert (photo.status_code, photo.data, photo.mimetype) == (200, JPEG, "image/jpeg")
    assert photo.headers["Content-Disposition"] == 'inline; filename="one-1.jpg"'
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    policy = photo.headers["Content-Security-Policy"]
    assert "sandbox" in policy
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    document = client.get(f"/attachments/{pdf}")
    assert document.headers["Content-Disposition"] == 'attachment; filename="one-2.pdf"'
    assert "sandbox" in document.headers["Content-Security-Policy"]
    assert client.get(f"/attachments/{'0' * 64}").status_code == 404
    assert client.get("/attachments/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert "sandbox" not in client.get("/").headers["Content-Security-Policy"]
    with Session(engine) as session:
        actions = [(e.action, e.subject) for e in store.audit_events(session)]
    assert ("attachment.download", pdf) in actions
    assert ("attachment.download", jpeg) not in actions


def test_the_incident_page_part_lists_them_escaped(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    """incident_attachments.html: the image in the page, the PDF as a link, names escaped."""
    files = tmp_path / "files"
    data = _forward(files, [(1, JPEG, "image/jpeg", "one-1.jpg"), (1, PDF, "application/pdf",
                                                                    "one-2.pdf")])  # fmt: skip
    ingest_batch(engine, data, TRUSTED, attachments=files)
    jpeg, pdf = hashlib.sha256(JPEG).hexdigest(), hashlib.sha256(PDF).hexdigest()
    with engine.begin() as connection:  # a name written by hand, past the batch's checks
        connection.execute(IncidentAttachment.__table__.update()
                           .where(IncidentAttachment.sha256 == pdf)
                           .values(name='<b onclick="x">.pdf'))  # fmt: skip
    page = '{% include "incident_attachments.html" %}'
    with app.test_request_context("/"):
        html = render_template_string(page, incident={"id": f"{1:032x}"})
        empty = render_template_string(page, incident={"id": f"{2:032x}"})
    assert f'<img src="/attachments/{jpeg}"' in html
    assert f'<a href="/attachments/{pdf}" download=' in html
    assert "<b onclick" not in html
    assert "&lt;b onclick=" in html
    assert empty.strip() == ""
    client = _member(app, engine)
    served = client.get(f"/attachments/{pdf}")
    assert served.headers["Content-Disposition"] == 'attachment; filename="attachment"'
