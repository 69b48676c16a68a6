"""The report page's script in real Chromium, against the real portal under gunicorn.

What the reporter must be able to count on (issue 13), each seen from the
browser and counted on the requests it makes:

* a send pressed before the browser's encryption is ready waits, says so,
  and then sends encrypted: nothing ever reaches ``/submit-plain``, neither
  while the keys are being fetched nor while the script itself is loading;
* an expired form token is renewed in place and the report still goes;
* a refusal (429) keeps every typed value and the chosen file;
* too many or too large files are refused before anything is encrypted:
  no request to ``/submit/begin``;
* a browser that cannot encrypt here (an http page on a name other than
  localhost) is told so in plain words, and the report goes to
  ``/submit-plain`` only after the reporter chose that;
* the receipt view: its own heading (focused) and title, a live region,
  and a copy button that works with and without the clipboard API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright import sync_api

from crypto.envelope import open_bytes
from portal.web import pow
from tests.conftest import DemoPortal
from tests.integration.chromium import CHROMIUM, FLAGS, chromium
from tests.integration.portal_server import serve_portal
from tests.integration.test_portal_browser import (
    fill_form,
    phone_photo,
    send_with_javascript,
    stored_parts,
)

#: the page's behaviour does not depend on the database: one kind is enough here
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: what fill_form types, as the page must still hold it after an error
TYPED = {
    "#f-category": "piracy-or-armed-robbery",
    "#f-place_name": "Lagos anchorage",
    "#f-latitude": "6°26.5'N",
    "#f-longitude": "003°22.1'E",
    "#f-perpetrators_min": "3",
    "#f-identity_company": "CANARY-b41d0c-COMPANY",
}


def requests_of(page: Any) -> list[str]:
    """Every request the page makes from now on, as "METHOD /path"."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {urlsplit(r.url).path}"))
    return asked


def answers_of(page: Any) -> list[str]:
    """Every answer the page gets from now on, as "STATUS METHOD /path"."""
    got: list[str] = []
    page.on(
        "response",
        lambda r: got.append(f"{r.status} {r.request.method} {urlsplit(r.url).path}"),
    )
    return got


def wait_until_ready(page: Any) -> None:
    page.wait_for_selector("html[data-encryption=ready]", timeout=30_000)


def assert_everything_kept(page: Any, files: int) -> None:
    """Every value fill_form typed is still in its field, the files still chosen."""
    for selector, value in TYPED.items():
        assert page.input_value(selector) == value, selector
    assert page.is_checked("input[name=weapons][value=knives-or-machetes]")
    assert page.input_value("#f-narrative").startswith("CANARY-b41d0c-NARRATIVE")
    assert page.eval_on_selector("#f-attachments", "input => input.files.length") == files
    assert page.is_enabled("#send")


def stored_report(demo: DemoPortal) -> dict[str, Any]:
    return json.loads(open_bytes(stored_parts(demo)[0], demo.identity(0)))  # type: ignore[no-any-return]


def test_a_send_pressed_before_the_keys_are_checked_waits_then_encrypts(
    demo: DemoPortal, tmp_path: Path
) -> None:
    held: list[Any] = []
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        page = context.new_page()
        asked = requests_of(page)
        page.route(
            "**/keys/directory.json", lambda route: held.append(route)
        )  # the link is slow: no answer yet
        page.goto(server["url"] + "/")
        assert page.get_attribute("html", "data-encryption") == "preparing"
        assert str(page.text_content("#mode")).startswith("Preparing encryption…")
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        page.click("#send")
        page.wait_for_selector("#status:text-matches('^Preparing encryption')")
        assert page.is_disabled("#send")
        page.wait_for_timeout(1000)
        assert not [r for r in asked if r.startswith("POST ")], asked
        held[0].continue_()
        shown = send_with_javascript_result(page)
    assert "POST /submit-plain" not in asked
    assert asked.count("POST /submit/begin") == 1
    report = stored_report(demo)
    assert report["encrypted_by"] == "browser"
    assert shown


