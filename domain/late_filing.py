"""The penalty and interest a late return proposes, from its program's rates.
Plain functions, no Flask.

A return is late when it was received after its period's due date. Its program
holds two rates (domain.programs.RATES, dated like every rate):
- "late_filing_penalty": a percentage of the tax, in force on the due date;
- "late_interest": a percentage a year, charged on the tax for each day from the
  day after the due date to the day the return was received, over a 365-day year,
  at the rate in force on the day after the due date.
Both are worked out exactly (fractions of a cent, no floats) and rounded down to
the cent, so the agency never charges a part of a cent more than the rule.

This only proposes: the officer sees the amounts with how they were worked out,
may change or clear them, and nothing is posted until the return is assessed
(domain.assessments.assess). A claim, an amended return, a return on time, a
return with no tax and a program without the rates propose nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import format_money
from domain.filing import rate_for
from models import Account, FilingPeriod, TaxReturn

PENALTY_RATE, INTEREST_RATE = "late_filing_penalty", "late_interest"
DAYS_A_YEAR = 365


@dataclass(frozen=True)
class Proposal:
    kind: str  # penalty | interest
    cents: int
    reason: str  # what the notice says
    working: str  # how it was worked out, for the officer


def days_late(received_on: date, due_on: date) -> int:
    return max(0, (received_on - due_on).days)


def penalty_cents(tax_cents: int, percent: Decimal) -> int:
    return floor(Fraction(tax_cents) * Fraction(percent) / 100)


def interest_cents(tax_cents: int, percent_a_year: Decimal, days: int) -> int:
    return floor(Fraction(tax_cents) * Fraction(percent_a_year) / 100 * days / DAYS_A_YEAR)


def due_date(db: Session, tax_return: TaxReturn) -> date | None:
    return db.scalar(
        select(FilingPeriod.due_date).where(
            FilingPeriod.account_id == tax_return.account_id, FilingPeriod.period_end == tax_return.period_end
        )
    )


def propose(db: Session, tax_return: TaxReturn, tax_cents: int | None) -> list[Proposal]:
    """The penalty and interest for a late return on `tax_cents` of tax (the amount
    filed, until the officer changes it), with their working; [] when none apply."""
    due = due_date(db, tax_return)
    if tax_return.kind != "return" or tax_return.amended or not tax_cents or tax_cents < 0 or due is None:
        return []
    days = days_late(tax_return.received_on, due)
    if days == 0:
        return []
    code = db.get_one(Account, tax_return.account_id).program_code
    penalty_rate = rate_for(db, code, PENALTY_RATE, due)
    interest_rate = rate_for(db, code, INTEREST_RATE, due + timedelta(days=1))
    late = f"the return arrived {days} day{'s' if days != 1 else ''} after the due date, {due:%-d %B %Y}"
    proposals = []
    if penalty_rate is not None:
        percent = Decimal(penalty_rate.value)
        cents = penalty_cents(tax_cents, percent)
        proposals.append(
            Proposal(
                "penalty",
                cents,
                f"Late filing penalty: {late} ({percent.normalize():f}% of the tax)",
                f"{percent.normalize():f}% of the tax of {format_money(tax_cents)}, rounded down to the cent: "
                f"{format_money(cents)}",
            )
        )
    if interest_rate is not None:
        percent = Decimal(interest_rate.value)
        cents = interest_cents(tax_cents, percent, days)
        first = due + timedelta(days=1)
        proposals.append(
            Proposal(
                "interest",
                cents,
                f"Interest on the late payment, {first:%-d %b} to {tax_return.received_on:%-d %b %Y}",
                f"{format_money(tax_cents)} × {percent.normalize():f}% a year × {days} of {DAYS_A_YEAR} days "
                f"({first:%-d %B} to {tax_return.received_on:%-d %B %Y}), rounded down to the cent: "
                f"{format_money(cents)}",
            )
        )
    return [p for p in proposals if p.cents > 0]
