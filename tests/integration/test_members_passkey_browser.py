"""Passkey sign-in end to end: `incident-db serve --demo` under gunicorn, real Chromium.

Chromium's virtual authenticator (CDP ``WebAuthn``: CTAP2, internal,
resident keys, user verification) stands in for a phone's or laptop's
passkey. The demo-admin opens the one-time link `serve --demo` printed,
makes a passkey, is shown the recovery codes, signs out, signs in with the
passkey (no handle asked) and reaches the home page. Every request the page
makes stays on the service's own origin, and the server's log names no
client address.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chromium import chromium
from tests.integration.portal_server import free_port, stop_server, wait_until_listening
from web_hardening.logs import names_an_address

LINK = re.compile(
    r"one-time sign-up link for demo-admin \(admin\): (http://localhost:\d+/join/\S+)"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`incident-db serve --demo` on a free port; its URL, printed link and log."""
    port = free_port()
    out, log = tmp_path / "serve.out", tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "incident_db", "serve", "--demo",
             "--demo-dir", str(tmp_path / "demo"), "--port", str(port), "--workers", "1"],
            cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            deadline = time.monotonic() + 10
            while not LINK.search(out.read_text()) and time.monotonic() < deadline:
                time.sleep(0.1)
            found = LINK.search(out.read_text())
            assert found, out.read_text()
            yield {"url": f"http://localhost:{port}", "link": found.group(1), "log": log,
                   "out": out.read_text()}  # fmt: skip
        finally:
            stop_server(process)


def test_join_sign_out_and_sign_in_with_a_passkey(served: dict[str, Any], tmp_path: Path) -> None:
    assert "expires" in served["out"]
    assert served["link"].startswith(served["url"] + "/join/")
    problems: list[str] = []
    elsewhere: list[str] = []
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        # a failed load is how a 401, a 410 or the favicon's 404 shows; anything else is a fault
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and problems.append(m.text)
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: r.url.startswith(served["url"] + "/") or elsewhere.append(r.url),
        )
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                }
            },
        )["authenticatorId"]

        page.goto(served["link"])
        assert "demo-admin" in page.text_content("#enrol")
        page.click("#passkey-create")
        page.wait_for_selector("#recovery-codes:not([hidden])", timeout=20_000)
        codes = page.locator("#recovery-code-list li").all_text_contents()
        assert len(codes) == 10
        assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", code) for code in codes)
        (credential,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
            "credentials"
        ]
        assert credential["isResidentCredential"]
        assert credential["rpId"] == "localhost"

        page.click("#continue")
        page.wait_for_selector("#incident-count")
        assert int(page.text_content("#incident-count")) > 0  # the demo's incidents
        page.click("text=Sign out")
        page.wait_for_selector("#passkey-sign-in")
        assert "You are signed out." in page.content()
        page.goto(served["url"] + "/")
        assert page.locator("text=Please sign in to see this page.").is_visible()

        page.click("#passkey-sign-in")
        page.wait_for_selector("#incident-count", timeout=20_000)
        assert "Welcome, demo-admin" in page.text_content("h1")
        assert page.get_by_role("link", name="Audit log", exact=True).is_visible()
        page.goto(served["url"] + "/audit")
        actions = page.locator("table.audit tbody tr td:nth-child(4)").all_text_contents()
        assert actions[:5] == ["sign-in", "sign-out", "sign-in", "passkey.add", "member.invite"]
        # the one-time link is used up
        response = page.goto(served["link"])
        assert response is not None
        assert response.status == 410
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["idb_session"]["httpOnly"]
        assert cookies["idb_session"]["sameSite"] == "Strict"

    assert problems == []
    assert elsewhere == []
    log = served["log"].read_text()
    assert not names_an_address(log), log
