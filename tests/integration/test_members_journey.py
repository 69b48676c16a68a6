"""Issue 16's "done when", end to end: a reviewer's photo reaches a CSO's printed voyage brief.

Every step runs the real thing: the `reviewer` CLI imports a portal bundle
holding a report with a GPS-tagged photo, triages it, redacts it choosing
the photo (which it cleans), and forwards a signed batch with the cleaned
file beside it; `incident-db ingest --trusted --attachments` takes it in;
`incident-db members invite` makes a link; `incident-db serve` runs
gunicorn; Chromium with a virtual authenticator joins with a passkey, finds
the place, opens the incident and sees the photo, then makes a voyage brief
with that place and prints it to an A4 PDF that names the place on its
summary page and its call page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pikepdf
import pytest
from PIL import Image

from crypto.keys import parse_public_key
from incident_db.demo import demo_photo
from tests.integration.chromium import chromium
from tests.integration.portal_server import free_port, stop_server, wait_until_listening
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox
from tests.integration.test_reviewer_cli import _Terminal, run

PLACE = "Bonny River anchorage"
SHOTS = Path("/tmp/h16/shots")
LINK = re.compile(r"^(http://localhost:\d+/join/\S+)$", re.MULTILINE)


def camera_photo() -> bytes:
    """A 480×270 JPEG as a phone takes it: the camera's maker and where it was, in EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "CANARY-CAMERA-MAKER"
    exif[0x8825] = {1: "N", 2: (4.0, 25.0, 12.0), 3: "E", 4: (7.0, 9.0, 0.0)}
    out = io.BytesIO()
    with Image.open(io.BytesIO(demo_photo())) as drawing:
        drawing.convert("RGB").save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def _incident_db(database: str, *args: str | Path, cwd: Path) -> str:
    """Run `incident-db` as an operator would; its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    done = subprocess.run(
        [sys.executable, "-m", "incident_db", "--db", database, *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def forwarded(
    ws: list[str], recipient: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, Path]:  # fmt: skip
    """The reviewer's side: a signed batch, its cleaned photo, and a trusted-reviewers file."""
    photo = camera_photo()
    assert b"CANARY-CAMERA-MAKER" in photo
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=12)).date()
    document = report_document(
        "Three robbers boarded at the forecastle and took two mooring ropes.", {},
        [("deck.jpg", "image/jpeg", photo)], place_name=PLACE, latitude=4.42, longitude=7.15,
        incident_local_time=f"{day.isoformat()}T03:10", incident_utc_offset="+01:00",
    )  # fmt: skip
    (item,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [photo])])
    assert run("import", tmp_path / "inbox", *ws) == 0
    assert run("triage", item, "--status", "confirmed", "--grade", "B2", *ws) == 0
    assert run("redact", item, "--accept-suggestions", "--coarsen", "2", *ws) == 0
    asked: list[str] = []

    def answer(prompt: str = "") -> str:
        """Forward the photo, cleaned; no words of our own to remove from any field."""
        asked.append(prompt)
        return "y" if "forward attachment" in prompt else ""

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert run("redact", item, "--coarsen", "2", *ws) == 0
    assert sum("forward attachment 1" in q for q in asked) == 1
    files = tmp_path / "files"
    assert run("forward", "--out", tmp_path / "batch.jsonl", "--attachments-dir", files, *ws) == 0
    capsys.readouterr()
    assert run("pubkey", *ws) == 0
    signing = capsys.readouterr().out.split()[1]
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(f"{parse_public_key(signing)}\n", encoding="utf-8")
    return {"batch": tmp_path / "batch.jsonl", "files": files, "trusted": trusted}


@pytest.fixture
def served(forwarded: dict[str, Path], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The operator's side: ingest, invite a CSO, serve; the service's URL and the link."""
    database = f"sqlite:///{tmp_path / 'incidents.sqlite3'}"
    said = _incident_db(database, "ingest", forwarded["batch"], "--trusted", forwarded["trusted"],
                        "--attachments", forwarded["files"], cwd=tmp_path)  # fmt: skip
    assert "1 added" in said
    assert "1 attachment(s) stored" in said
    port = free_port()
    url = f"http://localhost:{port}"
    invited = _incident_db(database, "members", "invite", "cso@example.org", "--role", "member",
                           "--base-url", url, cwd=tmp_path)  # fmt: skip
    link = LINK.search(invited)
    assert link, invited
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    with (tmp_path / "serve.out").open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "incident_db", "--db", database, "serve", "--port", str(port),
             "--workers", "1"],
            cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            yield {"url": url, "link": link.group(1), "database": tmp_path / "incidents.sqlite3"}
        finally:
            stop_server(process)


def _join(context: Any, page: Any, link: str) -> None:
    """Sign up with a passkey on Chromium's virtual authenticator, as a phone would."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
    }})  # fmt: skip
    page.goto(link)
    page.click("#passkey-create")
    page.wait_for_selector("#recovery-codes:not([hidden])", timeout=20_000)
    page.click("#continue")
    page.wait_for_selector("#incident-count")


