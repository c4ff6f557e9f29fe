"""The agency's one search box: accounts by number (typed with or without spaces,
whole or in part) or by legal or operating name, and people by name or email.
Plain functions, no Flask."""

from __future__ import annotations

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from domain.accounts import normalise_number
from models import Account, User

MOST = 50


def _like(column, text: str):
    """Case-insensitive "contains", with % and _ in the text taken literally."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def find_accounts(db: Session, text: str, limit: int = MOST) -> list[Account]:
    """Accounts whose number contains the digits typed, or whose legal or operating
    name contains the text; an exact number first, then by legal name."""
    text = " ".join((text or "").split())
    if not text:
        return []
    digits = normalise_number(text)
    matches = [_like(Account.legal_name, text), _like(Account.operating_name, text)]
    exact = Account.number == digits
    if digits.isdigit():
        matches.append(Account.number.contains(digits, autoescape=True))
    return list(
        db.scalars(
            select(Account)
            .where(or_(*matches))
            .order_by(case((exact, 0), else_=1), Account.legal_name, Account.number)
            .limit(limit)
        )
    )


def find_people(db: Session, text: str, limit: int = MOST) -> list[User]:
    """People (taxpayers and staff) whose name or email contains the text."""
    text = " ".join((text or "").split())
    if not text:
        return []
    return list(
        db.scalars(
            select(User)
            .where(or_(_like(User.email, text), _like(User.name, text)))
            .order_by(User.name, User.id)
            .limit(limit)
        )
    )
