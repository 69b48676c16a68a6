"""The inlined stylesheets apply in real Chromium, with and without JavaScript: the CSP's
hashes match them, so the browser refuses nothing (portal/web/styles.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DemoPortal
from tests.integration.chromium import chromium
from tests.integration.portal_server import serve_portal

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_inline_styles_apply_and_the_csp_refuses_nothing(
    demo: DemoPortal, tmp_path: Path, javascript: bool
) -> None:
    with (
        serve_portal(demo, tmp_path) as server,
        chromium(tmp_path / "profile", javascript=javascript) as context,
    ):
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        fetched: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        page.goto(server["url"] + "/?category=other")
        page.wait_for_load_state("load")
        # portal.css: the accent colour on the header line; nojs.css: what needs scripts hides
        brand: Any = page.eval_on_selector(".brand", "e => getComputedStyle(e).color")
        assert brand == "rgb(11, 90, 138)"
        mode_shown = page.is_visible("#mode")
        assert mode_shown is javascript  # hidden by the inline nojs.css only without scripts
        assert not [line for line in console if "Content Security Policy" in line]
        assert not [url for url in fetched if url.endswith(".css")]
