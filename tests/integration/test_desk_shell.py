"""The desk's shell: its gate, the queue, search, statistics, CSV, and the real process.

Most tests drive the Flask application through its test client, with the
guard in front as the server has it; the rest start ``reviewer desk`` as a
real process on a free port (under an audit hook that records any socket
operation other than the loopback listener's) and talk HTTP to it; the
last ones open that process's queue in Debian's Chromium: the keyboard,
axe-core at a desktop's and a phone's width, and screenshots.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import queue as queue_module
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crypto.keyfile import KeyBundle
from reviewer_tool.cli import main as reviewer
from reviewer_tool.desk.app import create_app
from reviewer_tool.desk.index import neutralise
from reviewer_tool.desk.search import fts_query
from reviewer_tool.desk.state import DeskState
from reviewer_tool.workspace import Workspace
from tests.conftest import PASSPHRASE, ROOT
from tests.integration.desk_helpers import desk_environment, start_desk, stop_desk
from tests.integration.reviewer_helpers import (
    PORTAL,
    followup_document,
    report_document,
    write_inbox,
)

TOKEN = "test-token-" + "x" * 21
PORT = 48123  # the test client never listens; the guard only compares it
ORIGIN = f"http://127.0.0.1:{PORT}"
#: a reporter's identity value and narrative, which the CSV must never carry
VESSEL = "Canary Vessel Ostrander"
NARRATIVE = "Robbers boarded at the Lagós anchorage and took paint and ropes."


@dataclass
class Desk:
    """The test client, its app, and the ids of the reports in the workspace."""

    app: Flask
    client: FlaskClient
    ids: dict[str, str]

    def get(self, path: str = "", **headers: str) -> Any:
        """GET ``/<token>/<path>`` as the desk's own page would."""
        return self.client.get(f"/{TOKEN}/{path}", base_url=ORIGIN, headers=headers)

    def search(self, form: str) -> Any:
        """Post the queue's filter form (``form`` written as a query string is, for short)
        and follow the answer: the queue of the view it made, or the page of a refusal."""
        posted = self.client.post(
            f"/{TOKEN}/", base_url=ORIGIN, data=dict(urllib.parse.parse_qsl(form)),
            headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"},
        )  # fmt: skip
        assert posted.status_code == 303
        return self.client.get(posted.headers["Location"], base_url=ORIGIN)

    def state(self) -> DeskState:
        state: DeskState = self.app.extensions["desk"]
        return state


def _set(ws: Workspace, item_id: str, **summary: Any) -> None:
    """Write summary keys as the team merge writes them (status, grade, labels, assignee)."""
    item = ws.report(item_id)
    assert item is not None
    item.summary.update(summary)
    with ws.transaction():
        ws.put_item(item)


def fill(options: list[str], recipient: bytes, tmp_path: Path) -> dict[str, str]:
    """Three reports over two days, a follow-up, triage, labels and an assignee."""
    boarded = report_document(NARRATIVE, {"identity_vessel": VESSEL},
                              place_name='=HYPERLINK("http://example.com")')  # fmt: skip
    phishing = report_document("Phishing e-mail <b>to</b> the master.", category="cyber-incident")
    phishing["report"]["category"] = "cyber-incident"
    stowaway = report_document("Stowaway found in the rudder trunk.", category="stowaway")
    stowaway["report"]["category"] = "stowaway"
    (first,) = write_inbox(tmp_path / "a", PORTAL, [recipient], [(boarded, [])],
                           received_on="2026-10-02")  # fmt: skip
    second, third, followup = write_inbox(
        tmp_path / "b", PORTAL, [recipient],
        [(phishing, []), (stowaway, []),
         (followup_document("The attacker phoned again about the bunker invoice."), [], 0)],
        received_on="2026-11-20", cursor_from=1,
    )  # fmt: skip
    for bundle in ("a", "b"):
        assert reviewer(["import", str(tmp_path / bundle), *options]) == 0
    ws = Workspace.open(Path(options[1]), PASSPHRASE)
    try:
        _set(ws, first, status="confirmed", grade="B2", labels=["boarding", "paint"],
             assignee="Ana")  # fmt: skip
        _set(ws, second, status="rejected", grade="F6", labels=["boarding"])
    finally:
        ws.close()
    return {"boarded": first, "phishing": second, "stowaway": third, "followup": followup}


