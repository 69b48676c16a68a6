"""A reporter in real headless Chromium, against the real portal under gunicorn.

The portal runs as `portal serve` (gunicorn with portal/deploy/gunicorn_conf.py),
with its own temporary directory and its log captured. The reporter fills
the form with canary strings in the narrative and the identity section and
attaches a phone-style JPEG carrying EXIF GPS and a camera serial.

Afterwards the canaries are nowhere on the server's side: not in the data
directory, the database, the blobs, its temporary directory or its log; the
log holds no client address. Decrypting the stored envelopes with a demo
reviewer key gives back the report, and the photo with no EXIF left.
Without JavaScript, every file the server writes while it handles the
request is watched: only the database and ciphertext blobs may appear.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from crypto.envelope import open_bytes
from crypto.header import MAGIC
from crypto.manifest import parse_manifest
from crypto.receipt import Receipt, derive
from portal.storage.models import Submission
from portal.storage.receipts import receipt_index
from tests.conftest import DemoPortal
from tests.integration.chromium import chromium
from tests.integration.portal_server import serve_portal

CANARY = "CANARY-b41d0c"


@pytest.fixture
def server(demo: DemoPortal, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`portal serve` on a free loopback port; yields its URL, TMPDIR and log path."""
    with serve_portal(demo, tmp_path) as running:
        yield running


def phone_photo(path: Path) -> Path:
    image = Image.new("RGB", (64, 48), (30, 90, 160))
    exif = Image.Exif()
    exif[0x010F] = f"{CANARY}-MAKE"
    exif[0xA431] = f"{CANARY}-SERIAL"
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0), 3: "E", 4: (3.0, 22.0, 10.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    path.write_bytes(out.getvalue())
    return path


def fill_form(page: Any, photo: Path) -> None:
    """Fill the report as a reporter would: the category first, then its questions.

    Without JavaScript the category is step 1 and Next loads step 2; with it,
    the questions appear in place.
    """
    page.select_option("select[name=category]", "piracy-or-armed-robbery")
    if page.get_attribute("#report", "data-step") == "category":
        with page.expect_navigation():
            page.click("#next-step button[type=submit]")
    page.fill("input[name=place_name]", "Lagos anchorage")
    page.fill("input[name=latitude]", "6°26.5'N")
    page.fill("input[name=longitude]", "003°22.1'E")
    page.fill("input[name=perpetrators_min]", "3")
    page.check("input[name=weapons][value=knives-or-machetes]")
    page.fill(
        "textarea[name=narrative]", f"{CANARY}-NARRATIVE robbers boarded via the anchor chain"
    )
    page.fill("input[name=identity_company]", f"{CANARY}-COMPANY")
    page.fill("input[name=identity_vessel]", f"{CANARY}-VESSEL")
    page.set_input_files("input[name=attachments]", str(photo))


def send_with_javascript(page: Any) -> str:
    """Press the page's one send button, wait for the receipt view and return the receipt."""
    page.click("#send")
    page.wait_for_selector("#done", timeout=90_000)
    return str(page.text_content("#receipt")).strip()


def server_files_with_canary(demo: DemoPortal, server: dict[str, Any]) -> list[Path]:
    roots = [demo.data_dir, server["tmp"]]
    found = [p for root in roots for p in root.rglob("*") if p.is_file()
             and CANARY.encode() in p.read_bytes()]  # fmt: skip
    if CANARY.encode() in server["log"].read_bytes():
        found.append(server["log"])
    return found


def stored_parts(demo: DemoPortal) -> list[bytes]:
    engine = create_engine(demo.database_url)
    with Session(engine) as session:
        submissions = session.scalars(select(Submission)).all()
        assert len(submissions) == 1
        names = [p.blob for p in submissions[0].parts]
    engine.dispose()
    return [(demo.data_dir / "blobs" / name).read_bytes() for name in names]


def check_receipt(demo: DemoPortal, shown: str, report: dict[str, Any]) -> None:
    """The receipt the page showed derives the key in the report and the stored index."""
    receipt = Receipt.parse(shown)
    keys = derive(receipt)
    assert report["reporter_key"] == str(keys.reporter.token)
    engine = create_engine(demo.database_url)
    with Session(engine) as session:
        submission = session.scalars(select(Submission)).one()
        assert submission.receipt_locator == receipt.locator
        assert submission.receipt_index == receipt_index(receipt.locator, keys.lookup_token)
    engine.dispose()


def check_stored_report(demo: DemoPortal, encrypted_by: str, shown_receipt: str) -> dict[str, Any]:
    """Decrypt the one stored submission, check it against the form, and return the report."""
    parts = stored_parts(demo)
    assert all(part.startswith(MAGIC) for part in parts)
    report = json.loads(open_bytes(parts[0], demo.identity(0)))
    assert report["encrypted_by"] == encrypted_by
    check_receipt(demo, shown_receipt, report)
    assert report["report"]["narrative"].startswith(f"{CANARY}-NARRATIVE")
    assert report["report"]["weapons"] == ["knives-or-machetes"]
    assert report["identity"]["identity_company"] == f"{CANARY}-COMPANY"
    entry = parse_manifest(report)[0]
    photo = open_bytes(parts[1], demo.identity(1))
    assert entry.scrubbed
    assert entry.size == len(photo)
    assert CANARY.encode() not in photo
    cleaned = Image.open(io.BytesIO(photo))
    assert dict(cleaned.getexif()) == {}
    assert cleaned.size == (64, 48)
    return report  # type: ignore[no-any-return]


def test_reporter_with_javascript(demo: DemoPortal, server: dict[str, Any], tmp_path: Path) -> None:
    problems: list[str] = []
    asked: list[str] = []
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: r.url.startswith(server["url"]) or problems.append(r.url))
        page.on("request", lambda r: asked.append(f"{r.method} {urlsplit(r.url).path}"))
        page.goto(server["url"] + "/")
        page.wait_for_selector("html[data-encryption=ready]", timeout=30_000)
        assert "browser encrypts" in page.text_content("#mode")
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        shown = send_with_javascript(page)
        assert page.title().startswith("Report received")
    assert problems == []
    # the resumable intake, never the server-encryption path
    assert "POST /submit-plain" not in asked
    assert asked.count("POST /submit/begin") == 1
    assert asked.count("POST /submit/finish") == 1
    assert asked.count("POST /uploads") == 2  # the report and the photo
    report = check_stored_report(demo, "browser", shown)
    assert (report["report"]["latitude"], report["report"]["longitude"]) == (6.441667, 3.368333)
    assert server_files_with_canary(demo, server) == []
    assert b"127.0.0.1" not in server["log"].read_bytes()


