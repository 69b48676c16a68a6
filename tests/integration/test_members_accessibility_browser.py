"""Every page of the members' service passes axe-core's WCAG 2.2 A and AA rules.

`incident-db serve --demo` runs under gunicorn (the fixture of
test_members_passkey_browser.py); Chromium with a virtual authenticator
opens the demo-admin's one-time link, makes a passkey and so signs in as an
admin, who reaches every page. A second context with JavaScript off gets the
same session cookie (a passkey needs JavaScript; reading pages does not).

Checked, each with JavaScript on and off and at a phone's width (375x740) and
a desktop's (1280x900): /sign-in, /recover and the /join page (while
anonymous; the join page before its link is used), the recovery codes shown
after joining (JavaScript on: they exist only there), then the home page,
/passkeys, /members, /audit, /map without and with a filter, /places, the
brief of Chittagong, /voyage empty and with three calls, and the incident
that carries the demo's photo. Any violation fails the test, named with its
axe rule and the elements it found. axe, its rule set and its options are
those of the reporter pages' test (tests/integration/axe.py).

Two things axe cannot judge are checked on the way: a page with a passkey
button says so when scripts are off (the button cannot work then), and the
place brief's map legend is HTML text under the map, not words inside the
picture, which shrink to a few pixels on a phone.

Time matters: one server, one browser, each page loaded once per JavaScript
mode and checked at both widths by resizing it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, select

from incident_db.attachments import IncidentAttachment
from incident_db.demo import DATABASE, PHOTO_PLACE
from incident_db.models import Incident
from tests.integration.axe import describe, violations
from tests.integration.chromium import launched
from tests.integration.test_members_passkey_browser import served  # noqa: F401  (the fixture)

WIDTHS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 900}}
MODES = {"javascript": True, "no-javascript": False}
#: anyone may open these; the join page's address is the demo's one-time link
ANONYMOUS = {"sign-in page": "/sign-in", "recovery page": "/recover"}
#: three ports of call the demo has incidents at, one per line as a member types them
CALLS = "Chittagong\nLagos\nBelawan"
#: a filter that opens the form's "Category and area" part and draws the map's clusters
FILTER = urlencode({"since": "2000-01-01", "kind": ["actual-attack", "attempted-attack"],
                    "verification": "confirmed", "category": "piracy-or-armed-robbery"},
                   doseq=True)  # fmt: skip


def photo_incident(demo_dir: Path) -> str:
    """The id of the demo's incident with the photo (ids are random per demo database)."""
    engine = create_engine(f"sqlite:///{demo_dir / DATABASE}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Incident.id, Incident.place).join(
                    IncidentAttachment, IncidentAttachment.incident_id == Incident.id
                )
            ).all()
    finally:
        engine.dispose()
    [(incident_id, place)] = rows
    assert PHOTO_PLACE in place
    return str(incident_id)


def with_passkey(context: Any, page: Any) -> None:
    """Chromium's virtual authenticator (a passkey on this device) for ``page``."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
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
    )


def check(page: Any, where: str, found: dict[str, list[dict[str, Any]]]) -> None:
    """axe on ``page`` at both widths, leaving it at the phone's; what it found, by width."""
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        result = violations(page)
        if result:
            found[f"{where} at {width} width"] = result
    page.set_viewport_size(WIDTHS["phone"])


def visit(page: Any, url: str, where: str, found: dict[str, list[dict[str, Any]]]) -> None:
    """Open ``url`` (it must answer 200) and check it."""
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, (where, response.status)
    if "/map" in url:
        page.wait_for_load_state("networkidle")  # map.js has fetched and redrawn the map
    check(page, where, found)


def says_javascript_is_needed(page: Any, javascript: bool, passkey_page: bool) -> None:
    """A page with a passkey button says, when scripts are off, that it cannot work so."""
    shown = page.locator("#needs-javascript").is_visible()
    assert shown is (passkey_page and not javascript), (page.url, javascript)


def legend_is_legible(page: Any) -> None:
    """A place's map has its legend under it in HTML, at the text's size on a phone, not in the
    picture, where its words would shrink with the map to a few pixels."""
    assert page.locator("figure.map svg .map-legend").count() == 0
    assert page.locator("#map-legend li").count() == 6
    size = page.locator("#map-legend li").first.evaluate("e => getComputedStyle(e).fontSize")
    assert float(size.removesuffix("px")) >= 14, size


def test_every_members_page_passes_axe(served: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    url, link = served["url"], served["link"]
    photo = photo_incident(tmp_path / "demo")
    found: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    with launched() as browser:
        contexts = {js: browser.new_context(java_script_enabled=js, viewport=WIDTHS["phone"])
                    for js in MODES.values()}  # fmt: skip
        pages = {js: context.new_page() for js, context in contexts.items()}
        for mode, js in MODES.items():
            for where, path in ANONYMOUS.items():
                visit(pages[js], url + path, f"{mode}, {where}", found)
                says_javascript_is_needed(pages[js], js, where == "sign-in page")
            visit(pages[js], link, f"{mode}, join page", found)
            says_javascript_is_needed(pages[js], js, True)

        # the admin joins with JavaScript on; the codes are shown once, on the join page
        page = pages[True]
        with_passkey(contexts[True], page)
        page.click("#passkey-create")
        page.wait_for_selector("#recovery-codes:not([hidden])", timeout=20_000)
        check(page, "javascript, join page showing the recovery codes", found)
        page.click("#continue")
        page.wait_for_selector("#incident-count")
        contexts[False].add_cookies(contexts[True].cookies())

        page.goto(f"{url}/places?q=Chittagong")
        chittagong = page.locator("#results a", has_text="Chittagong").first.get_attribute("href")
        assert chittagong is not None
        assert chittagong.startswith("/places/")
        signed_in = {
            "home page": "/",
            "passkeys": "/passkeys",
            "members": "/members",
            "audit log": "/audit",
            "map": "/map",
            "map with a filter": f"/map?{FILTER}",
            "places": "/places",
            "Chittagong's brief": chittagong,
            "voyage form": "/voyage",
            "voyage brief of three calls": "/voyage?calls=" + quote(CALLS),
            "incident with a photo": f"/incidents/{photo}",
        }
        for mode, js in MODES.items():
            for where, path in signed_in.items():
                visit(pages[js], url + path, f"{mode}, {where}", found)
                says_javascript_is_needed(pages[js], js, where == "passkeys")
                if where == "Chittagong's brief":
                    legend_is_legible(pages[js])
            # the session was the admin's all along, not the sign-in page in its place
            assert pages[js].get_by_role("button", name="Sign out").is_visible(), mode
            assert pages[js].locator("figure.attachment img").count() == 1, mode
    print(f"axe on the members' pages: {time.monotonic() - started:.1f} s")
    problems = [f"{where}:\n{describe(rules)}" for where, rules in found.items()]
    assert not problems, "axe-core (WCAG 2.2 A/AA) on the members' pages:\n" + "\n".join(problems)
