"""A whole conversation in real headless Chromium, with and without JavaScript.

The portal runs under gunicorn. The reporter sends a report and keeps the
receipt; the operator carries an inbox bundle to the offline reviewer,
who answers with `reviewer reply`; the replies bundle comes back through
`portal import-replies`. The reporter opens /followup with the receipt,
reads the answer and writes back; after the next export and import the
reviewer reads it. Nothing the two said is on the server's disk, and the
server's log holds no client address.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crypto.keys import SigningKeyPair
from portal.cli.main import main as portal
from reviewer_tool.cli import main as reviewer
from tests.conftest import DemoPortal
from tests.integration.chromium import chromium
from tests.integration.portal_server import serve_portal
from tests.integration.test_portal_browser import fill_form, phone_photo

QUESTION = "CANARY-e2e9-QUESTION Which berth were you at, and how many skiffs?"
ANSWER = "CANARY-e2e9-ANSWER Berth 7. Two skiffs, one with a blue hull."


class Reviewer:
    """The offline workstation and the operator's file transfer, driven by their commands."""

    def __init__(self, demo: DemoPortal, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.demo, self.folder, self.capsys = demo, folder, capsys
        self.ws = ["--workspace", str(folder / "ws"), "--passphrase-file",
                   str(demo.data_dir / "demo" / "passphrase")]  # fmt: skip
        self.data_dir = ["--data-dir", str(demo.data_dir)]
        portal_key = (demo.data_dir / "portal-signing.pub").read_text().strip()
        self.run("init", "--key", demo.data_dir / "demo" / "reviewer-1.key",
                 "--portal-key", portal_key)  # fmt: skip
        self.cursor = 0

    def run(self, *args: str | Path) -> str:
        self.capsys.readouterr()
        assert reviewer([*map(str, args), *self.ws]) == 0
        return self.capsys.readouterr().out

    def operator(self, *args: str | Path) -> None:
        assert portal([*self.data_dir, *map(str, args)]) == 0

    def pull(self, name: str) -> None:
        """`portal export` onto the media, `reviewer import` from it."""
        bundle = self.folder / name
        self.operator("export", "--out", bundle, "--since", str(self.cursor))
        self.run("import", bundle)
        self.cursor += 1

    def answer(self, message: str) -> str:
        """Reply to the only report; carry the replies bundle back. Returns the report id."""
        (report,) = [row["id"] for row in json.loads(self.run("list", "--json"))]
        self.run("reply", report, "--status", "under-review", "--message", message)
        replies = self.folder / "replies.bundle"
        self.run("export-replies", "--out", replies)
        signing = self.run("pubkey").split()[-1]
        # enrolling the reviewer's signing key is what makes the portal trust the bundle
        sync_key = str(SigningKeyPair.generate().token)
        self.operator("accounts", "add", "reviewer-1", "--sync-key", sync_key,
                      "--signing-key", signing)  # fmt: skip
        self.operator("import-replies", replies)
        return str(report)


def _send_report(page: Any, url: str, folder: Path) -> str:
    page.goto(url + "/")
    fill_form(page, phone_photo(folder / "IMG_0042.jpg"))
    page.click("#send" if page.is_visible("#send") else "#send-plain")
    page.wait_for_selector("#receipt", timeout=60_000)
    return str(page.text_content("#receipt")).strip()


def _open_conversation(page: Any, url: str, receipt: str) -> None:
    page.goto(url + "/followup")
    page.fill("#f-receipt", receipt)
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#report-status", timeout=60_000)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_reporter_and_the_reviewer_talk_through_the_portal(
    demo: DemoPortal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    javascript: bool,
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo.database_url)
    desk = Reviewer(demo, tmp_path, capsys)
    problems: list[str] = []
    with (
        serve_portal(demo, tmp_path) as server,
        chromium(tmp_path / "profile", javascript=javascript) as context,
    ):
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        receipt = _send_report(page, server["url"], tmp_path)

        desk.pull("inbox-1.bundle")
        report = desk.answer(QUESTION)

        _open_conversation(page, server["url"], receipt)
        assert page.text_content("#report-status") == "under review"
        assert QUESTION in str(page.text_content("#messages"))
        page.fill("#f-message", ANSWER)
        page.click("#answer button[type=submit]")
        page.wait_for_selector("#done", timeout=60_000)

        _open_conversation(page, server["url"], receipt)
        assert "You have sent 1 message" in str(page.text_content("body"))
        assert problems == []  # (the wrong receipt below is answered 404, which Chromium logs)
        wrong = receipt[:-1] + ("1" if receipt[-1] != "1" else "2")
        page.goto(server["url"] + "/followup")
        page.fill("#f-receipt", wrong)
        page.click("#lookup button[type=submit]")
        page.wait_for_selector("text=No report matches this receipt", timeout=60_000)

    desk.pull("inbox-2.bundle")
    shown = desk.run("show", report)
    assert ANSWER in shown
    assert QUESTION in shown  # the reviewer's own reply, in the same conversation
    canaries = [p for p in demo.data_dir.rglob("*") if p.is_file()
                and b"CANARY-e2e9" in p.read_bytes()]  # fmt: skip
    assert canaries == []
    assert b"CANARY-e2e9" not in server["log"].read_bytes()
    assert b"127.0.0.1" not in server["log"].read_bytes()