class _Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.paths: set[str] = set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in {"created", "modified", "moved", "closed"}:
            self.paths.add(str(getattr(event, "dest_path", "") or event.src_path))


def test_reporter_without_javascript(
    demo: DemoPortal, server: dict[str, Any], tmp_path: Path
) -> None:
    recorder = _Recorder()
    observer = Observer()
    for root in (demo.data_dir, server["tmp"]):
        observer.schedule(recorder, str(root), recursive=True)
    with chromium(tmp_path / "profile", javascript=False) as context:
        page = context.new_page()
        page.goto(server["url"] + "/")
        assert "JavaScript is off" in page.text_content("noscript .mode")
        assert not page.is_visible("#mode")  # "Preparing encryption…" needs scripts
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        observer.start()
        try:
            page.click("#send-plain")
            page.wait_for_url("**/received", timeout=60_000)
            page.wait_for_selector("#receipt-heading")
            shown = page.text_content("#receipt")
        finally:
            observer.stop()
            observer.join()
    folders = {str(demo.data_dir), str(demo.data_dir / "blobs")}
    written = {
        Path(p).relative_to(demo.data_dir) if p.startswith(str(demo.data_dir)) else Path(p)
        for p in recorder.paths - folders
    }
    allowed_db = {"portal.sqlite3", "portal.sqlite3-journal"}
    for path in written:
        # .blobs-spares holds the empty files a blob is taken from (portal/storage/blobs.py)
        stored = path.parts[0] in {"blobs", ".blobs-spares"}
        assert stored or path.name in allowed_db, f"unexpected file {path}"
    assert not any(str(p).startswith(str(server["tmp"])) for p in recorder.paths)
    check_stored_report(demo, "server", shown)
    assert server_files_with_canary(demo, server) == []
    assert b"127.0.0.1" not in server["log"].read_bytes()
