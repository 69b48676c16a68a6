"""Nothing leaks from the desk: no socket but its listener, no report text on disk.

One whole session runs in Debian's Chromium, on a fresh profile inside the
test's folder, against a real ``reviewer desk`` under the audit hook of
tests/integration/desk_helpers.py: import through the page, search, a
report opened with its photo and its follow-up, triage, a team note, a
personal note, a reply, a redaction with a selection, a forward and an
export of the replies. Distinctive canaries stand in the narrative, the
follow-up, the identity section, the photo's file name, and in what the
reviewer types (notes and reply). Afterwards, with everything stopped:

* the audit hook saw no socket operation but the loopback listener's, no
  program started, and every file the desk wrote was one the reviewer
  asked for or the workspace's own;
* no canary is anywhere on disk in clear (as UTF-8, UTF-16 or URL-encoded):
  not in the workspace, the test's folder with the browser's profile, nor
  any file of the system's temporary folder written during the test. The
  narrative's canary was removed by the redaction, so even the batch does
  not hold it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crypto.keyfile import KeyBundle
from tests.integration.desk_helpers import DeskProcess, Session, desk_process, work_through
from tests.integration.desk_helpers import workspace_copy as copy_workspace
from tests.integration.reviewer_helpers import (
    PORTAL,
    followup_document,
    report_document,
    write_inbox,
)
from tests.integration.test_desk_report import gps_photo

#: letters no hexadecimal text, base32 token or base64 run is likely to spell by chance
_LETTERS = "ghjkmnpqrstvwxyz"
CHUNK = 8 * 1024 * 1024


def _canary() -> tuple[str, str]:
    """A canary (a word with a non-ASCII letter, a space, and a random core) and its core."""
    core = "".join(secrets.choice(_LETTERS) for _ in range(14))
    return f"Ærø {core}", core


@dataclass
class Finished:
    """A session that ran and stopped: where to look, and what the desk's audit saw."""

    canaries: dict[str, tuple[str, str]]
    roots: list[Path]
    started: float
    audit: dict[str, Any]
    workspace: Path
    asked: list[Path]  # folders the reviewer named: the batch's, the replies'


