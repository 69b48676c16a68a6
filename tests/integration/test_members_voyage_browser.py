"""The voyage brief and a place page in real Chromium, over `incident-db serve --demo`.

Printing the voyage page to PDF (Chromium's own print, A4, print media)
must give the summary page and then exactly one page per port of call; on
a 375 px phone neither page may scroll sideways; and no request may leave
the service's origin. The member's session is made in the demo database
the way a sign-in makes it (store.start_session), so the test needs no
passkey ceremony (test_members_passkey_browser.py covers that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pikepdf
import pytest
from sqlalchemy.orm import Session

from incident_db.db import open_database
from incident_db.members import store
from incident_db.web.sessions import COOKIE
from tests.integration.chromium import chromium
from tests.integration.portal_server import free_port, stop_server, wait_until_listening

#: three demo places with incidents: two reviewer ones at Chittagong and in the
#: Singapore Strait in the last months, and Lagos from the feed alone
CALLS = ("Chattogram", "Singapore Strait", "Lagos")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`incident-db serve --demo` on a free port, and a member's session cookie for it."""
    port = free_port()
    demo = tmp_path / "demo"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_DB_")}
    with (tmp_path / "serve.out").open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "incident_db", "serve", "--demo", "--demo-dir", str(demo),
             "--port", str(port), "--workers", "1"],
            cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_listening(port, process, log)
            engine = open_database(f"sqlite:///{demo / 'incidents.sqlite3'}")
            with Session(engine) as session:
                token = store.invite(session, "captain-cso@example.org", "member", actor="cli")
                member = store.consume_invitation(session, token)
                cookie = store.start_session(session, member)
                session.commit()
            engine.dispose()
            yield {"url": f"http://localhost:{port}", "cookie": cookie}
        finally:
            stop_server(process)


def test_the_voyage_brief_prints_a_page_per_call(served: dict[str, Any], tmp_path: Path) -> None:
    url = served["url"]
    elsewhere: list[str] = []
    with chromium(tmp_path / "profile") as context:
        context.add_cookies([{"name": COOKIE, "value": served["cookie"], "url": url}])
        page = context.new_page()
        page.on("request", lambda r: r.url.startswith(url + "/") or elsewhere.append(r.url))
        response = page.goto(url + "/voyage?calls=" + quote("\n".join(CALLS)))
        assert response is not None
        assert response.status == 200
        names = page.locator(".voyage-doc .call h2").all_text_contents()
        assert [n.split(": ", 1)[0] for n in names] == ["Call 1", "Call 2", "Call 3"]
        assert "Chittagong" in names[0]
        printed = page.pdf(format="A4", print_background=True)
        with pikepdf.open(BytesIO(printed)) as document:
            assert len(document.pages) == 1 + len(CALLS)
            width, height = (float(v) for v in document.pages[0].mediabox[2:])
            assert abs(width - 595.3) < 1.5
            assert abs(height - 841.9) < 1.5

        page.set_viewport_size({"width": 375, "height": 812})
        for path, shot in (("/voyage?calls=" + quote("\n".join(CALLS)), "voyage"),
                           ("/places/chittagong", "place")):  # fmt: skip
            response = page.goto(url + path)
            assert response is not None
            assert response.status == 200
            page.screenshot(path=str(tmp_path / f"{shot}-375.png"), full_page=True)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 375, (path, wide)
        assert page.locator("#clock-window").is_visible()
        assert page.locator("a[href^='/incidents/']").count() == 2  # the demo's two
    assert elsewhere == []
