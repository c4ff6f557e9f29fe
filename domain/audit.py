"""The append-only security audit log: who, what, when (UTC), outcome, never secrets."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import AuditEvent

# Keys that must never reach the audit log, whatever a caller passes.
_FORBIDDEN = {"password", "code", "token", "secret", "pin", "totp"}

# Detail keys that name what the event is about, and the indexed column each is
# also written to (a work item's trail is read by them: events_about).
SUBJECT_COLUMNS = {
    "item": "work_item_id",
    "reference": "request_reference",
    "consent": "consent_id",
    "thread": "thread_id",
}


def _subject_values(detail: dict) -> dict[str, int | str]:
    values: dict[str, int | str] = {}
    for key, column in SUBJECT_COLUMNS.items():
        value = detail.get(key)
        if column == "request_reference":
            if isinstance(value, str) and 0 < len(value) <= 20:
                values[column] = value
        elif isinstance(value, int) and not isinstance(value, bool):
            values[column] = value
    return values


def record(
    db: Session,
    now: datetime,
    event: str,
    outcome: str = "success",
    *,
    actor_user_id: int | None = None,
    subject_user_id: int | None = None,
    session_ref: str | None = None,
    account_id: int | None = None,
    **detail,
) -> AuditEvent:
    clean = {k: v for k, v in detail.items() if not any(f in k.lower() for f in _FORBIDDEN)}
    entry = AuditEvent(
        occurred_at=now,
        event=event,
        outcome=outcome,
        actor_user_id=actor_user_id,
        subject_user_id=subject_user_id if subject_user_id is not None else actor_user_id,
        session_ref=session_ref,
        detail=json.dumps(clean, sort_keys=True, default=str),
        account_id=account_id,
        **_subject_values(clean),
    )
    db.add(entry)
    return entry


def events_about(
    db: Session,
    *,
    work_item_id: int | None = None,
    request_reference: str | None = None,
    consent_id: int | None = None,
    thread_id: int | None = None,
) -> list[AuditEvent]:
    """The events naming any of these (each an indexed column), oldest first."""
    named = [
        column == value
        for column, value in (
            (AuditEvent.work_item_id, work_item_id),
            (AuditEvent.request_reference, request_reference),
            (AuditEvent.consent_id, consent_id),
            (AuditEvent.thread_id, thread_id),
        )
        if value is not None
    ]
    if not named:
        return []
    return list(db.scalars(select(AuditEvent).where(or_(*named)).order_by(AuditEvent.occurred_at, AuditEvent.id)))


def events_of_person(db: Session, user_id: int, limit: int) -> list[AuditEvent]:
    """The newest events a person did or had done to them."""
    return list(
        db.scalars(
            select(AuditEvent)
            .where(or_(AuditEvent.subject_user_id == user_id, AuditEvent.actor_user_id == user_id))
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )
