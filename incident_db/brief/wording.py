"""The brief in words: the sentences a captain reads first, and the small tables.

Both the printable page (``html.py``) and the terminal text (``text.py``)
say the same things in the same words, so they are written once, here.
Every sentence is built from counts in the figures; none rounds a small
count into a percentage that would suggest more than it holds.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from incident_db.brief.figures import NOT_STATED, UNKNOWN
from incident_db.brief.trend import KIND_LABELS
from incident_db.taxonomy import CREW, label

MAX_ROWS = 6
SHORT_KINDS = {"actual-attack": "actual", "attempted-attack": "attempted",
               "suspicious-approach": "suspicious", "other": "other"}  # fmt: skip
_NOTE = re.compile(r"\s*\([^)]*\)?")


def _lower(text: str) -> str:
    """A label inside a sentence: "Knives or machetes" → "knives or machetes", "PA ..." kept."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def heading(selection: dict[str, Any]) -> str:
    """What the brief is about: the place, or the circle."""
    if selection["place"] is not None:
        return str(selection["place"])
    near = selection["near"]
    return f"within {selection['radius_nm']:g} nm of {near['lat']:g}, {near['lon']:g}"


def period_words(figures: dict[str, Any]) -> str:
    """The dates the brief covers, as stated on it."""
    trend, selection, period = figures["trend"], figures["selection"], figures["period"]
    if trend is not None:
        span = trend["period"]
        last = "the last " if trend["ends_today"] else ""
        return f"{span['since']} to {span['until']} ({last}{trend['length']})"
    if selection["until"] is not None:
        return f"up to {selection['until']} (no start date)"
    first, last = period["first"] or "?", period["last"] or "?"
    return f"the whole archive: {first} to {last}"


def subtitle(figures: dict[str, Any]) -> str:
    """The line under the heading: period, count, how much of it is confirmed."""
    verification = figures["verification"]
    return (
        f"{period_words(figures)} · {figures['incidents']} incidents · "
        f"{verification['confirmed']} confirmed by reviewers, "
        f"{verification['unverified']} unverified from external feeds"
    )


def _change(pair: dict[str, Any]) -> str:
    change = pair["change"]
    words = (
        "the same number" if change == 0 else f"{abs(change)} {'more' if change > 0 else 'fewer'}"
    )
    if pair["change_percent"] is not None:
        words += f", {pair['change_percent']:+d} %"
    return words


def trend_lines(figures: dict[str, Any]) -> list[str]:
    """The period against the one before it, overall and by kind, with what the data covers."""
    trend = figures["trend"]
    if trend is None:
        return ["No trend: the brief covers the whole archive, so there is no period before it."]
    length, every = trend["length"], trend["all"]
    now = f"in the last {length}" if trend["ends_today"] else (
        f"from {trend['period']['since']} to {trend['period']['until']}")  # fmt: skip
    lines = [f"{every['period']} {now}, {every['previous']} in the {length} before "
             f"({_change(every)})."]  # fmt: skip
    kinds = [f"{KIND_LABELS[k]} {p['period']} ({p['previous']} before)"
             for k, p in trend["by_kind"].items() if p["period"] or p["previous"]]  # fmt: skip
    if kinds:
        lines.append(f"By kind: {', '.join(kinds)}.")
    archive = trend["archive"]
    if archive["last"] is not None and archive["last"] < trend["period"]["since"]:
        lines.append(f"No incident in the database is dated after {archive['last']}: "
                     "its sources stop before this period.")  # fmt: skip
    elif archive["first"] is not None and archive["first"] > trend["previous"]["since"]:
        lines.append(f"The database starts on {archive['first']}, so the {length} before "
                     "are only partly covered.")  # fmt: skip
    return lines