@pytest.fixture(scope="module")
def filled(
    workspace_template: Path,
    reviewer_key_files: list[tuple[Path, KeyBundle]],
    passphrase_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, str]]:
    """One workspace with the module's reports, filled once."""
    root = tmp_path_factory.mktemp("desk") / "ws"
    shutil.copytree(workspace_template, root)
    identity = reviewer_key_files[0][1].encryption
    assert identity is not None
    options = ["--workspace", str(root), "--passphrase-file", str(passphrase_file)]
    return root, fill(options, identity.public, root.parent)


@contextmanager
def opened(root: Path, ids: dict[str, str]) -> Iterator[Desk]:
    """The desk over the workspace at ``root``, through Flask's test client."""
    workspace = Workspace.open(root, PASSPHRASE)
    app = create_app(workspace, TOKEN, port=PORT)
    try:
        yield Desk(app, app.test_client(), ids)
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def desk(filled: tuple[Path, dict[str, str]]) -> Iterator[Desk]:
    """The desk over the filled workspace, for tests that change nothing."""
    with opened(*filled) as desk:
        yield desk


@pytest.fixture
def changing_desk(filled: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[Desk]:
    """The desk over a copy of the filled workspace, for a test that changes it."""
    root, ids = filled
    shutil.copytree(root, tmp_path / "ws")
    with opened(tmp_path / "ws", ids) as desk:
        yield desk


def rows(page: Any) -> list[str]:
    """The report ids (their first 8 characters) a queue page lists, in order."""
    return re.findall(r'class="id">([0-9a-f]{8})<', page.get_data(as_text=True))


def short(desk: Desk, *names: str) -> list[str]:
    return [desk.ids[name][:8] for name in names]


# --- the gate ---------------------------------------------------------------------------


def _refused(answer: Any, status: int = 403) -> None:
    assert answer.status_code == status
    assert answer.mimetype == "text/plain"
    assert answer.get_data() in (b"Forbidden\n", b"Bad request\n")
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers


@pytest.mark.parametrize(
    "path",
    ["/", "/static/desk.css", f"/{TOKEN}", f"/{TOKEN}x/", f"/{TOKEN[:-1]}/", "/x/" + TOKEN + "/",
     f"/{TOKEN.upper()}/", "/favicon.ico"],
)  # fmt: skip
def test_a_request_without_the_token_is_refused(desk: Desk, path: str) -> None:
    _refused(desk.client.get(path, base_url=ORIGIN))
    _refused(desk.client.post(path, base_url=ORIGIN, data={"q": "x"}))


def test_the_token_opens_the_queue_and_its_static_files(desk: Desk) -> None:
    page = desk.get()
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # every link carries the token: url_for sees it in SCRIPT_NAME
    assert f'href="/{TOKEN}/static/desk.css"' in text
    assert f'src="/{TOKEN}/static/desk.js"' in text
    script = desk.get("static/desk.js")
    script.close()  # a file's answer holds the file open until closed
    assert script.status_code == 200
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert "Content-Security-Policy" not in script.headers  # a document-only header
    assert script.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("host", "status"),
    [("localhost:48123", 403), ("127.0.0.1:48124", 403), ("127.0.0.1", 403),
     ("attacker.example:48123", 403), ("[::1]:48123", 403), ("127.0.0.1.nip.io:48123", 403),
     ("", 400), ("127.0.0.1:48123 x", 400), ("127.0.0.1:48123/", 400)],
)  # fmt: skip
def test_a_wrong_host_is_refused_against_dns_rebinding(desk: Desk, host: str, status: int) -> None:
    answer = desk.client.get(f"/{TOKEN}/", base_url=ORIGIN, headers={"Host": host})
    _refused(answer, status)


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://attacker.example"}, {"Origin": "http://127.0.0.1:48124"},
     {"Origin": "null"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
     {"Origin": "null", "Sec-Fetch-Site": "none"}, {"Origin": "https://127.0.0.1:48123"},
     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}],
)  # fmt: skip
def test_a_cross_origin_request_is_refused(desk: Desk, headers: dict[str, str]) -> None:
    _refused(desk.get("", **headers))
    _refused(desk.client.post(f"/{TOKEN}/", base_url=ORIGIN, headers=headers))


