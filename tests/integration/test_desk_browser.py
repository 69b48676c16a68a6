"""One reviewer's whole session in Debian's Chromium, against a real ``reviewer desk``.

The desk starts over a workspace made by ``reviewer init``, with no report
in it; everything else happens in the browser, with the keyboard where the
desk has shortcuts: the bundle is imported through the import page, a word
searched, the report with a photo opened, confirmed and graded on the two
scales, labelled, noted, answered, redacted with one selection made with
the mouse, and forwarded with its photo to a folder. What leaves is then
checked by those who receive it: the batch verifies, ``incident-db ingest``
takes it, the selected words are not in it and the photo is cleaned. The
hard identity check refuses a report whose vessel was left in its text,
naming the field, and a page on another loopback port cannot change
anything, whatever it tries. Every page is checked with axe-core on the way
(tests/integration/test_desk_shell.py and test_desk_report_browser.py
check the empty pages and the keyboard on their own).
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crypto.batch import read_batch
from crypto.keyfile import KeyBundle
from tests.conftest import ROOT
from tests.integration.desk_helpers import (
    DeskProcess,
    Seen,
    Session,
    desk_process,
    work_through,
    workspace_copy,
)
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox
from tests.integration.test_desk_report import gps_photo

SHIP = "Sextans Star"
#: the photo report's narrative: its vessel (from the identity section), a word to search,
#: and words the reviewer selects to remove
NARRATIVE = (
    f"Robbers in a skiff boarded the {SHIP} at the outer anchorage and took mooring ropes. "
    "The bosun chased them towards the Kwale jetty with a longboat."
)
SELECTED = "Kwale jetty"
#: a second report that names its vessel; the reviewer keeps the name in (the hard check)
KEPT_SHIP = "Mariner Quest"
KEPT = f"Armed men approached the {KEPT_SHIP} from a fishing boat; the master raised the alarm."
#: the bundle's reports, in order
NAMES = ("photo", "kept", "stowaway", "skiffs")


@dataclass
class Desk:
    """The running desk, its browser, the reports' ids and the test's folder."""

    process: DeskProcess
    browser: Any
    ids: dict[str, str]
    root: Path
    signer: str
    photo: bytes


@pytest.fixture(scope="module")
def desk(
    workspace_template: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Desk]:
    """An empty workspace's desk, an inbox bundle beside it, and Chromium."""
    from tests.integration.chromium import launched

    root = tmp_path_factory.mktemp("desk-e2e")
    options = workspace_copy(workspace_template, root / "ws", passphrase_file)
    keys = reviewer_key_files[0][1]
    assert keys.encryption is not None
    photo = gps_photo()
    documents = [
        report_document(NARRATIVE, {"identity_vessel": SHIP}, [("deck.jpg", "image/jpeg", photo)],
                        place_name="Bonny", latitude=4.43, longitude=7.17),
        report_document(KEPT, {"identity_vessel": KEPT_SHIP}),
        report_document("Stowaway found in the rudder trunk after departure."),
        report_document("Two skiffs approached at dusk and turned away."),
    ]  # fmt: skip
    ids = write_inbox(root / "inbox.bundle", PORTAL, [keys.encryption.public],
                      [(documents[0], [photo]), *((d, []) for d in documents[1:])])  # fmt: skip
    with desk_process(options, root / "audit.json") as process, launched() as browser:
        yield Desk(process, browser, dict(zip(NAMES, ids, strict=True)),
                   root, str(keys.signing.token), photo)  # fmt: skip


def _page(desk: Desk) -> tuple[Any, Any, list[str]]:
    context = desk.browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return context, page, problems


