"""The append-only security audit log: who, what, when (UTC), outcome, never secrets."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from models import AuditEvent

# Keys that must never reach the audit log, whatever a caller passes.
_FORBIDDEN = {"password", "code", "token", "secret", "pin", "totp"}


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
    )
    db.add(entry)
    return entry
