"""Every reporter-facing page passes axe-core's WCAG 2.2 A and AA rules, in every language.

For each shipped language: the report form (the category step and the
details step), the page with the receipt after a send without JavaScript,
/followup, the conversation opened with a receipt, and the error page (a
404); each with JavaScript on and off, each at a phone's width (375x740)
and a desktop's (1280x900). Any violation fails the test, named with its
axe rule and the elements it found.

Time matters, since this runs once per language in ``make test``: one
portal and one browser per JavaScript mode serve the whole module, each page
is loaded once per mode and checked at both widths by resizing it, and axe
is asked for violations only.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from portal.web.i18n import SHIPPED
from tests.conftest import DemoPortal
from tests.integration.axe import describe, violations
from tests.integration.chromium import launched
from tests.integration.portal_server import form_keys, fresh_demo, serve_portal

WIDTHS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 900}}
MODES = {"javascript": True, "no-javascript": False}
#: the portal's own Content-Security-Policy, as a page that tests the injection sends it
STRICT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'"


def shipped_codes() -> tuple[str, ...]:
    """The codes of the languages the portal ships."""
    return tuple(language.code for language in SHIPPED)


@pytest.fixture(scope="module")
def portal(demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One portal under gunicorn for the module, on its own copy of the demo data (SQLite)."""
    workdir = tmp_path_factory.mktemp("a11y")
    demo = fresh_demo(demo_template, workdir)
    # two sends and two lookups per language: well under the budgets, raised all the same
    limits = {"PORTAL_PLAIN_PER_HOUR": "10000", "PORTAL_LOOKUPS_PER_HOUR": "10000"}
    with serve_portal(demo, workdir, **limits) as server:
        yield str(server["url"])


@pytest.fixture(scope="module")
def browsers() -> Iterator[dict[bool, Any]]:
    """One Chromium for the module: a context with JavaScript on and one with it off."""
    with launched() as browser:
        yield {js: browser.new_context(java_script_enabled=js) for js in MODES.values()}


def _check(page: Any, name: str, code: str, found: dict[str, list[dict[str, Any]]]) -> None:
    """Run axe on the page at both widths; note the page if it is not in language ``code``."""
    lang = page.get_attribute("html", "lang")
    if lang != code:
        found[f"{name}: <html lang={lang!r}>, not {code!r}"] = []
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        result = violations(page)
        if result:
            found[f"{name} at {width} width"] = result


def _send_plain(context: Any, url: str, code: str) -> str:
    """Send a report as the no-JavaScript form does, with the context's cookies: where it leads."""
    form = context.request.get(f"{url}/?{urlencode({'category': 'other', 'lang': code})}")
    assert form.ok, form.status
    page = form.text()
    # where the form itself sends (its address carries the language on)
    action = re.search(r'<form id="report" method="post" action="([^"]+)"', page)
    assert action is not None, "the report form is missing"
    fields = {**form_keys(page), "category": "other",
              "narrative": "Accessibility check: a report with nothing else in it."}  # fmt: skip
    sent = context.request.post(url + html.unescape(action[1]), multipart=fields, max_redirects=0)
    assert sent.status == 303, (sent.status, sent.text()[:2000])
    return str(sent.headers["location"])


def check_language(context: Any, url: str, code: str, javascript: bool) -> dict[str, Any]:
    """Every page in one language and one JavaScript mode: what axe found, by page and width."""
    found: dict[str, list[dict[str, Any]]] = {}
    page = context.new_page()
    page.set_viewport_size(WIDTHS["phone"])
    lang = urlencode({"lang": code})
    try:
        page.goto(f"{url}/?{lang}")
        _check(page, "report form, category step", code, found)

        page.goto(f"{url}/?category=piracy-or-armed-robbery&{lang}")
        _check(page, "report form, details step", code, found)

        page.goto(url + _send_plain(context, url, code))
        receipt = str(page.text_content("#receipt")).strip()
        _check(page, "received page", code, found)

        page.goto(f"{url}/followup?{lang}")
        _check(page, "/followup", code, found)

        page.fill("#f-receipt", receipt)
        if javascript:
            page.click("#lookup button[type=submit]")
        else:
            with page.expect_navigation():
                page.click("#lookup button[type=submit]")
        page.wait_for_selector("#report-status", timeout=60_000)
        _check(page, "follow-up conversation", code, found)

        answer = page.goto(f"{url}/no-such-page?{lang}")
        assert answer is not None
        assert answer.status == 404
        _check(page, "error page (404)", code, found)
    finally:
        page.close()
    return found


@pytest.mark.parametrize("code", shipped_codes())
def test_every_page_passes_axe(portal: str, browsers: dict[bool, Any], code: str) -> None:
    problems: list[str] = []
    for mode, javascript in MODES.items():
        started = time.monotonic()
        found = check_language(browsers[javascript], portal, code, javascript)
        print(f"{code} {mode}: {time.monotonic() - started:.1f} s")
        problems += [f"{mode}, {where}:\n{describe(rules)}" for where, rules in found.items()]
    assert not problems, f"axe-core (WCAG 2.2 A/AA) in {code!r}:\n" + "\n".join(problems)


# --- the harness itself must be able to fail ------------------------------------------

#: an input without a label (shown in both modes) and, in the <noscript>, an image without
#: alternative text, which only a browser with JavaScript off shows
BROKEN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Broken</title>
</head><body><main><h1>Broken</h1>
<noscript><p><img src="/photo.png" width="10" height="10"></p></noscript>
<p><input type="text" name="unlabelled"></p></main></body></html>"""


@pytest.mark.parametrize("mode", MODES)
def test_axe_finds_what_is_broken_under_a_strict_csp(browsers: dict[bool, Any], mode: str) -> None:
    page = browsers[MODES[mode]].new_page()
    try:
        page.route(
            "http://broken.test/**",
            lambda route: route.fulfill(
                status=200,
                content_type="text/html; charset=utf-8",
                headers={"Content-Security-Policy": STRICT_CSP},
                body=BROKEN,
            ),
        )
        page.goto("http://broken.test/")
        found = {rule["id"]: rule for rule in violations(page)}
    finally:
        page.close()
    assert "label" in found, describe(list(found.values()))
    assert found["label"]["count"] == 1
    # the <noscript> image is on the page only when JavaScript is off
    assert ("image-alt" in found) is (mode == "no-javascript"), describe(list(found.values()))
    assert set(found) <= {"label", "image-alt"}, describe(list(found.values()))
