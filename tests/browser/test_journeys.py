"""The issue's "Done when", in a real browser: register to two-step sign-in, the
idle warning, re-confirmation without losing a form, sign-out across tabs, and
the same journeys with JavaScript off. Minutes pass on two fake clocks (the
server's FrozenClock and Playwright's clock emulation), never in real time."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import User
from tests.browser.conftest import extend_session, session_state, sign_in
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser

EMAIL = "taxpayer@example.com"


def heading(page):
    return page.get_by_role("heading", level=1)


def totp_now(secret: str, live_server) -> str:
    return pyotp.TOTP(secret).at(int(live_server.clock().timestamp()))


def name_in_db(live_server, email: str = EMAIL) -> str:
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(User.name).where(User.email == email))


# --- (1) Register, confirm the email, two-step sign-in ---------------------------


def test_register_verify_set_up_two_factor_and_sign_in_with_a_code(browser, live_server):
    page = browser.page()
    page.goto("/")
    expect(heading(page)).to_have_text("Tax and Revenue Administration Client Self-Service")
    browser.check(page, "start")

    page.get_by_role("link", name="Create one").click()
    expect(heading(page)).to_have_text("Create your sign-in")
    browser.check(page, "register")
    page.get_by_role("button", name="Create account").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Enter your full name")
    browser.check(page, "register-errors")

    page.get_by_label("Full name").fill("Avery Example")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Create a password").fill(PASSWORD)
    page.get_by_label("Confirm your password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(heading(page)).to_have_text("Check your email")
    expect(page).to_have_url(re.compile(r"/auth/check-email$"))
    browser.check(page, "check-email")

    page.goto(live_server.last_link(EMAIL, "Confirm your email address"))
    expect(heading(page)).to_have_text("Confirm your email address")
    expect(page.locator("main")).to_contain_text(EMAIL)
    browser.check(page, "verify")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(heading(page)).to_have_text("Sign in")
    expect(page.locator(".notice")).to_contain_text("Your email address is confirmed")

    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Welcome, Avery Example")
    browser.check(page, "home")

    page.get_by_role("link", name="Your profile").click()
    expect(heading(page)).to_have_text("Your profile")
    browser.check(page, "profile")
    page.get_by_role("link", name="Turn on two-step sign-in").click()
    expect(heading(page)).to_have_text("Set up two-step sign-in")
    browser.check(page, "two-factor-setup")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(totp_now(secret, live_server))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(heading(page)).to_have_text("Two-step sign-in is on")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    browser.check(page, "recovery-codes")
    page.get_by_role("link", name="I have saved my codes").click()
    expect(page.locator("main")).to_contain_text("On, with 10 recovery codes left")

    page.get_by_role("button", name="Sign out").click()
    expect(heading(page)).to_have_text("You have signed out")
    browser.check(page, "signed-out")

    live_server.advance(seconds=30)  # a new code: the one used to turn it on cannot be replayed
    sign_in(page, EMAIL, expect_heading="Enter your security code")
    browser.check(page, "code")
    page.get_by_label("Security code").fill(totp_now(secret, live_server))
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Welcome, Avery Example")
    expect(page.locator("main")).to_contain_text("Two-step sign-in: on, with 10 recovery codes left")


# --- (2) The idle warning ------------------------------------------------------


def test_idle_warning_offers_stay_signed_in_then_signs_out(browser, live_server):
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.clock.install()
    sign_in(page, EMAIL)
    page.get_by_role("link", name="Your profile").click()  # a boosted navigation, as people do
    expect(heading(page)).to_have_text("Your profile")
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_hidden()

    browser.advance(page, minutes=13)  # two minutes before the 15-minute limit
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("You are about to be signed out")
    expect(dialog.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+ (minutes?|seconds?)$"))
    live = dialog.locator("[aria-live]")
    expect(live).to_have_attribute("aria-live", "assertive")
    expect(live).to_have_text(re.compile(r"You will be signed out in \d+ (minutes?|seconds?)\."))
    stay = page.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    browser.check(page, "session-dialog")

    stay.click()
    expect(dialog).to_be_hidden()
    state = session_state(page)
    assert state["signed_in"] is True and state["idle_remaining"] == 15 * 60

    browser.advance(page, minutes=13)
    expect(dialog).to_be_visible()
    live_server.advance(minutes=2)
    page.clock.run_for(2 * 60 * 1000 + 1000)  # the countdown runs out
    expect(page).to_have_url(re.compile(r"/auth/sign-in\?reason=idle$"))
    expect(page.locator(".notice")).to_contain_text("You were signed out because you did nothing for 15 minutes")
    browser.check(page, "signed-out-idle")
    assert session_state(page) == {"signed_in": False}


# --- (3) Re-confirmation after an hour, without losing a half-filled form -------


def _busy_for_an_hour(browser, live_server, page, javascript: bool) -> None:
    """Six activities ten minutes apart: never idle for 15 minutes, but an hour signed in."""
    for _ in range(6):
        if javascript:
            browser.advance(page, minutes=10)
        else:
            live_server.advance(minutes=10)
        extend_session(page)


def test_reconfirm_in_page_keeps_what_was_typed(browser, live_server):
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.clock.install()
    sign_in(page, EMAIL)
    page.goto("/profile/details")
    name = page.get_by_label("Full name")
    name.fill("Jordan Q. Example")

    _busy_for_an_hour(browser, live_server, page, javascript=True)
    page.clock.run_for(2000)
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Confirm it is still you")
    password = dialog.get_by_label("Password", exact=True)
    expect(password).to_be_focused()
    browser.check(page, "confirm-dialog")
    password.fill(PASSWORD)
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog).to_be_hidden()
    expect(name).to_have_value("Jordan Q. Example")
    assert session_state(page)["reauth_remaining"] == 60 * 60

    page.get_by_role("button", name="Save").click()
    expect(heading(page)).to_have_text("Your profile")
    expect(page.locator(".notice")).to_contain_text("Your details have been saved")
    assert name_in_db(live_server) == "Jordan Q. Example"


def test_reconfirm_without_javascript_gives_the_form_back(browser, live_server):
    make_user(live_server.app, email=EMAIL)
    page = browser.page(javascript=False)
    sign_in(page, EMAIL)
    page.goto("/profile/details")
    page.get_by_label("Full name").fill("Jordan Q. Example")
    page.get_by_label("Telephone number").fill("780 427 3044")

    _busy_for_an_hour(browser, live_server, page, javascript=False)
    page.get_by_role("button", name="Save").click()
    expect(heading(page)).to_have_text("Confirm it is still you")
    expect(page.locator("main")).to_contain_text("what you had typed into the form has been kept")
    browser.check(page, "confirm-page-no-js", axe=False)
    assert name_in_db(live_server) == "Jordan Example"

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(heading(page)).to_have_text("Your details")
    expect(page).to_have_url(re.compile(r"/profile/details$"))
    expect(page.locator(".notice")).to_contain_text("We kept what you had typed")
    expect(page.get_by_label("Full name")).to_have_value("Jordan Q. Example")
    expect(page.get_by_label("Telephone number")).to_have_value("780 427 3044")
    browser.check(page, "details-restored-no-js", axe=False)
    page.get_by_role("button", name="Save").click()
    expect(heading(page)).to_have_text("Your profile")
    assert name_in_db(live_server) == "Jordan Q. Example"


# --- (4) Sign-out in one tab signs out every tab ---------------------------------


def test_signing_out_in_one_tab_moves_the_other_tab_on(browser, live_server):
    make_user(live_server.app, email=EMAIL)
    context = browser.context()
    first = context.new_page()
    sign_in(first, EMAIL)
    second = context.new_page()
    second.goto("/profile/")
    expect(heading(second)).to_have_text("Your profile")

    first.get_by_role("button", name="Sign out").click()
    expect(heading(first)).to_have_text("You have signed out")
    # No action in the second tab: it leaves its page by itself.
    expect(second).to_have_url(re.compile(r"/auth/(sign-in|signed-out)"))
    expect(second.locator("main")).to_contain_text("You have signed out")
    browser.check(second, "other-tab-signed-out")
    assert session_state(second) == {"signed_in": False}


# --- (5) Everything works with JavaScript off -----------------------------------


def test_register_sign_in_and_out_without_javascript(browser, live_server):
    page = browser.page(javascript=False)
    page.goto("/")
    page.get_by_role("link", name="Create one").click()
    expect(heading(page)).to_have_text("Create your sign-in")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter your full name")
    page.get_by_label("Full name").fill("Avery Example")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Create a password").fill(PASSWORD)
    page.get_by_label("Confirm your password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(heading(page)).to_have_text("Check your email")
    browser.check(page, "check-email-no-js", axe=False)

    page.goto(live_server.last_link(EMAIL, "Confirm your email address"))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.locator(".notice")).to_contain_text("Your email address is confirmed")

    sign_in(page, EMAIL, expect_heading="Welcome, Avery Example")
    browser.check(page, "home-no-js", axe=False)
    page.get_by_role("link", name="Your profile").click()
    expect(heading(page)).to_have_text("Your profile")
    page.get_by_role("button", name="Sign out").click()
    expect(heading(page)).to_have_text("You have signed out")
    page.goto("/profile/")
    expect(heading(page)).to_have_text("Sign in")


def test_idle_time_out_keeps_a_half_filled_form_for_the_next_sign_in(browser, live_server):
    # With JavaScript the page leaves by itself at the time-out; a form the
    # person had typed into goes with it, and comes back after signing in again.
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.clock.install()
    sign_in(page, EMAIL)
    page.goto("/profile/details")
    page.get_by_label("Telephone number").fill("780 555 0199")

    browser.advance(page, minutes=13)
    expect(page.get_by_role("alertdialog")).to_be_visible()
    live_server.advance(minutes=2)
    page.clock.run_for(2 * 60 * 1000 + 1000)
    expect(page).to_have_url(re.compile(r"/auth/sign-in\?next=(/|%2F)profile(/|%2F)details&reason=idle$"))

    page.get_by_label("Email address").fill(EMAIL)  # on the sign-in page it was sent to
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your details")
    expect(page.locator(".notice")).to_contain_text("We kept what you had typed")
    expect(page.get_by_label("Telephone number")).to_have_value("780 555 0199")
    browser.check(page, "idle-form-restored")
