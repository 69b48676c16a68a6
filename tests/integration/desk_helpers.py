"""A real ``reviewer desk`` process for end-to-end tests, under an audit hook.

:func:`desk_process` starts ``reviewer desk --no-open`` on a free port over a
workspace (a copy of the one ``reviewer init`` made around a key), reads the
address it prints, and stops it with SIGTERM at the end (the desk's own way
out besides Ctrl-C; a process started from a script may have SIGINT
ignored). It always runs under :data:`WRAPPER`, an audit hook that lets
through only the loopback listener's socket operations, refuses (raises in)
any other, and writes at exit what it saw: so every session a test drives is
also a check that the desk opened no other socket.
"""

from __future__ import annotations

import http.client
import json
import os
import queue as queue_module
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

#: ``reviewer desk`` under an audit hook. What werkzeug's make_server raises (found by
#: recording every event): socket.__new__ (AF_INET, SOCK_STREAM) for the listener, its
#: copy from the file descriptor and each accepted connection; socket.bind to
#: ("127.0.0.1", port); socket.getaddrinfo("127.0.0.1", port, ...), which the C library
#: answers from the digits. Accept and listen raise no event. Anything else that could
#: reach the network, or start a program that could, is refused: written down, and the
#: operation stopped with an exception. Every file the process opens for writing is noted.
WRAPPER = """
import atexit, json, os, socket, sys
LOG = os.environ["DESK_AUDIT_LOG"]
seen = {"allowed": {}, "refused": [], "binds": [], "writes": []}
REFUSED = ("urllib.Request", "http.client.connect", "http.client.send", "ftplib.", "smtplib.",
           "imaplib.", "poplib.", "nntplib.", "telnetlib.", "webbrowser.open", "subprocess.",
           "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.startfile",
           "pty.spawn", "ctypes.dlopen")
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def allowed(event, args):
    if event == "socket.__new__":
        return args[1] == socket.AF_INET and args[2] == socket.SOCK_STREAM
    if event == "socket.bind":
        return isinstance(args[1], tuple) and args[1][0] == "127.0.0.1"
    if event == "socket.getaddrinfo":
        return args[0] in ("127.0.0.1", b"127.0.0.1")
    return False
def refuse(event, args):
    seen["refused"].append(event + " " + repr(args)[:300])
    with open(LOG + ".refused", "a", encoding="utf-8") as out:
        out.write(seen["refused"][-1] + "\\n")
    raise RuntimeError("refused by the test's audit hook: " + event)
def hook(event, args):
    if event.startswith("socket."):
        if not allowed(event, args):
            refuse(event, args)
        seen["allowed"][event] = seen["allowed"].get(event, 0) + 1
        if event == "socket.bind":
            seen["binds"].append(list(args[1]))
    elif event.startswith(REFUSED):
        refuse(event, args)
    elif event == "open" and isinstance(args[0], (str, bytes)) and os.fsdecode(args[0]) != LOG:
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITING):
            seen["writes"].append(os.fsdecode(args[0]))
def done():
    seen["modules"] = sorted(m for m in ("socket", "ssl", "http.client", "urllib.request",
        "smtplib", "ftplib", "reviewer_tool.sync_client") if m in sys.modules)
    with open(LOG, "w", encoding="utf-8") as out:
        json.dump(seen, out)
sys.addaudithook(hook)
atexit.register(done)
from reviewer_tool.cli import main
sys.exit(main(sys.argv[1:]))
"""


def workspace_copy(template: Path, root: Path, passphrase_file: Path) -> list[str]:
    """A copy of the workspace ``reviewer init`` made, as the common options of a command."""
    shutil.copytree(template, root)
    return ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]


