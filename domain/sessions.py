"""Server-side session records: create, load with the idle and absolute limits,
rotate the id, end one or all of a person's sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, Update, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from domain.db import rows_changed
from models import AuthSession, SignedInPerson, User

# A request within this long of the last recorded one does not rewrite the row:
# idle time is kept to within seconds without a write on every click.
TOUCH_GRANULARITY = timedelta(seconds=5)


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    reauth: timedelta
    maximum: timedelta


def new_sid() -> str:
    return secrets.token_urlsafe(32)


def sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def create(
    db: Session,
    now: datetime,
    *,
    data: str = "{}",
    user_id: int | None = None,
    authenticated_at: datetime | None = None,
    user_agent: str | None = None,
    created_at: datetime | None = None,
) -> tuple[str, AuthSession]:
    sid = new_sid()
    row = AuthSession(
        id=sid_hash(sid),
        user_id=user_id,
        created_at=created_at or now,
        last_activity_at=now,
        authenticated_at=authenticated_at,
        data=data,
        user_agent=(user_agent or "")[:200] or None,
    )
    db.add(row)
    return sid, row


# Built once: every request asks it. Core, not the ORM: the row is only read here, and
# the ORM's work per query is most of what loading the session costs.
_SESSIONS, _USERS = AuthSession.__table__, User.__table__
_PERSON_FIELDS = tuple(SignedInPerson.__dataclass_fields__)
_SESSION_WITH_PERSON = (
    select(_SESSIONS, *(_USERS.c[name].label(f"person_{name}") for name in _PERSON_FIELDS))
    .select_from(_SESSIONS.outerjoin(_USERS, _USERS.c.id == _SESSIONS.c.user_id))
    .where(_SESSIONS.c.id == bindparam("record_id"))
)
_END_LIVE = (
    update(AuthSession)
    .where(AuthSession.id == bindparam("record_id"), AuthSession.ended_at.is_(None))
    .values(ended_at=bindparam("at"), end_reason=bindparam("reason"))
)


def load(db: Session, sid: str, now: datetime, limits: Limits) -> tuple[Row | None, SignedInPerson | None, str | None]:
    """The row for this id, the person signed in with it, and, when the session
    is no longer live, the reason why (the row was then already ended, or is ended
    now in the request's transaction, or is None for an id never issued). One query
    brings both row and person."""
    found = db.connection().execute(_SESSION_WITH_PERSON, {"record_id": sid_hash(sid)}).first()
    if found is None:
        return None, None, "unknown"
    values = found._mapping
    person = (
        SignedInPerson(**{name: values[f"person_{name}"] for name in _PERSON_FIELDS})
        if values["person_id"] is not None
        else None
    )
    if found.ended_at is not None:
        return found, person, found.end_reason or "ended"
    reason = (
        "idle"
        if now - found.last_activity_at >= limits.idle
        else "maximum"
        if now - found.created_at >= limits.maximum
        else None
    )
    if reason is not None:
        db.connection().execute(_END_LIVE, {"record_id": found.id, "at": now, "reason": reason})
    return found, person, reason


# Built once: written on most requests.
_RECORD_ACTIVITY = (
    update(AuthSession).where(AuthSession.id == bindparam("record_id")).values(last_activity_at=bindparam("at"))
)


def touch(row: Row, now: datetime) -> tuple[Update, dict] | None:
    """The write that records activity now, or None when the last recorded
    activity is recent enough. The row itself is left as loaded: a changed row
    would be flushed, and the database locked, by the next query of the request."""
    if now - row.last_activity_at < TOUCH_GRANULARITY:
        return None
    return activity_write(row.id, now)


def activity_write(record_id: str, now: datetime) -> tuple[Update, dict]:
    """(statement, parameters) recording activity on this session now."""
    return _RECORD_ACTIVITY, {"record_id": record_id, "at": now}


def end(row: AuthSession, now: datetime, reason: str) -> None:
    row.ended_at, row.end_reason = now, reason


def end_all_for_user(db: Session, user_id: int, now: datetime, reason: str, except_id: str | None = None) -> int:
    statement = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
    if except_id is not None:
        statement = statement.where(AuthSession.id != except_id)
    return rows_changed(db, statement.values(ended_at=now, end_reason=reason))


def active_for_user(db: Session, user_id: int, now: datetime, limits: Limits) -> list[AuthSession]:
    return list(
        db.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.ended_at.is_(None),
                AuthSession.last_activity_at > now - limits.idle,
            )
            .order_by(AuthSession.last_activity_at.desc())
        )
    )


def count_active_for_user(db: Session, user_id: int, now: datetime, limits: Limits) -> int:
    return (
        db.scalar(
            select(func.count(AuthSession.id)).where(
                AuthSession.user_id == user_id,
                AuthSession.ended_at.is_(None),
                AuthSession.last_activity_at > now - limits.idle,
            )
        )
        or 0
    )


def purge(db: Session, now: datetime, limits: Limits, keep: timedelta = timedelta(days=30)) -> int:
    """Delete anonymous sessions past their idle limit, and any session that has
    been over for the keep time (ended, or idle and never loaded again)."""
    gone = rows_changed(
        db, delete(AuthSession).where(AuthSession.user_id.is_(None), AuthSession.last_activity_at < now - limits.idle)
    )
    gone += rows_changed(
        db,
        delete(AuthSession).where(
            ((AuthSession.ended_at.is_not(None)) & (AuthSession.ended_at < now - keep))
            | (AuthSession.last_activity_at < now - limits.idle - keep)
        ),
    )
    return gone
