"""Issue 3's "Done when", in a real browser: sign in, enrol an account with the
PIN from a letter, filter its transactions both ways with JavaScript on (only the
results swap, the address bar follows) and off, page on, download the CSV; axe
on the dashboard, summary, transactions (with and without errors) and enrolment
(with errors)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect

from domain.accounts import format_number
from tests.accounts_factory import file_return, give, issue_pin, open_account, post
from tests.browser.conftest import fill_date, settled, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser

EMAIL = "olive@example.com"


def heading(page):
    return page.get_by_role("heading", level=1)


@pytest.fixture
def letter(live_server):
    """Olive owns a Fuel Tax account; an invitation letter links her to a Tourism
    Levy account with 120 transactions over four periods."""
    app = live_server.app
    make_user(app, email=EMAIL, name="Olive Owner")
    with app.extensions["portal.sessionmaker"]() as db:
        now = live_server.clock()
        from sqlalchemy import select

        from models import User

        owner = db.scalar(select(User.id).where(User.email == EMAIL))
        fuel = open_account(
            db,
            program_code="FT",
            serial=1,
            legal_name="Olive Fuels Ltd.",
            operating_name=None,
            opened_on=date(2026, 9, 1),
        )
        post(db, fuel, "assessment", 4200, date(2026, 10, 20), period_end=date(2026, 9, 30))
        give(db, now, owner, fuel)
        inn = open_account(
            db, serial=2, legal_name="Prairie Inn Ltd.", operating_name="Prairie Inn", opened_on=date(2026, 5, 1)
        )
        kinds = ("assessment", "payment", "interest", "penalty")
        ends = (date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30))
        for i in range(120):
            processed = date(2026, 7, 1) + timedelta(days=i // 2)
            kind = kinds[i % 4]
            cents = (i * 1237 % 90000 + 100) * (-1 if kind == "payment" else 1)
            post(db, inn, kind, cents, processed, period_end=ends[i % 4], reference=f"REF-{i:04d}")
        for end in ends[:3]:
            file_return(db, inn, end)
        pin = issue_pin(db, now, inn, role="owner")
        db.commit()
        return dict(pin=pin, number=inn.number, fuel=fuel.number)


def query_of(page) -> dict:
    return dict(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))


def _rows(page):
    return page.locator("#transactions-results tbody tr")


def _mark(page) -> None:
    page.evaluate("""() => { window.__marks = {
        h1: document.querySelector('h1'), form: document.getElementById('transactions-filter'),
        nav: document.querySelector('.sub-nav'), results: document.getElementById('transactions-results') }; }""")


def _kept(page) -> dict:
    return page.evaluate("""() => ({
        h1: window.__marks.h1 === document.querySelector('h1'),
        form: window.__marks.form === document.getElementById('transactions-filter'),
        nav: window.__marks.nav === document.querySelector('.sub-nav'),
        results: window.__marks.results === document.getElementById('transactions-results') })""")


def test_enrol_then_filter_page_and_download_transactions_with_and_without_javascript(browser, live_server, letter):
    page = browser.page()
    sign_in(page, EMAIL, expect_heading="Welcome, Olive Owner")
    expect(page.locator("main table")).to_contain_text("Olive Fuels Ltd.")
    expect(page.locator("main table")).to_contain_text("$42.00 owing")
    browser.check(page, "dashboard")

    # Enrol: a mistake first, then the PIN from the letter.
    page.get_by_role("link", name="Link another account").click()
    expect(heading(page)).to_have_text("Link a tax account")
    page.get_by_label("Account number").fill(letter["number"][:-1] + str((int(letter["number"][-1]) + 1) % 10))
    page.get_by_role("button", name="Link account").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Check the account number: one of the digits is not right")
    expect(summary).to_contain_text("Enter the PIN from your invitation letter")
    browser.check(page, "enrol-errors")
    page.get_by_label("Account number").fill(format_number(letter["number"]))
    page.get_by_label("PIN").fill(letter["pin"])
    page.get_by_role("button", name="Link account").click()
    expect(heading(page)).to_have_text("Prairie Inn Ltd.")
    expect(page).to_have_url(re.compile(rf"/accounts/{letter['number']}/$"))
    expect(page.locator(".notice")).to_contain_text("You can now use Tourism Levy account")
    expect(page.locator("main")).to_contain_text("Not filed: overdue")
    browser.check(page, "summary")

    page.get_by_role("link", name="Financial transactions").click()
    expect(heading(page)).to_have_text("Financial transactions")
    expect(_rows(page)).to_have_count(50)
    browser.check(page, "transactions")

    # By processed date range, with htmx: only the results are swapped.
    _mark(page)
    fill_date(page, "Start date", date(2026, 7, 10))
    fill_date(page, "End date", date(2026, 7, 19))
    page.get_by_label("Transaction type").select_option("payment")
    page.get_by_role("button", name="Show transactions").click()
    expect(page).to_have_url(re.compile(r"from_day=10&from_month=7&from_year=2026&to_day=19&to_month=7&to_year=2026"))
    assert query_of(page) == {
        "mode": "processed",
        "from_day": "10",
        "from_month": "7",
        "from_year": "2026",
        "to_day": "19",
        "to_month": "7",
        "to_year": "2026",
        "period": "",
        "type": "payment",
    }
    expect(page.locator("#transactions-results caption")).to_contain_text(
        "Transactions processed from 10 July 2026 to 19 July 2026, payment only"
    )
    expect(_rows(page)).to_have_count(5)
    assert _kept(page) == {"h1": True, "form": True, "nav": True, "results": False}
    expect(page.locator("#transactions-status")).to_contain_text("5 transactions shown")
    for text in _rows(page).locator("td:nth-child(4)").all_inner_texts():
        assert text == "Payment"

    # By period end.
    _mark(page)
    page.get_by_label("By period end").check()
    page.get_by_label("Period end", exact=True).select_option("2026-08-31")
    page.get_by_label("Transaction type").select_option("all")
    page.get_by_role("button", name="Show transactions").click()
    expect(page).to_have_url(re.compile(r"period=2026-08-31"))
    assert query_of(page)["mode"] == "period"
    expect(_rows(page)).to_have_count(30)
    assert _kept(page) == {"h1": True, "form": True, "nav": True, "results": False}
    for text in _rows(page).locator("td:nth-child(3)").all_inner_texts():
        assert text == "31 Aug 2026"

    # The CSV of exactly these rows.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download these transactions (CSV)").click()
    download = info.value
    assert download.suggested_filename == f"transactions-{letter['number']}.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][0] == "Processed date" and len(rows) == 31
    assert {row[2] for row in rows[1:]} == {"2026-08-31"}
    assert all(re.fullmatch(r"-?\d+\.\d\d", row[6]) for row in rows[1:])

    # A reversed range: the form comes back with its errors, in place.
    page.get_by_label("By processed date range").check()
    fill_date(page, "Start date", date(2026, 8, 1))
    fill_date(page, "End date", date(2026, 7, 1))
    page.get_by_role("button", name="Show transactions").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    # And it keeps the focus once htmx has settled the emptied results (it once moved
    # there, about 20 ms later, as after "Next page").
    settled(page)
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("The start date must be on or before the end date")
    expect(page.locator("#filter-from-error")).to_contain_text("The start date must be on or before the end date")
    expect(page.locator("#transactions-results")).to_contain_text("Correct the filter to see transactions")
    browser.check(page, "transactions-errors")
    fill_date(page, "Start date", date(2026, 7, 1))
    fill_date(page, "End date", None)
    page.get_by_role("button", name="Show transactions").click()
    expect(page.locator(".error-summary")).to_have_count(0)
    expect(_rows(page)).to_have_count(50)

    # Next page: the next 50, in the address bar too, focus on the new results.
    first_page = _rows(page).locator("td:nth-child(5)").all_inner_texts()
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"after=\d{4}-\d\d-\d\d\.\d+"))
    expect(page.get_by_role("link", name="First page")).to_be_visible()
    expect(page.locator("#transactions-results")).to_be_focused()
    second_page = _rows(page).locator("td:nth-child(5)").all_inner_texts()
    assert len(second_page) == 50 and not set(first_page) & set(second_page)
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"after="))
    expect(_rows(page)).to_have_count(50)

    # --- The same with JavaScript off: the same GET form renders the whole page.
    page = browser.page(javascript=False)
    sign_in(page, EMAIL, expect_heading="Welcome, Olive Owner")
    page.get_by_role("link", name=re.compile(r"^Prairie Inn Ltd\.")).click()
    expect(heading(page)).to_have_text("Prairie Inn Ltd.")
    page.get_by_role("link", name="Financial transactions").click()
    expect(_rows(page)).to_have_count(50)

    page.get_by_label("By period end").check()
    page.get_by_label("Period end", exact=True).select_option("2026-07-31")
    page.get_by_role("button", name="Show transactions").click()
    expect(page).to_have_url(re.compile(r"period=2026-07-31"))
    assert query_of(page)["mode"] == "period"
    expect(_rows(page)).to_have_count(30)
    browser.check(page, "transactions-period-no-js", axe=False)

    page.get_by_label("By processed date range").check()
    fill_date(page, "Start date", date(2026, 7, 5))
    fill_date(page, "End date", date(2026, 9, 30))
    page.get_by_role("button", name="Show transactions").click()
    expect(page).to_have_url(re.compile(r"from_day=5&from_month=7&from_year=2026&to_day=30&to_month=9&to_year=2026"))
    assert query_of(page)["mode"] == "processed"
    expect(_rows(page)).to_have_count(50)
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"after="))
    expect(_rows(page)).to_have_count(50)
    page.get_by_role("link", name="Next page").click()
    expect(_rows(page)).to_have_count(12)  # 112 rows from 5 July on
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)

    fill_date(page, "Start date", date(2026, 9, 30))
    fill_date(page, "End date", date(2026, 7, 5))
    page.get_by_role("button", name="Show transactions").click()
    expect(page.locator(".error-summary")).to_contain_text("The start date must be on or before the end date")
    browser.check(page, "transactions-errors-no-js", axe=False)

    page.goto(f"/accounts/{letter['number']}/transactions?mode=period&period=2026-06-30")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download these transactions (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 31
