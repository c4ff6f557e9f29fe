"""Issue 20, item 11 in a browser: dates are typed as day, month and year, on the
taxpayer's side (the transactions filter) and the staff side (the audit filter);
a date that is not real gets the GOV.UK message beside the field, and the error
summary link takes the focus to the box that is wrong. axe runs on each page; the
`browser` fixture fails on any CSP violation."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

import demo
from tests.browser.conftest import settled, sign_in
from tests.browser.test_filing_and_requests_journey import OWNER_PASSWORD, TOURISM
from tests.test_html_valid import STAFF_EMAIL, STAFF_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_server(live_server):
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        assert demo.build_demo(db, live_server.clock())
    return live_server


def _type(group, day: str, month: str, year: str) -> None:
    group.get_by_label("Day").fill(day)
    group.get_by_label("Month").fill(month)
    group.get_by_label("Year").fill(year)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_taxpayer_types_a_date_as_day_month_and_year(browser, demo_server, javascript):
    page = browser.page(javascript=javascript)
    sign_in(page, demo.OWNER, OWNER_PASSWORD, expect_heading=None)
    page.goto(f"/accounts/{TOURISM}/transactions")
    start = page.get_by_role("group", name="Start date")
    _type(start, "31", "2", "2026")
    page.get_by_role("button", name="Show transactions").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The start date must be a real date")
    expect(page.locator("#filter-from-error")).to_contain_text("The start date must be a real date")
    assert page.locator("input[type=date]").count() == 0
    if javascript:
        browser.check(page, "transactions-date-error")
        summary.get_by_role("link").click()
        expect(page.locator("#filter-from_day")).to_be_focused()

    start = page.get_by_role("group", name="Start date")
    _type(start, "1", "1", "2020")
    page.get_by_role("button", name="Show transactions").click()
    if javascript:
        settled(page)
    expect(page.locator(".error-summary")).to_have_count(0)
    expect(page.locator("#transactions-results")).to_contain_text("on or after 1 January 2020")


def test_staff_type_a_date_as_day_month_and_year(browser, demo_server):
    page = browser.page()
    page.goto("/staff/sign-in")
    page.get_by_label("Work email address").fill(STAFF_EMAIL)
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("Security code").fill(pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).at(demo_server.clock()))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Find an account or a person")
    page.goto("/staff/audit/")
    _type(page.get_by_role("group", name="From"), "12", "", "2026")
    page.get_by_role("button", name="Show events").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The first day must include a month")
    expect(page.locator("#audit-from-error")).to_contain_text("The first day must include a month")
    expect(page.locator("#audit-from_month")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#audit-from_day")).not_to_have_attribute("aria-invalid", "true")
    browser.check(page, "audit-date-error")
    summary.get_by_role("link").click()
    expect(page.locator("#audit-from_month")).to_be_focused()

    _type(page.get_by_role("group", name="From"), "1", "1", "2020")
    page.get_by_role("button", name="Show events").click()
    settled(page)
    expect(page.locator(".error-summary")).to_have_count(0)
