"""Failure counting in the database, so a limit holds across workers and servers."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models import ThrottleEvent


def key_for(secret: str, value: str) -> str:
    """A keyed hash of an email or address: countable, but not personal data at rest."""
    return hmac.new(secret.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()


def failures(db: Session, scope: str, key_hash: str, now: datetime, window: timedelta) -> int:
    return db.scalar(
        select(func.count(ThrottleEvent.id)).where(
            ThrottleEvent.scope == scope,
            ThrottleEvent.key_hash == key_hash,
            ThrottleEvent.occurred_at > now - window,
        )
    ) or 0


def record_failure(db: Session, scope: str, key_hash: str, now: datetime) -> None:
    db.add(ThrottleEvent(scope=scope, key_hash=key_hash, occurred_at=now))


def clear(db: Session, scope: str, key_hash: str) -> None:
    db.execute(delete(ThrottleEvent).where(ThrottleEvent.scope == scope, ThrottleEvent.key_hash == key_hash))


def purge_older_than(db: Session, cutoff: datetime) -> int:
    return db.execute(delete(ThrottleEvent).where(ThrottleEvent.occurred_at < cutoff)).rowcount or 0