@pytest.fixture(scope="module")
def finished(
    workspace_template: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Finished:
    """The whole session in Chromium, with canaries; everything stopped afterwards."""
    from tests.integration.chromium import chromium

    started = time.time()
    root = tmp_path_factory.mktemp("desk-leaks")
    canaries = {kind: _canary() for kind in
                ("narrative", "followup", "identity", "file name", "team note", "personal note",
                 "reply")}  # fmt: skip
    text = {kind: value for kind, (value, _) in canaries.items()}
    narrative = f"Pirates boarded at dawn; the watchman {text['narrative']} saw them leave."
    photo = gps_photo()
    report = report_document(narrative, {"identity_vessel": text["identity"]},
                             [(f"{text['file name']}.jpg", "image/jpeg", photo)])  # fmt: skip
    followup = followup_document(f"They came back; {text['followup']} knows the skiff.")
    keys = reviewer_key_files[0][1]
    assert keys.encryption is not None
    inbox = root / "inbox.bundle"
    (report_id, _) = write_inbox(inbox, PORTAL, [keys.encryption.public],
                                 [(report, [photo]), (followup, [], 0)])  # fmt: skip
    options = copy_workspace(workspace_template, root / "ws", passphrase_file)
    asked = [root / "usb", root / "outbox"]
    for folder in asked:
        folder.mkdir()
    session = Session(
        inbox=inbox, reports=1, report=report_id, narrative=narrative, search=text["narrative"],
        select=text["narrative"], label="dawn boarding", team_note=f"Team: {text['team note']}",
        personal_note=f"Mine: {text['personal note']}", reply=f"Thanks. {text['reply']}",
        batch_folder=asked[0], replies_folder=asked[1],
    )  # fmt: skip
    with desk_process(options, root / "audit.json") as desk:
        _run(desk, root / "chromium-profile", session, text["followup"], chromium)
        code, err = desk.stop()
    assert code == 0, err
    return Finished(canaries, [root, Path(options[1])], started, desk.audit(),
                    Path(options[1]), asked)  # fmt: skip


def _run(desk: DeskProcess, profile: Path, session: Session, words: str, chromium: Any) -> None:
    with chromium(profile) as context:
        page = context.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        seen = work_through(page, desk.url, session)
        assert seen.batch.is_file()
        page.goto(f"{desk.url}report/{session.report}")  # the follow-up, read
        assert "knows the skiff" in page.locator("#conversation").inner_text()
        # a name the follow-up gave, typed as words to remove, and previewed: a POST whose
        # form data Chromium would keep on disk with the page it led to (desk/app.py)
        page.goto(f"{desk.url}report/{session.report}/redact")
        page.fill("#words-narrative", words)
        with page.expect_navigation():
            page.get_by_role("button", name="Preview the record").click()
        assert "/shown/" in page.url
        assert page.locator("pre.record").count() == 1
        page.go_back()
        page.go_forward()


def _needles(canaries: dict[str, tuple[str, str]]) -> dict[bytes, str]:
    """Each canary as bytes on disk might hold it: UTF-8, UTF-16-LE, URL-encoded; and its
    random core alone (a store that split the words would still hold that)."""
    found: dict[bytes, str] = {}
    for kind, (canary, core) in canaries.items():
        for form in (canary, core):
            found[form.encode()] = kind
            found[form.encode("utf-16-le")] = kind
        for encoded in (urllib.parse.quote(canary), urllib.parse.quote_plus(canary),
                        urllib.parse.quote(canary).lower()):  # fmt: skip
            found[encoded.encode()] = kind
    return found


def _files(roots: list[Path], since: float) -> Iterator[Path]:
    """Every regular file under the first roots, and those under the last modified since
    ``since`` (the system's temporary folder is shared with everything else)."""
    *whole, recent = roots
    seen: set[Path] = set()
    for top in [*whole, recent]:
        for folder, _, names in os.walk(top, onerror=lambda _: None):
            for name in names:
                path = Path(folder, name)
                try:
                    info = path.lstat()
                except OSError:
                    continue  # gone already
                if not path.is_file() or path.is_symlink() or path in seen:
                    continue
                if top is recent and max(info.st_mtime, info.st_ctime) < since:
                    continue
                seen.add(path)
                yield path


def _holds(path: Path, needles: dict[bytes, str]) -> list[str]:
    """Which canaries ``path`` holds (read in chunks that overlap by the longest needle)."""
    overlap = max(map(len, needles))
    found: set[str] = set()
    try:
        with path.open("rb") as data:
            tail = b""
            while chunk := data.read(CHUNK):
                window = tail + chunk
                found |= {kind for needle, kind in needles.items() if needle in window}
                tail = window[-overlap:]
    except OSError:
        return []  # unreadable to this user (another's file), or gone
    return sorted(found)


def test_no_canary_is_on_disk_after_a_whole_session(finished: Finished) -> None:
    needles = _needles(finished.canaries)
    # the search finds each form it looks for, across a chunk boundary too
    control = finished.roots[0] / "control"
    canary, _ = finished.canaries["reply"]
    for form in (canary.encode("utf-16-le"), urllib.parse.quote_plus(canary).encode()):
        control.write_bytes(b"x" * (CHUNK - 5) + form)
        assert _holds(control, needles) == ["reply"]
    control.unlink()
    roots = [*finished.roots, Path(tempfile.gettempdir())]
    found = {
        str(p): kinds for p in _files(roots, finished.started) if (kinds := _holds(p, needles))
    }
    assert found == {}


def test_the_desk_opened_no_socket_but_its_listener_and_wrote_only_what_was_asked(
    finished: Finished,
) -> None:
    audit = finished.audit
    assert audit["refused"] == []
    assert audit["binds"] == [["127.0.0.1", 0]]
    # the listener, its copy in werkzeug, and one per connection the browser opened
    assert audit["allowed"]["socket.bind"] == 1
    assert audit["allowed"]["socket.getaddrinfo"] == 1
    assert audit["allowed"]["socket.__new__"] >= 3
    assert set(audit["allowed"]) == {"socket.__new__", "socket.bind", "socket.getaddrinfo"}
    # werkzeug's server brings http.client (http.server imports it) and ssl (for https,
    # never used here); nothing that sends mail, fetches URLs or syncs
    assert set(audit["modules"]) <= {"socket", "ssl", "http.client"}
    places = [finished.workspace, *finished.asked]
    strays = [path for path in audit["writes"] if not any(
        Path(path).resolve().is_relative_to(place.resolve()) for place in places)]  # fmt: skip
    assert strays == []
    assert any(Path(path).suffix == ".jsonl" for path in audit["writes"])  # the batch
