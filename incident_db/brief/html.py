"""The brief as one printable HTML page, charts inline, nothing fetched from elsewhere."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from incident_db.brief.figures import NOT_STATED, UNKNOWN, WEEKDAYS
from incident_db.taxonomy import CREW, label

_ENVIRONMENT = Environment(
    loader=PackageLoader("incident_db", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
MAX_ROWS = 6
_NOTE = re.compile(r"\s*\([^)]*\)?")


def _heading(selection: dict[str, Any]) -> str:
    if selection["place"] is not None:
        return str(selection["place"])
    near = selection["near"]
    return f"within {selection['radius_nm']:g} nm of {near['lat']:g}, {near['lon']:g}"


def _subtitle(figures: dict[str, Any]) -> str:
    period, selection = figures["period"], figures["selection"]
    first = selection["since"] or period["first"] or "?"
    last = selection["until"] or period["last"] or "?"
    verification = figures["verification"]
    return (
        f"{first} to {last} · {figures['incidents']} incidents · "
        f"{verification['confirmed']} confirmed by reviewers, "
        f"{verification['unverified']} unverified from external feeds"
    )


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole}" if whole else "none"


def key_points(figures: dict[str, Any]) -> list[str]:
    """The few sentences a captain reads first."""
    total = figures["incidents"]
    if total == 0:
        return ["No incident matches this selection."]
    points = []
    days = {d: figures["by_weekday"][d] for d in WEEKDAYS}
    dated = sum(days.values())
    if dated:
        top = sorted(days, key=lambda d: -days[d])[:2]
        busiest = " and ".join(f"{d.title()} ({days[d]})" for d in top if days[d])
        points.append(f"Busiest local days: {busiest}, of {dated} dated incidents.")
    window = figures["local_time_window"]
    timed = total - figures["by_hour"][UNKNOWN]
    if window:
        points.append(
            f"All {timed} with a known local time were between {window['from']} and {window['to']}."
        )
    perpetrators = figures["perpetrators"]
    if perpetrators["incidents_stating"]:
        points.append(
            f"Perpetrators: {perpetrators['fewest']}–{perpetrators['most']} "
            f"(stated in {perpetrators['incidents_stating']})."
        )
    for key, what in (("weapons", "Weapons"), ("boarding_points", "Boarded at or targeted"),
                      ("stolen", "Stolen")):  # fmt: skip
        counts = figures[key]["counts"]
        if counts:
            most = ", ".join(f"{label(key, k).lower()} in {v}" for k, v in list(counts.items())[:3])
            points.append(f"{what}: {most}.")
    success = figures["success"]
    if success["with_outcome"]:
        foiled = figures["outcomes"].get("foiled-by-crew", 0)
        share = _share(success["successful"], success["with_outcome"])
        points.append(
            f"Successful for the perpetrators in {share} with a known outcome; "
            f"{foiled} foiled by the crew."
        )
    return points


def _rows(counts: dict[str, int], field: str) -> list[tuple[str, Any]]:
    return [(UNKNOWN if k == NOT_STATED else label(field, k), v) for k, v in counts.items()]


def _table(title: str, rows: list[tuple[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"title": title, "rows": rows[:MAX_ROWS], "empty": "not stated", **extra}


def _tables(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The small tables under the charts, in reading order."""
    f = figures
    perpetrators = f["perpetrators"]
    perpetrator_rows: list[tuple[str, Any]] = []
    if perpetrators["incidents_stating"]:
        perpetrator_rows = [
            ("incidents stating a number", perpetrators["incidents_stating"]),
            ("fewest", perpetrators["fewest"]),
            ("most", perpetrators["most"]),
        ]
    crew_rows = [(f"{CREW[k]} (people)", v["people"]) for k, v in f["crew"].items() if v["people"]]
    success = f["success"]
    success_note = ""
    if success["ratio"] is not None:
        success_note = (
            f"Success ratio {success['ratio']:.0%} "
            f"({success['successful']} of {success['with_outcome']})"
        )
    verification = f["verification"]
    verification_rows = [
        ("confirmed by reviewers", verification["confirmed"]),
        ("unverified (external)", verification["unverified"]),
        *((f"grade {grade}", n) for grade, n in verification["grades"].items()),
    ]
    names: Counter[str] = Counter()
    for entry in f["names_merged"]:
        names[_NOTE.sub("", entry["name"])] += entry["incidents"]
    more = len(names) - MAX_ROWS
    return [
        _table("Perpetrators", perpetrator_rows),
        _table("Weapons", _rows(f["weapons"]["counts"], "weapons")),
        _table("Boarding points and targets",
               _rows(f["boarding_points"]["counts"], "boarding_points")),
        _table("Stolen", _rows(f["stolen"]["counts"], "stolen")),
        _table("Crew", crew_rows),
        _table("Outcome", _rows(f["outcomes"], "outcome"), note=success_note),
        _table("What happened", _rows(f["incident_types"], "incident_type")),
        _table("Ships", _rows(f["vessel_status"], "vessel_status")),
        _table("Crew actions", _rows(f["actions_taken"]["counts"], "actions_taken")),
        _table("Sources", list(f["sources"]["by_source"].items())),
        _table("Verification", verification_rows),
        _table("Names merged" if f["selection"]["place"] else "Places named",
               names.most_common(), wide=True, note=f"and {more} more" if more > 0 else ""),
    ]  # fmt: skip


def render_html(figures: dict[str, Any], *, now: dt.datetime | None = None) -> str:
    """The brief page for ``figures`` (from ``make_brief``)."""
    from incident_db.brief import charts  # matplotlib is imported only for HTML

    moment = now or dt.datetime.now(dt.UTC)
    template = _ENVIRONMENT.get_template("brief.html")
    return template.render(
        heading=_heading(figures["selection"]),
        subtitle=_subtitle(figures),
        key_points=key_points(figures),
        charts={
            "weekday": charts.weekday_chart(figures["by_weekday"]),
            "hour": charts.hour_chart(figures["by_hour"]),
            "month": charts.month_chart(figures["by_month"]) if figures["by_month"] else "",
        },
        tables=_tables(figures),
        credits=sorted(figures["credits"].items()),
        generated=moment.strftime("%Y-%m-%d %H:%M UTC"),
    )
