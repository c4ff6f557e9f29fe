"""Accounts for tests, built with the domain functions: programs from
domain.programs, numbers with their check digit and periods with their due dates
from domain.accounts, ledger entries through domain.ledger.post, grants through
domain.grants.give and PINs through domain.enrolment.issue_pin."""

from __future__ import annotations

import re
from datetime import date, timedelta

from domain import enrolment, grants, ledger
from domain.accounts import due_date, make_number, periods_between
from domain.programs import ensure_programs
from models import Account, FilingPeriod, Program, TaxReturn

# The tests' clock starts on Monday 23 November 2026 (Mountain time).
TODAY = date(2026, 11, 23)


def sessionmaker_of(app):
    return app.extensions["portal.sessionmaker"]


def open_account(
    db,
    *,
    program_code: str = "TL",
    serial: int = 1,
    legal_name: str = "Prairie Inn Ltd.",
    operating_name: str | None = "Prairie Inn",
    opened_on: date = date(2026, 1, 1),
    periods_until: date = TODAY,
) -> Account:
    """An account with its filing periods from `opened_on` to `periods_until`."""
    ensure_programs(db)
    program = db.get(Program, program_code)
    account = Account(
        number=make_number(program.number_prefix, serial),
        program_code=program.code,
        legal_name=legal_name,
        operating_name=operating_name,
        status="active",
        mailing_address="PO Box 100\nEdmonton AB  T5J 2Z2",
        physical_address="10020 100 Street NW\nEdmonton AB  T5J 0N3",
        contact_name="Robin Example",
        contact_phone="780 555 0100",
        contact_email="robin@example.com",
        opened_on=opened_on,
    )
    db.add(account)
    db.flush()
    for start, end in periods_between(program, opened_on, periods_until):
        db.add(FilingPeriod(account_id=account.id, period_start=start, period_end=end, due_date=due_date(program, end)))
    db.flush()
    return account


def file_return(db, account: Account, period_end: date, received_on: date | None = None) -> TaxReturn:
    tax_return = TaxReturn(
        account_id=account.id,
        period_end=period_end,
        received_on=received_on or period_end + timedelta(days=10),
        status="received",
        reference=f"R-{account.id}-{period_end:%Y%m}",
    )
    db.add(tax_return)
    db.flush()
    return tax_return


def post(
    db,
    account: Account,
    kind: str,
    cents: int,
    processed: date,
    *,
    period_end: date | None = None,
    reference: str | None = None,
    effective: date | None = None,
    description: str = "",
):
    return ledger.post(
        db,
        account_id=account.id,
        kind=kind,
        amount_cents=cents,
        effective_date=effective or processed,
        processed_date=processed,
        reference=reference or f"{kind[:3].upper()}-{processed:%Y%m%d}-{abs(cents)}",
        period_end=period_end,
        description=description,
    )


def month_end(year: int, month: int) -> date:
    return (date(year, month, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


BUSY_KINDS = ["assessment", "payment", "penalty", "interest", "refund", "transfer", "adjustment", "reversal"]


def busy_reason(i: int, kind: str, processed: date) -> str:
    """The reason a charge or correction carries, written as the demo writes them
    (demo.py): the transactions page shows it, so the swap budget is weighed with it."""
    if kind == "penalty":
        return "Late filing penalty: the return arrived 9 days after the due date (5% of the tax)"
    if kind == "interest":
        return f"Interest on the late payment, {processed - timedelta(days=9):%-d %b} to {processed:%-d %b %Y}"
    if kind == "adjustment":
        return "Adjustment: inventory reconciliation after an audit found 2,140 litres not reported"
    if kind == "reversal":
        return f"Reverses penalty PEN-TL-{processed:%Y%m}: waived on request, the first late return in three years"
    if kind == "transfer":
        return "Credit transferred from Corporate Income Tax account 4500 1072 57"
    return ""


def busy_history(db, account: Account, entries: int = 130, odd_description_at: int | None = None) -> None:
    """`entries` ledger entries, three processed each day from 1 June 2026, in every
    kind, over four periods (May to August); references TX0000, TX0001, …"""
    for i in range(entries):
        processed = date(2026, 6, 1) + timedelta(days=i // 3)
        kind = BUSY_KINDS[i % len(BUSY_KINDS)]
        cents = (i * 7919 % 250000 + 1) * (-1 if kind in ("payment", "refund", "reversal") else 1)
        post(
            db,
            account,
            kind,
            cents,
            processed,
            period_end=month_end(2026, 5 + i % 4),
            reference=f"TX{i:04d}",
            effective=processed - timedelta(days=3),
            description='=HYPERLINK("evil")' if i == odd_description_at else busy_reason(i, kind, processed),
        )


def give(db, now, user_id: int, account: Account, role: str = "owner", permissions=None):
    grant = grants.give(db, now, user_id=user_id, account=account, role=role, permissions=permissions)
    db.flush()
    return grant


def issue_pin(db, now, account: Account, **kwargs) -> str:
    return enrolment.issue_pin(db, now, account, **kwargs)


# --- Requests ---------------------------------------------------------------------


def signed_in(app, email: str):
    """A test client signed in through the real form."""
    from tests.conftest import Auth

    client = app.test_client()
    assert Auth(client, app).sign_in(email=email).status_code == 303
    return client


def body(response) -> str:
    return response.get_data(as_text=True)


def as_written(page: str) -> str:
    """A page's table cells as its template wrote them, without what the table macro
    adds for narrow screens and dates (web/tables.py: data-label, class="nowrap"),
    so a test can match `<td>31 Oct 2026</td>`."""
    page = re.sub(r' data-label="[^"]*"', "", page)
    return re.sub(r'(<td[^>]*?) class="nowrap"|(<td[^>]*? class=")nowrap ', r"\1\2", page)


def without_tokens(page: str) -> str:
    """A page with its CSRF tokens (signed with the time) blanked out, to compare two answers."""
    page = re.sub(r'"X-CSRFToken": "[^"]+"', '"X-CSRFToken": ""', page)
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', page)
