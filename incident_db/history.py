"""Editing incidents, and the history that keeps every change.

Each operation here changes one incident (or a pair), appends one
``incident_change`` row saying who, when, what it was before, what it is
after and why, and one audit line, all in the caller's transaction (the
functions take a SQLAlchemy ``Session`` and commit nothing, like
``incident_db.members.store``). Nothing is deleted silently: a merge keeps
the merged incident's row, and an unlink keeps the removed link in the
history row's ``before``. The database refuses to rewrite history rows
(migration 0004).

Every change also moves the incident's ``version_at`` (when its current
version was made) to the change's time, and always strictly past the value
before (:func:`next_version`): partners pull what changed after a moment
they saw (TAXII ``added_after``), and a STIX object's ``modified`` must grow
with each version.

Usable from the web service and from a command line alike: nothing here
knows about Flask.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from incident_db import corroboration, tlp
from incident_db.attachments import UploadError, clean_upload, store_upload
from incident_db.errors import IncidentDbError, MergeError
from incident_db.members.store import audit
from incident_db.models import Incident, IncidentChange, IncidentLink
from incident_db.taxonomy import GRADES, LINK_RELATIONS

#: what ``verification_status`` may be (the model's two levels; DOMAIN.md defines no others)
VERIFICATION_LEVELS = ("confirmed", "unverified")
#: the kinds of change, as ``incident_change.action`` spells them
ACTIONS = ("verification", "grade", "note", "merge", "link", "unlink", "record-version",
           "attachment", "tlp")  # fmt: skip
#: relations an editor may set; "possible-duplicate" is found, "merged-into" made by a merge
EDITOR_RELATIONS = LINK_RELATIONS
#: the relations an editor may remove (a merge is undone by no one: it is history)
REMOVABLE_RELATIONS = (*LINK_RELATIONS, corroboration.POSSIBLE_DUPLICATE)
REASON_MAX = 2000
NOTE_MAX = 4000
#: the incident id a record and a feed row get: 32 lower-case hex digits
_HEX = frozenset("0123456789abcdef")
#: the least step between two versions of an incident: STIX times keep milliseconds
VERSION_STEP = dt.timedelta(milliseconds=1)


class HistoryError(IncidentDbError):
    """An edit was refused (unknown incident, bad value, no reason); nothing was changed."""

    failure_class = "edit refused"


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    """``value`` trimmed: at most ``limit`` characters, no control characters but line breaks."""
    text = value.strip().replace("\r\n", "\n")
    if required and not text:
        raise HistoryError(f"a {what} is required")
    if len(text) > limit:
        raise HistoryError(f"the {what} is longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf") and c != "\n" for c in text):
        raise HistoryError(f"the {what} holds control characters")
    return text


def _incident_id(value: str) -> str:
    ident = value.strip().lower()
    if len(ident) != 32 or not set(ident) <= _HEX:
        raise HistoryError(f"{value[:40]!r} is not an incident id (32 hexadecimal digits)")
    return ident


def _incident(session: Session, incident_id: str, *, live: bool = True) -> Incident:
    """The incident ``incident_id``; with ``live``, refused if it was merged into another."""
    incident = session.get(Incident, _incident_id(incident_id))
    if incident is None:
        raise HistoryError(f"no incident {incident_id}")
    if live and incident.merged_into is not None:
        raise HistoryError(
            f"incident {incident.id} is merged into {incident.merged_into}: change that one"
        )
    return incident


def _utc(now: dt.datetime | None) -> dt.datetime:
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def next_version(previous: dt.datetime | None, moment: dt.datetime) -> dt.datetime:
    """The ``version_at`` of a change made at ``moment`` (naive UTC, whole milliseconds).

    Always at least :data:`VERSION_STEP` after ``previous``, even when the
    clock shows the same millisecond or goes back.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if previous is not None and moment < previous + VERSION_STEP:
        moment = previous + VERSION_STEP
    return moment


def touch(session: Session, incident_ids: list[str], now: dt.datetime | None = None) -> None:
    """Mark each stored incident of ``incident_ids`` changed at ``now`` (``version_at``)."""
    moment = now or dt.datetime.now(dt.UTC)
    for ident in dict.fromkeys(incident_ids):
        incident = session.get(Incident, ident)
        if incident is not None:
            incident.version_at = next_version(incident.version_at, moment)


