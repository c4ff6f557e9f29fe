"""What a person sees of their accounts: the dashboard (every account they hold a
live grant on, with balance, next due period and what needs attention, searched
and paged by keyset) and an account's filing periods.

What a grant shows follows its permissions: money only with view_financial;
filing periods with view_returns or view_financial.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, and_, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.sql.expression import BindParameter

from domain import grants, ledger
from domain.accounts import normalise_number
from models import Account, FilingPeriod, Grant, LedgerEntry, TaxReturn

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


# The dashboard's statements are built once, with bound parameters: building a
# statement costs more than running it (the same finding as the transactions view,
# docs/performance.md), and the dashboard is every signed-in person's first page.
_ORDER = (Account.legal_name, Account.number)
_LIVE = and_(Grant.user_id == bindparam("user_id"), grants.in_force(bindparam("today", type_=Date)))
_NAME_LIKE = or_(
    func.lower(Account.legal_name).like(bindparam("pattern"), escape="\\"),
    func.lower(Account.operating_name).like(bindparam("pattern"), escape="\\"),
)
_NUMBER_LIKE = Account.number.like(bindparam("digits"))
_AFTER = tuple_(*_ORDER) > tuple_(bindparam("mark_name"), bindparam("mark_number"))
_UP_TO = tuple_(*_ORDER) <= tuple_(bindparam("mark_name"), bindparam("mark_number"))
_IDS: BindParameter[int] = bindparam("ids", expanding=True)


def _unfiled():
    return ~exists().where(
        TaxReturn.account_id == FilingPeriod.account_id, TaxReturn.period_end == FilingPeriod.period_end
    )


_MARK = (
    select(Account.legal_name, Account.number)
    .join(Grant, Grant.account_id == Account.id)
    .where(_LIVE, Account.number == bindparam("after"))
)
_BALANCES = (
    select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents))
    .where(LedgerEntry.account_id.in_(_IDS))
    .group_by(LedgerEntry.account_id)
)
_UPCOMING = (
    select(FilingPeriod.account_id, func.min(FilingPeriod.period_end), func.min(FilingPeriod.due_date))
    .where(FilingPeriod.account_id.in_(_IDS), FilingPeriod.due_date >= bindparam("today", type_=Date), _unfiled())
    .group_by(FilingPeriod.account_id)
)
_OVERDUE = (
    select(FilingPeriod.account_id, func.count(), func.min(FilingPeriod.period_end))
    .where(FilingPeriod.account_id.in_(_IDS), FilingPeriod.due_date < bindparam("today", type_=Date), _unfiled())
    .group_by(FilingPeriod.account_id)
)


@functools.cache
def _statements(search: str, after: bool, size: int):
    """(count, page, position) for a search kind ("", "name", "name or number"),
    with or without a keyset mark, and a page size."""
    where = [_LIVE]
    if search:
        where.append(or_(_NAME_LIKE, _NUMBER_LIKE) if search == "name or number" else _NAME_LIKE)
    count = select(func.count()).select_from(Grant).join(Grant.account).where(*where)
    page = (
        select(Grant)
        .join(Grant.account)
        .where(*where, *([_AFTER] if after else []))
        .options(contains_eager(Grant.account))
        .order_by(*_ORDER)
        .limit(size + 1)
    )
    position = select(func.count()).select_from(Grant).join(Grant.account).where(*where, _UP_TO)
    return count, page, position


def dashboard(
    db: Session,
    user_id: int,
    today: date,
    *,
    query: str = "",
    after: str | None = None,
    size: int = DASHBOARD_PAGE_SIZE,
) -> DashboardPage:
    """One page of the person's accounts, by legal name then number, after the
    account numbered `after` (keyset: no OFFSET). An `after` that is not one of
    the person's matching accounts gives the first page. A search matches the
    legal or operating name, or the number (digits, spaces and dashes ignored)."""
    query = (query or "").strip()[:100]
    params: dict = {"user_id": user_id, "today": today}
    search = ""
    if query:
        params["pattern"] = f"%{_escape_like(query.lower())}%"
        digits = normalise_number(query)
        search = "name"
        if digits.isdigit():
            search = "name or number"
            params["digits"] = f"%{digits}%"
    total = db.scalar(_statements("", False, size)[0], params)
    matching = total if not query else db.scalar(_statements(search, False, size)[0], params)
    mark = db.execute(_MARK, {**params, "after": after}).first() if after else None
    _count, page, position = _statements(search, mark is not None, size)
    before = 0
    if mark is not None:
        params.update(mark_name=mark.legal_name, mark_number=mark.number)
        before = db.scalar(position, params)
    found = list(db.scalars(page, params).unique())
    more = len(found) > size
    found = found[:size]
    lines = _lines(db, found, today)
    return DashboardPage(
        lines=lines,
        total=total,
        matching=matching,
        first_position=before + 1,
        next_after=found[-1].account.number if more and found else None,
        query=query,
    )


def _lines(db: Session, found: list[Grant], today: date) -> list[AccountLine]:
    ids = [grant.account_id for grant in found]
    money_ids = [g.account_id for g in found if shows_money(g)]
    found_money = (
        {account_id: int(total) for account_id, total in db.execute(_BALANCES, {"ids": money_ids})} if money_ids else {}
    )
    money = {account_id: found_money.get(account_id, 0) for account_id in money_ids}
    upcoming: dict[int, DueInfo] = {}
    overdue: dict[int, tuple[int, date | None]] = {}
    if ids:
        # A program's due dates rise with its period ends, so the earliest unfiled
        # period due on or after today has both the smallest end and due date.
        for account_id, period_end, due in db.execute(_UPCOMING, {"ids": ids, "today": today}):
            upcoming[account_id] = DueInfo(period_end, due)
        for account_id, unfiled, earliest_due in db.execute(_OVERDUE, {"ids": ids, "today": today}):
            overdue[account_id] = (int(unfiled), earliest_due)
    lines = []
    for grant in found:
        periods = shows_periods(grant)
        count, earliest = overdue.get(grant.account_id, (0, None))
        lines.append(
            AccountLine(
                account=grant.account,
                grant=grant,
                balance_cents=money.get(grant.account_id) if shows_money(grant) else None,
                next_due=upcoming.get(grant.account_id) if periods else None,
                overdue_count=count if periods else None,
                earliest_overdue=earliest if periods else None,
            )
        )
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
    for period in db.scalars(
        select(FilingPeriod).where(FilingPeriod.account_id == account_id).order_by(FilingPeriod.period_end.desc())
    ):
        filed = period.period_end in filed_ends
        status = "filed" if filed else ("overdue" if period.due_date < today else "due")
        lines.append(
            PeriodLine(
                period.period_start,
                period.period_end,
                period.due_date,
                filed,
                money.get(period.period_end, 0) if with_money else None,
                status,
            )
        )
    return lines


@dataclass(frozen=True)
class PeriodMoney:
    """The money side of an account's filing periods: what belongs to no period,
    and the balance the period lines and that line add up to."""

    unallocated_cents: int
    balance_cents: int


def period_money(db: Session, account_id: int) -> PeriodMoney:
    return PeriodMoney(ledger.unallocated_balance(db, account_id), ledger.balance(db, account_id))


def next_due(lines: list[PeriodLine], today: date) -> PeriodLine | None:
    """The earliest period due on or after today that has no return yet."""
    open_lines = [line for line in lines if not line.filed and line.due_date >= today]
    return min(open_lines, key=lambda line: line.due_date) if open_lines else None
