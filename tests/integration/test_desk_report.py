"""The desk's report, redaction and forwarding pages, driven through the Flask test client.

A real workspace is filled by ``reviewer import`` from an inbox bundle built
the way the portal builds one, then the desk application (with its guard in
front, as the server has it) is asked for each page. Reports carry hostile
content in every place a sender controls: markup, event handlers, terminal
escapes, direction overrides, a narrative of the full 20,000 characters, file
names, a photo with GPS EXIF, a PDF with metadata and a file that cannot be
cleaned.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from crypto.batch import read_batch
from crypto.directory import sign_directory
from crypto.keys import SigningKeyPair
from reviewer_tool import redaction_flow as flow
from reviewer_tool.cli import main as reviewer
from reviewer_tool.desk import files
from reviewer_tool.desk.app import create_app
from reviewer_tool.team import directories
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE
from tests.integration.reviewer_helpers import (
    PORTAL,
    followup_document,
    report_document,
    write_inbox,
)

TOKEN = "report-test-" + "y" * 20
PORT = 48124  # the test client never listens; the guard only compares it
ORIGIN = f"http://127.0.0.1:{PORT}"
VESSEL = "Sextans Star"
HOSTILE = (
    '<script>alert(1)</script> "><img src=x onerror=alert(2)> \x1b[31mRED\x1b[0m \u202eevil\u202c '
)
LONG = (HOSTILE + "All quiet on deck. " * 1100)[:20_000]
PLAIN = (
    f"Robbers boarded the {VESSEL} (IMO 9074729) at Lagos anchorage at night and took"
    " paint. Captain Ahmed Bello raised the alarm."
)
HOSTILE_NAME = '"><img src=x onerror=alert(3)>.jpg'


def gps_photo() -> bytes:
    """A JPEG with a GPS position and a camera maker in its EXIF."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (6.0, 26.0, 30.0)}
    exif[0x010F] = "CANARY-CAMERA-MAKER"
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def pdf_with_author() -> bytes:
    out = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.docinfo["/Author"] = "CANARY-PDF-AUTHOR"
        pdf.save(out)
    return out.getvalue()


@dataclass
class Desk:
    """The test client, the workspace it serves, and the reports' ids."""

    app: Flask
    client: FlaskClient
    ws: Workspace
    ids: dict[str, str]

    def _path(self, path: str) -> str:
        return path if path.startswith(f"/{TOKEN}/") else f"/{TOKEN}/{path.lstrip('/')}"

    def get(self, path: str) -> Any:
        """GET a desk page as the desk's own page would."""
        return self.client.get(self._path(path), base_url=ORIGIN)

    def post(self, path: str, data: Any) -> Any:
        """POST a form from the desk's own page."""
        headers = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
        answer = self.client.post(self._path(path), data=data, base_url=ORIGIN, headers=headers)
        shown = answer.headers.get("Location", "")
        if answer.status_code == 303 and shown.startswith(f"/{TOKEN}/shown/"):
            return self.client.get(shown, base_url=ORIGIN)  # the page a POST is answered with
        return answer

    def record(self, name: str) -> dict[str, Any]:
        item = self.ws.report(self.ids[name])
        assert item is not None
        return item.record


@pytest.fixture
def desk(ws: list[str], recipient: bytes, tmp_path: Path) -> Iterator[Desk]:
    photo = gps_photo()
    files = [(HOSTILE_NAME, "image/jpeg", photo), ("notes.txt", "text/plain", b"plain words"),
             ("log.pdf", "application/pdf", pdf_with_author())]  # fmt: skip
    where = {"place_name": "<b>Apapa</b>\u202e", "latitude": 6.43, "longitude": 3.38}
    hostile = report_document(LONG, {"identity_contact": HOSTILE}, files, **where)
    plain = report_document(
        PLAIN, {"identity_vessel": VESSEL}, [("deck.jpg", "image/jpeg", photo)],
        place_name="Lagos anchorage", latitude=6.4321, longitude=3.3876,
    )  # fmt: skip
    twin = report_document("Paint stolen at night.", place_name="Lagos anchorage")
    later = followup_document(f"They came back. {HOSTILE}", [("skiff.jpg", "image/jpeg", photo)])
    entries = [(hostile, [photo, b"plain words", files[2][2]]), (plain, [photo]), (twin, []),
               (later, [photo], 0)]  # fmt: skip
    ids = write_inbox(tmp_path / "inbox", PORTAL, [recipient], entries)
    assert reviewer(["import", str(tmp_path / "inbox"), *ws]) == 0
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    app = create_app(workspace, TOKEN, port=PORT)
    names = dict(zip(("hostile", "plain", "twin", "followup"), ids, strict=True))
    yield Desk(app, app.test_client(), workspace, names)
    workspace.close()


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def inert(html: str) -> None:
    """No markup, handler or character the reporter sent acts on the page."""
    for tag, attrs in tags(html):
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").endswith((".js",)), attrs
        if tag == "img":
            assert "/preview/" in (attrs.get("src") or ""), attrs
    assert "<script>alert" not in html
    assert "\x1b" not in html
    assert "\u202e" not in html
    assert "\u202c" not in html


