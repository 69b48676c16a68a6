"""The report, redaction and forwarding pages in Debian's Chromium: selection, keys, axe.

The desk application is served on a loopback port by werkzeug (as
``reviewer desk`` serves it) from a thread, over a workspace filled by
``reviewer import``. The redaction page's selection tool
(reviewer_tool/desk/static/redact.js) must turn a selection into the field's
offsets as the server counts them, in code points, past a character outside
the Basic Multilingual Plane, a hidden character's marker and a detected
identifier's words for screen readers. Every page must pass axe-core.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from reviewer_tool.cli import main as reviewer
from reviewer_tool.desk.app import create_app
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE
from tests.integration.reviewer_helpers import PORTAL, report_document, write_inbox
from tests.integration.test_desk_report import gps_photo

TOKEN = "browser-test-" + "z" * 19
VESSEL = "Sextans Star"
#: an emoji (two UTF-16 units, one code point), a zero-width space (shown as a marker), the
#: ship's name (a mark with words for screen readers) and a CR LF (one LF in the page)
#: before the words selected: each would shift a naive offset
NARRATIVE = (
    f"Boarded \U0001f6a2 at\u200b night\r\nnear the {VESSEL}; robbers came from Bonny Island."
)


@pytest.fixture
def served(ws: list[str], recipient: bytes, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The desk's address and the report's id; the desk runs in a thread of its own, which
    opens the workspace (SQLite connections stay in the thread that made them)."""
    photo = gps_photo()
    document = report_document(
        NARRATIVE, {"identity_vessel": VESSEL}, [("deck.jpg", "image/jpeg", photo)],
        place_name="Bonny", latitude=4.43, longitude=7.17,
    )  # fmt: skip
    (report,) = write_inbox(tmp_path / "inbox", PORTAL, [recipient], [(document, [photo])])
    assert reviewer(["import", str(tmp_path / "inbox"), *ws]) == 0
    ready = threading.Event()
    servers: list[Any] = []

    def serve() -> None:
        workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
        server = make_server("127.0.0.1", 0, None)  # type: ignore[arg-type]
        server.app = create_app(workspace, TOKEN, port=server.server_port)  # type: ignore[attr-defined]
        servers.append(server)
        ready.set()
        try:
            server.serve_forever()
        finally:
            workspace.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield f"http://127.0.0.1:{servers[0].server_port}/{TOKEN}/", report
    finally:
        servers[0].shutdown()
        thread.join()


SELECT = """([field, words]) => {
  const box = document.getElementById(`text-${field}`);
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(words);
    if (at >= 0 && node.parentElement.closest("[data-at]")) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + words.length);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      return true;
    }
  }
  return false;
}"""


SPAN = """([field, first, last]) => {
  const box = document.getElementById(`text-${field}`);
  const runs = [...box.querySelectorAll("[data-at]")].map((run) => run.firstChild);
  const from = runs.find((node) => node.data.includes(first));
  const to = runs.find((node) => node.data.includes(last));
  const range = document.createRange();
  range.setStart(from, from.data.indexOf(first));
  range.setEnd(to, to.data.indexOf(last) + last.length);
  window.getSelection().removeAllRanges();
  window.getSelection().addRange(range);
}"""


def test_redaction_by_selection_and_keyboard_then_axe_on_every_page(
    served: tuple[str, str],
) -> None:
    from tests.integration.axe import describe, violations
    from tests.integration.chromium import launched

    url, report = served
    found: dict[str, list[dict[str, Any]]] = {}
    with launched() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{url}report/{report}")
        assert page.title() == "Report – Reviewer desk"
        assert page.evaluate("document.querySelector('img').naturalWidth") == 16  # shown
        if result := violations(page):
            found["report"] = result
        page.keyboard.press("c")  # the confirm shortcut chooses the status
        assert page.evaluate("document.getElementById('status-confirmed').checked")
        page.check("#reliability-B")
        page.check("#credibility-2")
        with page.expect_navigation():
            page.get_by_role("button", name="Save triage").click()
        assert "Triage saved." in page.locator("[role=status]").inner_text()

        page.goto(f"{url}report/{report}/redact")
        assert page.title() == "Redact – Reviewer desk"
        assert page.evaluate(SELECT, ["narrative", "Bonny Island"])
        page.click("[data-select-for=narrative]")
        added = page.locator("input[name=manual]")
        start = NARRATIVE.index("Bonny Island")
        assert added.get_attribute("value") == f"narrative:{start}:{start + len('Bonny Island')}"
        assert page.evaluate("document.activeElement.name") == "manual"
        # from inside a detected identifier's mark, past its number, into the next run
        page.evaluate(SPAN, ["narrative", "Star", "; robbers"])
        page.click("[data-select-for=narrative]")
        start, end = NARRATIVE.index("Star"), NARRATIVE.index(" came")
        assert added.nth(1).get_attribute("value") == f"narrative:{start}:{end}"

        # a selection that starts inside a detected identifier's mark reaches its start
        mark = page.locator("mark").first
        first = page.locator("input[name=accept]").first
        first.focus()
        page.keyboard.press("Space")  # keep this one: the mark is struck through
        assert not first.is_checked()
        assert "is-kept" in (mark.get_attribute("class") or "")
        page.keyboard.press("Space")
        assert first.is_checked()
        if result := violations(page):
            found["redact"] = result

        page.get_by_role("button", name="Preview the record").click()
        page.wait_for_load_state()
        record = page.locator("pre.record").inner_text()
        assert "[redacted: identity] came from [redacted: manual]." in record
        assert VESSEL not in record
        if result := violations(page):
            found["redact with preview"] = result

        for name in ("forward", "import", "export"):
            page.goto(url + name)
            if result := violations(page):
                found[name] = result
        context.close()
    assert problems == []
    assert found == {}, "\n".join(f"{name}:\n{describe(v)}" for name, v in found.items())
