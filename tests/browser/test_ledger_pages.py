"""Issue 20 items 3 to 5 in Chromium, with JavaScript and without: a charge's
reason in the transactions table, the summary's Unallocated line and total, the
statement of account form (its errors, then the PDF downloaded, not swapped into
the page) and Make a payment with its voucher; axe on each page, and each read at
320 px without scrolling sideways outside its tables."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from tests.accounts_factory import give, open_account, post
from tests.browser.conftest import sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def inn(live_server):
    app = live_server.app
    owner = make_user(app, email="owner@example.com", name="Olive Owner")
    with app.extensions["portal.sessionmaker"]() as db:
        account = open_account(db, serial=61, opened_on=date(2026, 1, 1))
        march = date(2026, 3, 31)
        post(db, account, "assessment", 123456, date(2026, 4, 10), period_end=march, reference="ASM-2603")
        reason = "Late filing penalty: the return arrived 9 days after the due date (5% of the tax)"
        post(db, account, "penalty", 6173, date(2026, 5, 2), period_end=march, reference="PEN-2603", description=reason)
        post(db, account, "transfer", -2500, date(2026, 5, 5), reference="TRF-1", description="Credit transferred in")
        give(db, live_server.clock(), owner, account)
        db.commit()
        return account.number


def _fits(page) -> None:
    """Nothing but a table's own scroll region is wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_reasons_balances_statement_and_how_to_pay(browser, live_server, inn, javascript):
    page = browser.page(javascript=javascript)
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, "owner@example.com", expect_heading=None)

    page.goto(f"/accounts/{inn}/transactions")
    expect(page.locator("#transactions-results")).to_contain_text("Late filing penalty: the return arrived 9 days")
    _fits(page)
    browser.check(page, "transactions-reasons", axe=javascript)

    page.goto(f"/accounts/{inn}/")
    expect(page.locator("main")).to_contain_text("Unallocated: not yet applied to a filing period")
    expect(page.locator("tfoot")).to_contain_text("$1,271.29")
    _fits(page)
    browser.check(page, "summary-total", axe=javascript)

    page.get_by_role("link", name="Get a statement of account (PDF)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Statement of account")
    page.get_by_label("For dates you choose").check()
    page.locator("#from_day").fill("31")
    page.locator("#from_month").fill("2")
    page.locator("#from_year").fill("2026")
    page.get_by_role("button", name="Download the statement (PDF)").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The start date must be a real date")
    expect(summary).to_contain_text("Enter the end date")
    _fits(page)
    browser.check(page, "statement-errors", axe=javascript)
    page.locator("#from_day").fill("1")
    for part, value in (("day", "30"), ("month", "6"), ("year", "2026")):
        page.locator(f"#to_{part}").fill(value)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the statement (PDF)").click()
    assert info.value.suggested_filename == f"statement-{inn}-2026-02-01-to-2026-06-30.pdf"
    with open(info.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    expect(page.get_by_role("heading", level=1)).to_have_text("Statement of account")

    page.goto(f"/accounts/{inn}/")
    page.get_by_role("link", name="Make a payment on this account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Make a payment")
    expect(page.locator("#owing")).to_have_text("$1,271.29 owing")
    _fits(page)
    browser.check(page, "make-a-payment", axe=javascript)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the remittance voucher (PDF)").click()
    assert info.value.suggested_filename == f"remittance-voucher-{inn}.pdf"
    expect(page.get_by_role("heading", level=1)).to_have_text("Make a payment")