def test_every_page_renders_with_a_fixed_title(desk: Desk) -> None:
    report = desk.ids["hostile"]
    for path, title in [
        (f"report/{report}", "Report"),
        (f"report/{report}/redact", "Redact"),
        ("forward", "Forward"),
        ("import", "Import a bundle"),
        ("export", "Export replies"),
    ]:
        answer = desk.get(path)
        assert answer.status_code == 200, path
        html = answer.get_data(as_text=True)
        assert re.search(r"<title>(.*?)</title>", html).group(1) == f"{title} – Reviewer desk"  # type: ignore[union-attr]
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        for _, attrs in tags(html):
            if "action" in attrs:
                assert attrs.get("autocomplete") == "off"
    assert desk.get("report/" + "0" * 32).status_code == 404
    assert desk.get("report/not-an-id").status_code == 404


def test_hostile_report_content_is_escaped_and_inert(desk: Desk) -> None:
    for path in (f"report/{desk.ids['hostile']}", f"report/{desk.ids['hostile']}/redact"):
        html = desk.get(path).get_data(as_text=True)
        inert(html)
        assert "script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "U+001B" in html
        assert "U+202E" in html
    html = desk.get(f"report/{desk.ids['hostile']}").get_data(as_text=True)
    assert html.count("All quiet on deck.") == LONG.count("All quiet on deck.")  # all 20,000
    assert "Identity section: for reviewers only, never forwarded" in html
    assert "&lt;b&gt;Apapa&lt;/b&gt;" in html
    assert "They came back." in html  # the follow-up, escaped like the rest


def test_images_are_shown_only_as_cleaned_previews(desk: Desk) -> None:
    report = desk.ids["hostile"]
    html = desk.get(f"report/{report}").get_data(as_text=True)
    images = [attrs for tag, attrs in tags(html) if tag == "img"]
    assert [image["alt"] for image in images] == [
        "Photo 1 of the report", "Photo 1 of the follow-up of 2026-11-20"
    ]  # fmt: skip
    assert "&#34;&gt;&lt;img src=x onerror=alert(3)&gt;.jpg" in html  # the name, as text
    for image in images:
        answer = desk.get(str(image["src"]))
        assert answer.status_code == 200
        assert answer.mimetype == "image/jpeg"
        assert answer.headers["Content-Disposition"] == "inline"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "sandbox" in policy
        data = answer.get_data()
        assert b"CANARY-CAMERA-MAKER" not in data
        assert not Image.open(io.BytesIO(data)).getexif()  # no GPS, no EXIF at all
    # a file that is not an image is never shown: not as an image, not inline
    assert desk.get(f"report/{report}/preview/2").status_code == 404
    assert desk.get(f"report/{report}/preview/3").status_code == 404
    assert "Export file 2 as is, uncleaned" in html
    raw = desk.get(f"report/{report}/file/2/as-is")
    assert raw.mimetype == "application/octet-stream"
    assert raw.headers["Content-Disposition"].startswith("attachment;")
    assert raw.get_data() == b"plain words"
    assert desk.get(f"report/{report}/file/2").status_code == 400  # cannot be cleaned
    pdf = desk.get(f"report/{report}/file/3")
    assert pdf.mimetype == "application/octet-stream"
    assert (
        pdf.headers["Content-Disposition"]
        == f'attachment; filename="report-{report[:12]}-3-cleaned.pdf"'
    )
    assert b"CANARY-PDF-AUTHOR" not in pdf.get_data()
    assert "sandbox" in pdf.headers["Content-Security-Policy"]