def send_with_javascript_result(page: Any) -> str:
    """The receipt, once the send already pressed has gone through."""
    page.wait_for_selector("#done", timeout=90_000)
    return str(page.text_content("#receipt")).strip()


def test_a_send_pressed_while_the_script_loads_posts_nothing(
    demo: DemoPortal, tmp_path: Path
) -> None:
    held: list[Any] = []
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        page = context.new_page()
        asked = requests_of(page)
        page.route("**/bundle/report-page.js", lambda route: held.append(route))
        page.goto(server["url"] + "/?category=piracy-or-armed-robbery", wait_until="commit")
        page.wait_for_selector("#send")
        assert str(page.text_content("#mode")).startswith(
            "Preparing encryption…"
        )  # never "JavaScript is off"
        page.fill("#f-place_name", "Lagos anchorage")
        page.fill("#f-narrative", "Boarded at anchor.")
        page.press("#f-place_name", "Enter")  # no submit button: no implicit submission
        page.click("#send")
        page.wait_for_timeout(1000)
        assert not [r for r in asked if r.startswith("POST ")], asked
        assert urlsplit(page.url).path == "/"
        for route in held:
            route.continue_()
        wait_until_ready(page)
        assert page.input_value("#f-place_name") == "Lagos anchorage"
        send_with_javascript(page)
    assert "POST /submit-plain" not in asked
    assert stored_report(demo)["report"]["place_name"] == "Lagos anchorage"


def test_an_expired_form_token_is_renewed_in_place(demo: DemoPortal, tmp_path: Path) -> None:
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        page = context.new_page()
        asked, answered = requests_of(page), answers_of(page)
        page.goto(server["url"] + "/")
        wait_until_ready(page)
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        # The session the token belongs to is gone (a cleared cookie, a restarted browser):
        # the form token no longer verifies.
        context.clear_cookies()
        send_with_javascript(page)
    assert "400 POST /submit/begin" in answered
    assert asked.count("GET /form-token") == 1
    assert "201 POST /submit/begin" in answered
    report = stored_report(demo)
    assert report["report"]["place_name"] == "Lagos anchorage"
    assert report["identity"]["identity_company"] == "CANARY-b41d0c-COMPANY"
    assert len(report["attachments"]) == 1