def dump(value: dict[str, Any]) -> str:
    """JSON for a history row's ``before`` and ``after``: sorted keys, dates as text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def record_change(
    session: Session,
    incident_id: str,
    action: str,
    *,
    actor: str,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
    now: dt.datetime | None = None,
    also_changed: tuple[str, ...] = (),
) -> IncidentChange:
    """Append one history row and its audit line (``incident.<action>``).

    The incident's ``version_at`` moves on, and that of each of
    ``also_changed`` (the other end of a link, the incident a merge kept).
    """
    if action not in ACTIONS:
        raise HistoryError(f"unknown change {action!r}")
    touch(session, [incident_id, *also_changed], now)
    change = IncidentChange(
        incident_id=incident_id,
        at=_utc(now),
        actor=actor,
        action=action,
        before=dump(before),
        after=dump(after),
        reason=reason,
    )
    session.add(change)
    detail = {"before": before, "after": after, "reason": reason[:200]}
    audit(session, actor, f"incident.{action}", incident_id, detail, now=now)
    return change


def change_verification(
    session: Session,
    incident_id: str,
    level: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Set the verification level (confirmed or unverified), with the reason for it."""
    if level not in VERIFICATION_LEVELS:
        raise HistoryError(f"verification must be one of {', '.join(VERIFICATION_LEVELS)}")
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id)
    if incident.verification_status == level:
        raise HistoryError(f"incident {incident.id} is already {level}")
    before = {"verification_status": incident.verification_status}
    incident.verification_status = level
    return record_change(session, incident.id, "verification", actor=actor, before=before,
                         after={"verification_status": level}, reason=why, now=now)  # fmt: skip


def change_grade(
    session: Session,
    incident_id: str,
    grade: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Set the Admiralty grade (A1 … F6: source reliability, information credibility)."""
    grade = grade.strip().upper()
    if grade not in GRADES:
        raise HistoryError("an Admiralty grade is a letter A-F and a digit 1-6, such as B2")
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id)
    if incident.grade == grade:
        raise HistoryError(f"incident {incident.id} is already graded {grade}")
    before = {"grade": incident.grade}
    incident.grade = grade
    return record_change(session, incident.id, "grade", actor=actor, before=before,
                         after={"grade": grade}, reason=why, now=now)  # fmt: skip


def set_tlp(
    session: Session,
    incident_id: str,
    level: str,
    *,
    actor: str,
    reason: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Set the incident's TLP 2.0 level (``amber``, ``TLP:RED``, …), with the reason for it.

    Raises :class:`HistoryError` for an unknown level, a missing reason, or
    the level the incident already has. A later version of the record keeps
    the level set here (versions.py).
    """
    try:
        slug = tlp.parse(level[:40])
    except tlp.UnknownLevelError as error:
        raise HistoryError(str(error)) from None
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id, live=False)
    if incident.tlp == slug:
        raise HistoryError(f"incident {incident.id} is already {tlp.LABELS[slug]}")
    before = {"tlp": incident.tlp}
    incident.tlp = slug
    # a link is exported with the incident holding it, marked with the stricter of its
    # two ends: the holders of links to this incident export something new as well
    holders = list(session.scalars(
        select(IncidentLink.incident_id).where(
            IncidentLink.other_id == incident.id, IncidentLink.relation != "merged-into"
        )
    ).all())  # fmt: skip
    if incident.merged_into is not None:
        # its provenance goes out with the incident it was merged into only while
        # that one's reader may see this level (exports.exported_incidents)
        holders.append(incident.merged_into)
    return record_change(session, incident.id, "tlp", actor=actor, before=before,
                         after={"tlp": slug}, reason=why, now=now,
                         also_changed=tuple(holders))  # fmt: skip


def add_note(
    session: Session, incident_id: str, note: str, *, actor: str, now: dt.datetime | None = None
) -> IncidentChange:
    """Add an editor's note (kept in the history only; it changes no field)."""
    text = _text(note, "note", NOTE_MAX)
    incident = _incident(session, incident_id, live=False)
    return record_change(session, incident.id, "note", actor=actor, before={},
                         after={"note": text}, reason=text, now=now)  # fmt: skip