def test_reading_a_report_marks_its_followups_read(desk: Desk) -> None:
    report = desk.ids["hostile"]
    assert "(new)" in desk.get(f"report/{report}").get_data(as_text=True)
    assert "(new)" not in desk.get(f"report/{report}").get_data(as_text=True)
    assert all(f.summary.get("read") for f in desk.ws.followups(report))


def changed(desk: Desk, path: str, data: dict[str, Any], done: str) -> str:
    """POST a change; it answers 303 back to the page with a fixed message; return the page."""
    answer = desk.post(path, data)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    location = answer.headers["Location"]
    assert location.startswith(f"/{TOKEN}/")
    assert f"done={done}" in location
    return str(desk.get(location).get_data(as_text=True))


def test_triage_labels_notes_assignment_links_and_reply(desk: Desk) -> None:
    plain, twin = desk.ids["plain"], desk.ids["twin"]
    base = f"report/{plain}"
    refused = desk.post(f"{base}/triage", {"status": "confirmed", "reliability": "B"})
    assert refused.status_code == 400
    assert "choose both parts of the grade" in refused.get_data(as_text=True)
    grade = {"status": "confirmed", "reliability": "B", "credibility": "2"}
    page = changed(desk, f"{base}/triage", grade, "triaged")
    assert "Triage saved." in page
    assert "source usually reliable, information probably true" in page
    assert desk.record("plain")["triage"]["grade"] == "B2"

    page = changed(desk, f"{base}/label", {"name": "paint theft", "present": "1"}, "labelled")
    assert desk.record("plain")["team"]["labels"] == ["paint theft"]
    changed(desk, f"{base}/label", {"name": "paint theft", "present": "0"}, "unlabelled")
    assert desk.record("plain")["team"]["labels"] == []

    changed(desk, f"{base}/note", {"kind": "team", "text": "Ask UKMTO <b>now</b>"}, "noted")
    page = changed(desk, f"{base}/note", {"kind": "personal", "text": "my own hunch"},
                   "noted-personal")  # fmt: skip
    assert "Ask UKMTO &lt;b&gt;now&lt;/b&gt;" in page
    assert "my own hunch" in page
    assert [n["text"] for n in desk.record("plain")["team"]["notes"]] == ["Ask UKMTO <b>now</b>"]

    assert "paint theft" not in desk.record("plain")["team"]["labels"]
    suggested = desk.get(base).get_data(as_text=True)
    assert twin[:12] in suggested
    assert "same place" in suggested
    changed(desk, f"{base}/link", {"other": twin, "present": "1"}, "linked")
    assert desk.record("plain")["team"]["links"] == [twin]
    changed(desk, f"{base}/link", {"other": twin, "present": "0"}, "unlinked")
    assert desk.record("plain")["team"]["links"] == []

    reply = {"message": "Thank you <i>very</i> much.", "status": "under-review"}
    page = changed(desk, f"{base}/reply", reply, "replied")
    assert "Thank you &lt;i&gt;very&lt;/i&gt; much." in page
    assert "The reporter sees: <strong>under-review</strong>" in page
    assert desk.ws.db.execute("SELECT count(*) FROM outgoing").fetchone()[0] == 1

    history = page[page.index('id="history"') :]
    for what in ("confirmed, graded B2", "label &#39;paint theft&#39; added", "team note",
                 "linked as duplicate of", "replied to the reporter"):  # fmt: skip
        assert what in history


def test_assignment_names_a_reviewer_of_the_key_directory(desk: Desk) -> None:
    base = f"report/{desk.ids['plain']}"
    refused = desk.post(f"{base}/assign", {"label": "ana"})
    assert refused.status_code == 400
    assert "no key directory" in refused.get_data(as_text=True)
    organisation = SigningKeyPair.generate()
    directories.pin_organisation(desk.ws, str(organisation.token))
    document = sign_directory(
        organisation,
        [("ana", desk.ws.identity.token, desk.ws.keys.signing.token)],
        serial=1, issued_at=datetime.now(UTC), valid_for=timedelta(days=30),
    )  # fmt: skip
    assert directories.store_directory(desk.ws, document) is not None
    page = desk.get(base).get_data(as_text=True)
    assert '<option value="ana">ana</option>' in page
    changed(desk, f"{base}/assign", {"label": "ana"}, "assigned")
    assert desk.record("plain")["team"]["assignee"] == "ana"
    changed(desk, f"{base}/assign", {"label": ""}, "assigned")
    assert desk.record("plain")["team"]["assignee"] is None