def clock_line(figures: dict[str, Any]) -> str:
    """The tightest local-time window, or why there is none."""
    window = figures["clock_window"]
    known = window["known"]
    if window["from"] is None:
        if known == 0:
            return "No incident has a known local time: no time window."
        return (f"Only {known} with a known local time: too few to give a time window "
                f"(at least {window['minimum']} needed).")  # fmt: skip
    return (
        f"Between {window['from']} and {window['to']} local time: holds {window['holds']} "
        f"of {known} with a known local time (the tightest window holding at least "
        f"{window['share']:.0%})."
    )


def days_line(figures: dict[str, Any]) -> str:
    """The local weekdays that stand out, by the rule in ``timing.weekday_pattern``."""
    pattern, days = figures["weekday_pattern"], figures["by_weekday"]
    dated, mean = pattern["dated"], pattern["mean"]
    if dated < pattern["minimum"]:
        return (f"Too few dated incidents ({dated}) to say whether a day stands out "
                f"(at least {pattern['minimum']} needed).")  # fmt: skip
    rule = f"{pattern['factor']:g} × the mean of {mean:.1f} a day"
    if not pattern["standing_out"]:
        return f"No day stands out: none has {rule} ({dated} dated incidents)."
    named = " and ".join(f"{d.title()} ({days[d]})" for d in pattern["standing_out"])
    verb = "stands" if len(pattern["standing_out"]) == 1 else "stand"
    return f"{named} {verb} out, with at least {rule} ({dated} dated incidents)."


def _facet_line(figures: dict[str, Any], key: str, what: str) -> str | None:
    facet, total = figures[key], figures["incidents"]
    if not facet["counts"]:
        return None
    most = ", ".join(
        f"{_lower(label(key, k))} in {v}" for k, v in list(facet["counts"].items())[:3]
    )
    return f"{what}: {most}; not stated in {total - facet['incidents_stating']}."


def helped_line(figures: dict[str, Any]) -> str | None:
    """The crew actions most often stated in attempts that failed."""
    failed = figures["what_helped"]["failed"]
    if not failed["incidents"]:
        return None
    if not failed["incidents_stating"]:
        return f"None of the {failed['incidents']} failed attempts states what the crew did."
    actions = ", ".join(
        f"{_lower(label('actions_taken', k))} in {v}" for k, v in list(failed["counts"].items())[:3]
    )
    return (
        f"What the crew did when attempts failed: {actions} (of {failed['incidents_stating']} "
        f"that say, {failed['incidents']} failed in all)."
    )


def sources_line(figures: dict[str, Any]) -> str:
    """How much of the brief reviewers confirmed, and how much is unverified feed data."""
    shares = figures["source_shares"]
    if not shares["incidents"]:
        return "No incident, so no sources."
    return (
        f"Sources: {shares['confirmed']} of {shares['incidents']} confirmed by reviewers "
        f"({shares['confirmed_share']:.0%}); {shares['external_unverified']} from external "
        f"feeds, unverified ({shares['external_unverified_share']:.0%})."
    )


def key_points(figures: dict[str, Any]) -> list[str]:
    """The few sentences a captain reads first."""
    points = trend_lines(figures)
    if figures["incidents"] == 0:
        return [*points, "No incident matches this selection in this period."]
    points += [clock_line(figures), days_line(figures)]
    sizes = {k: v for k, v in figures["perpetrator_numbers"].items() if k != UNKNOWN and v}
    if sizes:
        groups = ", ".join(f"{k.replace('-', '–')} in {v}" for k, v in sizes.items())
        points.append(f"Perpetrators (largest number stated): {groups}; "
                      f"not stated in {figures['perpetrator_numbers'][UNKNOWN]}.")  # fmt: skip
    for key, what in (("weapons", "Weapons"), ("boarding_points", "Boarded at or targeted"),
                      ("stolen", "Stolen")):  # fmt: skip
        line = _facet_line(figures, key, what)
        if line:
            points.append(line)
    success = figures["success"]
    if success["with_outcome"]:
        foiled = figures["outcomes"].get("foiled-by-crew", 0)
        points.append(
            f"Successful for the perpetrators in {success['successful']} of "
            f"{success['with_outcome']} with a known outcome; {foiled} foiled by the crew."
        )
    helped = helped_line(figures)
    if helped:
        points.append(helped)
    points.append(sources_line(figures))
    return points


