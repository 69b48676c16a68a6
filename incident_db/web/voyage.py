"""The voyage brief: a member's ports of call, ranked by recent risk, one page each.

A CSO enters the calls in order; each is folded to its place key as
``incident-db brief --place`` folds it, and a name with no incident on
record is sent back with similar names rather than dropped. The result is
one printable document (the HTML page under print.css, or the PDF from
pdf.py): a summary page ranking the calls by the score below, then one
page per call with its brief for the last 24 months. Every document made
is written to the audit log ("export.voyage-brief").
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from incident_db.brief.selection import Selection, select_rows, shift_months
from incident_db.brief.text import clean
from incident_db.brief.trend import KIND_COLUMNS, KINDS, kind
from incident_db.members import store
from incident_db.models import Incident, core_table
from incident_db.web import heavy, sessions
from incident_db.web.exports import LEFT_OUT_HEADER
from incident_db.web.places import (
    MAX_QUERY,
    Period,
    Place,
    brief_page,
    default_period,
    resolve,
    suggestions,
    today,
)

voyage = Blueprint("voyage", __name__)

MAX_CALLS = 12
#: the months the risk score looks back over
RISK_MONTHS = 12
#: points per incident in the risk score, by kind (brief.trend.kind)
WEIGHTS = {"actual-attack": 3, "attempted-attack": 2, "suspicious-approach": 1, "other": 1}
#: the rule, as the summary page states it
SCORE_WORDS = (
    "Risk score: the incidents at the place in the last 12 months, each counted as 3 points "
    "if the robbers or pirates got aboard (an actual attack), 2 if they tried and failed "
    "(an attempted attack, or a ship fired upon), and 1 for a suspicious approach or any "
    "other incident. A higher score ranks first; equal scores rank the place with the more "
    "recent incident first."
)
#: incidents listed on each call's page; the figures count them all
LISTED_PER_CALL = 5


class CallsError(ValueError):
    """The calls as entered cannot make a brief (one line, for the member)."""


@dataclass(frozen=True)
class Unknown:
    """A call that matches no place on record, with places of similar names."""

    text: str
    similar: list[Place]


@dataclass(frozen=True)
class Risk:
    """A call's score over the last ``RISK_MONTHS`` months, and what it is made of."""

    place: Place
    order: int  # the call's position in the voyage, from 1
    score: int
    by_kind: dict[str, int]
    since: dt.date
    until: dt.date
    last_incident: dt.date | None  # the most recent on record, any time
    rank: int = 0


@dataclass
class VoyageBrief:
    """The whole document: calls in voyage order, ranked risks, each call's brief."""

    day: dt.date
    calls: list[Place]
    ranked: list[Risk] = field(default_factory=list)
    briefs: list[dict[str, Any]] = field(default_factory=list)


def entered_calls(text: str) -> list[str]:
    """The lines of the form: trimmed, blank ones skipped; CallsError beyond MAX_CALLS."""
    lines = [clean(line).strip() for line in text.splitlines()]
    calls = [line for line in lines if line]
    if len(calls) > MAX_CALLS:
        raise CallsError(f"A voyage brief takes up to {MAX_CALLS} ports of call, not {len(calls)}.")
    if any(len(call) > MAX_QUERY for call in calls):
        raise CallsError(f"A port name is at most {MAX_QUERY} characters long.")
    return calls


def resolve_calls(db: Session, text: str, day: dt.date) -> tuple[list[Place], list[Unknown]]:
    """Each call's place (a place called twice is kept once, at its first call), and the unknown."""
    places: list[Place] = []
    unknown: list[Unknown] = []
    for call in entered_calls(text):
        found = resolve(db, call, day)
        if found is None:
            unknown.append(Unknown(call, suggestions(db, call, day)))
        elif found.key not in {p.key for p in places}:
            places.append(found)
    return places, unknown


def call_risk(connection: Connection, place: Place, order: int, day: dt.date) -> Risk:
    """The call's risk score over the last RISK_MONTHS months ending ``day``."""
    since = shift_months(day, -RISK_MONTHS) + dt.timedelta(days=1)
    rows = select_rows(connection, Selection(place=place.name, since=since, until=day),
                       KIND_COLUMNS)  # fmt: skip
    counted = Counter(kind(r.incident_type, r.category, r.outcome) for r in rows)
    table = core_table(Incident)
    last = connection.execute(
        select(func.max(table.c.local_date)).where(
            table.c.place_key == place.key, table.c.merged_into.is_(None)
        )
    ).scalar_one()
    if isinstance(last, str):  # SQLite hands back the text of a date under func.max
        last = dt.date.fromisoformat(last[:10])
    return Risk(place, order, sum(WEIGHTS[k] * n for k, n in counted.items()),
                {k: counted.get(k, 0) for k in KINDS}, since, day, last)  # fmt: skip