def confirm(desk: Desk, name: str) -> None:
    data = {"status": "confirmed", "reliability": "B", "credibility": "2"}
    changed(desk, f"report/{desk.ids[name]}/triage", data, "triaged")


def test_redaction_with_a_manual_redaction_then_a_forwarded_batch(
    desk: Desk, tmp_path: Path
) -> None:
    plain = desk.ids["plain"]
    confirm(desk, "plain")
    page = desk.get(f"report/{plain}/redact").get_data(as_text=True)
    marks = [attrs for tag, attrs in tags(page) if tag == "mark"]
    assert len(marks) >= 3  # the ship's name, its IMO number, the captain
    assert '<span class="visually-hidden">[identity-section value: </span>' in page
    accept = [attrs["value"] for tag, attrs in tags(page) if attrs.get("name") == "accept"]
    start = PLAIN.index("Lagos anchorage")
    form = {"accept": accept, "manual": f"narrative:{start}:{start + len('Lagos')}",
            "decimals": "1", "attachment": "1", "action": "preview"}  # fmt: skip
    preview = desk.post(f"report/{plain}/redact", form)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "The hard identity check passes" in html
    shown = html[html.index('<pre class="record"') :]
    assert "[redacted: manual] anchorage" in shown
    assert VESSEL not in shown
    assert desk.record("plain").get("redaction") is None  # a preview stores nothing

    answer = desk.post(f"report/{plain}/redact", {**form, "action": "save"})
    assert answer.status_code == 303
    assert "done=saved" in answer.headers["Location"]
    redaction = desk.record("plain")["redaction"]
    assert "[redacted: manual] anchorage" in redaction["fields"]["narrative"]
    assert (redaction["position_decimals"], redaction["attachments"]) == (1, [1])

    forward = desk.get("forward").get_data(as_text=True)
    assert plain[:12] in forward
    out = tmp_path / "media"
    out.mkdir()
    answer = desk.post("forward", {"report": plain, "folder": str(out)})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    result = desk.get(answer.headers["Location"]).get_data(as_text=True)
    fingerprint = desk.ws.keys.signing.token.fingerprint
    assert "Batch written" in result
    assert fingerprint in result
    (batch_file,) = out.glob("batch-*.jsonl")
    assert re.fullmatch(r"batch-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.jsonl", batch_file.name)
    assert str(batch_file) in result
    batch = read_batch(batch_file.read_bytes(), {desk.ws.keys.signing.token})
    ((_, record),) = batch.records
    assert record["position"]["decimals"] == 1
    assert VESSEL not in json.dumps(record)
    (attachment,) = batch.attachments
    data = (out / "attachments" / attachment.sha256).read_bytes()
    assert hashlib.sha256(data).hexdigest() == attachment.sha256
    assert b"CANARY-CAMERA-MAKER" not in data
    assert desk.record("plain")["forwarded"]["batch"] == batch.batch_id


def test_a_saved_redaction_shows_its_own_choices_again(desk: Desk) -> None:
    plain = desk.ids["plain"]
    page = desk.get(f"report/{plain}/redact").get_data(as_text=True)
    accept = [attrs["value"] for tag, attrs in tags(page) if attrs.get("name") == "accept"]
    assert len(accept) >= 3
    kept, dropped = accept[1:], accept[0]
    start = PLAIN.index("Lagos anchorage")
    form = {"accept": kept, "manual": f"narrative:{start}:{start + len('Lagos')}",
            "words-narrative": "anchorage", "decimals": "1", "action": "save"}  # fmt: skip
    assert desk.post(f"report/{plain}/redact", form).status_code == 303
    again = desk.get(f"report/{plain}/redact").get_data(as_text=True)
    boxes = {attrs["value"]: "checked" in attrs for tag, attrs in tags(again)
             if attrs.get("name") == "accept"}  # fmt: skip
    assert boxes == {value: value != dropped for value in accept}  # the rejection stayed
    manual = [attrs["value"] for tag, attrs in tags(again) if attrs.get("name") == "manual"]
    assert manual == [f"narrative:{start}:{start + len('Lagos')}"]
    words = [attrs for tag, attrs in tags(again) if attrs.get("name") == "words-narrative"]
    assert words[0]["value"] == "anchorage"
    # saving the page as it is shown again keeps the same redaction
    stored = desk.record("plain")["redaction"]
    resave = {"accept": kept, "manual": manual, "words-narrative": "anchorage", "decimals": "1",
              "action": "save"}  # fmt: skip
    assert desk.post(f"report/{plain}/redact", resave).status_code == 303
    assert desk.record("plain")["redaction"]["fields"] == stored["fields"]


