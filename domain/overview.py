"""What a person sees of their accounts: the dashboard (every account they hold a
live grant on, with balance, next due period and what needs attention, searched
and paged by keyset) and an account's filing periods.

What a grant shows follows its permissions: money only with view_financial;
filing periods with view_returns or view_financial.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, contains_eager

from domain import grants, ledger
from domain.accounts import normalise_number
from models import Account, FilingPeriod, Grant, TaxReturn

DASHBOARD_PAGE_SIZE = 25
# A search box appears once a person has more accounts than this.
SEARCH_ABOVE = 10
# The permissions that open an account's summary (either will do).
SUMMARY_PERMISSIONS = ("view_returns", "view_financial")


def shows_money(grant: Grant) -> bool:
    return grant.allows("view_financial")


def shows_periods(grant: Grant) -> bool:
    return any(grant.allows(p) for p in SUMMARY_PERMISSIONS)


@dataclass(frozen=True)
class DueInfo:
    period_end: date
    due_date: date


@dataclass(frozen=True)
class AccountLine:
    """One account on the dashboard. None means "not shown with this grant"."""

    account: Account
    grant: Grant
    balance_cents: int | None
    next_due: DueInfo | None
    overdue_count: int | None
    earliest_overdue: date | None

    @property
    def opens_summary(self) -> bool:
        return shows_periods(self.grant)

    @property
    def needs_attention(self) -> bool:
        return bool(self.overdue_count) or (self.balance_cents or 0) > 0


@dataclass(frozen=True)
class DashboardPage:
    lines: list[AccountLine]
    total: int  # every live grant the person holds
    matching: int  # those the search matches (== total without a search)
    first_position: int  # 1-based position of the first line among the matching
    next_after: str | None  # the token for the next page, or None on the last
    query: str

    @property
    def searchable(self) -> bool:
        return self.total > SEARCH_ABOVE or bool(self.query)

    @property
    def last_position(self) -> int:
        return self.first_position + len(self.lines) - 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search(query: str):
    """Number (digits, spaces and dashes ignored) or legal or operating name."""
    pattern = f"%{_escape_like(query.lower())}%"
    clauses = [func.lower(Account.legal_name).like(pattern, escape="\\"),
               func.lower(Account.operating_name).like(pattern, escape="\\")]
    digits = normalise_number(query)
    if digits.isdigit():
        clauses.append(Account.number.like(f"%{digits}%"))
    return or_(*clauses)


def _live_grants(user_id: int, query: str, today: date):
    statement = (select(Grant).join(Grant.account)
                 .where(Grant.user_id == user_id, grants.in_force(today)))
    return statement.where(_search(query)) if query else statement


def dashboard(db: Session, user_id: int, today: date, *, query: str = "", after: str | None = None,
              size: int = DASHBOARD_PAGE_SIZE) -> DashboardPage:
    """One page of the person's accounts, by legal name then number, after the
    account numbered `after` (keyset: no OFFSET). An `after` that is not one of
    the person's matching accounts gives the first page."""
    query = (query or "").strip()[:100]
    order = (Account.legal_name, Account.number)
    total = db.scalar(select(func.count()).select_from(_live_grants(user_id, "", today).subquery()))
    matching = total if not query else db.scalar(
        select(func.count()).select_from(_live_grants(user_id, query, today).subquery()))
    statement = _live_grants(user_id, query, today)
    before = 0
    if after:
        mark = db.execute(select(Account.legal_name, Account.number)
                          .join(Grant, Grant.account_id == Account.id)
                          .where(Grant.user_id == user_id, grants.in_force(today),
                                 Account.number == after)).first()
        if mark is not None:
            statement = statement.where(tuple_(*order) > tuple_(mark.legal_name, mark.number))
            before = db.scalar(select(func.count()).select_from(
                _live_grants(user_id, query, today).where(tuple_(*order) <= tuple_(mark.legal_name, mark.number))
                .subquery()))
    found = list(db.scalars(statement.options(contains_eager(Grant.account))
                            .order_by(*order).limit(size + 1)).unique())
    more = len(found) > size
    found = found[:size]
    lines = _lines(db, found, today)
    return DashboardPage(lines=lines, total=total, matching=matching, first_position=before + 1,
                         next_after=found[-1].account.number if more and found else None, query=query)


def _unfiled():
    return ~exists().where(TaxReturn.account_id == FilingPeriod.account_id,
                           TaxReturn.period_end == FilingPeriod.period_end)


def _lines(db: Session, found: list[Grant], today: date) -> list[AccountLine]:
    ids = [grant.account_id for grant in found]
    money = ledger.balances(db, [g.account_id for g in found if shows_money(g)])
    upcoming, overdue = {}, {}
    if ids:
        # A program's due dates rise with its period ends, so the earliest unfiled
        # period due on or after today has both the smallest end and due date.
        for account_id, period_end, due in db.execute(
                select(FilingPeriod.account_id, func.min(FilingPeriod.period_end), func.min(FilingPeriod.due_date))
                .where(FilingPeriod.account_id.in_(ids), FilingPeriod.due_date >= today, _unfiled())
                .group_by(FilingPeriod.account_id)):
            upcoming[account_id] = DueInfo(period_end, due)
        for account_id, count, earliest in db.execute(
                select(FilingPeriod.account_id, func.count(), func.min(FilingPeriod.period_end))
                .where(FilingPeriod.account_id.in_(ids), FilingPeriod.due_date < today, _unfiled())
                .group_by(FilingPeriod.account_id)):
            overdue[account_id] = (int(count), earliest)
    lines = []
    for grant in found:
        periods = shows_periods(grant)
        count, earliest = overdue.get(grant.account_id, (0, None))
        lines.append(AccountLine(
            account=grant.account, grant=grant,
            balance_cents=money.get(grant.account_id) if shows_money(grant) else None,
            next_due=upcoming.get(grant.account_id) if periods else None,
            overdue_count=count if periods else None,
            earliest_overdue=earliest if periods else None))
    return lines


# --- One account's filing periods ------------------------------------------------

@dataclass(frozen=True)
class PeriodLine:
    period_start: date
    period_end: date
    due_date: date
    filed: bool
    balance_cents: int | None  # None when the grant does not show money
    status: str  # "filed", "overdue" (not filed, due date passed) or "due" (not filed yet)


def filing_periods(db: Session, account_id: int, today: date, *, with_money: bool) -> list[PeriodLine]:
    """Every filing period of the account, newest first; filed means a return or
    claim has been received for that period end."""
    filed_ends = set(db.scalars(select(TaxReturn.period_end).where(TaxReturn.account_id == account_id)))
    money = ledger.period_balances(db, account_id) if with_money else {}
    lines = []
    for period in db.scalars(select(FilingPeriod).where(FilingPeriod.account_id == account_id)
                             .order_by(FilingPeriod.period_end.desc())):
        filed = period.period_end in filed_ends
        status = "filed" if filed else ("overdue" if period.due_date < today else "due")
        lines.append(PeriodLine(period.period_start, period.period_end, period.due_date, filed,
                                money.get(period.period_end, 0) if with_money else None, status))
    return lines


def next_due(lines: list[PeriodLine], today: date) -> PeriodLine | None:
    """The earliest period due on or after today that has no return yet."""
    open_lines = [line for line in lines if not line.filed and line.due_date >= today]
    return min(open_lines, key=lambda line: line.due_date) if open_lines else None

