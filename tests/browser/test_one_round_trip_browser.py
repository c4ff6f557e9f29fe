"""One round trip per action, counted where it matters: at the server. With
JavaScript each successful POST is one request (web.follow) and its page comes in
the answer; back and forward restore each page; a page load asks only for the page
(and its files, the first time). Without JavaScript: POST, 303, GET as before."""

from __future__ import annotations

import threading

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import settled
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser

EMAIL = "taxpayer@example.com"


class Recorder:
    """Every request that reaches the application (outside web.follow): method and path."""

    def __init__(self, app) -> None:
        self.inner, self.lock, self.seen = app.wsgi_app, threading.Lock(), []
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        with self.lock:
            self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.inner(environ, start_response)

    def take(self) -> list[tuple[str, str]]:
        with self.lock:
            taken, self.seen = self.seen, []
        return taken

    def pages(self) -> list[tuple[str, str]]:
        """What was asked for besides the static files."""
        return [(method, path) for method, path in self.take() if not path.startswith("/static/")]


@pytest.fixture
def recorder(live_server):
    recording = Recorder(live_server.app)
    yield recording
    live_server.app.wsgi_app = recording.inner


def heading(page):
    return page.get_by_role("heading", level=1)


def test_each_post_is_one_request_and_history_restores_each_page(browser, live_server, recorder):
    make_user(live_server.app, email=EMAIL)
    page = browser.page()
    page.goto("/auth/sign-in")
    first_visit = recorder.take()
    assert ("GET", "/auth/sign-in") in first_visit and all(
        path == "/auth/sign-in" or path.startswith("/static/") for _, path in first_visit
    ), first_visit

    # Sign in: one request, and the dashboard comes with it.
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_contain_text("Welcome")
    settled(page)
    assert recorder.pages() == [("POST", "/auth/sign-in")]
    assert page.url == live_server("/")
    expect(page.locator("#main")).to_be_focused()
    browser.check(page, "dashboard-after-one-request")

    # A boosted link, then a form: one request each.
    page.get_by_role("link", name="Your profile").click()
    expect(heading(page)).to_have_text("Your profile")
    page.get_by_role("link", name="Change name").click()
    expect(heading(page)).to_have_text("Your details")
    settled(page)
    recorder.take()
    page.get_by_label("Full name").fill("Jordan Renamed")
    page.get_by_role("button", name="Save").click()
    expect(heading(page)).to_have_text("Your profile")
    expect(page.get_by_text("Jordan Renamed").first).to_be_visible()
    settled(page)
    assert recorder.pages() == [("POST", "/profile/details")]
    assert page.url == live_server("/profile/")

    # A form with errors: one request, the URL stays, the summary has the focus.
    page.get_by_role("link", name="Change name").click()
    expect(heading(page)).to_have_text("Your details")
    settled(page)
    recorder.take()
    page.get_by_label("Full name").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".error-summary")).to_be_focused()
    assert recorder.pages() == [("POST", "/profile/details")]
    assert page.url == live_server("/profile/details")

    # Back and forward restore each page at its own URL.
    page.go_back()
    expect(heading(page)).to_have_text("Your profile")
    assert page.url == live_server("/profile/")
    page.go_back()
    expect(heading(page)).to_have_text("Your details")
    page.go_back()
    expect(heading(page)).to_have_text("Your profile")
    page.go_back()
    expect(heading(page)).to_contain_text("Welcome")
    assert page.url == live_server("/")
    page.go_forward()
    expect(heading(page)).to_have_text("Your profile")
    settled(page)

    # A page load asks for the page only: its files come from the cache, and the
    # session clock asks nothing until a warning is due.
    recorder.take()
    page.reload()
    expect(heading(page)).to_have_text("Your profile")
    page.wait_for_timeout(1500)  # the clock ticks every second
    assert recorder.take() == [("GET", "/profile/")]

    # Sign out: one request, and the signed-out page comes with it.
    page.get_by_role("button", name="Sign out").click()
    expect(heading(page)).to_contain_text("signed out")
    settled(page)
    assert recorder.pages() == [("POST", "/auth/sign-out")]
    assert "/auth/signed-out" in page.url
    browser.check(page, "signed-out-after-one-request")


def test_without_javascript_a_post_is_post_redirect_get(browser, live_server, recorder):
    make_user(live_server.app, email=EMAIL)
    page = browser.page(javascript=False)
    page.goto("/auth/sign-in")
    recorder.take()
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_contain_text("Welcome")
    assert recorder.pages() == [("POST", "/auth/sign-in"), ("GET", "/")]
    browser.check(page, "dashboard-without-javascript")