def test_stored_choices_never_offer_less_removal_and_bad_shapes_are_dropped(desk: Desk) -> None:
    plain = desk.ids["plain"]
    page = desk.get(f"report/{plain}/redact").get_data(as_text=True)
    accept = [attrs["value"] for tag, attrs in tags(page) if attrs.get("name") == "accept"]
    assert (
        desk.post(f"report/{plain}/redact", {"accept": accept, "action": "save"}).status_code == 303
    )
    item = desk.ws.report(plain)
    choices = item.record["redaction"]["choices"]
    # a span accepted then that the detector does not suggest now (a later detector, say)
    start = PLAIN.index("Lagos")
    choices["accepted"].append(["narrative", start, start + len("Lagos")])
    # and entries no Save writes: each is skipped, none is a 500
    choices["rejected"] += [["narrative", [99], 110, "person"], 5, ["x", True, 3, "k"]]
    choices["manual"] += [7, "narrative:-1:4", "nowhere:1:2", "narrative:5:999999"]
    choices["words"] = {"narrative": ["not", "text"], "nowhere": "x"}
    flow.store_redaction(desk.ws, item, item.record["redaction"])
    again = desk.get(f"report/{plain}/redact")
    assert again.status_code == 200
    html = again.get_data(as_text=True)
    manual = [attrs["value"] for tag, attrs in tags(html) if attrs.get("name") == "manual"]
    assert manual == [f"narrative:{start}:{start + len('Lagos')}"]  # back, as a selection
    checked = [attrs["value"] for tag, attrs in tags(html)
               if attrs.get("name") == "accept" and "checked" in attrs]  # fmt: skip
    assert checked == accept
    for shape in (5, {"rejected": 5}, {"manual": 7}, {"words": 3}, {"rejected": [[1, 2, 3, 4]]}):
        item.record["redaction"]["choices"] = shape
        flow.store_redaction(desk.ws, item, item.record["redaction"])
        assert desk.get(f"report/{plain}/redact").status_code == 200, shape


def test_typed_words_are_one_line_as_the_box_holds_them(desk: Desk) -> None:
    plain = desk.ids["plain"]
    form = {"words-narrative": "Lagos\r\nanchorage", "action": "save"}
    assert desk.post(f"report/{plain}/redact", form).status_code == 303
    assert desk.record("plain")["redaction"]["choices"]["words"] == {"narrative": "Lagosanchorage"}


def test_the_hard_check_refuses_naming_the_field(desk: Desk, tmp_path: Path) -> None:
    plain = desk.ids["plain"]
    confirm(desk, "plain")
    # every suggestion rejected: the ship's name stays in the narrative
    form = {"decimals": "2", "action": "preview"}
    html = desk.post(f"report/{plain}/redact", form).get_data(as_text=True)
    assert "The hard identity check refuses this record." in html
    assert "What happened, in the reporter&#39;s words (<code>narrative</code>)" in html
    assert '<pre class="record"' not in html
    assert desk.post(f"report/{plain}/redact", {**form, "action": "save"}).status_code == 303
    out = tmp_path / "media"
    out.mkdir()
    refused = desk.post("forward", {"report": plain, "folder": str(out)})
    assert refused.status_code == 400
    message = refused.get_data(as_text=True)
    assert "still holds an identity-section value" in message
    assert "in narrative" in message
    assert list(out.iterdir()) == []  # nothing written
    assert "forwarded" not in desk.record("plain")