def merge(
    session: Session,
    absorb: str,
    keep: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Merge incident ``absorb`` into ``keep``: both rows stay, ``absorb`` marked merged.

    The provenance of ``absorb`` then vouches for ``keep`` too
    (corroboration.merge); the history row goes to ``absorb`` and names both.
    When ``absorb`` had the stricter TLP level, ``keep`` takes it: the
    merge row says so, and ``keep`` gets its own "tlp" history row and audit
    line naming the merge as the reason.
    """
    why = _text(reason, "reason", REASON_MAX)
    absorbed, kept = _incident(session, absorb), _incident(session, keep)
    session.flush()
    try:
        merged = corroboration.merge(session.connection(), kept.id, absorbed.id)
    except MergeError as error:
        raise HistoryError(error.diagnostics()) from None
    # the Core statements changed rows this session holds: read them again
    session.expire_all()
    after: dict[str, Any] = {"merged_into": kept.id, "provenance_moved": merged.moved}
    if merged.tlp_raised:
        after["kept_tlp"] = {"before": merged.tlp_before, "after": merged.tlp_after}
    change = record_change(session, absorbed.id, "merge", actor=actor,
                           before={"merged_into": None}, after=after,
                           reason=why, now=now, also_changed=(kept.id,))  # fmt: skip
    if merged.tlp_raised:
        label = tlp.LABELS[merged.absorbed_tlp]
        record_change(session, kept.id, "tlp", actor=actor, before={"tlp": merged.tlp_before},
                      after={"tlp": merged.tlp_after},
                      reason=f"merged with {absorbed.id} ({label})", now=now)  # fmt: skip
    return change


def _link_row(link: IncidentLink) -> dict[str, Any]:
    return {"incident_id": link.incident_id, "other_id": link.other_id,
            "relation": link.relation, "origin": link.origin,
            "distance_nm": link.distance_nm, "hours_apart": link.hours_apart}  # fmt: skip


def link(
    session: Session,
    incident_id: str,
    other_id: str,
    relation: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Link an incident to another that is in the database (duplicate-of or corroborates)."""
    if relation not in EDITOR_RELATIONS:
        raise HistoryError(f"a link is one of {', '.join(EDITOR_RELATIONS)}")
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id)
    other = _incident(session, other_id, live=False)
    if other.id == incident.id:
        raise HistoryError("an incident cannot be linked to itself")
    if session.get(IncidentLink, (incident.id, other.id, relation)) is not None:
        raise HistoryError(f"incident {incident.id} is already linked to {other.id} ({relation})")
    made = IncidentLink(incident_id=incident.id, other_id=other.id, relation=relation,
                        origin="editor", distance_nm=None, hours_apart=None)  # fmt: skip
    session.add(made)
    return record_change(session, incident.id, "link", actor=actor, before={},
                         after=_link_row(made), reason=why, now=now,
                         also_changed=(other.id,))  # fmt: skip


def unlink(
    session: Session,
    incident_id: str,
    other_id: str,
    relation: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Remove a link in either direction; the removed link is kept in the history row."""
    if relation not in REMOVABLE_RELATIONS:
        raise HistoryError(f"only these links can be removed: {', '.join(REMOVABLE_RELATIONS)}")
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id, live=False)
    other = _incident_id(other_id)
    found = session.scalars(
        select(IncidentLink).where(
            IncidentLink.relation == relation,
            ((IncidentLink.incident_id == incident.id) & (IncidentLink.other_id == other))
            | ((IncidentLink.incident_id == other) & (IncidentLink.other_id == incident.id)),
        )
    ).all()
    if not found:
        raise HistoryError(f"incident {incident.id} has no {relation} link with {other}")
    removed = [_link_row(row) for row in found]
    session.execute(
        delete(IncidentLink).where(
            IncidentLink.relation == relation,
            IncidentLink.incident_id.in_([incident.id, other]),
            IncidentLink.other_id.in_([incident.id, other]),
        )
    )
    session.expire_all()
    return record_change(session, incident.id, "unlink", actor=actor,
                         before={"links": removed}, after={}, reason=why, now=now,
                         also_changed=(other,))  # fmt: skip


def add_attachment(
    session: Session,
    incident_id: str,
    filename: str,
    content: bytes,
    reason: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> IncidentChange:
    """Attach a photo or document to an incident, cleaned of metadata first.

    The file passes the checks a batch's files pass (incident_db.attachments);
    the history row keeps its name, type, size and hash, and the reason says
    where it came from.
    """
    why = _text(reason, "reason", REASON_MAX)
    incident = _incident(session, incident_id, live=False)
    try:
        upload = clean_upload(filename, content)
        session.flush()
        stored = store_upload(session.connection(), incident.id, upload)
    except UploadError as error:
        raise HistoryError(error.diagnostics()) from None
    after = {"attachment": {"name": stored.name, "media_type": stored.media_type,
                            "size": stored.size, "sha256": stored.sha256}}  # fmt: skip
    return record_change(session, incident.id, "attachment", actor=actor, before={},
                         after=after, reason=why, now=now)  # fmt: skip


def history(session: Session, incident_id: str, *, limit: int = 500) -> list[IncidentChange]:
    """The changes of one incident, newest first."""
    query = (
        select(IncidentChange)
        .where(IncidentChange.incident_id == incident_id)
        .order_by(IncidentChange.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
