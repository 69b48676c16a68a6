"""The map in real Chromium, under `incident-db serve --demo` (gunicorn), with and without JS.

Sign-in is the passkey path of test_members_passkey_browser.py (Chromium's
virtual authenticator). With JavaScript, map.js redraws the map from
/map/points.json: the markers drawn (clusters by the number they carry)
must be the incidents plain SQL finds in the view, before and after a pan
and a zoom. Without JavaScript the server's SVG and the list must hold the
same incidents. No request leaves the service's origin. A screenshot at
375 px wide goes to /tmp/h16/shots/map-375.png for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from tests.integration.chromium import launched
from tests.integration.test_members_passkey_browser import served  # noqa: F401  (a fixture)

SHOTS = Path("/tmp/h16/shots")
FEW = "since=2000-01-01&kind=actual-attack&verification=confirmed"
MANY = "since=2000-01-01&bbox=2,3,9,7"


def sql_ids(database: Path, condition: str, box: list[float]) -> set[str]:
    """The incidents plain SQL finds for ``condition`` inside ``box`` (west, south, east, north)."""
    west, south, east, north = box
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT id FROM incident WHERE merged_into IS NULL AND local_date <= ? "  # noqa: S608
            f"AND latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ? AND {condition}",
            (today, south, north, west, east),
        )
        return {row[0] for row in rows}


def drawn(page: Any) -> tuple[set[str], int]:
    """The ids of the markers drawn, and the incidents the clusters stand for."""
    ids = set(
        page.eval_on_selector_all("svg.incident-map g.marker", "m => m.map(e => e.dataset.id)")
    )
    clustered = page.eval_on_selector_all(
        "svg.incident-map g.cluster", "c => c.reduce((n, e) => n + Number(e.dataset.count), 0)"
    )
    return ids, int(clustered)


def view_of(page: Any) -> list[float]:
    return [float(v) for v in page.get_attribute("svg.incident-map", "data-bbox").split(",")]


def sign_in(context: Any, link: str) -> Any:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})  # fmt: skip
    page.goto(link)
    page.click("#passkey-create")
    page.wait_for_selector("#recovery-codes:not([hidden])", timeout=20_000)
    page.click("#continue")
    page.wait_for_selector("#incident-count")
    return page


def wait_drawn(page: Any, before: str | None = None) -> None:
    """Wait until map.js has drawn (a view other than ``before``)."""
    page.wait_for_function(
        "b => { const s = document.querySelector('svg.incident-map');"
        " return s.dataset.drawn !== undefined && s.dataset.bbox !== b; }",
        arg=before or "",
        timeout=20_000,
    )


def test_map_with_and_without_javascript(served: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    database = tmp_path / "demo" / "incidents.sqlite3"
    url = served["url"]
    elsewhere: list[str] = []
    problems: list[str] = []
    with launched() as browser:
        context = browser.new_context(viewport={"width": 375, "height": 800})
        context.on("request", lambda r: r.url.startswith(url + "/") or elsewhere.append(r.url))
        page = sign_in(context, served["link"])
        page.on("pageerror", lambda e: problems.append(str(e)))

        # few incidents: each one drawn, exactly the set SQL finds
        page.goto(f"{url}/map?{FEW}")
        wait_drawn(page)
        condition = ("verification_status = 'confirmed' AND local_date >= '2000-01-01' AND "
                     "(incident_type IN ('boarded', 'hijacked', 'illegal-boarding-citadel', "
                     "'detained', 'explosion') OR (incident_type IS NULL AND outcome = "
                     "'successful-items-stolen-or-control-taken'))")  # fmt: skip
        ids, clustered = drawn(page)
        assert clustered == 0
        assert ids
        assert ids == sql_ids(database, condition, view_of(page))

        # many incidents: clusters count for what they hold; pan and zoom keep it true
        page.goto(f"{url}/map?{MANY}")
        wait_drawn(page)
        many = "local_date >= '2000-01-01'"

        def check() -> None:
            west, south, east, north = view_of(page)
            box = [max(west, 2), max(south, 3), min(east, 9), min(north, 7)]
            ids, clustered = drawn(page)
            expected = sql_ids(database, many, box)
            assert ids <= expected
            assert len(ids) + clustered == len(expected)

        check()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "map-375-page.png"), full_page=True)
        page.locator("#map").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "map-375.png"))
        before = page.get_attribute("svg.incident-map", "data-bbox")
        page.click("button[aria-label='Zoom in']")
        wait_drawn(page, before)
        check()
        before = page.get_attribute("svg.incident-map", "data-bbox")
        page.focus("svg.incident-map")
        page.keyboard.press("ArrowLeft")
        wait_drawn(page, before)
        check()
        cookies = context.cookies()
        context.close()

        # without JavaScript: the server's SVG and the list show the same incidents
        plain = browser.new_context(
            java_script_enabled=False, viewport={"width": 375, "height": 800}
        )
        plain.on("request", lambda r: r.url.startswith(url + "/") or elsewhere.append(r.url))
        plain.add_cookies(cookies)
        page = plain.new_page()
        page.goto(f"{url}/map?{FEW}")
        ids, clustered = drawn(page)
        assert clustered == 0
        assert ids
        listed = set(page.eval_on_selector_all("tr.map-item", "r => r.map(e => e.dataset.id)"))
        assert listed == ids
        assert page.locator(".map-controls").count() == 0  # no script ran
        plain.close()
    assert problems == []
    assert elsewhere == []