@dataclass
class DeskProcess:
    """A running ``reviewer desk``: its process, the address it printed, its audit log."""

    process: subprocess.Popen[str]
    url: str
    lines: queue_module.Queue[str]
    audit_log: Path

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    @property
    def path(self) -> str:
        """``/<token>/``: the start of every address the desk answers."""
        return self.url.split(str(self.port), 1)[1]

    def stop(self) -> tuple[int, str]:
        """Stop the desk (SIGTERM); its exit code and stderr. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        assert self.process.stderr is not None
        err = "" if self.process.stderr.closed else self.process.stderr.read()
        return code, err

    def audit(self) -> dict[str, Any]:
        """What the audit hook saw (written when the process exited)."""
        seen: dict[str, Any] = json.loads(self.audit_log.read_text(encoding="utf-8"))
        return seen

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, bytes]:
        """One request to the desk, as a program (not a browser) would send it."""
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


def desk_environment() -> dict[str, str]:
    """This environment without a display (so that no browser could be opened)."""
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def start_desk(
    command: list[str], environ: dict[str, str]
) -> tuple[subprocess.Popen[str], str, queue_module.Queue[str]]:
    """Start a ``reviewer desk`` command; its process, the address it printed, and a queue
    of the rest of its output (read by a thread, so that a full pipe never stalls it)."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue_module.Queue[str] = queue_module.Queue()
    out = process.stdout
    assert out is not None
    threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
    url = ""
    deadline = time.monotonic() + 60
    while not url:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        except queue_module.Empty:
            process.kill()
            process.communicate(timeout=30)
            pytest.fail("reviewer desk printed no address within 60 s")
        url = line.removeprefix("desk: ").strip() if line.startswith("desk: http") else ""
    return process, url, lines


def stop_desk(process: subprocess.Popen[str], how: signal.Signals) -> None:
    """Stop the desk (if it still runs) with ``how`` and close its pipes."""
    if process.poll() is None:
        process.send_signal(how)
        process.wait(timeout=30)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def desk_process(options: list[str], audit_log: Path) -> Iterator[DeskProcess]:
    """``reviewer desk --no-open`` on a free port under :data:`WRAPPER`, stopped afterwards."""
    environ = {**desk_environment(), "DESK_AUDIT_LOG": str(audit_log)}
    command = [sys.executable, "-c", WRAPPER, "desk", "--no-open", *options]
    process, url, lines = start_desk(command, environ)
    try:
        yield DeskProcess(process, url, lines, audit_log)
    finally:
        stop_desk(process, signal.SIGTERM)


# --- in the browser -------------------------------------------------------------------------

#: where screenshots go for a person to look at (the tests' own folders are removed)
SHOTS = Path(os.environ.get("DESK_SCREENSHOTS", "/tmp/desk-screenshots"))
WIDTHS = {"1280": {"width": 1280, "height": 900}, "375": {"width": 375, "height": 740}}

#: the screen rectangle of ``words`` in a field's text on the redaction page
_WORDS_BOX = """([field, words]) => {
  const box = document.getElementById(`text-${field}`);
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(words);
    if (at >= 0) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + words.length);
      range.startContainer.parentElement.scrollIntoView({ block: "center" });
      const rect = range.getBoundingClientRect();
      return { left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom };
    }
  }
  return null;
}"""


def select_with_mouse(page: Any, field: str, words: str) -> str:
    """Select ``words`` in a field's text as a person does, dragging the mouse across them
    (they must stand on one line); return the text the page says is selected."""
    box = page.evaluate(_WORDS_BOX, [field, words])
    assert box is not None, f"{words!r} is not in the {field} text"
    middle = (box["top"] + box["bottom"]) / 2
    page.mouse.move(box["left"] + 1, middle)
    page.mouse.down()
    page.mouse.move((box["left"] + box["right"]) / 2, middle, steps=4)
    page.mouse.move(box["right"] - 1, middle, steps=4)
    page.mouse.up()
    selected: str = page.evaluate("window.getSelection().toString()")
    return selected


def screenshots(page: Any, name: str) -> None:
    """Full-page screenshots of ``page`` at a desktop's and a phone's width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"e2e-{name}-{width}.png"), full_page=True)
    page.set_viewport_size(before)


# --- one reviewer's session ---------------------------------------------------------------


@dataclass
class Session:
    """What a reviewer does in one session: the bundle to import, the report worked on, and
    the words searched, selected and written. ``look`` adds screenshots and axe-core."""

    inbox: Path
    reports: int
    report: str
    narrative: str
    search: str
    select: str
    label: str
    team_note: str
    personal_note: str
    reply: str
    batch_folder: Path
    replies_folder: Path | None = None
    look: bool = False


@dataclass
class Seen:
    """What the session saw: the cleaned photo's bytes as the browser got them, the
    record previewed, the batch written, and axe-core's findings by page."""

    photo: bytes
    record: str
    batch: Path
    axe: dict[str, list[dict[str, Any]]]


def _rows(page: Any) -> int:
    count: int = page.locator("[data-row]").count()
    return count