def test_the_desks_own_origin_and_a_typed_address_pass(desk: Desk) -> None:
    assert desk.get("", Origin=ORIGIN, **{"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert desk.get("", **{"Sec-Fetch-Site": "none"}).status_code == 200
    # a form post of the desk's own page under Referrer-Policy: no-referrer
    own_post = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert desk.get("", **own_post).status_code == 200


def test_every_page_carries_the_strict_headers(desk: Desk) -> None:
    for path in ("", "stats", "queue.csv", "no-such-page", "?status=nonsense"):
        answer = desk.get(path)
        policy = dict(
            (part.split()[0], part.split()[1:])
            for part in answer.headers["Content-Security-Policy"].split("; ")
        )
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["img-src"] == ["'self'"]  # the cleaned previews; no data:, no blob:
        for sources in policy.values():
            assert all(s in ("'self'", "'none'") for s in sources), sources
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Server" not in answer.headers
        assert "Set-Cookie" not in answer.headers
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP on loopback


def test_pages_escape_what_a_reporter_wrote_and_keep_a_fixed_title(desk: Desk) -> None:
    text = desk.get().get_data(as_text=True)
    assert "Phishing e-mail &lt;b&gt;to&lt;/b&gt; the master." in text
    assert "<b>to</b>" not in text
    assert re.findall(r"<title>(.*)</title>", text) == ["Queue – Reviewer desk"]
    assert re.findall(r"<title>(.*)</title>", desk.get("stats").get_data(as_text=True)) == [
        "Statistics – Reviewer desk"
    ]
    assert re.findall(r"<form [^>]*>", text) == [
        f'<form class="filters" method="post" action="/{TOKEN}/" role="search" '
        'aria-label="Filter and search the queue" autocomplete="off">'
    ]
    assert "style=" not in text
    assert "<script>" not in text


def test_errors_are_pages_with_one_line_and_no_traceback(desk: Desk) -> None:
    missing = desk.get("no-such-page")
    assert missing.status_code == 404
    assert "There is no such page on the desk." in missing.get_data(as_text=True)
    bad = desk.search("from=yesterday")
    assert bad.status_code == 400
    assert "received from: not a date (YYYY-MM-DD)" in bad.get_data(as_text=True)
    assert desk.client.delete(f"/{TOKEN}/", base_url=ORIGIN).status_code == 405
    # forms are small (the import page posts a path, not a file); werkzeug answers 413 past this
    assert desk.app.config["MAX_CONTENT_LENGTH"] == desk.app.config["MAX_FORM_MEMORY_SIZE"]
    assert desk.app.config["MAX_CONTENT_LENGTH"] <= 512 * 1024


# --- the queue --------------------------------------------------------------------------


def test_the_queue_lists_newest_first_and_filters(desk: Desk) -> None:
    assert rows(desk.get()) == short(desk, "stowaway", "phishing", "boarded")
    assert rows(desk.search("status=confirmed")) == short(desk, "boarded")
    assert rows(desk.search("status=new")) == short(desk, "stowaway")
    assert rows(desk.search("category=cyber-incident")) == short(desk, "phishing")
    assert rows(desk.search("from=2026-11-01")) == short(desk, "stowaway", "phishing")
    assert rows(desk.search("to=2026-10-02")) == short(desk, "boarded")
    assert rows(desk.search("from=2026-10-03&to=2026-11-19")) == []
    assert rows(desk.search("unread=1")) == short(desk, "phishing")
    assert rows(desk.search("label=boarding")) == short(desk, "phishing", "boarded")
    assert rows(desk.search("label=paint&status=confirmed")) == short(desk, "boarded")
    assert rows(desk.search("assignee=Ana")) == short(desk, "boarded")
    assert rows(desk.search("assignee=unassigned")) == short(desk, "stowaway", "phishing")
    text = desk.search("unread=1").get_data(as_text=True)
    assert '<strong class="unread">1 unread</strong>' in text  # written out, not a colour
    for bad in ("status=open", "from=2026-13-01", "to=20261120",
                "from=2026-11-02&to=2026-11-01", "label=" + "x" * 201):  # fmt: skip
        assert desk.search(bad).status_code == 400, bad
    # str.isdigit takes "²", int() does not: a page number is ASCII digits or a 400
    for bad in ("0", "x", "%C2%B2", "%D9%A3", "1" * 5000):
        assert desk.get(f"?page={bad}").status_code == 400, bad


def test_search_finds_words_across_report_conversation_identity_and_team(desk: Desk) -> None:
    assert rows(desk.search("q=lagos")) == short(desk, "boarded")  # diacritics folded
    assert rows(desk.search("q=LAGÓS+ropes")) == short(desk, "boarded")
    assert rows(desk.search("q=anch")) == short(desk, "boarded")  # the last word as a prefix
    assert rows(desk.search("q=anch+ropes")) == []  # earlier words are whole words
    assert rows(desk.search("q=bunker+invoice")) == short(desk, "phishing")  # a follow-up
    assert rows(desk.search("q=ostrander")) == short(desk, "boarded")  # the identity section
    assert rows(desk.search("q=paint&label=paint")) == short(desk, "boarded")
    assert rows(desk.search("q=rudder&status=confirmed")) == []


@pytest.mark.parametrize(
    "text",
    ['"', 'lagos"', "NEAR(lagos", "lagos OR", "report:lagos", "^lagos", "lagos*", "*", "-lagos",
     "(", "AND", "a NOT b", "'", "\\", "{report}: x", "---", "é", "\u202e", "x" * 999],
)  # fmt: skip
def test_search_text_is_never_fts_syntax(desk: Desk, text: str) -> None:
    answer = desk.search(urllib.parse.urlencode({"q": text}))
    assert answer.status_code == 200, text


#: what a desk address may carry after "?": a view key, a page, a fixed message key
PLAIN_ARGUMENTS = re.compile(r"(?:(?:view|result)=[A-Za-z0-9_-]{16}|page=\d+|done=[a-z-]+)")


def test_no_address_carries_what_was_searched_for_or_reported(desk: Desk) -> None:
    """A browser writes every address it visits to its profile on disk: a search, a label,
    an assignee or a category must travel by a posted form and a view key, never in one."""
    shown = desk.search("q=ostrander+lag&label=paint&assignee=Ana&category=piracy-or-armed-robbery")
    assert rows(shown) == short(desk, "boarded")
    pages = [shown, desk.get(), desk.get("stats"), desk.get(f"report/{desk.ids['boarded']}")]
    for answer in pages:
        assert answer.status_code == 200
        for address in re.findall(r'(?:href|src|action)="([^"]*)"', answer.get_data(as_text=True)):
            _, _, query = address.replace("&amp;", "&").partition("?")
            for argument in filter(None, query.split("&")):
                assert PLAIN_ARGUMENTS.fullmatch(argument), address
    # an address that carries filters itself is not obeyed, and says why
    typed = desk.get("?q=ostrander&status=confirmed")
    assert rows(typed) == short(desk, "stowaway", "phishing", "boarded")
    assert "never from the address" in typed.get_data(as_text=True)

    # the same filters keep the same key (the statistics page makes one per link)
    def view_of(form: dict[str, str]) -> str:
        return str(desk.client.post(f"/{TOKEN}/", base_url=ORIGIN, data=form).headers["Location"])

    assert view_of({"label": "paint"}) == view_of({"label": "paint"})
    assert view_of({"label": "paint"}) != view_of({"label": "boarding"})


def test_the_query_parser_quotes_every_word() -> None:
    assert fts_query("") is None
    assert fts_query(" -- * ") is None
    assert fts_query('bow "thruster') == '"bow" """thruster"*'
    assert fts_query("a OR b") == '"a" "OR" "b"*'
    assert fts_query(" ".join(f"w{i}" for i in range(40))).count('"') == 24


def test_a_change_reaches_the_queue_after_changed(changing_desk: Desk) -> None:
    desk = changing_desk
    state = desk.state()
    _set(state.ws, desk.ids["stowaway"], labels=["rudder"], assignee="Bo", status="unconfirmed")
    assert rows(desk.search("label=rudder")) == []  # the index is a snapshot...
    state.changed([desk.ids["stowaway"]])  # ...until the page that changed it says so
    assert rows(desk.search("label=rudder")) == short(desk, "stowaway")
    assert rows(desk.search("assignee=Bo&status=unconfirmed")) == short(desk, "stowaway")
    assert rows(desk.search("q=rudder+bo")) == short(desk, "stowaway")  # the team's words
    # a follow-up's id refreshes the report it belongs to
    followup = state.ws.find(desk.ids["followup"])
    state.ws.mark_read([followup])  # type: ignore[list-item]
    state.changed([desk.ids["followup"]])
    assert rows(desk.search("unread=1")) == []


def test_pages_hold_fifty_rows(ws: list[str], recipient: bytes, tmp_path: Path) -> None:
    write_inbox(tmp_path / "many", PORTAL, [recipient],
                [(report_document(f"report number {i}"), []) for i in range(55)])  # fmt: skip
    assert reviewer(["import", str(tmp_path / "many"), *ws]) == 0
    workspace = Workspace.open(Path(ws[1]), PASSPHRASE)
    try:
        desk = Desk(create_app(workspace, TOKEN, port=PORT), None, {})  # type: ignore[arg-type]
        desk.client = desk.app.test_client()
        first, second = desk.get(), desk.get("?page=2")
        assert len(rows(first)) == 50
        assert len(rows(second)) == 5
        assert not set(rows(first)) & set(rows(second))
        assert "55 reports. Page 1 of 2." in " ".join(first.get_data(as_text=True).split())
        assert f'href="/{TOKEN}/?page=2"' in first.get_data(as_text=True)
        assert rows(desk.get("?page=99")) == rows(second)  # past the end: the last page
        # the search form is posted: its words stay out of every address (a browser keeps
        # addresses on disk), which carry a key to the filters kept in memory instead
        posted = desk.client.post(f"/{TOKEN}/", base_url=ORIGIN, data={"q": "number"})
        assert posted.status_code == 303
        assert re.fullmatch(f"/{TOKEN}/\\?view=[A-Za-z0-9_-]{{16}}", posted.headers["Location"])
        listed = desk.client.get(posted.headers["Location"], base_url=ORIGIN)
        assert len(rows(listed)) == 50
        (link,) = re.findall(r'rel="next" href="([^"]*)"', listed.get_data(as_text=True))
        assert "number" not in link
        assert len(rows(desk.client.get(link.replace("&amp;", "&"), base_url=ORIGIN))) == 5
        forgotten = desk.get("?view=forgotten&page=2")  # the whole queue, and a word why
        assert forgotten.status_code == 200
        assert len(rows(forgotten)) == 5
        assert "That search is no longer kept" in forgotten.get_data(as_text=True)
    finally:
        workspace.close()


# --- statistics and CSV -----------------------------------------------------------------


def test_statistics_count_by_status_category_and_month(desk: Desk) -> None:
    stats = desk.state().index.stats()
    assert stats["reports"] == 3
    assert stats["messages"] == 1
    assert dict(stats["by_status"]) == {"new": 1, "confirmed": 1, "unconfirmed": 0, "rejected": 1}
    assert dict(stats["by_category"]) == {
        "piracy-or-armed-robbery": 1, "cyber-incident": 1, "stowaway": 1}  # fmt: skip
    assert stats["by_month"] == [("2026-11", 2), ("2026-10", 1)]
    text = " ".join(desk.get("stats").get_data(as_text=True).split())
    assert "<caption>Reports by month received</caption>" in text
    # each count links to its queue by a view key: a category is a reporter's text
    link = r'<a href="/[^/"]+/(\?view=[A-Za-z0-9_-]{16})">(?:<bdi>)?([^<]*)'
    links = dict(re.findall(link, text))
    assert sorted(links.values()) == [
        "2026-10", "2026-11", "Confirmed", "Cyber incident", "New",
        "Piracy or armed robbery", "Rejected", "stowaway",
    ]  # fmt: skip
    by_name = {name: path for path, name in links.items()}
    assert rows(desk.get(by_name["2026-11"])) == short(desk, "stowaway", "phishing")
    assert rows(desk.get(by_name["stowaway"])) == short(desk, "stowaway")
    assert rows(desk.get(by_name["Confirmed"])) == short(desk, "boarded")
    assert desk.get("stats").get_data(as_text=True).count("?view=") == len(links)  # kept once


def test_the_csv_has_no_identity_no_narrative_and_no_formula(desk: Desk) -> None:
    answer = desk.get("queue.csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="desk-queue.csv"'
    text = answer.get_data(as_text=True)
    assert VESSEL not in text
    assert "Ostrander" not in text
    assert "Robbers" not in text
    assert "bunker" not in text
    table = list(csv.reader(io.StringIO(text)))
    # nothing a reporter wrote in their own words: the place is theirs (here a formula)
    assert table[0] == ["id", "received_on", "status", "grade", "category", "labels",
                        "assignee", "followups", "unread"]  # fmt: skip
    assert "HYPERLINK" not in text
    by_id = {row[0]: row for row in table[1:]}
    boarded = by_id[desk.ids["boarded"]]
    assert boarded[4:7] == ["piracy-or-armed-robbery", "boarding; paint", "Ana"]
    assert by_id[desk.ids["phishing"]][7:] == ["1", "1"]
    assert by_id[desk.ids["stowaway"]][4] == "unlisted"  # not one of the form's categories
    queue = desk.search("status=new").get_data(as_text=True)
    (link,) = re.findall(r'<a href="([^"]*)" download>', queue)
    assert re.fullmatch(f"/{TOKEN}/queue.csv\\?view=[A-Za-z0-9_-]{{16}}", link)
    assert "no place, no narrative, no identity value" in " ".join(queue.split())
    exported = desk.client.get(link, base_url=ORIGIN).get_data(as_text=True)
    filtered = list(csv.reader(io.StringIO(exported)))
    assert [row[0] for row in filtered[1:]] == [desk.ids["stowaway"]]
    assert desk.get("queue.csv?view=forgotten").status_code == 400  # never the whole queue


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\uff1d1"])
def test_formula_cells_are_neutralised(value: str) -> None:
    assert neutralise(value) == "'" + value
    assert neutralise("Lagos") == "Lagos"
    assert neutralise(3) == 3


# --- the real process -------------------------------------------------------------------

#: ``reviewer desk`` under an audit hook: every socket operation but the loopback
#: listener's (an AF_INET socket, bound to 127.0.0.1) is written down, and so is every
#: bind. werkzeug's make_server passes its host through getaddrinfo; for the literal
#: "127.0.0.1" the C library parses the digits and asks no resolver, so that one passes.
AUDITED = """
import atexit, json, socket, sys
other, binds = [], []
def hook(event, args):
    if not event.startswith("socket."):
        return
    if event == "socket.bind":
        binds.append(str(args[1][0]))
        if args[1][0] == "127.0.0.1":
            return
    elif event == "socket.__new__" and args[1] == socket.AF_INET:
        return
    elif event == "socket.getaddrinfo" and args[0] == "127.0.0.1":
        return
    other.append(event + " " + repr(args[:2]))
sys.addaudithook(hook)
atexit.register(lambda: print("audit: " + json.dumps({"other": other, "binds": binds}), flush=True))
from reviewer_tool.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Running:
    """A ``reviewer desk`` process and what it printed."""

    process: subprocess.Popen[str]
    url: str
    lines: queue_module.Queue[str]

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C; the exit code, the rest of stdout, and stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        assert self.process.stderr is not None
        return code, "".join(rest), self.process.stderr.read()


def _desk_command(options: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-c", AUDITED, "desk", *extra, *options]


@contextmanager
def running(options: list[str], *extra: str) -> Iterator[Running]:
    """``reviewer desk --no-open`` on a free port, until the test stops it (or afterwards)."""
    command = _desk_command(options, "--no-open", *extra)
    process, url, lines = start_desk(command, desk_environment())
    try:
        yield Running(process, url, lines)
    finally:
        stop_desk(process, signal.SIGINT)


def _options(filled: tuple[Path, dict[str, str]], passphrase_file: Path) -> list[str]:
    return ["--workspace", str(filled[0]), "--passphrase-file", str(passphrase_file)]


def _http(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_the_desk_process_serves_only_its_token_and_opens_no_other_socket(
    filled: tuple[Path, dict[str, str]], passphrase_file: Path
) -> None:
    with running(_options(filled, passphrase_file)) as desk:
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+/[A-Za-z0-9_-]{32}/", desk.url)
        path = desk.url.split(str(desk.port), 1)[1]
        status, headers, body = _http(desk.port, path)
        assert status == 200
        assert b"<title>Queue" in body
        assert headers["Server"] == "reviewer-desk"  # no software versions
        assert _http(desk.port, "/")[0] == 403
        assert _http(desk.port, path[:-2] + "A/")[0] == 403
        assert _http(desk.port, path, Host=f"rebound.example:{desk.port}")[0] == 403
        assert _http(desk.port, path, Origin="http://attacker.example")[0] == 403
        assert _http(desk.port, path, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
        code, out, err = desk.stop()
    assert code == 0
    assert "desk: stopped" in out
    audit = json.loads(out.rsplit("audit: ", 1)[1])
    assert audit == {"other": [], "binds": ["127.0.0.1"]}
    token = path.strip("/")
    assert token not in err  # werkzeug's request lines are kept quiet
    assert "GET" not in err
    assert "127.0.0.1" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "localhost", "::1", "::", "127.0.0.2"])  # noqa: S104 - refused
def test_any_host_but_127_0_0_1_is_refused_before_anything_listens(
    filled: tuple[Path, dict[str, str]], passphrase_file: Path, host: str
) -> None:
    done = subprocess.run(
        _desk_command(_options(filled, passphrase_file), "--no-open", "--host", host),
        cwd=ROOT, env=desk_environment(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "reviewer: error: the desk listens on 127.0.0.1 only, so that nothing else on the "
        "network can reach it (not even 'localhost', which needs a name lookup)"
    )
    assert json.loads(done.stdout.rsplit("audit: ", 1)[1]) == {"other": [], "binds": []}


def test_a_port_in_use_is_a_one_line_error(
    filled: tuple[Path, dict[str, str]], passphrase_file: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _desk_command(_options(filled, passphrase_file), "--no-open", "--port", str(port)),
            cwd=ROOT, env=desk_environment(), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith(f"reviewer: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert reviewer(["desk", "--port", "80", "--workspace", str(filled[0])]) == 1


# --- in Chromium ------------------------------------------------------------------------

#: where the screenshots go for a person to look at (the test's own folder is removed)
SHOTS = Path(os.environ.get("DESK_SCREENSHOTS", "/tmp/desk-screenshots"))
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}
_ROWS = "[...document.querySelectorAll('[data-row]')]"
#: the index of the row with the ring, and of the row holding the focus (-1: none)
ROW_CHOSEN = f"{_ROWS}.findIndex(row => row.classList.contains('is-current'))"
ROW_FOCUSED = f"{_ROWS}.indexOf(document.activeElement.closest('[data-row]'))"


def test_the_queue_in_chromium_keyboard_axe_and_screenshots(
    filled: tuple[Path, dict[str, str]], passphrase_file: Path
) -> None:
    from tests.integration.axe import describe, violations
    from tests.integration.chromium import launched

    SHOTS.mkdir(parents=True, exist_ok=True)
    with running(_options(filled, passphrase_file)) as desk, launched() as browser:
        context = browser.new_context(viewport=WIDTHS["desktop"])
        page = context.new_page()
        requested: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(desk.url)
        assert page.title() == "Queue – Reviewer desk"
        current = ROW_CHOSEN
        focused = ROW_FOCUSED
        page.keyboard.press("j")
        assert page.evaluate(current) == 0
        assert page.evaluate(focused) == 0  # focus follows, so a screen reader does too
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("j")  # past the last row: stays there
        assert page.evaluate(current) == 2
        page.keyboard.press("k")
        assert page.evaluate(current) == 1
        assert page.evaluate("document.activeElement.matches('a[data-open]')")
        found: dict[str, list[dict[str, Any]]] = {}
        for width, size in WIDTHS.items():
            page.set_viewport_size(size)
            page.screenshot(path=str(SHOTS / f"queue-{width}.png"), full_page=True)
            if result := violations(page):
                found[f"queue at {width} width"] = result
        page.set_viewport_size(WIDTHS["desktop"])

        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "q"
        page.keyboard.type("lagos jk?")  # typed into the box: no shortcut fires
        assert page.evaluate(current) == 1
        assert not page.evaluate("document.getElementById('help').open")
        page.fill("#q", "lagos")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator("[data-row]").count() == 1

        page.locator("h1").click()
        page.keyboard.press("?")
        assert page.evaluate("document.getElementById('help').open")
        page.screenshot(path=str(SHOTS / "help-desktop.png"))
        if result := violations(page):
            found["help overlay"] = result
        page.keyboard.press("Escape")
        assert not page.evaluate("document.getElementById('help').open")

        page.keyboard.press("j")
        page.keyboard.press("o")
        page.wait_for_url(re.compile(r"/report/[0-9a-f]{32}$"))
        # the report page marks its controls with data-key: a field takes the focus,
        # anything else (the status radio) is clicked
        page.locator("h1").click()
        page.keyboard.press("n")
        assert page.evaluate("document.activeElement.dataset.key") == "n"
        page.keyboard.type("c")  # into the note: no shortcut
        assert not page.evaluate("document.querySelector('[data-key=c]').checked")
        page.locator("h1").click()
        page.keyboard.press("c")
        assert page.evaluate("document.querySelector('[data-key=c]').checked")

        page.goto(desk.url + "stats")
        assert page.title() == "Statistics – Reviewer desk"
        for width, size in WIDTHS.items():
            page.set_viewport_size(size)
            page.screenshot(path=str(SHOTS / f"stats-{width}.png"), full_page=True)
            if result := violations(page):
                found[f"stats at {width} width"] = result
        context.close()
        desk.stop()
    assert found == {}, "\n".join(f"{name}:\n{describe(v)}" for name, v in found.items())
    assert problems == []  # no CSP violation, no script error
    origin = desk.url.rsplit("/", 2)[0]
    assert all(url.startswith(desk.url) for url in requested), [
        url.replace(origin, "") for url in requested if not url.startswith(desk.url)
    ]
