"""TLP labels in real Chromium over `incident-db serve --demo`: on a phone and on paper.

On a 375 px phone the label is visible whole, in FIRST's colour on black,
at a readable size, and the page does not scroll sideways. With print
media, a TLP:RED row of the map's list, a RED incident's page and a RED
marker on a place page's map are not shown, and the line saying RED is not
printed is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from incident_db import history, tlp
from incident_db.db import open_database
from incident_db.models import Incident
from incident_db.web.sessions import COOKIE
from tests.integration.chromium import chromium
from tests.integration.test_members_voyage_browser import served  # noqa: F401 (a fixture)


def _rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture
def levels(served: dict[str, Any], tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """Two demo incidents on the map made RED and AMBER+STRICT by an editor."""
    engine = open_database(f"sqlite:///{tmp_path / 'demo' / 'incidents.sqlite3'}")
    try:
        with Session(engine) as session:
            ids = session.scalars(
                select(Incident.id)
                .where(Incident.merged_into.is_(None), Incident.latitude.is_not(None))
                .order_by(Incident.local_date.desc(), Incident.id)
                .limit(2)
            ).all()
            chosen = dict(zip(ids, ("red", "amber+strict"), strict=True))
            for ident, level in chosen.items():
                history.set_tlp(session, ident, level, actor="cli", reason="browser test")
            session.commit()
    finally:
        engine.dispose()
    return chosen


def _place_key(tmp_path: Path, ident: str) -> str:
    engine = open_database(f"sqlite:///{tmp_path / 'demo' / 'incidents.sqlite3'}")
    try:
        with Session(engine) as session:
            return session.scalars(select(Incident.place_key).where(Incident.id == ident)).one()
    finally:
        engine.dispose()


def test_labels_on_a_phone_and_on_paper(
    served: dict[str, Any],  # noqa: F811
    levels: dict[str, str],
    tmp_path: Path,
) -> None:
    url = served["url"]
    red, strict = (ident for ident, level in levels.items() if level in ("red", "amber+strict"))
    with chromium(tmp_path / "profile") as context:
        context.add_cookies([{"name": COOKIE, "value": served["cookie"], "url": url}])
        page = context.new_page()
        page.set_viewport_size({"width": 375, "height": 812})
        for ident, level in levels.items():
            response = page.goto(f"{url}/incidents/{ident}")
            assert response is not None
            assert response.status == 200
            mark = page.locator("#tlp-level .tlp")
            assert mark.is_visible()
            assert mark.inner_text() == tlp.LABELS[level]
            style = mark.evaluate(
                "e => { const s = getComputedStyle(e); "
                "return [s.color, s.backgroundColor, parseFloat(s.fontSize)]; }"
            )
            assert style[:2] == [_rgb(tlp.COLOURS[level]), _rgb(tlp.BACKGROUND)]
            assert style[2] >= 14
            box = mark.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 375
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(tmp_path / f"incident-{level}-375.png"))
        response = page.goto(f"{url}/map?since=2000-01-01")
        assert response is not None
        assert response.status == 200
        assert page.locator(f'tr[data-id="{red}"] .tlp-red').is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        page.emulate_media(media="print")
        assert not page.locator(f'tr[data-id="{red}"]').is_visible()
        assert page.locator(f'tr[data-id="{strict}"] .tlp-amber-strict').is_visible()
        assert page.locator(".tlp-red-note").is_visible()
        assert "TLP:RED incidents are not printed" in page.locator(".tlp-red-note").inner_text()
        page.goto(f"{url}/incidents/{red}")
        assert not page.locator("h1").is_visible()
        assert page.locator(".tlp-red-note").is_visible()
        page.goto(f"{url}/incidents/{strict}")
        assert page.locator("h1").is_visible()
        assert page.locator(".tlp-red-note").count() == 0
        # the place page's inline map: the RED marker is drawn, and not printed
        page.goto(f"{url}/places/{_place_key(tmp_path, red)}?archive=1")
        marker = page.locator(f'svg.incident-map g.marker[data-id="{red}"]')
        assert marker.count() == 1
        assert not marker.is_visible()
        assert page.locator("svg.incident-map g.marker:not(.tlp-red-marker)").first.is_visible()
        assert "position is left off the printed map" in page.locator("main").inner_text()
        page.emulate_media(media="screen")
        assert marker.is_visible()