def rank(risks: list[Risk]) -> list[Risk]:
    """Highest score first; ties by the most recent incident, then by voyage order."""
    ordered = sorted(
        risks,
        key=lambda r: (-r.score, -(r.last_incident or dt.date.min).toordinal(), r.order),
    )
    return [Risk(**{**r.__dict__, "rank": n}) for n, r in enumerate(ordered, start=1)]


def make_voyage_brief(connection: Connection, calls: list[Place], day: dt.date) -> VoyageBrief:
    """Score and brief every call; the briefs cover the last 24 months ending ``day``."""
    document = VoyageBrief(day, calls)
    document.ranked = rank([call_risk(connection, p, n, day) for n, p in enumerate(calls, 1)])
    risks = {r.place.key: r for r in document.ranked}
    period = Period(*default_period(day))
    for place in calls:
        brief = brief_page(connection, place, period, day, map_size=(560, 230))
        brief["incidents"] = brief["incidents"][:LISTED_PER_CALL]
        document.briefs.append({"place": place, "brief": brief, "risk": risks[place.key]})
    return document


def red_listed(document: VoyageBrief) -> int:
    """How many TLP:RED incidents the calls list: never printed, never in the PDF."""
    return sum(1 for item in document.briefs for i in item["brief"]["incidents"]
               if i["tlp"] == "red")  # fmt: skip


def audit_export(db: Session, document: VoyageBrief, form: str) -> None:
    """Write the export to the audit log (with the TLP:RED incidents left out) and commit it."""
    keys = [p.key for p in document.calls]
    detail = {"calls": keys, "format": form, "tlp_red_left_out": red_listed(document)}
    store.audit(db, sessions.member().handle, "export.voyage-brief", ", ".join(keys)[:200],
                detail)  # fmt: skip
    db.commit()


def _form_page(text: str, problem: str | None, unknown: list[Unknown], status: int) -> Any:
    shown = "\n".join(clean(line) for line in text.splitlines())  # no control characters back
    page = render_template("voyage.html", calls_text=shown, problem=problem, unknown=unknown,
                           document=None, max_calls=MAX_CALLS)  # fmt: skip
    return page, status


def _document(text: str) -> tuple[Any, VoyageBrief | None]:
    """The voyage brief for the form's calls, or the form page saying what is wrong."""
    db, day = sessions.database(), today()
    try:
        calls, unknown = resolve_calls(db, text, day)
    except CallsError as error:
        return _form_page(text, str(error), [], 400), None
    if unknown:
        names = ", ".join(f"“{u.text}”" for u in unknown)
        problem = f"No incident is on record at {names}. Check the spelling or pick a similar name."
        return _form_page(text, problem, unknown, 400), None
    return None, make_voyage_brief(db.connection(), calls, day)


@voyage.get("/voyage")
def plan() -> Any:
    """The form; with ``calls``, the printable voyage brief under it."""
    text = request.args.get("calls", "")[: (MAX_QUERY + 2) * (MAX_CALLS + 8)]
    if not text.strip():
        return _form_page("", None, [], 200)
    release = heavy.take()  # the form alone is light; a brief takes a heavy slot
    try:
        return _printable(text)
    finally:
        release()


def _printable(text: str) -> Any:
    refusal, document = _document(text)
    if document is None:
        return refusal
    audit_export(sessions.database(), document, "print")
    return render_template("voyage.html", calls_text=text, problem=None, unknown=[],
                           document=document, score_words=SCORE_WORDS, weights=WEIGHTS,
                           max_calls=MAX_CALLS, red_listed=red_listed(document))  # fmt: skip


@voyage.get("/voyage.pdf")
@heavy.heavy
def pdf() -> Any:
    """The voyage brief as a PDF: the summary page, then one page per call."""
    from incident_db.web.pdf import voyage_pdf  # matplotlib loads only for a PDF

    text = request.args.get("calls", "")[: (MAX_QUERY + 2) * (MAX_CALLS + 8)]
    if not text.strip():
        return _form_page("", "Enter at least one port of call.", [], 400)
    refusal, document = _document(text)
    if document is None:
        return refusal
    body = voyage_pdf(document, SCORE_WORDS)
    audit_export(sessions.database(), document, "pdf")
    name = f"voyage-brief-{document.day.isoformat()}.pdf"
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             LEFT_OUT_HEADER: str(red_listed(document))})  # fmt: skip