def _rows(counts: dict[str, int], field: str) -> list[tuple[Any, ...]]:
    return [(UNKNOWN if k == NOT_STATED else label(field, k), v) for k, v in counts.items()]


def _facet_rows(figures: dict[str, Any], key: str) -> list[tuple[Any, ...]]:
    facet = figures[key]
    rows = _rows(facet["counts"], key)[: MAX_ROWS - 1]
    if rows:  # the incidents that name nothing are their own row
        rows.append(("not stated", figures["incidents"] - facet["incidents_stating"]))
    return rows


def table(title: str, rows: list[tuple[Any, ...]], **extra: Any) -> dict[str, Any]:
    """One small table: a title, rows of cells (label first), an optional header and note."""
    return {"title": title, "rows": rows[:MAX_ROWS], "empty": "not stated", "header": None,
            "note": "", "wide": False, **extra}  # fmt: skip


def _trend_table(figures: dict[str, Any]) -> dict[str, Any]:
    trend = figures["trend"]
    if trend is None:
        return table("Trend", [], empty="whole archive: no period before")
    rows = [("all", trend["all"]["period"], trend["all"]["previous"])]
    rows += [(SHORT_KINDS[k], p["period"], p["previous"]) for k, p in trend["by_kind"].items()]
    before = trend["previous"]
    return table("Trend", rows, header=("", "period", "before"),
                 note=f"before: {before['since']} – {before['until']}")  # fmt: skip


def _helped_table(figures: dict[str, Any]) -> dict[str, Any]:
    failed, successful = figures["what_helped"]["failed"], figures["what_helped"]["successful"]
    rows = [(label("actions_taken", k), v, successful["counts"].get(k, 0))
            for k, v in failed["counts"].items()]  # fmt: skip
    stating, won = failed["incidents_stating"], successful["incidents_stating"]
    note = f"saying: {stating} of {failed['incidents']} failed, {won} of {successful['incidents']}"
    return table("What the crew did", rows, header=("", "failed", "successful"), note=note,
                 empty="no failed attempt states it")  # fmt: skip


def tables(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The small tables under the charts, in reading order."""
    f = figures
    crew_rows = [(f"{CREW[k]} (people)", v["people"]) for k, v in f["crew"].items() if v["people"]]
    success = f["success"]
    success_note = ""
    if success["ratio"] is not None:
        success_note = (f"Success ratio {success['ratio']:.0%} "
                        f"({success['successful']} of {success['with_outcome']})")  # fmt: skip
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
    sizes = [(k.replace("-", "–") if k != UNKNOWN else "not stated", v)
             for k, v in f["perpetrator_numbers"].items() if v]  # fmt: skip
    return [
        _trend_table(f),
        table("Perpetrators", sizes, note="largest number stated"),
        table("Weapons", _facet_rows(f, "weapons")),
        table("Boarding points and targets", _facet_rows(f, "boarding_points")),
        table("Stolen", _facet_rows(f, "stolen")),
        table("Crew", crew_rows),
        table("Outcome", _rows(f["outcomes"], "outcome"), note=success_note),
        _helped_table(f),
        table("What happened", _rows(f["incident_types"], "incident_type")),
        table("Ships", _rows(f["vessel_status"], "vessel_status")),
        table("Sources", list(f["sources"]["by_source"].items())),
        table("Verification", verification_rows),
        table("Names merged" if f["selection"]["place"] else "Places named",
              names.most_common(), wide=True, note=f"and {more} more" if more > 0 else ""),
    ]  # fmt: skip
