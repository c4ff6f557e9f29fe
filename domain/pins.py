"""Invitation PINs across accounts, as the agency follows them: which are
outstanding, used, expired, locked or cancelled. A PIN's status is
domain.access.pin_status in the agency's words; the same order decides it in
SQL (used, then cancelled, then locked, then expired). Plain functions, no Flask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased

from domain.access import AGENCY, pin_status
from models import Account, InvitationPin, User

STATUSES = ("outstanding", "used", "expired", "locked", "cancelled")
STATUS_WORDS = {
    "outstanding": "Outstanding",
    "used": "Used",
    "expired": "Expired",
    "locked": "Locked",
    "cancelled": "Cancelled",
}
_FROM_DELEGATION = {"pending": "outstanding", "withdrawn": "cancelled"}
MOST_LISTED = 200


def status_of(pin: InvitationPin, now: datetime) -> str:
    status = pin_status(pin, now)
    return _FROM_DELEGATION.get(status, status)


def _status_column(now: datetime):
    p = InvitationPin
    return case(
        (p.used_at.is_not(None), "used"),
        (p.cancelled_at.is_not(None), "cancelled"),
        (p.locked_at.is_not(None), "locked"),
        (p.expires_at <= now, "expired"),
        else_="outstanding",
    )


def _where(status: str, now: datetime):
    p = InvitationPin
    not_used, not_cancelled, not_locked = p.used_at.is_(None), p.cancelled_at.is_(None), p.locked_at.is_(None)
    return {
        "used": p.used_at.is_not(None),
        "cancelled": and_(not_used, p.cancelled_at.is_not(None)),
        "locked": and_(not_used, not_cancelled, p.locked_at.is_not(None)),
        "expired": and_(not_used, not_cancelled, not_locked, p.expires_at <= now),
        "outstanding": and_(not_used, not_cancelled, not_locked, p.expires_at > now),
    }[status]


def counts(db: Session, now: datetime) -> dict[str, int]:
    """How many PINs have each status (every status, in order, even when none)."""
    statuses = select(_status_column(now).label("status")).subquery()
    found: dict[str, int] = dict(db.execute(select(statuses.c.status, func.count()).group_by(statuses.c.status)).all())
    return {status: found.get(status, 0) for status in STATUSES}


@dataclass(frozen=True)
class Row:
    pin: InvitationPin
    status: str
    account_number: str
    legal_name: str
    issued_by: str  # a staff member's or manager's name, or the agency
    meant_for: str
    used_by: str | None

    @property
    def status_text(self) -> str:
        return STATUS_WORDS[self.status]


def meant_for(pin: InvitationPin) -> str:
    """Who the PIN was for, in words (never the PIN)."""
    if pin.invitee_name:
        return pin.invitee_name + (f" ({pin.invitee_email})" if pin.invitee_email else "")
    if pin.consent_id is not None:
        return "A representative, by consent"
    if pin.issued_by_user_id is None:
        return "Whoever receives the invitation letter"
    return "Not recorded"


def _rows(db: Session, now: datetime, statement) -> list[Row]:
    issuer, user = aliased(User), aliased(User)
    statement = (
        statement.add_columns(Account.number, Account.legal_name, issuer.name, user.name)
        .join(Account, Account.id == InvitationPin.account_id)
        .outerjoin(issuer, issuer.id == InvitationPin.issued_by_user_id)
        .outerjoin(user, user.id == InvitationPin.used_by_user_id)
    )
    return [
        Row(
            pin,
            status_of(pin, now),
            number,
            legal_name,
            issued_by if pin.issued_by_user_id is not None and issued_by else AGENCY,
            meant_for(pin),
            used_by,
        )
        for pin, number, legal_name, issued_by, used_by in db.execute(statement)
    ]


def listing(db: Session, now: datetime, status: str | None = None, limit: int = MOST_LISTED) -> list[Row]:
    """PINs across accounts, newest first; only those with `status` when given."""
    statement = select(InvitationPin)
    if status is not None:
        statement = statement.where(_where(status, now))
    return _rows(db, now, statement.order_by(InvitationPin.issued_at.desc(), InvitationPin.id.desc()).limit(limit))


def of_account(db: Session, now: datetime, account_id: int) -> list[Row]:
    """Every PIN of one account, newest first."""
    return _rows(
        db,
        now,
        select(InvitationPin)
        .where(InvitationPin.account_id == account_id)
        .order_by(InvitationPin.issued_at.desc(), InvitationPin.id.desc()),
    )


def agency_owner_pins_waiting(db: Session, account_id: int) -> list[InvitationPin]:
    """The account's owner PINs from the agency (its invitation letters) not used
    and not cancelled: what a reissue cancels, expired and locked ones too."""
    return list(
        db.scalars(
            select(InvitationPin).where(
                InvitationPin.account_id == account_id,
                InvitationPin.role == "owner",
                InvitationPin.issued_by_user_id.is_(None),
                InvitationPin.consent_id.is_(None),
                InvitationPin.used_at.is_(None),
                InvitationPin.cancelled_at.is_(None),
            )
        )
    )
