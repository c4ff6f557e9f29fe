"""axe on every page a person or a member of staff can reach (the journeys check
the rest: start, register with and without errors, check-email, code step, home,
profile, two-factor set-up, recovery codes and the open session dialog). No
violation of impact "serious" or "critical" is allowed; the `browser` fixture
fails the test and lists them, with any Content Security Policy violation."""
from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser


def heading(page):
    return page.get_by_role("heading", level=1)


def test_public_pages(browser, live_server):
    page = browser.page()
    for path, title, step in [
        ("/auth/sign-in", "Sign in", "sign-in"),
        ("/pages/accessibility", "Accessibility statement", "accessibility"),
        ("/pages/privacy", "Privacy", "privacy"),
        ("/pages/cookies", "Cookies", "cookies"),
        ("/pages/service-hours", "Service hours", "service-hours"),
        ("/staff/sign-in", "Staff sign in", "staff-sign-in"),
    ]:
        page.goto(path)
        expect(heading(page)).to_have_text(title)
        browser.check(page, step)

    response = page.goto("/no-such-page")
    assert response.status == 404
    expect(heading(page)).to_have_text("Page not found")
    browser.check(page, "not-found")

    page.goto("/auth/sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".error-summary")).to_be_focused()
    browser.check(page, "sign-in-errors")

    page.goto("/auth/sign-in")
    page.get_by_role("link", name="I have forgotten my password").click()
    expect(heading(page)).to_have_text("Reset your password")
    browser.check(page, "forgot-password")
    page.get_by_label("Email address").fill("nobody@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(heading(page)).to_have_text("Check your email")
    expect(page).to_have_url(re.compile(r"/auth/reset-sent$"))
    browser.check(page, "reset-sent")


def test_signed_in_pages(browser, live_server):
    make_user(live_server.app, email="taxpayer@example.com")
    page = browser.page()
    sign_in(page, "taxpayer@example.com")
    page.get_by_role("link", name="Your profile").click()
    expect(heading(page)).to_have_text("Your profile")

    page.get_by_role("link", name="Change name").click()
    expect(heading(page)).to_have_text("Your details")
    browser.check(page, "details")
    page.get_by_label("Telephone number").fill("call me")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter a telephone number")
    browser.check(page, "details-errors")

    page.goto("/profile/")
    page.get_by_role("link", name="Change password").click()
    expect(heading(page)).to_have_text("Change your password")
    browser.check(page, "password")

    page.goto("/profile/")
    page.get_by_role("link", name="View sessions").click()
    expect(heading(page)).to_have_text("Your sessions")
    expect(page.locator("table")).to_contain_text("(this session)")
    browser.check(page, "sessions")

    page.goto("/auth/confirm")
    expect(heading(page)).to_have_text("Confirm it is still you")
    browser.check(page, "confirm-page")

    page.goto("/profile/missing")
    expect(heading(page)).to_have_text("Page not found")
    browser.check(page, "not-found-signed-in")


def test_staff_pages(browser, live_server):
    secret = pyotp.random_base32()
    make_user(live_server.app, email="staff@example.com", name="Sam Staff", staff_role="administrator",
              totp_secret=secret)
    make_user(live_server.app, email="taxpayer@example.com", name="Jordan Example")
    page = browser.page()
    page.goto("/staff/sign-in")
    page.get_by_label("Work email address").fill("staff@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Security code").fill(pyotp.TOTP(secret).at(int(live_server.clock().timestamp())))
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Find a person")
    browser.check(page, "staff-index")

    page.get_by_label("Name or email address").fill("jordan")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#people-results")).to_contain_text("1 person found")
    expect(page).to_have_url(re.compile(r"/staff/\?q=jordan$"))
    browser.check(page, "staff-results")

    page.get_by_role("link", name="Jordan Example").click()
    expect(heading(page)).to_have_text("Jordan Example")
    expect(page.get_by_role("button", name="Disable sign-in")).to_be_visible()
    browser.check(page, "staff-person")