def _ingest(desk: Desk, batch: Path, attachments: Path) -> subprocess.CompletedProcess[str]:
    """``incident-db ingest`` as a real process, into a fresh SQLite database."""
    trusted = desk.root / "trusted-reviewers.txt"
    trusted.write_text(f"{desk.signer}  # the desk's reviewer\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "incident_db", "ingest", str(batch), "--trusted", str(trusted),
         "--db", f"sqlite:///{desk.root / 'incidents.sqlite3'}",
         "--attachments", str(attachments)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_one_reviewers_whole_session_ends_in_a_batch_the_database_takes(desk: Desk) -> None:
    from tests.integration.axe import describe

    folder = desk.root / "usb"
    folder.mkdir()
    session = Session(
        inbox=desk.root / "inbox.bundle", reports=4, report=desk.ids["photo"],
        narrative=NARRATIVE, search="longboat", select=SELECTED, label="night boarding",
        team_note="Same skiff as last week's report, I think.",
        personal_note="Ask the desk officer about the jetty.",
        reply="Thank you. We are looking into it.", batch_folder=folder, look=True,
    )  # fmt: skip
    context, page, problems = _page(desk)
    seen: Seen = work_through(page, desk.process.url, session)
    context.close()
    assert problems == []
    assert seen.axe == {}, "\n".join(f"{name}:\n{describe(v)}" for name, v in seen.axe.items())

    # the photo as the browser received it: the pixels, without EXIF, GPS or maker
    assert b"Exif" in desk.photo
    assert b"CANARY-CAMERA-MAKER" in desk.photo
    assert Image.open(io.BytesIO(seen.photo)).size == (16, 16)
    assert not Image.open(io.BytesIO(seen.photo)).getexif()
    assert b"Exif" not in seen.photo
    assert b"CANARY-CAMERA-MAKER" not in seen.photo

    assert seen.batch.parent == folder
    data = seen.batch.read_bytes()
    from crypto.keys import parse_public_key

    batch = read_batch(data, {parse_public_key(desk.signer)})
    ((_, record),) = batch.records
    assert record["verification"] == {"status": "confirmed", "grade": "B2"}
    assert record["narrative"] == (
        "Robbers in a skiff boarded the [redacted: identity] at the outer anchorage and took "
        "mooring ropes. The bosun chased them towards the [redacted: manual] with a longboat."
    )
    assert SELECTED.encode() not in data
    assert b"Kwale" not in data
    assert SHIP.encode() not in data
    for private in ("Same skiff", "desk officer", "looking into it", "night boarding", "deck.jpg"):
        assert private.encode() not in data  # notes, replies, labels, file names stay
    (entry,) = batch.attachments
    (cleaned,) = (folder / "attachments").iterdir()
    assert cleaned.name == entry.sha256
    assert cleaned.read_bytes() == seen.photo  # the copy the reviewer looked at
    assert entry.media_type == "image/jpeg"

    done = _ingest(desk, seen.batch, folder / "attachments")
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout
    assert "1 attachment(s) stored" in done.stdout


def test_the_hard_check_refuses_a_kept_vessel_name_and_writes_nothing(desk: Desk) -> None:
    from tests.integration.axe import describe, violations

    report, folder = desk.ids["kept"], desk.root / "refused"
    folder.mkdir()
    url = desk.process.url
    context, page, problems = _page(desk)
    page.goto(f"{url}report/{report}")
    page.check("#status-confirmed")
    page.check("#reliability-C")
    page.check("#credibility-3")
    with page.expect_navigation():
        page.get_by_role("button", name="Save triage").click()
    page.goto(f"{url}report/{report}/redact")
    (vessel,) = [box for box in page.locator("input[name=accept]").all()
                 if KEPT_SHIP in page.locator(f"label[for='{box.get_attribute('id')}']")
                 .inner_text()]  # fmt: skip
    vessel.uncheck()  # the reviewer rejects the suggestion: the name stays in
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the record").click()
    refused = page.locator(".refused[role=alert]").inner_text()
    assert "The hard identity check refuses this record" in refused
    assert "What happened, in the reporter's words (narrative)" in " ".join(refused.split())
    assert page.locator("pre.record").count() == 0
    found = {"redact refused": violations(page)}
    with page.expect_navigation():
        page.get_by_role("button", name="Save redaction").click()

    page.goto(url + "forward")
    for box in page.locator("input[name=report]").all():
        box.uncheck()
    page.check(f"#report-{report}")
    page.fill("#folder", str(folder))
    with page.expect_navigation():
        page.get_by_role("button", name="Sign and write the batch").click()
    error = page.locator("p.error[role=alert]").inner_text()
    assert error.startswith(f"refused: report {report[:12]} still holds an identity-section value")
    assert "in narrative;" in error
    assert error.endswith("Nothing written.")
    found["forward refused"] = violations(page)
    assert page.is_checked(f"#report-{report}")  # the choice is kept for another try
    context.close()
    assert list(folder.iterdir()) == []
    status, body = desk.process.request("GET", f"{desk.process.path}report/{report}")
    assert status == 200
    assert b"<dt>Forwarded</dt><dd>not yet</dd>" in body
    # the refusal is a 400 page, which Chromium notes; nothing else went wrong
    assert problems == ["Failed to load resource: the server responded with a status of 400 "
                        "(BAD REQUEST)"]  # fmt: skip
    found = {name: v for name, v in found.items() if v}
    assert found == {}, "\n".join(f"{name}:\n{describe(v)}" for name, v in found.items())


#: a page on another loopback port that tries to change the desk: a script's fetch and a
#: form posted by the page itself, each with and without the desk's token (the worst case:
#: the token has leaked to that page)
EVIL = """<!doctype html><html lang="en"><head><title>elsewhere</title></head><body>
<form id="post" method="post" action="{target}"><input name="kind" value="team">
<input name="text" value="{marker} by form"></form>
<script>
const tries = [{targets}].map((target) => fetch(target, {{
  method: "POST", mode: "no-cors", body: new URLSearchParams({{kind: "team", text: "{marker}"}}),
}}).then(() => "sent", (error) => String(error)));
Promise.all(tries).then((results) => {{
  document.title = "fetched " + results.join(",");
  document.getElementById("post").submit();
}});
</script></body></html>"""


class _Elsewhere(BaseHTTPRequestHandler):
    """Serves one page (``html``, set by the test) for every GET."""

    html = b""

    def do_GET(self) -> None:  # the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_a_page_on_another_loopback_port_changes_nothing(desk: Desk) -> None:
    report, process = desk.ids["skiffs"], desk.process
    marker = "ELSEWHERE-" + secrets.token_hex(4)
    origin = f"http://127.0.0.1:{process.port}"
    with_token = f"{origin}{process.path}report/{report}/note"
    targets = [with_token, f"{origin}/report/{report}/note",
               f"{origin}/{'A' * 32}/report/{report}/note"]  # fmt: skip
    _Elsewhere.html = EVIL.format(
        target=with_token, targets=", ".join(json.dumps(t) for t in targets), marker=marker
    ).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Elsewhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context, page, _ = _page(desk)
    # what the browser sent to the desk (the fetches' answers it keeps from the page: the
    # desk's Cross-Origin-Resource-Policy blocks them even in no-cors mode)
    sent: list[tuple[str, str]] = []
    page.on("request", lambda r: sent.append((r.method, r.url)) if r.url.startswith(origin)
            else None)  # fmt: skip
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_url(with_token)  # the form's post: a top-level navigation to the desk
        assert page.locator("body").inner_text().strip() == "Forbidden"
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert sorted(sent) == sorted(("POST", target) for target in [*targets, with_token])
    # a program on this computer fares no better, token or not, unless it says it is the desk
    note = {"kind": "team", "text": marker}
    for path, headers in [
        (f"/report/{report}/note", {}),
        (f"/{'A' * 32}/report/{report}/note", {}),
        (f"{process.path}report/{report}/note", {"Origin": "http://evil.example"}),
        (f"{process.path}report/{report}/note", {"Sec-Fetch-Site": "cross-site"}),
        (f"{process.path}report/{report}/note", {"Origin": "null", "Sec-Fetch-Site": "same-site"}),
        (f"{process.path}report/{report}/note", {"Host": f"localhost:{process.port}"}),
    ]:
        assert process.request("POST", path, note, **headers)[0] == 403, (path, headers)
    status, body = process.request("GET", f"{process.path}report/{report}")
    assert status == 200
    assert marker.encode() not in body
    assert b"No team notes yet." in body
    assert b"Nobody has worked on this report yet." in body


def test_the_desk_process_opened_no_socket_but_its_listener(desk: Desk) -> None:
    """Last in this module: stop the desk that served every test above, read its audit."""
    code, err = desk.process.stop()
    assert code == 0, err
    audit = desk.process.audit()
    assert audit["refused"] == []
    assert audit["binds"] == [["127.0.0.1", 0]]
    assert set(audit["allowed"]) == {"socket.__new__", "socket.bind", "socket.getaddrinfo"}
