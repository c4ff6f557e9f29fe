"""One-time form keys for the agency's forms that make or post something (an
account, an invitation letter, a ledger entry, an assessment): the form carries a
random key, and however often it is sent (a double click, a retry, a second tab)
one key makes one thing.

The key is claimed as a used_tokens row, whose primary key refuses a second
claim even from another worker at the same moment; what the first claim made is
found again by its audit event, which names it and carries the key's marker
(never the key itself). Plain functions, no Flask."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TypeGuard

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.db import savepoint
from domain.requests import KEY_PATTERN, new_token
from models import AuditEvent, UsedToken

PURPOSE = "staff-form"  # the default purpose; a purpose keeps one form's keys apart from another's
# The audit detail's name for the marker ("token" and "key" would be fine, but
# any name with "token" in it is dropped by domain.audit). Callers write it as the
# keyword of audit.record: `submission=once.marker(key)`.
MARKER_FIELD = "submission"

new_key = new_token


class AlreadySent(Exception):
    """The key was claimed, but not for this: another form's key, or one whose
    first request has not finished. Nothing was done."""


def valid(key: str | None) -> TypeGuard[str]:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def marker(key: str, purpose: str = PURPOSE) -> str:
    """What the audit event records of the key: a hash, so the key itself is kept nowhere."""
    return hashlib.sha256(f"{purpose}:{key}".encode()).hexdigest()


def claim(db: Session, now: datetime, key: str, purpose: str = PURPOSE) -> bool:
    """Claim the key for this request, in its own transaction: True the first
    time, False ever after (a second claim while the first one's transaction is
    still open on another connection waits on the primary key, then fails).
    Only the claim is undone on failure; a posting that fails later in the same
    transaction rolls the claim back with it, leaving the key unused."""
    if not valid(key):
        raise ValueError("a form key is 1 to 64 letters, digits, '-' or '_'")
    try:
        with savepoint(db):
            db.add(UsedToken(token_hash=marker(key, purpose), purpose=purpose[:30], used_at=now))
            db.flush()
    except IntegrityError:
        return False
    return True


def made_with(db: Session, key: str, events: tuple[str, ...]) -> dict | None:
    """The detail (with "account_id") of the audit event that recorded what this key
    made, or None when nothing was made with it."""
    if not valid(key):
        return None
    needle = json.dumps({MARKER_FIELD: marker(key)})[1:-1]  # '"submission": "<hash>"', as domain.audit writes it
    row = db.execute(
        select(AuditEvent.account_id, AuditEvent.detail)
        .where(AuditEvent.event.in_(events), AuditEvent.detail.contains(needle, autoescape=True))
        .order_by(AuditEvent.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return {**json.loads(row.detail), "account_id": row.account_id}