def test_refusals_write_nothing(desk: Desk, tmp_path: Path) -> None:
    plain = desk.ids["plain"]
    confirm(desk, "plain")
    bad = desk.post(f"report/{plain}/redact", {"manual": "narrative:5:999999", "action": "save"})
    assert bad.status_code == 400
    assert "not inside the field" in bad.get_data(as_text=True)
    assert desk.record("plain").get("redaction") is None
    form = {"accept": [], "words": "", "decimals": "2", "action": "save"}
    accept = [f"narrative:{n}" for n in range(10)]
    desk.post(f"report/{plain}/redact", {**form, "accept": accept})
    for folder, why in [(tmp_path / "absent", "not an existing folder"),
                        (Path("relative"), "starting with /")]:  # fmt: skip
        answer = desk.post("forward", {"report": plain, "folder": str(folder)})
        assert answer.status_code == 400
        assert why in answer.get_data(as_text=True)
    assert not (tmp_path / "absent").exists()
    assert desk.post("forward", {"folder": str(tmp_path)}).status_code == 400  # none chosen


def test_import_and_export_by_path(desk: Desk, recipient: bytes, tmp_path: Path) -> None:
    inbox = tmp_path / "second-inbox"
    write_inbox(inbox, PORTAL, [recipient], [(report_document("Another one."), [])],
                cursor_from=4)  # fmt: skip
    answer = desk.post("import", {"path": str(inbox)})
    assert answer.status_code == 303
    page = desk.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Bundle imported" in page
    assert "<dt>New reports</dt><dd>1</dd>" in page
    assert desk.post("import", {"path": str(tmp_path / "none")}).status_code == 400

    changed(desk, f"report/{desk.ids['plain']}/reply", {"message": "Noted."}, "replied")
    out = tmp_path / "carry"
    out.mkdir()
    answer = desk.post("export", {"path": str(out)})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    (bundle,) = out.glob("replies-*.bundle")
    page = desk.get(answer.headers["Location"]).get_data(as_text=True)
    assert str(bundle) in page
    assert "<dt>Replies</dt><dd>1</dd>" in page
    again = desk.post("export", {"path": str(bundle)})
    assert again.status_code == 400
    assert "exists" in again.get_data(as_text=True)


# --- found by the outside review: files that hang a page, a page that fails, digits ------


@contextmanager
def desk_of(ws: list[str], recipient: bytes, folder: Path, entries: list[Any]) -> Iterator[Desk]:
    """A desk over the workspace after importing ``entries`` (write_inbox's)."""
    ids = write_inbox(folder / "inbox", PORTAL, [recipient], entries)
    assert reviewer(["import", str(folder / "inbox"), *ws]) == 0
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    app = create_app(workspace, TOKEN, port=PORT)
    try:
        yield Desk(app, app.test_client(), workspace, {str(n): i for n, i in enumerate(ids)})
    finally:
        workspace.close()


def huge_png(side: int) -> bytes:
    """A small file that decodes to ``side`` × ``side`` pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_no_page_decodes_an_image_and_a_huge_one_is_only_exported(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page reads only the files' headers: 17 small bombs kept the desk busy for a minute
    a page. An image over the budget is not previewed; its cleaned copy can be exported."""
    calls: list[str] = []
    real = files.clean_attachment

    def counted(*args: Any, **options: Any) -> tuple[str, bytes]:
        calls.append(args[1])
        return real(*args, **options)

    monkeypatch.setattr(files, "clean_attachment", counted)
    bomb, photo = huge_png(7000), gps_photo()  # 49 megapixels in a file of a few kilobytes
    attached = [("bomb.png", "image/png", bomb), ("deck.jpg", "image/jpeg", photo)]
    entries = [(report_document("Boarded.", attachments=attached), [bomb, photo])]
    with desk_of(ws, recipient, tmp_path, entries) as desk:
        report = desk.ids["0"]
        html = " ".join(desk.get(f"report/{report}").get_data(as_text=True).split())
        redact = " ".join(desk.get(f"report/{report}/redact").get_data(as_text=True).split())
        assert calls == []  # neither page cleaned (so decoded) anything
        assert "It is too large to preview here (49 megapixels; the desk previews up to 40)" in html
        assert "too large to preview here (49 megapixels)" in redact
        assert [a["alt"] for tag, a in tags(html) if tag == "img"] == ["Photo 2 of the report"]
        refused = desk.get(f"report/{report}/preview/1")
        assert refused.status_code == 400
        assert "too large to preview (49 megapixels)" in refused.get_data(as_text=True)
        assert calls == []
        assert desk.get(f"report/{report}/preview/2").status_code == 200
        assert desk.get(f"report/{report}/preview/2").status_code == 200
        assert len(calls) == 1  # cleaned when first shown, then kept


