"""The members' audit log: append-only (the database's triggers refuse changes)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incident_db.members.common import MemberError, now_utc
from incident_db.members.models import HANDLE_MAX, AuditEvent

_AUDIT_SUBJECT_MAX = 200


def audit(
    session: Session,
    actor: str,
    action: str,
    subject: str = "",
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Append one line to the audit log. A subject longer than 200 characters is cut."""
    if not actor or len(actor) > HANDLE_MAX or not action or len(action) > 60:
        raise MemberError("an audit line needs an actor (at most 120 characters) and an action")
    if len(subject) > _AUDIT_SUBJECT_MAX:
        subject = subject[: _AUDIT_SUBJECT_MAX - 1] + "…"
    text = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, default=str)
    session.add(
        AuditEvent(at=now_utc(now), actor=actor, action=action, subject=subject, detail=text)
    )


def audit_events(
    session: Session, *, limit: int = 200, before: int | None = None
) -> list[AuditEvent]:
    """The audit log, newest first: at most ``limit`` lines, with ids below ``before``."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 1000)))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(session.scalars(query))
