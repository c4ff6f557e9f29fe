"""Returns and claims as received, and how far each one's assessment has gone:
the rows of the assessment status page. Plain functions, no Flask."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Account, FilingPeriod, Program, TaxReturn

STATUS_WORDS = {
    "received": "Received",
    "in_progress": "In progress",
    "processed": "Processed",
    "assessed": "Assessed",
    "reassessed": "Reassessed",
}
NOTICE_TITLES = {"assessment": "Notice of assessment", "reassessment": "Notice of reassessment"}
_PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}


def notice_of(tax_return: TaxReturn) -> tuple[str, date]:
    """The kind and date of the return's notice, for a return that has one (one
    assessed, or one found by the objections' queries); a return without one is a bug."""
    if tax_return.notice_kind is None or tax_return.notice_date is None:
        raise ValueError(f"return {tax_return.id} has no notice")
    return tax_return.notice_kind, tax_return.notice_date


def long_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def period_start(program: Program, period_end: date) -> date | None:
    """The first day of the period that ends on `period_end`, by the program's
    filing frequency; None when the end is not a month end (then only the end
    is known)."""
    months = _PERIOD_MONTHS.get(program.filing_frequency)
    if months is None or period_end.day != calendar.monthrange(period_end.year, period_end.month)[1]:
        return None
    index = period_end.year * 12 + period_end.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def period_text(start: date | None, end: date) -> str:
    """ "1–31 March 2026", "1 January – 31 March 2026", "1 July 2025 – 30 June 2026",
    or "ending 31 March 2026" when the start is not known."""
    if start is None:
        return f"ending {long_day(end)}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}\u2013{long_day(end)}"
    if start.year == end.year:
        return f"{start.day} {start:%B} \u2013 {long_day(end)}"
    return f"{long_day(start)} \u2013 {long_day(end)}"


@dataclass(frozen=True)
class ReturnLine:
    """One return or claim on the assessment status page."""

    id: int
    period_start: date | None
    period_end: date
    kind: str  # return | claim
    amended: bool
    received_on: date
    status: str
    processed_on: date | None
    reference: str
    notice_kind: str | None
    notice_date: date | None

    @property
    def period(self) -> str:
        return period_text(self.period_start, self.period_end)

    @property
    def kind_text(self) -> str:
        return f"Amended {self.kind}" if self.amended else self.kind.capitalize()

    @property
    def status_text(self) -> str:
        return STATUS_WORDS.get(self.status, self.status.replace("_", " ").capitalize())

    @property
    def notice_title(self) -> str | None:
        return NOTICE_TITLES.get(self.notice_kind or "")


def account_period_starts(db: Session, account: Account) -> dict[date, date]:
    return dict(
        db.execute(
            select(FilingPeriod.period_end, FilingPeriod.period_start).where(FilingPeriod.account_id == account.id)
        ).all()
    )


def start_of(account: Account, period_end: date, known: dict[date, date]) -> date | None:
    """The account's own filing period when it has one, else the program's frequency."""
    return known.get(period_end) or period_start(account.program, period_end)


def lines_for(db: Session, account: Account) -> list[ReturnLine]:
    """Every return and claim of the account, newest period first; within a
    period the latest received first (an amended return above the original)."""
    known = account_period_starts(db, account)
    rows = db.scalars(
        select(TaxReturn)
        .where(TaxReturn.account_id == account.id)
        .order_by(TaxReturn.period_end.desc(), TaxReturn.received_on.desc(), TaxReturn.id.desc())
    )
    return [
        ReturnLine(
            id=r.id,
            period_start=start_of(account, r.period_end, known),
            period_end=r.period_end,
            kind=r.kind,
            amended=r.amended,
            received_on=r.received_on,
            status=r.status,
            processed_on=r.processed_on,
            reference=r.reference,
            notice_kind=r.notice_kind,
            notice_date=r.notice_date,
        )
        for r in rows
    ]


def return_of(db: Session, account_id: int, return_id: int) -> TaxReturn | None:
    """The return with this id if it belongs to this account, else None."""
    return db.scalar(select(TaxReturn).where(TaxReturn.id == return_id, TaxReturn.account_id == account_id))
