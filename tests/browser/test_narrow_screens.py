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

import pyotp
import pytest

import demo
from tests.accounts_factory import sessionmaker_of
from tests.browser.conftest import sign_in
from tests.conftest import Auth
from tests.test_html_valid import signed_in_staff
from tests.test_performance_budgets import crawl

pytestmark = pytest.mark.browser

WIDTH = 320
# The innermost elements that reach past the screen's right edge, to say what is too wide.
OVERFLOWING = """(width) => [...document.body.querySelectorAll('*')]
  .filter((e) => e.getBoundingClientRect().right > width + 1
    && ![...e.children].some((c) => c.getBoundingClientRect().right > width + 1))
  .slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.className ? '.' + e.className.split(' ').join('.') : ''))"""
PERSON = {email: password for _role, _name, email, password, _staff in demo.DEMO_PEOPLE}
STAFF_EMAIL = next(p[2] for p in demo.DEMO_PEOPLE if p[4])
# Pages to look at as well as measure: screenshot and axe at 320 px.
LOOKED_AT = ("/transactions", "/access", "/returns/", "/queues/assessments")


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


def too_wide(browser, page, urls: list[str]) -> list[str]:
    """Each page wider than the screen, with its width; screenshots and axe on a few."""
    found, looked = [], set()
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.ok, url
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            culprits = ", ".join(page.evaluate(OVERFLOWING, WIDTH))
            found.append(f"{url} is {width} px wide ({culprits})")
        kind = next((k for k in LOOKED_AT if k in url and k not in looked), None)
        if kind or url in ("/", "/staff/"):
            looked.add(kind or url)
            browser.check(page, "320-" + url.strip("/").replace("/", "-")[:60])
    return found


@pytest.mark.parametrize("who", [None, demo.OWNER, demo.DELEGATE, demo.REPRESENTATIVE, STAFF_EMAIL])
def test_every_crawled_page_fits_a_320_px_screen(browser, demo_server, who):
    urls = crawled(demo_server, who)
    assert len(urls) >= 5, urls
    page = browser.page()
    page.set_viewport_size({"width": WIDTH, "height": 640})
    if who == STAFF_EMAIL:
        staff_sign_in(page, demo_server)
    elif who is not None:
        sign_in(page, who, PERSON[who])
    wide = too_wide(browser, page, urls)
    print(f"\n{len(urls)} pages as {who or 'a visitor'} at {WIDTH} px; {len(wide)} too wide")
    assert wide == [], f"{len(wide)} of {len(urls)} pages scroll sideways at {WIDTH} px:\n" + "\n".join(wide)
