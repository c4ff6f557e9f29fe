"""Updates by email (TRA's subscription service): a person chooses the programs
they want news about, and staff publish an update to a program's subscribers
through the outbox. Plain functions, no Flask; the caller commits.

As GOV.UK's email alerts do, an address gets nothing but the one confirmation
email until someone who reads it confirms (double opt-in), so the form cannot
sign a stranger up; a signed-in person's own confirmed address needs no second
step. Every update carries a link that ends that one subscription (the address
and that program) without signing in: signed (domain.tokens) with the
subscription's id and address, so it can neither be guessed nor stretched to
another address or program. Opening the link changes nothing; the button on its
page does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import audit, outbox, tokens
from models import Program, ProgramUpdate, Subscription

# An unsubscribe link works as long as the updates it came with may be read.
UNSUBSCRIBE_MAX_AGE = 10 * 366 * 24 * 3600
CONFIRM_MAX_AGE = 7 * 24 * 3600
MAX_TITLE, MAX_BODY = 150, 10_000


def normalise(email: str) -> str:
    return email.strip().lower()


def active(db: Session, email: str) -> list[Subscription]:
    """The address's subscriptions in force (confirmed, not ended)."""
    return list(
        db.scalars(
            select(Subscription)
            .where(
                Subscription.email == normalise(email),
                Subscription.confirmed_at.is_not(None),
                Subscription.ended_at.is_(None),
            )
            .order_by(Subscription.program_code)
        )
    )


def _row(db: Session, email: str, code: str) -> Subscription | None:
    return db.scalar(select(Subscription).where(Subscription.email == email, Subscription.program_code == code))


def subscribe(
    db: Session, now: datetime, email: str, codes: list[str], *, user_id: int | None, confirmed: bool
) -> list[Subscription]:
    """Ask for the programs' updates at this address: the rows waiting for the
    address's confirmation (none when `confirmed`, the address being a signed-in
    person's own). A program already subscribed to stays as it is."""
    email = normalise(email)
    waiting = []
    for code in sorted(set(codes)):
        row = _row(db, email, code)
        if row is None:
            row = Subscription(email=email, program_code=code, user_id=user_id, created_at=now)
            db.add(row)
        elif row.confirmed_at is not None and row.ended_at is None:
            continue
        row.ended_at, row.confirmed_at, row.created_at = None, now if confirmed else None, now
        if not confirmed:
            waiting.append(row)
    db.flush()
    audit.record(db, now, "subscriptions.asked", actor_user_id=user_id, programs=len(codes), confirmed=confirmed)
    return waiting


def confirm_token(secret: str, email: str, rows: list[Subscription], now: datetime) -> str:
    return tokens.make_token(secret, "subscribe", {"email": normalise(email), "ids": [r.id for r in rows]}, now)


def waiting_for(db: Session, secret: str, token: str, now: datetime) -> list[Subscription]:
    """The subscriptions a confirmation link names that still wait for it (tokens.TokenError if it is not one)."""
    payload = tokens.read_token(secret, "subscribe", token, CONFIRM_MAX_AGE, now)
    ids = [i for i in payload.get("ids", []) if isinstance(i, int)]
    if not ids:
        return []
    rows = db.scalars(select(Subscription).where(Subscription.id.in_(ids), Subscription.email == payload.get("email")))
    return [r for r in rows if r.confirmed_at is None and r.ended_at is None]


def confirm(db: Session, now: datetime, rows: list[Subscription]) -> None:
    for row in rows:
        row.confirmed_at = now
    audit.record(db, now, "subscriptions.confirmed", programs=len(rows))


def unsubscribe_token(secret: str, row: Subscription, now: datetime) -> str:
    return tokens.make_token(secret, "unsubscribe", {"sub": row.id, "email": row.email}, now)


def for_unsubscribe(db: Session, secret: str, token: str, now: datetime) -> Subscription | None:
    """The one subscription an unsubscribe link names (tokens.TokenError if it is not one)."""
    payload = tokens.read_token(secret, "unsubscribe", token, UNSUBSCRIBE_MAX_AGE, now)
    sub = payload.get("sub")
    row = db.get(Subscription, sub) if isinstance(sub, int) else None
    if row is None or row.email != payload.get("email"):
        return None
    return row


def end(db: Session, now: datetime, row: Subscription) -> None:
    """Stop this address's updates about this program (once: a second click changes nothing)."""
    if row.ended_at is None:
        row.ended_at = now
        audit.record(db, now, "subscriptions.ended", program=row.program_code)


def subscriber_counts(db: Session) -> dict[str, int]:
    """Per program, the subscriptions in force."""
    rows = db.execute(
        select(Subscription.program_code, func.count(Subscription.id))
        .where(Subscription.confirmed_at.is_not(None), Subscription.ended_at.is_(None))
        .group_by(Subscription.program_code)
    )
    return {code: int(count) for code, count in rows}


def updates_of(db: Session, code: str, limit: int = 20) -> list[ProgramUpdate]:
    return list(
        db.scalars(
            select(ProgramUpdate)
            .where(ProgramUpdate.program_code == code)
            .order_by(ProgramUpdate.published_at.desc(), ProgramUpdate.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Links:
    """Where an update's email points: the unsubscribe page of a token, and the
    page to choose programs again."""

    unsubscribe: Callable[[str], str]
    manage: str


def publish(
    db: Session,
    now: datetime,
    secret: str,
    program: Program,
    *,
    title: str,
    body: str,
    staff_user_id: int,
    links: Links,
) -> ProgramUpdate:
    """Send an update to every address subscribed to the program, each email with
    its own unsubscribe link (in the text and the List-Unsubscribe header)."""
    subscribers = list(
        db.scalars(
            select(Subscription)
            .where(
                Subscription.program_code == program.code,
                Subscription.confirmed_at.is_not(None),
                Subscription.ended_at.is_(None),
            )
            .order_by(Subscription.id)
        )
    )
    update = ProgramUpdate(
        program_code=program.code,
        title=title,
        body=body,
        published_at=now,
        published_by_user_id=staff_user_id,
        recipients=len(subscribers),
    )
    db.add(update)
    for row in subscribers:
        link = links.unsubscribe(unsubscribe_token(secret, row, now))
        text = (
            f"{body.strip()}\n\n--\nYou get this email because you asked for updates about {program.name} "
            f"from Tax and Revenue Administration.\nTo stop these updates: {link}\n"
            f"To choose other programs: {links.manage}\n"
        )
        outbox.enqueue(db, now, row.email, f"{program.name}: {title}", text, list_unsubscribe=link)
    db.flush()
    audit.record(
        db, now, "updates.published", actor_user_id=staff_user_id, program=program.code, recipients=len(subscribers)
    )
    return update
