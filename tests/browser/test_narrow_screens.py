"""Issue 20, item 1: every page reads on a phone 320 px wide without the page itself
scrolling sideways. Tables stack their rows into "Label: value" lines there.

The pages are the ones the budget crawl reaches (tests/test_performance_budgets.py)
from the demo data, as each demo person sees them: signed out, the owner, the
delegate, the representative and the staff member. Each crawl runs through the
test client (fast); Chromium then opens every page it found at 320 px, signed in
as the same person, and measures `document.documentElement.scrollWidth`. The
failure names every page that is too wide. axe runs, and a screenshot is kept
(test-artifacts/), on the pages with the widest tables."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

import demo
from tests.accounts_factory import sessionmaker_of
from tests.browser.conftest import sign_in
from tests.conftest import Auth
from tests.test_html_valid import signed_in_staff
from tests.test_performance_budgets import crawl

pytestmark = pytest.mark.browser

WIDTH = 320
# What sticks out past the screen's right edge, to say why a page is too wide: the
# innermost elements that do, leaving out what a scroll region clips.
OVERFLOWING = """(width) => {
  const out = (e) => e.getBoundingClientRect().right > width + 1;
  const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  return [...document.body.querySelectorAll('*')].filter((e) => out(e) && !clipped(e)
    && ![...e.children].some(out)).slice(0, 3)
    .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : ''));
}"""
PERSON = {email: password for _role, _name, email, password, _staff in demo.DEMO_PEOPLE}
STAFF_EMAIL = next(p[2] for p in demo.DEMO_PEOPLE if p[4])
TOURISM = demo.demo_account("tourism").number  # it has interest to waive
# Pages to look at as well as measure (a screenshot, and axe, at 320 px): the first of each kind.
LOOKED_AT = [
    re.compile(p)
    for p in (r"^/$", r"^/staff/$", r"/transactions$", r"^/access/\d+/$", r"/accounts/\d+/returns$", r"^/staff/ledger/")
]


@pytest.fixture
def demo_server(live_server):
    with sessionmaker_of(live_server.app)() as db:
        assert demo.build_demo(db, live_server.clock())
    return live_server


def crawled(server, who: str | None) -> list[str]:
    """The URLs the budget crawl reaches as this person (None: signed out)."""
    app = server.app
    if who == STAFF_EMAIL:
        return [r["url"] for r in crawl(signed_in_staff(app, server.clock), ["/staff/"])]
    client = app.test_client()
    if who is None:
        return [r["url"] for r in crawl(client, ["/", "/auth/sign-in"])]
    Auth(client, app).sign_in(who, PERSON[who])
    return [r["url"] for r in crawl(client, ["/"])]


def staff_sign_in(page, server) -> None:
    server.advance(seconds=30)  # the crawl's sign-in used this half-minute's code
    page.goto("/staff/sign-in")
    page.get_by_label("Email address").fill(STAFF_EMAIL)
    page.get_by_label("Password", exact=True).fill(PERSON[STAFF_EMAIL])
    page.get_by_label("Security code").fill(pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).at(server.clock()))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/**")


def too_wide(page, urls: list[str]) -> list[str]:
    """Each page wider than the screen, with its width and what sticks out."""
    found = []
    for url in urls:
        response = page.goto(url, wait_until="domcontentloaded")  # the stylesheet is in the page
        assert response is not None and response.ok, url
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            culprits = ", ".join(page.evaluate(OVERFLOWING, WIDTH))
            found.append(f"{url} is {width} px wide ({culprits})")
    return found


def look_at(browser, page, urls: list[str]) -> None:
    """A screenshot and axe, with JavaScript on, of the first page of each kind in LOOKED_AT."""
    for kind in LOOKED_AT:
        url = next((u for u in urls if kind.search(u)), None)
        if url:
            page.goto(url)
            assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, url
            browser.check(page, "320-" + (url.strip("/").replace("/", "-") or "home")[:60])


def signed_in_page(browser, server, who: str | None, javascript: bool):
    page = browser.page(javascript)
    page.set_viewport_size({"width": WIDTH, "height": 640})
    if who == STAFF_EMAIL:
        staff_sign_in(page, server)
    elif who is not None:
        sign_in(page, who, PERSON[who])
    return page


@pytest.mark.parametrize("who", [None, demo.OWNER, demo.DELEGATE, demo.REPRESENTATIVE, STAFF_EMAIL])
def test_every_crawled_page_fits_a_320_px_screen(browser, demo_server, who):
    """Measured with JavaScript off (every page works without it, and so loads fastest);
    the pages looked at are seen with it on as well."""
    urls = crawled(demo_server, who)
    assert len(urls) >= 5, urls
    wide = too_wide(signed_in_page(browser, demo_server, who, javascript=False), urls)
    look_at(browser, signed_in_page(browser, demo_server, who, javascript=True), urls)
    print(f"\n{len(urls)} pages as {who or 'a visitor'} at {WIDTH} px; {len(wide)} too wide")
    assert wide == [], f"{len(wide)} of {len(urls)} pages scroll sideways at {WIDTH} px:\n" + "\n".join(wide)


def test_a_journeys_later_step_fits_too_the_waiver_reasons_with_their_hints(browser, demo_server):
    """The crawl reaches a journey's first page only. The waiver's reasons have a hint
    under each label, which sat beside it and widened the page to 335 px."""
    page = browser.page()
    page.set_viewport_size({"width": WIDTH, "height": 640})
    sign_in(page, demo.OWNER, PERSON[demo.OWNER])
    page.goto(f"/waivers/{TOURISM}/")
    page.locator("input[name=entries]").first.check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/reason$"))  # a boosted answer: wait for it before the next click
    page.get_by_role("button", name="Continue").click()  # no reason chosen: the error summary too
    expect(page.locator(".error-summary")).to_be_visible()
    hint = page.locator(".radios__item > .hint").first
    label = page.locator(".radios__item > .radios__label").first
    assert hint.bounding_box()["y"] >= label.bounding_box()["y"] + label.bounding_box()["height"] - 1
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    browser.check(page, "320-waiver-reason")
