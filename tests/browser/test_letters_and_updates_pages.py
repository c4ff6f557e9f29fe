"""axe on the pages of issue 20's items 6 and 12 (asking for an invitation letter,
email updates), and the back office's side of each: the request in its queue and
a program's updates. (Without JavaScript the forms are plain POSTs answered 303:
tests/test_enrolment_requests.py and tests/test_subscriptions.py.)"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

from domain import programs as program_data
from tests.accounts_factory import open_account, sessionmaker_of
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser


def heading(page):
    return page.get_by_role("heading", level=1)


def test_asking_for_a_letter_and_subscribing_signed_out(browser, live_server, javascript=True):
    with sessionmaker_of(live_server.app)() as db:
        program_data.ensure_programs(db)
        db.commit()
    page = browser.page(javascript=javascript)
    page.goto("/auth/sign-in")
    page.get_by_role("link", name="Ask for an invitation letter").click()
    expect(heading(page)).to_have_text("Ask for an invitation letter")
    browser.check(page, f"ask-letter-{javascript}")
    page.get_by_role("button", name="Ask for a letter").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter the account number, or the business")
    browser.check(page, f"ask-letter-errors-{javascript}")
    page.get_by_label("Business's legal name").fill("Prairie Inn Ltd.")
    page.get_by_label("Business address").fill("1 Main Street\nBanff AB")
    page.get_by_label("Your full name").fill("Casey Clerk")
    page.get_by_label("Email address").fill("casey@example.com")
    page.get_by_label("Your phone number").fill("780 555 0142")
    page.get_by_label("Employee").check()
    page.get_by_role("button", name="Ask for a letter").click()
    expect(heading(page)).to_have_text("We have your request")
    expect(page.locator("#asked-answer")).to_contain_text("10 business days")
    browser.check(page, f"asked-{javascript}")

    page.get_by_role("link", name="Email updates").click()
    expect(heading(page)).to_have_text("Get email updates")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator(".error-summary")).to_contain_text("Choose at least one program")
    browser.check(page, f"subscribe-errors-{javascript}")
    page.get_by_label("Fuel Tax", exact=True).check()
    page.get_by_label("Email address").fill("reader@example.com")
    page.get_by_role("button", name="Subscribe").click()
    expect(heading(page)).to_have_text("Check your email")
    page.goto(live_server.last_link("reader@example.com"))
    expect(heading(page)).to_have_text("Confirm your email updates")
    browser.check(page, f"subscribe-confirm-{javascript}")
    page.get_by_role("button", name="Start my updates").click()
    expect(page.locator(".notice")).to_contain_text("Your email updates have started")


def test_the_back_office_sends_the_letter_and_an_update(browser, live_server):
    app = live_server.app
    with sessionmaker_of(app)() as db:
        account = open_account(db)
        db.commit()
        number = account.number
    secret = pyotp.random_base32()
    make_user(app, email="super@example.com", name="Sam Super", staff_role="supervisor", totp_secret=secret)
    page = browser.page()
    page.goto("/enrol/ask")
    page.get_by_label("Account number (if you know it)").fill(number)
    page.get_by_label("Your full name").fill("Casey Clerk")
    page.get_by_label("Email address").fill("casey@example.com")
    page.get_by_label("Your phone number").fill("780 555 0142")
    page.get_by_label("Owner or partner").check()
    page.get_by_role("button", name="Ask for a letter").click()
    expect(heading(page)).to_have_text("We have your request")

    staff = browser.page()
    staff.goto("/staff/sign-in")
    staff.get_by_label("Work email address").fill("super@example.com")
    staff.get_by_label("Password", exact=True).fill(PASSWORD)
    staff.get_by_label("Security code").fill(pyotp.TOTP(secret).at(int(live_server.clock().timestamp())))
    staff.get_by_role("button", name="Sign in").click()
    staff.goto("/staff/queues/enrolments")
    staff.get_by_role("link", name=re.compile(r"^Item \d+$")).click()
    expect(staff.locator("#asked-facts")).to_contain_text("Casey Clerk")
    browser.check(staff, "staff-letter-request")
    staff.get_by_role("button", name="Send the invitation letter").click()
    expect(staff.locator(".notice")).to_contain_text("The invitation letter is in the mail")
    browser.check(staff, "staff-letter-sent")

    staff.goto("/staff/programs/")
    staff.get_by_role("link", name="Updates about Tourism Levy").click()
    expect(heading(staff)).to_have_text("Updates about Tourism Levy")
    staff.get_by_role("button", name="Send the update").click()
    expect(staff.locator(".error-summary")).to_contain_text("Enter a title")
    browser.check(staff, "staff-updates-errors")
    staff.get_by_label("Title").fill("New rates")
    staff.get_by_label("The update").fill("Rates change on 1 January.")
    staff.get_by_role("button", name="Send the update").click()
    expect(staff.locator(".notice")).to_contain_text("Sent the update to 0 subscribers")
    browser.check(staff, "staff-updates")


def test_asking_for_a_letter_and_subscribing_without_javascript(browser, live_server):
    """The same forms as plain POSTs answered 303, in the browser with scripts off."""
    test_asking_for_a_letter_and_subscribing_signed_out(browser, live_server, javascript=False)
