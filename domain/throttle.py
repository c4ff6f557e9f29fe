"""Failure counting in the database, so a limit holds across workers and servers.

A limit is a check, then the work (checking a password, a code, a PIN), then the
record of a failure. Done plainly, several workers could each read "4 of 5" at the
same moment and each go on to try one more guess. So `failures` first takes a lock
on the key, held until the caller's transaction ends (its commit or rollback):
tries of the same key take turns, and each one counts every failure before it.
PostgreSQL: a transaction-level advisory lock on the key, so other keys never wait.
SQLite: the database's one write lock (SQLite allows one writer at a time), taken
by a write that changes no row."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import delete, false, func, select, text, update
from sqlalchemy.orm import Session

from domain.db import rows_changed
from models import ThrottleEvent


def key_for(secret: str, value: str) -> str:
    """A keyed hash of an email or address: countable, but not personal data at rest."""
    return hmac.new(secret.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()


def lock_number(scope: str, key_hash: str) -> int:
    """The key as a signed 64-bit number, for PostgreSQL's advisory locks."""
    digest = hashlib.sha256(f"throttle:{scope}:{key_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def hold(db: Session, scope: str, key_hash: str) -> None:
    """Wait for, then keep until the transaction ends, the lock on this key."""
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:number)"), {"number": lock_number(scope, key_hash)})
    elif connection.dialect.name == "sqlite":
        connection.execute(update(ThrottleEvent).where(false()).values(scope=ThrottleEvent.scope))


def failures(db: Session, scope: str, key_hash: str, now: datetime, window: timedelta) -> int:
    """Failures of this key inside the window, counted under the key's lock (see
    above): the caller checks, records and commits while it holds it."""
    hold(db, scope, key_hash)
    return (
        db.scalar(
            select(func.count(ThrottleEvent.id)).where(
                ThrottleEvent.scope == scope,
                ThrottleEvent.key_hash == key_hash,
                ThrottleEvent.occurred_at > now - window,
            )
        )
        or 0
    )


def free_at(db: Session, scope: str, key_hash: str, now: datetime, window: timedelta, limit: int) -> datetime:
    """When fewer than `limit` failures of this key will be inside the window: the
    moment the oldest of the latest `limit` leaves it (now, when there are fewer)."""
    oldest_counted = db.scalar(
        select(ThrottleEvent.occurred_at)
        .where(
            ThrottleEvent.scope == scope, ThrottleEvent.key_hash == key_hash, ThrottleEvent.occurred_at > now - window
        )
        .order_by(ThrottleEvent.occurred_at.desc())
        .offset(max(limit - 1, 0))
        .limit(1)
    )
    return now if oldest_counted is None else oldest_counted + window


def use(db: Session, scope: str, key_hash: str, now: datetime, window: timedelta, limit: int) -> datetime | None:
    """One use of an action limited per key (an email sent to an address, a hash made
    for a client): None when it is allowed, and then counted; else when it will be."""
    if failures(db, scope, key_hash, now, window) >= limit:
        return free_at(db, scope, key_hash, now, window, limit)
    record_failure(db, scope, key_hash, now)
    return None


def record_failure(db: Session, scope: str, key_hash: str, now: datetime) -> None:
    db.add(ThrottleEvent(scope=scope, key_hash=key_hash, occurred_at=now))


def clear(db: Session, scope: str, key_hash: str) -> None:
    db.execute(delete(ThrottleEvent).where(ThrottleEvent.scope == scope, ThrottleEvent.key_hash == key_hash))


def purge_older_than(db: Session, cutoff: datetime) -> int:
    return rows_changed(db, delete(ThrottleEvent).where(ThrottleEvent.occurred_at < cutoff))