def _current(page: Any) -> int:
    rows = "[...document.querySelectorAll('[data-row]')]"
    found: int = page.evaluate(f"{rows}.findIndex(r => r.classList.contains('is-current'))")
    return found


def _submit(page: Any, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def _said(page: Any) -> str:
    text: str = page.locator("[role=status]").first.inner_text()
    return " ".join(text.split())


def work_through(page: Any, url: str, s: Session) -> Seen:
    """Import, search, open, triage, label, note, reply, redact and forward, in the page."""
    from tests.integration.axe import violations

    found: dict[str, list[dict[str, Any]]] = {}

    def look(name: str) -> None:
        if s.look:
            screenshots(page, name)
            if result := violations(page):
                found[name] = result

    page.goto(url + "import")
    page.fill("#path", str(s.inbox))
    _submit(page, "Verify and import")
    assert "Bundle imported" in _said(page)
    assert page.locator("dd").first.inner_text() == str(s.reports)
    look("import-result")
    with page.expect_navigation():
        page.get_by_role("link", name="Go to the queue").click()
    assert _rows(page) == s.reports
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert _current(page) == 0
    look("queue")

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type(s.search)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _rows(page) == 1
    page.keyboard.press("j")
    with page.expect_response(lambda r: "/preview/1" in r.url) as shown:
        page.keyboard.press("o")
    page.wait_for_url(f"**/report/{s.report}")
    photo = shown.value.body()
    assert shown.value.headers["content-type"] == "image/jpeg"
    page.wait_for_function("document.querySelector('figure.photo img').naturalWidth > 0")
    look("report")

    page.keyboard.press("c")  # the confirm shortcut
    assert page.is_checked("#status-confirmed")
    page.check("#reliability-B")  # the two Admiralty scales, never a typed "B2"
    page.check("#credibility-2")
    _submit(page, "Save triage")
    assert _said(page) == "Triage saved."
    page.keyboard.press("l")
    page.keyboard.type(s.label)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _said(page) == "Label added."
    page.keyboard.press("n")
    page.keyboard.type(s.team_note)
    _submit(page, "Add team note")
    assert _said(page).startswith("Team note added.")
    page.fill("#personal-note", s.personal_note)
    _submit(page, "Keep personal note")
    assert _said(page) == "Personal note kept on this workstation."
    page.keyboard.press("r")
    page.keyboard.type(s.reply)
    page.check("#reply-status-under-review")
    _submit(page, "Queue the reply")
    assert _said(page).startswith("Reply queued.")
    summary = " ".join(page.locator("dl.summary").inner_text().split())
    assert "B2" in summary
    assert "The reporter sees under-review" in summary
    look("report-worked")

    with page.expect_navigation():
        page.keyboard.press("e")  # to the redaction page
    assert page.title() == "Redact – Reviewer desk"
    assert select_with_mouse(page, "narrative", s.select) == s.select
    page.click("[data-select-for=narrative]")
    start = s.narrative.index(s.select)
    chosen = page.locator("input[name=manual]")
    assert chosen.get_attribute("value") == f"narrative:{start}:{start + len(s.select)}"
    page.check("#attachment-1")
    look("redact")
    _submit(page, "Preview the record")
    record = page.locator("pre.record").inner_text()
    assert "[redacted: manual]" in record
    assert s.select not in record
    look("redact-preview")
    _submit(page, "Save redaction")
    assert _said(page).startswith("Redaction saved.")
    assert page.locator("pre.record").inner_text() == record
    # the page after the save shows the choices it was made with: the selection is listed
    manual = page.locator("input[name=manual]")
    assert manual.count() == 1
    assert manual.first.is_checked()
    look("redact-saved")

    with page.expect_navigation():
        page.get_by_role("link", name="Forward", exact=True).click()
    assert page.is_checked(f"#report-{s.report}")
    page.fill("#folder", str(s.batch_folder))
    look("forward")
    _submit(page, "Sign and write the batch")
    assert "Batch written" in _said(page)
    batch = Path(page.locator("dl.result dd").nth(2).inner_text())
    look("forward-result")
    if s.replies_folder is not None:
        page.goto(url + "export")
        page.fill("#path", str(s.replies_folder))
        _submit(page, "Write the replies bundle")
        assert "Replies bundle written" in _said(page)
        look("export-result")
    return Seen(photo, record, batch, found)
