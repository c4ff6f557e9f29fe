"""axe on every page a person or a member of staff can reach (the journeys check
the rest: start, register with and without errors, check-email, code step, home,
profile, two-factor set-up, recovery codes and the open session dialog). No
violation of impact "serious" or "critical" is allowed; the `browser` fixture
fails the test and lists them, with any Content Security Policy violation."""

from __future__ import annotations

import re
from datetime import UTC

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
        ("/pages/help/", "Help", "help"),
        ("/pages/help/account-number", "How to find your account number", "help-account-number"),
        ("/pages/help/payment-arrangement", "Set up a payment arrangement", "help-payment-arrangement"),
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
    make_user(
        live_server.app, email="staff@example.com", name="Sam Staff", staff_role="administrator", totp_secret=secret
    )
    make_user(live_server.app, email="taxpayer@example.com", name="Jordan Example")
    page = browser.page()
    page.goto("/staff/sign-in")
    page.get_by_label("Work email address").fill("staff@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Security code").fill(pyotp.TOTP(secret).at(int(live_server.clock().timestamp())))
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Find an account or a person")
    browser.check(page, "staff-index")

    page.get_by_label("Account number, name or email address").fill("jordan")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#staff-search-results")).to_contain_text("1 person found")
    expect(page).to_have_url(re.compile(r"/staff/\?q=jordan$"))
    browser.check(page, "staff-results")

    page.get_by_role("link", name="Jordan Example").click()
    expect(heading(page)).to_have_text("Jordan Example")
    expect(page.get_by_role("button", name="Disable sign-in")).to_be_visible()
    browser.check(page, "staff-person")


def test_pages_at_the_edges(browser, live_server):
    """The pages people meet when something is not quite right."""
    from domain.service_hours import TRACS

    app = live_server.app
    make_user(app, email="unverified@example.com", verified=False)
    make_user(app, email="two.step@example.com", totp_secret=pyotp.random_base32())
    page = browser.page()

    page.goto("/auth/verify/not-a-real-token")
    expect(heading(page)).to_have_text("This link is not valid")
    browser.check(page, "link-problem")

    sign_in(page, "unverified@example.com", expect_heading="Confirm your email address")
    browser.check(page, "verify-pending")
    page.get_by_role("button", name="Sign out").first.click()

    page.goto("/auth/forgot-password")
    page.get_by_label("Email address").fill("unverified@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(heading(page)).to_have_text("Check your email")
    page.goto(live_server.last_link("unverified@example.com", "Reset your password"))
    expect(heading(page)).to_have_text("Choose a new password")
    browser.check(page, "reset-password")

    taxpayer = browser.page()
    sign_in(taxpayer, "two.step@example.com", expect_heading="Enter your security code")
    secret = None
    from sqlalchemy import select

    from models import User

    with app.extensions["portal.sessionmaker"]() as db:
        secret = db.scalar(select(User.totp_secret).where(User.email == "two.step@example.com"))
    taxpayer.get_by_label("Security code").fill(pyotp.TOTP(secret).at(live_server.clock()))
    taxpayer.get_by_role("button", name="Continue").click()
    expect(heading(taxpayer)).to_contain_text("Welcome")
    taxpayer.goto("/profile/two-factor")
    expect(heading(taxpayer)).to_have_text("Two-step sign-in is on")
    browser.check(taxpayer, "two-factor-on")

    response = taxpayer.goto("/staff/")
    assert response.status == 403
    expect(heading(taxpayer)).to_have_text("You do not have access to this page")
    browser.check(taxpayer, "forbidden")

    # Closed for maintenance: Thursday 26 November 2026, 23:30 Mountain time.
    from datetime import datetime

    saved_schedule, saved_time = app.extensions["portal.schedule"], live_server.clock()
    app.extensions["portal.schedule"] = TRACS
    live_server.clock.set(datetime(2026, 11, 27, 6, 30, tzinfo=UTC))
    try:
        response = page.goto("/auth/sign-in")
        assert response.status == 503 and response.headers["retry-after"]
        expect(heading(page)).to_have_text("The service is closed for maintenance")
        expect(page.locator("#error")).to_contain_text("It opens again at")
        browser.check(page, "closed")
    finally:
        app.extensions["portal.schedule"] = saved_schedule
        live_server.clock.set(saved_time)
