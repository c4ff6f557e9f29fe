"""Writing to the agency in a real browser (issue 20, item 2), with JavaScript
off as the rule is for every form: from Messages the owner opens "Write to us",
sends it empty (the error summary and a message beside each field), then a
topic, subject and text; the conversation opens with their message in it. axe
on the form, with its errors, and on the conversation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_access_journey import OWNER, heading, olive_owns_prairie_inn

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [False, True])
def test_the_owner_writes_to_the_agency(browser, live_server, javascript):
    number = olive_owns_prairie_inn(live_server, {})[0]
    page = browser.page(javascript=javascript)
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.get_by_role("link", name=re.compile(r"^Messages")).first.click()
    page.get_by_role("link", name="Write to us about Prairie Inn Ltd.").click()
    expect(page).to_have_url(re.compile(rf"/messages/{number}/new$"))
    expect(heading(page)).to_have_text("Write to us")
    browser.check(page, f"write-{javascript}", axe=javascript)

    page.get_by_role("button", name="Send message").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Choose what your message is about")
    expect(summary).to_contain_text("Enter a subject")
    expect(summary).to_contain_text("Enter your message")
    expect(page.locator("#topic-error")).to_be_visible()
    browser.check(page, f"write-errors-{javascript}", axe=javascript)

    page.get_by_label("A payment or refund").check()
    page.get_by_label("Subject").fill("Payment of 20 July")
    page.get_by_label("Your message").fill("Did our payment of 20 July reach the account?")
    page.get_by_role("button", name="Send message").click()
    expect(heading(page)).to_have_text("Payment of 20 July")
    expect(page.locator("#thread-posts")).to_contain_text("Did our payment of 20 July reach the account?")
    expect(page.locator("main")).to_contain_text("Your message was sent")
    browser.check(page, f"written-{javascript}", axe=javascript)
