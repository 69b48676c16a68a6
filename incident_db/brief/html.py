"""The brief as one printable HTML page, charts inline, nothing fetched from elsewhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from incident_db.brief.wording import heading, key_points, subtitle, tables

_ENVIRONMENT = Environment(
    loader=PackageLoader("incident_db", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(figures: dict[str, Any], *, now: dt.datetime | None = None) -> str:
    """The brief page for ``figures`` (from ``make_brief``)."""
    from incident_db.brief import charts  # matplotlib is imported only for HTML

    moment = now or dt.datetime.now(dt.UTC)
    template = _ENVIRONMENT.get_template("brief.html")
    return template.render(
        heading=heading(figures["selection"]),
        subtitle=subtitle(figures),
        key_points=key_points(figures),
        charts={
            "weekday": charts.weekday_chart(figures["by_weekday"]),
            "hour": charts.hour_chart(figures["by_hour"]),
            "month": charts.month_chart(figures["by_month"]) if figures["by_month"] else "",
        },
        tables=tables(figures),
        generated=moment.strftime("%Y-%m-%d %H:%M UTC"),
        credits=sorted(figures["credits"].items()),
    )