def test_an_image_over_the_budget_can_still_be_exported_cleaned(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "PREVIEW_PIXELS", 100)  # the 16 × 16 photo is over it
    photo = gps_photo()
    entries = [(report_document("x", attachments=[("d.jpg", "image/jpeg", photo)]), [photo])]
    with desk_of(ws, recipient, tmp_path, entries) as desk:
        report = desk.ids["0"]
        html = desk.get(f"report/{report}").get_data(as_text=True)
        assert "Download the cleaned copy of photo 1" in html
        assert "too large to preview" in html
        exported = desk.get(f"report/{report}/file/1")
        assert exported.status_code == 200
        assert b"CANARY-CAMERA-MAKER" not in exported.get_data()


def test_cleaned_copies_kept_in_memory_are_bounded_by_bytes(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = []
    for shade in range(4):
        out = io.BytesIO()
        Image.effect_noise((64, 64), 40 + shade).convert("RGB").save(out, "PNG")
        photos.append(out.getvalue())
    one = len(files.clean_attachment("x", "image/png", photos[0])[1])
    monkeypatch.setattr(files, "KEPT_BYTES", one * 2 + one // 2)
    attached = [(f"p{n}.png", "image/png", data) for n, data in enumerate(photos)]
    entries = [(report_document("Boarded.", attachments=attached), photos)]
    with desk_of(ws, recipient, tmp_path, entries) as desk:
        for position in range(1, 5):
            assert desk.get(f"report/{desk.ids['0']}/preview/{position}").status_code == 200
            kept = desk.app.extensions["desk_cleaned"]
            assert sum(len(copy) for copy in kept.values()) <= files.KEPT_BYTES
        assert len(kept) == 2


def test_a_file_that_fails_to_clean_when_shown_is_offered_as_is_from_then_on(
    ws: list[str], recipient: bytes, tmp_path: Path
) -> None:
    broken = gps_photo()[:-200]  # its header reads; its pixels do not
    entries = [(report_document("x", attachments=[("a.jpg", "image/jpeg", broken)]), [broken])]
    with desk_of(ws, recipient, tmp_path, entries) as desk:
        report = desk.ids["0"]
        assert desk.get(f"report/{report}/preview/1").status_code == 404
        html = desk.get(f"report/{report}").get_data(as_text=True)
        assert "this file cannot be cleaned (the JPEG image could not be read)" in html
        assert "Export file 1 as is, uncleaned" in html


def test_the_redaction_page_names_what_a_file_name_holds(
    ws: list[str], recipient: bytes, tmp_path: Path
) -> None:
    """It answered 500: Jinja's map takes a filter's name, not a function."""
    photo = gps_photo()
    names = [f"{VESSEL} deck.jpg", "call +234 803 555 0199.jpg", "deck.jpg"]
    identity = {"identity_vessel": VESSEL}
    entries = [(report_document("Boarded.", identity, [(name, "image/jpeg", photo)]), [photo])
               for name in names]  # fmt: skip
    with desk_of(ws, recipient, tmp_path, entries) as desk:
        pages = [desk.get(f"report/{desk.ids[str(n)]}/redact") for n in range(3)]
        assert [page.status_code for page in pages] == [200, 200, 200]
        said = [
            re.findall(r"Its file name holds: ([^.]*)\.", p.get_data(as_text=True)) for p in pages
        ]
        assert said == [["identity-section value"], ["phone number"], []]


@pytest.mark.parametrize(
    ("name", "value"),
    [("accept", "narrative:²"), ("manual", "narrative:0:²"), ("manual", "narrative:٣:5"),
     ("attachment", "²"), ("attachment", "1" * 5000)],
)  # fmt: skip
def test_numbers_in_the_redaction_form_are_ascii_digits_or_a_400(
    desk: Desk, name: str, value: str
) -> None:
    form = {"decimals": "2", "action": "preview", name: value}
    answer = desk.post(f"report/{desk.ids['plain']}/redact", form)
    assert answer.status_code == 400, answer.get_data(as_text=True)
