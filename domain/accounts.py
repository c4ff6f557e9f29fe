"""Account numbers, filing periods, due dates and money, for any program."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Account, Program

NUMBER_LENGTH = 10


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for a string of digits (catches every single-digit
    typing mistake and most swaps of neighbouring digits)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def make_number(prefix: str, serial: int) -> str:
    body = f"{prefix}{serial:07d}"
    return body + luhn_digit(body)


def normalise_number(raw: str) -> str:
    """What the person typed, without spaces, dashes or dots."""
    return re.sub(r"[\s.\-]", "", raw or "")


def number_problem(raw: str) -> str | None:
    """Why a typed account number cannot be right, before any look-up, or None."""
    number = normalise_number(raw)
    if not number:
        return "Enter your account number"
    if not (number.isascii() and number.isdigit()):  # "²" is a digit to isdigit(), not to int()
        return "An account number has digits only, like 4100 0012 34"
    if len(number) != NUMBER_LENGTH:
        return f"An account number has {NUMBER_LENGTH} digits"
    if luhn_digit(number[:-1]) != number[-1]:
        return "Check the account number: one of the digits is not right"
    return None


def find_by_number(db: Session, raw: str) -> Account | None:
    """The account with this number, typed with or without spaces; None for
    anything that is not ten digits (not looked up) or no account's."""
    number = normalise_number(raw)
    if not (len(number) == NUMBER_LENGTH and number.isascii() and number.isdigit()):
        return None
    return db.scalar(select(Account).where(Account.number == number))


def format_number(number: str) -> str:
    return f"{number[:4]} {number[4:8]} {number[8:]}"


# --- Periods and due dates ------------------------------------------------------

_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    year, month = _add_months(day, months)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(program: Program, period_end: date) -> date:
    """The due date by the program's rule: "M+n:last" or "M+n:<day>"."""
    months, day = program.due_rule.removeprefix("M+").split(":")
    year, month = _add_months(period_end, int(months))
    if day == "last":
        return _month_end(year, month)
    return date(year, month, min(int(day), calendar.monthrange(year, month)[1]))


def periods_between(program: Program, first_start: date, until: date) -> list[tuple[date, date]]:
    """(start, end) of each period that has ended by `until`, from `first_start`."""
    step = _MONTHS[program.filing_frequency]
    periods = []
    start = date(first_start.year, first_start.month, 1)
    while True:
        year, month = _add_months(start, step - 1)
        end = _month_end(year, month)
        if end >= until:
            break
        periods.append((start, end))
        start = end + timedelta(days=1)
    return periods


# --- Money ---------------------------------------------------------------------


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def format_money(cents: int) -> str:
    """$1,234.56; a credit is written with a minus sign, never shown by colour alone."""
    # Integer arithmetic on the cents: exact, and quick enough for a page of rows.
    dollars, part = divmod(abs(int(cents)), 100)
    return f"{'-' if cents < 0 else ''}${dollars:,}.{part:02d}"


def describe_balance(cents: int) -> str:
    if cents > 0:
        return f"{format_money(cents)} owing"
    if cents < 0:
        return f"{format_money(-cents)} credit"
    return "$0.00"


def format_amount(cents: int) -> str:
    """A transaction amount or running balance in a table: $1,234.56 owed to the
    agency, "$1,234.56 credit" the other way (in words, never by colour alone)."""
    if cents < 0:
        return f"{format_money(-cents)} credit"
    return format_money(cents)
