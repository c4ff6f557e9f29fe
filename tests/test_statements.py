"""Issue 20 item 4: period balances add up to the account's balance (every entry
belongs to a period or to the Unallocated line; credits said in words), and the
statement of account as PDF, for a period or for dates typed as day, month and
year. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

import demo
from domain import ledger, overview, statements
from domain.accounts import format_amount
from models import Account, FilingPeriod, LedgerEntry
from tests.accounts_factory import (
    TODAY,
    body,
    give,
    month_end,
    open_account,
    post,
    sessionmaker_of,
    signed_in,
)
from tests.conftest import Auth, make_user
from tests.test_returns import pdf_text


def plain(page: str) -> str:
    """The page without the labels and classes the table macro adds for phones (web/tables.py)."""
    return re.sub(r' data-label="[^"]*"| class="nowrap"', "", page)


OWNER = "owner@example.com"
OWNER_EMAIL, OWNER_PASSWORD = next((p[2], p[3]) for p in demo.DEMO_PEOPLE if p[2] == demo.OWNER)


def _lines_add_up(db, account_id: int) -> tuple[int, int, int]:
    """(sum of the summary's period lines, its Unallocated line, the account's balance)."""
    lines = overview.filing_periods(db, account_id, TODAY, with_money=True)
    money = overview.period_money(db, account_id)
    return sum(line.balance_cents or 0 for line in lines), money.unallocated_cents, money.balance_cents


# --- The demo ---------------------------------------------------------------------------


@pytest.fixture
def demo_app(app, clock):
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    return app


def test_every_demo_account_s_period_lines_add_up_to_its_balance(demo_app):
    with sessionmaker_of(demo_app)() as db:
        accounts = db.scalars(select(Account)).all()
        assert len(accounts) >= 6
        for account in accounts:
            periods, unallocated, balance = _lines_add_up(db, account.id)
            assert periods + unallocated == balance, account.number
        tourism = db.scalar(select(Account).where(Account.number == demo.demo_account("tourism").number))
        # The credit transferred in from the corporate account paid part of a return,
        # and belongs to that return's period.
        transfer = db.scalar(
            select(LedgerEntry).where(LedgerEntry.account_id == tourism.id, LedgerEntry.kind == "transfer")
        )
        assert transfer.amount_cents < 0 and transfer.period_end is not None
        periods, unallocated, balance = _lines_add_up(db, tourism.id)
        assert unallocated == 0 and periods == balance > 0


def test_the_demo_summary_shows_the_lines_and_their_total_and_says_credit_in_words(demo_app):
    client = demo_app.test_client()
    Auth(client, demo_app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    number = demo.demo_account("corporate").number
    page = plain(body(client.get(f"/accounts/{number}/")))
    with sessionmaker_of(demo_app)() as db:
        account_id = db.scalar(select(Account.id).where(Account.number == number))
        balance = ledger.balance(db, account_id)
    total = re.search(r"Account balance \(the lines above added up\)</th><td class=\"num\"><strong>([^<]+)<", page)
    assert total, page
    assert total.group(1) == format_amount(balance)
    # The demo's payment that named no period waits on the Unallocated line.
    assert 'Unallocated: not yet applied to a filing period</th><td class="num">$25.00 credit<' in page
    # No bare negative amounts: a credit says so.
    main = page.split("<main", 1)[1]
    assert not re.search(r"-\$\d", main)


# --- Generated ledgers ------------------------------------------------------------------


def _random_ledger(db, rng: random.Random, serial: int) -> int:
    """An account with periods for 2026 and up to 40 entries posted by the ledger's own
    functions: any kind, some with no period, some for a period the account does not
    have, some reversed."""
    account = open_account(db, serial=serial, opened_on=date(2026, 1, 1), periods_until=date(2026, 10, 31))
    posted = []
    for i in range(rng.randint(0, 40)):
        kind = rng.choice(["assessment", "payment", "penalty", "interest", "refund", "transfer", "adjustment"])
        cents = rng.randint(1, 5_000_000) * (-1 if kind in ("payment", "transfer") else 1)
        where = rng.random()
        period_end = (
            None
            if where < 0.15
            else (month_end(2025, rng.randint(1, 12)) if where < 0.25 else month_end(2026, rng.randint(1, 9)))
        )
        processed = date(2026, 1, 1) + timedelta(days=rng.randint(0, 320))
        posted.append(post(db, account, kind, cents, processed, period_end=period_end, reference=f"G{serial}-{i}"))
        if posted and rng.random() < 0.1:
            db.flush()
            undone = posted.pop(rng.randrange(len(posted)))
            ledger.reverse(db, undone, processed_date=processed, reference=f"R{serial}-{i}", reason="Entered in error")
    db.flush()
    return account.id


def test_generated_ledgers_always_add_up(app):
    """Seeded and bounded: 30 random ledgers, the same ones on every run."""
    rng = random.Random(20)
    with sessionmaker_of(app)() as db:
        for serial in range(200, 230):
            account_id = _random_ledger(db, rng, serial)
            periods, unallocated, balance = _lines_add_up(db, account_id)
            assert periods + unallocated == balance, serial
            # The unallocated line is exactly the entries of no filing period.
            ends = set(db.scalars(select(FilingPeriod.period_end).where(FilingPeriod.account_id == account_id)))
            entries = db.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()
            assert unallocated == sum(e.amount_cents for e in entries if e.period_end not in ends)
            # A statement over every date ends at the balance; period statements add up too.
            account = db.get(Account, account_id)
            assert statements.for_dates(db, account, date(2025, 1, 1), TODAY).closing_cents == balance
            by_period = sum(statements.for_period(db, account, end).closing_cents for end in ends)
            assert by_period + unallocated == balance
        db.rollback()


# --- The statement of account -----------------------------------------------------------


@pytest.fixture
def inn(app, clock):
    owner = make_user(app, email=OWNER, name="Olive Owner")
    make_user(app, email="stranger@example.com", name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=41)
        march = date(2026, 3, 31)
        post(db, account, "assessment", 123456, date(2026, 4, 10), period_end=march, reference="ASM-2603")
        post(db, account, "payment", -100000, date(2026, 4, 20), period_end=march, reference="PMT-2603")
        post(
            db,
            account,
            "penalty",
            6173,
            date(2026, 5, 2),
            period_end=march,
            reference="PEN-2603",
            description="Late filing penalty: the return arrived 9 days after the due date (5% of the tax)",
        )
        post(db, account, "transfer", -365000, date(2026, 5, 5), reference="TRF-1", description="Credit transferred in")
        give(db, clock(), owner, account)
        db.commit()
        number = account.number
    return signed_in(app, OWNER), number


def test_the_summary_shows_the_unallocated_line_and_the_total(inn):
    client, number = inn
    page = plain(body(client.get(f"/accounts/{number}/")))
    assert 'Unallocated: not yet applied to a filing period</th><td class="num">$3,650.00 credit<' in page
    assert "$296.29<" in page  # March: 1,234.56 - 1,000.00 + 61.73
    assert "<strong>$3,353.71 credit</strong>" in page
    assert f'href="/accounts/{number}/statement"' in page


def test_a_statement_for_a_period_is_a_pdf_of_its_lines(inn):
    client, number = inn
    response = client.get(f"/accounts/{number}/statement?kind=period&period=2026-03-31")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"] == f'attachment; filename="statement-{number}-period-2026-03-31.pdf"'
    text = pdf_text(response.data)
    assert "Statement of account" in text and "for the period 1-31 March 2026" in text
    for expected in ("ASM-2603", "PMT-2603", "$1,000.00 credit", "PEN-2603", "Late filing penalty"):
        assert expected in text, expected
    assert "TRF-1" not in text and "-$" not in text
    assert "$296.29 owing" in text


def test_a_statement_for_dates_starts_from_the_balance_before_them(inn):
    client, number = inn
    query = "kind=dates&from_day=15&from_month=4&from_year=2026&to_day=5&to_month=5&to_year=2026"
    response = client.get(f"/accounts/{number}/statement?{query}")
    assert response.status_code == 200, body(response)
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="statement-{number}-2026-04-15-to-2026-05-05.pdf"'
    text = pdf_text(response.data)
    assert "Balance on 15 April 2026, before these transactions" in text and "$1,234.56" in text
    assert "ASM-2603" not in text and "PMT-2603" in text and "TRF-1" in text
    assert "$3,353.71 credit" in text  # the balance at the end, in words


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("kind=", "kind", "Choose whether the statement is for a period or for dates you choose"),
        ("kind=period&period=2026-02-28", "period", "Choose a period this account has"),
        ("kind=dates&to_day=1&to_month=5&to_year=2026", "from_day", "Enter the start date"),
        (
            "kind=dates&from_day=1&from_year=2026&to_day=1&to_month=5&to_year=2026",
            "from_month",
            "The start date must include a month",
        ),
        (
            "kind=dates&from_day=31&from_month=2&from_year=2026&to_day=1&to_month=5&to_year=2026",
            "from_day",
            "The start date must be a real date",
        ),
        (
            "kind=dates&from_day=1&from_month=5&from_year=26&to_day=1&to_month=5&to_year=2026",
            "from_year",
            "Year must include 4 numbers",
        ),
        (
            "kind=dates&from_day=2&from_month=5&from_year=2026&to_day=1&to_month=5&to_year=2026",
            "from_day",
            "The start date must be the same as or before the end date",  # the whole date: every box
        ),
        (
            "kind=dates&from_day=1&from_month=5&from_year=2026&to_day=1&to_month=1&to_year=2027",
            "to_day",
            "The end date must be today or in the past",
        ),
    ],
)
def test_a_wrong_answer_gets_a_message_beside_its_field_and_no_pdf(inn, query, field, message):
    client, number = inn
    response = client.get(f"/accounts/{number}/statement?{query}")
    assert response.status_code == 400 and response.mimetype == "text/html"
    page = body(response)
    assert "<title>Error: Statement of account: Prairie Inn Ltd." in page
    assert f'<a href="#{field}">{message}</a>' in page  # the error summary
    assert f"</span> {message}</p>" in page  # beside the field
    assert field == "kind" or 'aria-invalid="true"' in page  # radios are marked by their fieldset


@pytest.mark.parametrize(
    "query, marked",
    [
        ("kind=dates&from_day=1&from_year=2026&to_day=1&to_month=5&to_year=2026", ["from_month"]),
        ("kind=dates&to_day=1&to_month=5&to_year=2026", ["from_day", "from_month", "from_year"]),
        (
            "kind=dates&from_day=2&from_month=5&from_year=2026&to_day=1&to_month=5&to_year=2026",
            ["from_day", "from_month", "from_year"],
        ),
        (
            "kind=dates&from_day=1&from_month=5&from_year=2026&to_day=1&to_month=1&to_year=2027",
            ["to_day", "to_month", "to_year"],
        ),
    ],
)
def test_a_date_error_marks_the_boxes_it_is_about(inn, query, marked):
    """The same date input as every other form: a missing month marks the month box; a
    whole-date problem (missing, out of order, in the future) marks all three."""
    client, number = inn
    page = body(client.get(f"/accounts/{number}/statement?{query}"))
    flagged = re.findall(r'id="((?:from|to)_(?:day|month|year))"[^>]*aria-invalid="true"', page)
    assert flagged == marked


def test_the_form_keeps_what_was_typed_and_uses_day_month_year_boxes(inn):
    client, number = inn
    page = body(client.get(f"/accounts/{number}/statement?kind=dates&from_day=1&from_month=5&from_year=26"))
    assert 'id="from_day" name="from_day" type="text" inputmode="numeric"\n          value="1"' in page
    assert 'name="kind" type="radio" value="dates" checked' in page
    blank = client.get(f"/accounts/{number}/statement")
    assert blank.status_code == 200 and 'data-hx-boost="false"' in body(blank)


def test_a_stranger_and_a_returns_only_grant_get_no_statement(app, inn, clock):
    _client, number = inn
    stranger = signed_in(app, "stranger@example.com")
    response = stranger.get(f"/accounts/{number}/statement?kind=period&period=2026-03-31")
    assert response.status_code == 404 and b"%PDF" not in response.data
    clerk = make_user(app, email="clerk@example.com", name="Cam Clerk")
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == number))
        give(db, clock(), clerk, account, role="delegate", permissions={"view_returns"})
        db.commit()
    clerk_client = signed_in(app, "clerk@example.com")
    assert clerk_client.get(f"/accounts/{number}/statement?kind=period&period=2026-03-31").status_code == 404
