"""One incident's page: every field, where it came from, its links and its history; editing.

Members read; editors also get the forms (verification, grade, TLP level,
note, merge, link, unlink). Every change goes through ``incident_db.history``, which
appends the history row and the audit line in the same transaction. A
refused change re-renders the page with the reason and status 400; nothing
is written. Everything shown comes from records and feeds, so it is hostile
text: the templates escape it, and nothing here marks any of it safe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, g, render_template, request
from sqlalchemy import or_, select
from werkzeug.exceptions import NotFound

from incident_db import history, tlp
from incident_db.attachments import MAX_BYTES
from incident_db.models import CREW_COLUMNS, Incident, IncidentLink, IncidentTag, Provenance
from incident_db.taxonomy import CREW, GRADES, label
from incident_db.web import sessions
from incident_db.web.sessions import requires

incidents = Blueprint("incidents", __name__)

#: incident_tag facet → the taxonomy field whose labels it uses
FACET_FIELDS = {"weapons": "weapons", "boarding_points": "boarding_points", "stolen": "stolen",
                "actions_taken": "actions_taken", "reported_to": "reported_to",
                "cyber_systems": "cyber.systems"}  # fmt: skip
#: how each kind of change is named on the page
ACTION_LABELS = {
    "verification": "Verification changed",
    "grade": "Grade changed",
    "note": "Note",
    "merge": "Merged",
    "link": "Linked",
    "unlink": "Link removed",
    "record-version": "New version of the record",
    "attachment": "File attached",
    "tlp": "TLP level changed",
}
RELATION_LABELS = {
    "duplicate-of": "duplicate of",
    "corroborates": "corroborates",
    "possible-duplicate": "possible duplicate",
    "merged-into": "merged into",
}
#: a form field longer than this is refused before it reaches the history
FIELD_MAX = history.NOTE_MAX
#: an editor's upload: one file within the database's limit, and the form around it
UPLOAD_REQUEST_BYTES = MAX_BYTES + 64 * 1024
UPLOAD_ENDPOINT = "incidents.add_attachment"
UPLOAD_FORM_MEMORY = 256 * 1024


@dataclass(frozen=True)
class Shown:
    """One line of the page: a human label and the value as text."""

    label: str
    value: str


def _incident_or_404(incident_id: str) -> Incident:
    if len(incident_id) != 32 or not set(incident_id) <= set("0123456789abcdef"):
        raise NotFound("There is no such incident.")
    found = sessions.database().get(Incident, incident_id)
    if found is None:
        raise NotFound("There is no such incident.")
    return found


def _labelled(field: str, value: str | None) -> str | None:
    return None if value is None else label(field, value)


def _groups(incident: Incident, tags: dict[str, list[str]]) -> list[tuple[str, list[Shown]]]:
    """The incident's fields in groups, with the taxonomy's labels; empty ones left out."""
    i = incident
    when = " ".join(str(v) for v in (i.local_date, i.local_time) if v is not None) or None
    offset = None
    if i.utc_offset_minutes is not None:
        sign = "+" if i.utc_offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(i.utc_offset_minutes), 60)
        offset = f"UTC{sign}{hours:02d}:{minutes:02d}"
    position = None
    if i.latitude is not None and i.longitude is not None:
        position = (
            f"{i.latitude:.{i.position_decimals or 4}f}, {i.longitude:.{i.position_decimals or 4}f}"
        )
    perpetrators = None
    if i.perpetrators_min is not None or i.perpetrators_max is not None:
        low, high = i.perpetrators_min, i.perpetrators_max
        perpetrators = str(low if high in (None, low) else f"{low or 0}–{high}")
    crew = ", ".join(
        f"{CREW[column[5:]]}: {getattr(i, column)}"
        for column in CREW_COLUMNS
        if getattr(i, column) is not None
    )

    def listed(facet: str) -> str | None:
        values = tags.get(facet, [])
        return ", ".join(label(FACET_FIELDS[facet], v) for v in values) or None

    craft = " · ".join(
        str(v)
        for v in (i.suspect_craft_count, _labelled("suspect_craft.type", i.suspect_craft_type),
                  i.suspect_craft_description)
        if v is not None
    )  # fmt: skip
    groups = [
        ("What happened", [
            ("Category", _labelled("category", i.category)),
            ("Report type", _labelled("report_type", i.report_type)),
            ("Incident type", _labelled("incident_type", i.incident_type)),
            ("Outcome", _labelled("outcome", i.outcome)),
        ]),
        ("When", [
            ("Local date and time", when),
            ("UTC offset", offset),
            ("UTC", None if i.occurred_utc is None else i.occurred_utc.strftime("%Y-%m-%d %H:%M")),
        ]),
        ("Where", [
            ("Position (latitude, longitude)", position),
            ("Place", i.place),
            ("Location type", _labelled("location_type", i.location_type)),
        ]),
        ("The ship", [
            ("Vessel type", _labelled("vessel_type", i.vessel_type)),
            ("Vessel status", _labelled("vessel_status", i.vessel_status)),
        ]),
        ("The attack", [
            ("Perpetrators", perpetrators),
            ("Weapons", listed("weapons")),
            ("Boarding method", _labelled("boarding_method", i.boarding_method)),
            ("Boarding points", listed("boarding_points")),
            ("Stolen", listed("stolen")),
            ("Crew", crew or None),
            ("Suspect craft", craft or None),
            ("Actions taken", listed("actions_taken")),
            ("Reported to", listed("reported_to")),
        ]),
        ("Stowaways", [
            ("Number", None if i.stowaway_count is None else str(i.stowaway_count)),
            ("Port of embarkation", i.stowaway_embarkation_port),
            ("Berth of embarkation", i.stowaway_embarkation_berth),
            ("Hiding place", _labelled("stowaways.hiding_place", i.stowaway_hiding_place)),
            ("How found", i.stowaway_how_found),
        ]),
        ("Cyber", [
            ("Vector", _labelled("cyber.vector", i.cyber_vector)),
            ("Systems", listed("cyber_systems")),
            ("Impact", i.cyber_impact),
        ]),
    ]  # fmt: skip
    return [
        (title, [Shown(name, value) for name, value in lines if value is not None])
        for title, lines in groups
        if any(value is not None for _, value in lines)
    ]


def _change_lines(raw: str) -> list[Shown]:
    """A history row's before or after, one field a line (values as JSON text, escaped later)."""
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return [Shown("", raw)]
    if not isinstance(value, dict):
        return [Shown("", raw)]
    if "incident" in value and isinstance(value["incident"], dict):
        value = {**value["incident"], "tags": value.get("tags"), "links": value.get("links")}
    return [
        Shown(str(key), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        for key, v in sorted(value.items())
    ]


@dataclass(frozen=True)
class ChangedField:
    """One field of a history row: its value before and after."""

    name: str
    before: str
    after: str


def _fields(change_before: str, change_after: str, *, changed_only: bool) -> list[ChangedField]:
    """A history row's before and after side by side (for a record version: what differs)."""
    old = {s.label: s.value for s in _change_lines(change_before)}
    new = {s.label: s.value for s in _change_lines(change_after)}
    keys = sorted(old.keys() | new.keys())
    if changed_only:
        keys = [k for k in keys if old.get(k) != new.get(k)]
    return [ChangedField(k, old.get(k, ""), new.get(k, "")) for k in keys]


def _page(incident_id: str, status: int = 200, **shown: object) -> Response:
    db = sessions.database()
    db.expire_all()
    incident = _incident_or_404(incident_id)
    tags: dict[str, list[str]] = {}
    for facet, value in db.execute(
        select(IncidentTag.facet, IncidentTag.value)
        .where(IncidentTag.incident_id == incident.id)
        .order_by(IncidentTag.facet, IncidentTag.value)
    ):
        tags.setdefault(facet, []).append(value)
    provenance = db.scalars(
        select(Provenance)
        .where(or_(Provenance.incident_id == incident.id, Provenance.original_id == incident.id))
        .order_by(Provenance.id)
    ).all()
    links = db.scalars(
        select(IncidentLink)
        .where(or_(IncidentLink.incident_id == incident.id, IncidentLink.other_id == incident.id))
        .order_by(IncidentLink.relation, IncidentLink.other_id)
    ).all()
    changes = [
        (change, _fields(change.before, change.after,
                         changed_only=change.action == "record-version"))
        for change in history.history(db, incident.id)
    ]  # fmt: skip
    page = render_template(
        "incident.html",
        incident=incident,
        groups=_groups(incident, tags),
        provenance=provenance,
        duplicates=[k for k in links if k.relation == "possible-duplicate"],
        links=[k for k in links if k.relation != "possible-duplicate"],
        changes=changes,
        action_labels=ACTION_LABELS,
        relation_labels=RELATION_LABELS,
        levels=history.VERIFICATION_LEVELS,
        tlp_levels=tlp.LEVELS,
        grades=GRADES,
        editor_relations=history.EDITOR_RELATIONS,
        can_edit=sessions.member().role in ("editor", "admin"),
        upload_mb=MAX_BYTES // (1024 * 1024),
        **shown,
    )
    return Response(page, status)


@incidents.get("/incidents/<incident_id>")
def incident(incident_id: str) -> Response:
    """Everything known of one incident."""
    return _page(incident_id)


def _form(name: str) -> str:
    return request.form.get(name, "")[: FIELD_MAX + 1]


def _edit(incident_id: str, done: str, change: Callable[..., object], *args: str) -> Response:
    """Run one history operation as the signed-in editor; re-render the page with the result."""
    _incident_or_404(incident_id)
    db = sessions.database()
    try:
        change(db, *args, actor=sessions.member().handle)
    except history.HistoryError as error:
        db.rollback()
        return _page(incident_id, 400, problem=error.diagnostics())
    db.commit()
    return _page(incident_id, notice=done)


@incidents.post("/incidents/<incident_id>/verification")
@requires("editor")
def change_verification(incident_id: str) -> Response:
    """Set the verification level, with a reason."""
    level = _form("level")
    return _edit(incident_id, f"Verification set to {level}.", history.change_verification,
                 incident_id, level, _form("reason"))  # fmt: skip


@incidents.post("/incidents/<incident_id>/grade")
@requires("editor")
def change_grade(incident_id: str) -> Response:
    """Set the Admiralty grade, with a reason."""
    grade = _form("grade")
    return _edit(incident_id, f"Grade set to {grade.strip().upper()}.", history.change_grade,
                 incident_id, grade, _form("reason"))  # fmt: skip


@incidents.post("/incidents/<incident_id>/tlp")
@requires("editor")
def change_tlp(incident_id: str) -> Response:
    """Set the TLP 2.0 level, with a reason (kept in the history and the audit log)."""
    level = _form("level")[:40]
    try:  # the message is shown only once set_tlp has accepted the level
        shown = tlp.LABELS[tlp.parse(level)]
    except tlp.UnknownLevelError:
        shown = ""
    return _edit(incident_id, f"Level set to {shown}.", _set_tlp, incident_id, level,
                 _form("reason"))  # fmt: skip


def _set_tlp(db: Any, incident_id: str, level: str, reason: str, *, actor: str) -> object:
    return history.set_tlp(db, incident_id, level, actor=actor, reason=reason)


@incidents.post("/incidents/<incident_id>/note")
@requires("editor")
def add_note(incident_id: str) -> Response:
    """Add a note to the history."""
    return _edit(incident_id, "Note added.", history.add_note, incident_id, _form("note"))


@incidents.post("/incidents/<incident_id>/merge")
@requires("editor")
def merge(incident_id: str) -> Response:
    """Merge this incident into another; both stay, this one marked merged."""
    into = _form("into").strip().lower()
    return _edit(incident_id, f"Merged into {into}.", history.merge, incident_id, into,
                 _form("reason"))  # fmt: skip


@incidents.post("/incidents/<incident_id>/link")
@requires("editor")
def link(incident_id: str) -> Response:
    """Link this incident to another."""
    other = _form("other").strip().lower()
    return _edit(incident_id, f"Linked to {other}.", history.link, incident_id, other,
                 _form("relation"), _form("reason"))  # fmt: skip


@incidents.post("/incidents/<incident_id>/unlink")
@requires("editor")
def unlink(incident_id: str) -> Response:
    """Remove a link; the history keeps it."""
    other = _form("other").strip().lower()
    return _edit(incident_id, f"Link with {other} removed.", history.unlink, incident_id, other,
                 _form("relation"), _form("reason"))  # fmt: skip


def allow_upload() -> None:
    """Raise the body limit for an editor's upload, and for nothing else.

    Installed (app.py) after the sign-in guard and before the CSRF check,
    which reads the form: every other request, and this one from anyone but
    a signed-in editor, keeps the app's small limit.
    """
    if request.endpoint != UPLOAD_ENDPOINT or request.method != "POST":
        return
    member = g.get("member")
    if member is None or member.role not in ("editor", "admin"):
        return
    if (request.content_length or 0) > UPLOAD_REQUEST_BYTES:
        abort(413, f"The file is over the limit of {MAX_BYTES // (1024 * 1024)} MB. "
                   "Nothing was stored.")  # fmt: skip
    request.max_content_length = UPLOAD_REQUEST_BYTES
    # Werkzeug's multipart reader holds up to this much at once: more than one 64 KiB
    # read of the file; the reason field is cut to FIELD_MAX characters anyway
    request.max_form_memory_size = UPLOAD_FORM_MEMORY


@incidents.post("/incidents/<incident_id>/attachments")
@requires("editor")
def add_attachment(incident_id: str) -> Response:
    """Attach a photo or document; it is cleaned of metadata before it is stored."""
    _incident_or_404(incident_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(incident_id, 400, problem="Choose a file to attach.")
    content = upload.stream.read(MAX_BYTES + 1)
    db = sessions.database()
    try:
        change = history.add_attachment(
            db, incident_id, upload.filename, content, _form("reason"),
            actor=sessions.member().handle,
        )  # fmt: skip
    except history.HistoryError as error:
        db.rollback()
        return _page(incident_id, 400, problem=error.diagnostics())
    name = json.loads(change.after)["attachment"]["name"]
    db.commit()
    return _page(incident_id, notice=f"Attached {name}, cleaned of metadata.")


def day_and_minute(moment: dt.datetime) -> str:
    """A history time as members read it: day and HH:MM, UTC."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def tlp_label(level: str) -> str:
    """The level as people read it, never translated: ``TLP:AMBER+STRICT``."""
    return tlp.LABELS.get(level, "TLP:?")


def tlp_class(level: str) -> str:
    """The CSS class that gives a level its colour on black (members.css)."""
    return "tlp-" + level.replace("+", "-") if level in tlp.RANK else "tlp-unknown"


incidents.add_app_template_filter(day_and_minute, "day_and_minute")
incidents.add_app_template_filter(tlp_label, "tlp_label")
incidents.add_app_template_filter(tlp_class, "tlp_class")