def open_a_draft(url: str) -> None:
    """Take the portal's one pending draft, as another reporter's upload would."""
    with requests.Session() as other:
        token = other.get(url + "/form-token", timeout=30).json()["csrf_token"]
        puzzle = other.get(url + "/pow?for=submit", timeout=30).json()
        proof = pow.solve(puzzle["puzzle"], puzzle["bits"])
        answer = other.post(
            url + "/submit/begin",
            data={"csrf_token": token, "proof": proof, "parts": "1", "total": "2000"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text


def test_a_refusal_keeps_every_value_and_the_file(demo: DemoPortal, tmp_path: Path) -> None:
    settings = {"PORTAL_PENDING_DRAFTS": "1"}
    with (
        serve_portal(demo, tmp_path, **settings) as server,
        chromium(tmp_path / "profile") as context,
    ):
        open_a_draft(server["url"])
        page = context.new_page()
        asked, answered = requests_of(page), answers_of(page)
        page.goto(server["url"] + "/")
        wait_until_ready(page)
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        page.click("#send")
        page.wait_for_selector("#send:enabled", timeout=60_000)
        status = page.text_content("#status")
        assert_everything_kept(page, files=1)
    assert "429 POST /submit/begin" in answered
    assert "Everything you typed is still here" in status
    assert not [r for r in asked if r.endswith("/uploads") or "/submit-plain" in r]


def test_files_over_the_limits_are_refused_before_anything_is_encrypted(
    demo: DemoPortal, tmp_path: Path
) -> None:
    settings = {"PORTAL_MAX_ATTACHMENTS": "2", "PORTAL_MAX_UPLOAD_MIB": "1"}
    small = [tmp_path / f"note-{i}.txt" for i in range(3)]
    for path in small:
        path.write_text("a small note\n")
    large = tmp_path / "video.bin"
    large.write_bytes(b"\0" * (1024 * 1024 + 1))
    with (
        serve_portal(demo, tmp_path, **settings) as server,
        chromium(tmp_path / "profile") as context,
    ):
        page = context.new_page()
        asked = requests_of(page)
        page.goto(server["url"] + "/")
        wait_until_ready(page)
        rules = json.loads(page.text_content("#form-rules"))
        limits = rules["attachments"]
        assert limits["max_count"] == 2
        help_text = page.text_content("#help-attachments")
        assert "Up to 2 files" in help_text
        assert limits["max_total_text"] in help_text
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        page.set_input_files("#f-attachments", [str(p) for p in small])
        page.click("#send")
        assert page.text_content("#error-attachments") == "Attachments: at most 2 files"
        assert page.evaluate("document.activeElement.id") == "f-attachments"
        assert page.get_attribute("#f-attachments", "aria-invalid") == "true"
        assert_everything_kept(page, files=3)
        page.set_input_files("#f-attachments", [str(large)])
        page.click("#send")
        expected = rules["messages"]["file_too_large"].format(
            index=1, limit=limits["max_file_text"]
        )
        assert expected in page.text_content("#error-attachments")
        assert_everything_kept(page, files=1)
        page.wait_for_timeout(500)
    # nothing was sealed or sent: the only POSTs are none at all
    assert not [r for r in asked if r.startswith("POST ")], asked


def test_the_form_marks_every_problem_beside_its_field(demo: DemoPortal, tmp_path: Path) -> None:
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        page = context.new_page()
        asked = requests_of(page)
        page.goto(server["url"] + "/")
        wait_until_ready(page)
        page.select_option("#f-category", "piracy-or-armed-robbery")
        page.fill("#f-latitude", "95")
        page.fill("#f-perpetrators_min", "5")
        page.fill("#f-perpetrators_max", "2")
        page.click("#send")
        latitude_error = page.text_content("#error-latitude")
        assert latitude_error.startswith("Latitude: write it like 22°16.2'N")
        assert page.text_content("#error-perpetrators_max").endswith(
            "cannot be less than “Number of perpetrators, at least”"
        )
        assert page.evaluate("document.activeElement.id") == "f-latitude"
        assert page.get_attribute("#f-latitude", "aria-invalid") == "true"
        assert page.input_value("#f-latitude") == "95"
        assert "2 things to put right" in page.text_content("#status")
        # a field of another category that holds a value stays in sight, marked
        page.fill("#f-suspect_craft_description", "blue skiff")
        page.select_option("#f-category", "stowaways")
        assert page.is_visible("#f-suspect_craft_description")
        assert "will be sent too" in page.text_content(
            ".field[data-field=suspect_craft_description] .off-category"
        )
        assert not page.is_visible("#f-boarding_method")  # empty and not asked: hidden
    assert not [r for r in asked if r.startswith("POST ")]


def test_a_key_directory_that_does_not_verify_stops_everything(
    demo: DemoPortal, tmp_path: Path
) -> None:
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        signed = requests.get(server["url"] + "/keys/directory.json", timeout=30).json()
        payload = signed["payload"]
        # one character of the signed payload changed, as a tampering proxy might
        changed = payload[:8] + ("B" if payload[8] == "A" else "A") + payload[9:]
        forged = dict(signed, payload=changed)
        page = context.new_page()
        asked = requests_of(page)
        page.route(
            "**/keys/directory.json",
            lambda route: route.fulfill(json=forged, headers={"Cache-Control": "no-store"}),
        )
        page.goto(server["url"] + "/")
        page.wait_for_selector("html[data-encryption=failed]", timeout=30_000)
        assert "could not be verified" in page.text_content("#mode")
        assert "nothing can be sent" in page.text_content("#mode")
        page.select_option("#f-category", "piracy-or-armed-robbery")
        page.fill("#f-narrative", "Boarded at anchor.")
        assert page.is_disabled("#send")
        assert page.get_attribute("#send", "aria-disabled") == "true"
        assert not page.is_visible("#choose-server")  # no way around the reviewers' keys
        page.press("#f-place_name", "Enter")
        page.wait_for_timeout(500)
    assert not [r for r in asked if r.startswith("POST ")], asked


@contextmanager
def chromium_resolving(profile: Path, name: str) -> Iterator[Any]:
    """Chromium that resolves ``name`` to loopback: an http origin that is not a secure context."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=[*FLAGS, f"--host-resolver-rules=MAP {name} 127.0.0.1"],
            headless=True,
        )
        try:
            yield context
        finally:
            context.close()


def test_a_browser_that_cannot_encrypt_is_told_and_chooses(
    demo: DemoPortal, tmp_path: Path
) -> None:
    with (
        serve_portal(demo, tmp_path) as server,
        chromium_resolving(tmp_path / "profile", "portal.test") as context,
    ):
        url = server["url"].replace("127.0.0.1", "portal.test")
        page = context.new_page()
        asked = requests_of(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("html[data-encryption=unavailable]", timeout=30_000)
        assert page.evaluate("window.isSecureContext") is False
        words = page.text_content("#mode")
        assert "This browser cannot encrypt your report here" in words
        assert "secure connection" in words
        assert "not encrypted either" in words
        assert "undefined" not in words
        assert "importKey" not in words
        assert page.is_visible("#choose-server")
        assert not page.is_visible("#send")
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        page.press("#f-place_name", "Enter")
        page.wait_for_timeout(500)
        assert not [r for r in asked if r.startswith("POST ")], asked
        page.click("#choose-server")
        assert "You chose to let the server encrypt" in page.text_content("#mode")
        page.click("#send-plain")
        page.wait_for_url("**/received", timeout=60_000)
        receipt = page.text_content("#receipt")
    assert errors == []
    assert asked.count("POST /submit-plain") == 1
    assert not [r for r in asked if "/submit/" in r or "/uploads" in r]
    assert re.fullmatch(r"[0-9]{4}( [0-9]{4}){5}", str(receipt).strip())
    report = stored_report(demo)
    assert report["encrypted_by"] == "server"
    assert report["report"]["place_name"] == "Lagos anchorage"


def test_the_receipt_view(demo: DemoPortal, tmp_path: Path) -> None:
    with serve_portal(demo, tmp_path) as server, chromium(tmp_path / "profile") as context:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server["url"])
        page = context.new_page()
        page.goto(server["url"] + "/")
        wait_until_ready(page)
        fill_form(page, phone_photo(tmp_path / "IMG_0042.jpg"))
        shown = send_with_javascript(page)
        assert page.evaluate("document.activeElement.id") == "receipt-heading"
        assert page.text_content("h1") == "Report received"
        assert page.locator("h1").count() == 1
        assert page.title() == "Report received · CSO portal"
        page.wait_for_selector("#done-status:not(:empty)")
        assert page.get_attribute("#done-status", "role") == "status"
        assert "Your report was received" in page.text_content("#done-status")
        assert re.fullmatch(r"[0-9]{4}( [0-9]{4}){5}", shown)
        page.click("#copy-receipt")
        page.wait_for_selector("#copy-result:not(:empty)")
        assert page.text_content("#copy-result").startswith("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == shown
        # Without the clipboard API (plain http, older browsers): the receipt is selected.
        page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
        page.evaluate("document.querySelector('#copy-result').textContent = ''")
        page.click("#copy-receipt")
        page.wait_for_selector("#copy-result:not(:empty)")
        assert page.evaluate("getSelection().toString().trim()") == shown
        assert page.text_content("#copy-result").startswith(("Copied.", "The receipt is selected"))