def _unicode_map(font: Any) -> dict[bytes, str]:
    """A font's ToUnicode CMap: character code (as bytes) → text."""
    found: dict[bytes, str] = {}
    if "/ToUnicode" not in font:
        return found
    cmap = font.ToUnicode.read_bytes().decode("latin-1")

    def text(hexdigits: str) -> str:
        return bytes.fromhex(hexdigits).decode("utf-16-be")

    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, value in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            found[bytes.fromhex(code)] = text(value)
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for low, high, rest in re.findall(
            r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])", block
        ):
            width, start, end = len(low) // 2, int(low, 16), int(high, 16)
            values = re.findall(r"<([0-9A-Fa-f]+)>", rest)
            for offset, code in enumerate(range(start, end + 1)):
                if rest.startswith("["):
                    value = text(values[offset])
                else:
                    first = text(values[0])
                    value = first[:-1] + chr(ord(first[-1]) + offset)
                found[code.to_bytes(width, "big")] = value
    return found


def _decode(data: bytes, cmap: dict[bytes, str]) -> str:
    width = len(next(iter(cmap))) if cmap else 1
    return "".join(cmap.get(data[i : i + width], "") for i in range(0, len(data), width))


def _page_text(page: Any) -> str:
    """The text a PDF page draws (Tj/TJ through each font's ToUnicode map), in stream order,
    without white space (Chromium places glyphs one by one, so spaces are not reliable)."""
    out: list[str] = []

    def walk(container: Any, resources: Any) -> None:
        fonts = resources.get("/Font", {})
        cmap: dict[bytes, str] = {}
        for operands, operator in pikepdf.parse_content_stream(container):
            name = str(operator)
            if name == "Tf":
                cmap = _unicode_map(fonts[operands[0]])
            elif name in ("Tj", "'", '"'):
                out.append(_decode(bytes(operands[-1]), cmap))
            elif name == "TJ":
                out.append("".join(_decode(bytes(p), cmap) for p in operands[0]
                                   if isinstance(p, pikepdf.String)))  # fmt: skip
            elif name == "Do":
                xobject = resources.XObject[operands[0]]
                if xobject.Subtype == "/Form":
                    walk(xobject, xobject.get("/Resources", resources))

    walk(page, page.Resources)
    return re.sub(r"\s+", "", "".join(out))


def test_a_reviewers_photo_reaches_a_printed_voyage_brief(
    served: dict[str, Any], forwarded: dict[str, Path], tmp_path: Path
) -> None:
    url = served["url"]
    (cleaned,) = forwarded["files"].iterdir()
    assert b"CANARY-CAMERA-MAKER" not in cleaned.read_bytes()  # the reviewer tool cleaned it
    with sqlite3.connect(served["database"]) as db:
        ((incident_id, sha256),) = db.execute(
            "SELECT incident_id, sha256 FROM incident_attachment"
        ).fetchall()
    assert sha256 == cleaned.name == hashlib.sha256(cleaned.read_bytes()).hexdigest()
    elsewhere: list[str] = []
    problems: list[str] = []
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.on("request", lambda r: r.url.startswith(url + "/") or elsewhere.append(r.url))
        page.on("pageerror", lambda e: problems.append(str(e)))
        _join(context, page, served["link"])

        # find the place by a spelling of its own, and its incident
        page.goto(url + "/places?q=" + quote("bonny river"))
        page.locator("#results a", has_text=PLACE).click()
        page.wait_for_selector("h1")
        assert PLACE in page.text_content("h1")
        page.locator(f"a[href='/incidents/{incident_id}']").first.click()
        page.wait_for_url(f"{url}/incidents/{incident_id}")

        # the photo loads: bytes the browser could decode, the cleaned file itself
        photo = page.locator(f"img[src='/attachments/{sha256}']")
        photo.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=photo.element_handle()
        )
        assert photo.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [480, 270]
        served_photo = page.request.get(f"{url}/attachments/{sha256}")
        assert served_photo.body() == cleaned.read_bytes()
        with Image.open(io.BytesIO(served_photo.body())) as shown:
            assert dict(shown.getexif()) == {}
        page.set_viewport_size({"width": 375, "height": 812})
        SHOTS.mkdir(parents=True, exist_ok=True)
        photo.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "incident-375.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.set_viewport_size({"width": 1280, "height": 900})

        # a voyage brief with that place, printed as the CSO prints it
        page.goto(url + "/voyage")
        page.fill("#calls", "Bonny River Anchorage")
        page.click("text=Make the brief")
        page.wait_for_selector("#voyage-brief")
        assert PLACE in page.text_content("#route")
        printed = page.pdf(format="A4", print_background=True)
    (tmp_path / "voyage.pdf").write_bytes(printed)
    with pikepdf.open(io.BytesIO(printed)) as document:
        assert len(document.pages) == 1 + 1  # the summary, then one page for the one call
        width, height = (float(v) for v in document.pages[0].mediabox[2:])
        assert abs(width - 595.3) < 1.5  # A4 in points, as Chromium rounds it
        assert abs(height - 841.9) < 1.5
        summary, call = (_page_text(p) for p in document.pages)
    assert PLACE.replace(" ", "") in summary
    assert f"Call1:{PLACE}".replace(" ", "") in call
    assert "Call1:" not in summary  # each page its own text: the call has its own page
    assert problems == []
    assert elsewhere == []
