"""Issue 20, item 8 (and 13): when re-confirmation is due the person is asked for
the password once, the dialog's hidden username is a text input, and no page breaks
the Content Security Policy. The `browser` fixture fails any test on a violation
(a `securitypolicyviolation` listener in every context); here the demo owner and
the demo staff member walk every page the link crawl reaches, by boosted clicks
where the page links to the next one, so htmx's swaps are watched too."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

import demo
from tests.accounts_factory import sessionmaker_of
from tests.browser.conftest import extend_session, settled, sign_in
from tests.conftest import Auth, make_user
from tests.test_html_valid import STAFF_EMAIL, STAFF_PASSWORD, signed_in_staff
from tests.test_performance_budgets import OWNER_EMAIL, OWNER_PASSWORD, crawl

pytestmark = pytest.mark.browser

EMAIL = "taxpayer@example.com"
PAGES_EACH = 40  # enough to reach every feature's pages; the machine is shared


def _an_hour_later(browser, page) -> None:
    """Busy for an hour (never idle 15 minutes), so re-confirmation is due."""
    for _ in range(6):
        browser.advance(page, minutes=10)
        extend_session(page)


def test_the_confirm_page_asks_for_the_password_once(browser, live_server):
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.clock.install()
    sign_in(page, EMAIL)
    _an_hour_later(browser, page)

    page.goto("/profile/details")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is still you")
    page.clock.run_for(5000)  # the session clock has ticked and asked the server
    expect(page.get_by_role("alertdialog")).to_be_hidden()
    expect(page.locator("input[type=password]")).to_have_count(1)
    browser.check(page, "confirm-page-one-prompt")


def test_the_dialog_username_is_a_text_input(browser, live_server):
    """WCAG 1.3.5: autocomplete="username" only on a text input (for password managers)."""
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.clock.install()
    sign_in(page, EMAIL)
    page.goto("/profile/")
    _an_hour_later(browser, page)
    page.clock.run_for(2000)
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_label("Password", exact=True)).to_be_focused()
    named = page.locator("[autocomplete=username]")
    expect(named).to_have_count(1)
    assert named.evaluate("e => e.tagName + ' ' + e.type + ' ' + e.hidden") == "INPUT text true"


def _walk(browser, page, urls: list[str], who: str) -> None:
    """Visit each page: a boosted click when the page shown links to it, else a load."""
    for url in urls:
        link = page.locator(f'a[href="{url}"]:visible').first
        if link.count():
            link.click()
        else:
            page.goto(url)
        page.wait_for_url(lambda address, url=url: address.endswith(url))
        settled(page)
    assert len(urls) >= 10, (who, urls)


def test_no_page_breaks_the_content_security_policy(browser, live_server):
    app, clock = live_server.app, live_server.clock
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    owner = app.test_client()
    Auth(owner, app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    owner_urls = [r["url"] for r in crawl(owner, ["/"], limit=PAGES_EACH)]
    staff_urls = [r["url"] for r in crawl(signed_in_staff(app, clock), ["/staff/"], limit=PAGES_EACH)]

    page = browser.page()
    sign_in(page, OWNER_EMAIL, OWNER_PASSWORD, expect_heading=None)
    _walk(browser, page, owner_urls, "owner")

    live_server.advance(seconds=30)  # a TOTP code is accepted once: the crawl used this one
    staff = browser.page()
    staff.goto("/staff/sign-in")
    staff.get_by_label("Work email address").fill(STAFF_EMAIL)
    staff.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    staff.get_by_label("Security code").fill(pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).at(clock()))
    staff.get_by_role("button", name="Sign in").click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text("Find an account or a person")
    _walk(browser, staff, staff_urls, "staff")
    assert not browser.csp_errors
