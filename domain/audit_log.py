"""Reading the audit log, for the agency's audit viewer and its CSV export: one
filter (a person, an account, an action, a range of days), newest first, in
keyset pages. Plain functions, no Flask; domain.audit writes the log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from domain import words
from models import MAX_ID, Account, AuditEvent, User

PAGE_SIZE = 100
EVENT_MAX = 60  # AuditEvent.event's length


@dataclass(frozen=True)
class AuditFilter:
    person_id: int | None = None  # the actor or the subject of the event
    account_id: int | None = None
    action: str | None = None  # an event name, or the start of one ending in "." (every "consent." event)
    start: datetime | None = None  # UTC, inclusive
    end: datetime | None = None  # UTC, exclusive

    @property
    def is_prefix(self) -> bool:
        return self.action is not None and self.action.endswith(".")


@dataclass(frozen=True)
class Row:
    id: int
    occurred_at: datetime
    event: str
    outcome: str
    actor_user_id: int | None
    actor_name: str | None
    actor_email: str | None
    subject_user_id: int | None
    subject_name: str | None
    subject_email: str | None
    account_number: str | None
    detail: tuple[tuple[str, str], ...]

    @property
    def subject_is_actor(self) -> bool:
        return self.subject_user_id == self.actor_user_id


def day_range(first: date | None, last: date | None, zone: str) -> tuple[datetime | None, datetime | None]:
    """The UTC instants from the start of `first` to the end of `last`, days as
    they are in the service's time zone."""
    where = ZoneInfo(zone)

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=where).astimezone(UTC)

    return (start_of(first) if first else None, start_of(last + timedelta(days=1)) if last else None)


def detail_pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """The detail's JSON as (key, value) pairs, in the order it was written; text
    that is not an object is shown as it is."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return (("detail", text or ""),)
    if not isinstance(data, dict):
        return (("detail", json.dumps(data)),)
    return tuple((str(key), value if isinstance(value, str) else json.dumps(value)) for key, value in data.items())


def detail_text(pairs) -> str:
    """The detail in words, as the audit page shows it: "Balance: $431.38; Rate: 4%"."""
    return "; ".join(f"{words.humanise(key)}: {words.answer_text(value, key)}" for key, value in pairs)


_ACTOR, _SUBJECT = aliased(User), aliased(User)


def _query(flt: AuditFilter) -> Select:
    e = AuditEvent
    query = (
        select(
            e.id,
            e.occurred_at,
            e.event,
            e.outcome,
            e.actor_user_id,
            _ACTOR.name,
            _ACTOR.email,
            e.subject_user_id,
            _SUBJECT.name,
            _SUBJECT.email,
            Account.number,
            e.detail,
        )
        .outerjoin(_ACTOR, _ACTOR.id == e.actor_user_id)
        .outerjoin(_SUBJECT, _SUBJECT.id == e.subject_user_id)
        .outerjoin(Account, Account.id == e.account_id)
    )
    if flt.person_id is not None:
        query = query.where(or_(e.actor_user_id == flt.person_id, e.subject_user_id == flt.person_id))
    if flt.account_id is not None:
        query = query.where(e.account_id == flt.account_id)
    if flt.action:
        # autoescape: "_" in an event name is a letter, not LIKE's wildcard.
        query = query.where(e.event.startswith(flt.action, autoescape=True) if flt.is_prefix else e.event == flt.action)
    if flt.start is not None:
        query = query.where(e.occurred_at >= flt.start)
    if flt.end is not None:
        query = query.where(e.occurred_at < flt.end)
    return query.order_by(e.id.desc())


def _row(values) -> Row:
    (
        id_,
        occurred_at,
        event,
        outcome,
        actor_id,
        actor_name,
        actor_email,
        subject_id,
        subject_name,
        subject_email,
        number,
        detail,
    ) = values
    return Row(
        id_,
        occurred_at,
        event,
        outcome,
        actor_id,
        actor_name,
        actor_email,
        subject_id,
        subject_name,
        subject_email,
        number,
        detail_pairs(detail),
    )


def page(
    db: Session, flt: AuditFilter, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[Row], int | None]:
    """One page, newest first, of the events with ids below `before` (all when
    None), and the `before` of the next page (None on the last). Events are
    numbered in the order they were written, so the id is the keyset."""
    query = _query(flt)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = [_row(r) for r in db.execute(query.limit(size + 1))]
    if len(rows) > size:
        return rows[:size], rows[size - 1].id
    return rows, None


def stream(db: Session, flt: AuditFilter, batch: int = 500):
    """Every event the filter selects, newest first, fetched `batch` at a time (a
    server-side cursor on PostgreSQL), for exports of any size."""
    for values in db.connection().execute(_query(flt), execution_options={"yield_per": batch}):
        yield _row(values)


def parse_before(text: str | None) -> int | None:
    """A page's `before`; None (the first page) for anything that is not an id."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID + 1 else None


def person_by_email(db: Session, email: str) -> int | None:
    return db.scalar(select(User.id).where(func.lower(User.email) == email.strip().lower()))


def person_exists(db: Session, user_id: int) -> bool:
    return 0 < user_id <= MAX_ID and db.get(User, user_id) is not None


def account_by_number(db: Session, number: str) -> int | None:
    return db.scalar(select(Account.id).where(Account.number == number))
