"""Filing a Tourism Levy return in a real browser. With JavaScript: typing the
figures updates the amounts without sending anything and the draft says it was
saved; then the check page, the declaration and the confirmation, and the
return shows as Received on the assessment status page. Without JavaScript:
the same journey, the amounts shown by the Calculate button. axe on every page
of the journey with JavaScript."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from models import TaxReturn
from tests.accounts_factory import give, open_account
from tests.browser.conftest import sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser

OWNER = "olive@example.com"


@pytest.fixture
def inn(live_server):
    """Olive owns Prairie Inn's Tourism Levy account, open since June 2026: five months to file."""
    app = live_server.app
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with app.extensions["portal.sessionmaker"]() as db:
        account = open_account(db, serial=7, legal_name="Prairie Inn Ltd.", opened_on=date(2026, 6, 1))
        give(db, live_server.clock(), owner, account, role="owner")
        db.commit()
        return account.number


def heading(page):
    return page.get_by_role("heading", level=1)


def _returns_filed(live_server) -> int:
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count(TaxReturn.id)))


def _check_and_submit(browser, page, number: str, javascript: bool) -> str:
    """From the check page: the figures, the line with its rate, the declaration, submit; the reference."""
    expect(heading(page)).to_have_text("Check your return before you send it")
    answers = page.locator("#check-answers")
    expect(answers).to_contain_text("$12,345.67")
    expect(answers).to_contain_text("$345.67")
    worked = page.locator("#worked")
    expect(worked).to_contain_text("4% of $12,000.00")
    expect(worked).to_contain_text("in force from 1 April 2005")
    expect(page.locator("#worked-total")).to_have_text("$480.00")
    browser.check(page, "check", axe=javascript)
    page.get_by_role("button", name="Submit return").click()
    errors = page.locator(".error-summary")
    expect(errors).to_contain_text("Confirm that the information given is correct and complete")
    browser.check(page, "check-errors", axe=javascript)
    page.get_by_label("I certify the information given is correct and complete").check()
    page.get_by_role("button", name="Submit return").click()
    expect(page).to_have_url(re.compile(rf"/filing/{number}/done/SR-[A-Z0-9]{{4}}-[A-Z0-9]{{4}}$"))
    panel = page.locator("#confirmation")
    expect(heading(page)).to_have_text(re.compile(r"^Tourism Levy return: 1\u2013"))
    expect(panel.get_by_role("heading", level=2)).to_have_text("Return received")
    reference = panel.locator(".reference").inner_text()
    expect(page.locator("main")).to_contain_text("What happens next")
    expect(page.locator("#done-total")).to_have_text("$480.00")
    browser.check(page, "done", axe=javascript)
    return reference


def _shows_received(page, number: str, period: str, reference: str) -> None:
    page.get_by_role("link", name="See the assessment status").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{number}/returns$"))
    row = page.get_by_role("row").filter(has_text=period)
    expect(row).to_contain_text("Received")
    expect(row).to_contain_text("23 November 2026")


def test_filing_with_javascript_shows_the_amounts_as_you_type(browser, live_server, inn):
    number = inn
    page = browser.page()
    sign_in(page, OWNER)
    page.goto(f"/accounts/{number}/")
    page.get_by_role("link", name="File a return or amend one").click()
    expect(heading(page)).to_have_text("File a return or amend one")
    expect(page.locator("#open-periods tbody tr")).to_have_count(5)
    browser.check(page, "start")
    page.get_by_role("button", name="File the return for 1\u201331 October 2026").click()
    expect(page).to_have_url(re.compile(rf"/filing/{number}/2026-10-31/figures$"))
    expect(heading(page)).to_have_text("Tourism Levy return: 1\u201331 October 2026")

    page.get_by_label("Total purchase price of temporary accommodation").fill("12,345.67")
    expect(page.locator("#computed-total")).to_have_text("Not worked out yet")
    page.get_by_label("Exempt accommodation included in that total").fill("345.67")
    # The amount is worked out by the server, without submitting anything.
    expect(page.locator("#computed-total")).to_have_text("$480.00")
    expect(page.locator("#computed")).to_contain_text("4% of $12,000.00")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved at")
    expect(page).to_have_url(re.compile(rf"/filing/{number}/2026-10-31/figures$"))
    assert _returns_filed(live_server) == 0
    browser.check(page, "figures")

    # A wrong figure: the message beside it and in the summary.
    page.get_by_label("Exempt accommodation included in that total").fill("12.345")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "Exempt accommodation must have no more than 2 decimal places"
    )
    expect(page.locator("#exempt_price-error")).to_be_visible()
    browser.check(page, "figures-errors")
    page.get_by_label("Exempt accommodation included in that total").fill("345.67")
    page.get_by_role("button", name="Continue").click()

    reference = _check_and_submit(browser, page, number, javascript=True)
    assert _returns_filed(live_server) == 1
    _shows_received(page, number, "1\u201331 October 2026", reference)
    browser.check(page, "returns")


def test_filing_without_javascript_shows_the_amounts_with_calculate(browser, live_server, inn):
    number = inn
    page = browser.page(javascript=False)
    sign_in(page, OWNER)
    page.goto(f"/filing/{number}/")
    expect(heading(page)).to_have_text("File a return or amend one")
    page.get_by_role("button", name="File the return for 1\u201330 September 2026").click()
    expect(page).to_have_url(re.compile(rf"/filing/{number}/2026-09-30/figures$"))
    page.get_by_label("Total purchase price of temporary accommodation").fill("12,345.67")
    page.get_by_label("Exempt accommodation included in that total").fill("345.67")
    page.get_by_role("button", name="Calculate").click()
    expect(page.locator("#computed-total")).to_have_text("$480.00")
    expect(page.get_by_label("Total purchase price of temporary accommodation")).to_have_value("12,345.67")
    browser.check(page, "figures-calculated", axe=False)
    assert _returns_filed(live_server) == 0
    page.get_by_role("button", name="Continue").click()
    reference = _check_and_submit(browser, page, number, javascript=False)
    assert _returns_filed(live_server) == 1
    _shows_received(page, number, "1\u201330 September 2026", reference)
