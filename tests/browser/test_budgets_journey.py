"""Issue 7's byte and request budgets on the wire, in Chromium: the journey `make bench`
times on slow links (bench/journey.py), here unthrottled, since bytes and requests do
not depend on the machine's speed. Sign-in page, sign in, dashboard, transactions, a
filter and the next page (htmx swaps of 50 rows), the same filter again (a 304), a
return form step, an upload and sign-out; sign-in and its code step, the return's
steps, the upload and sign-out are each one request (issue 21). Each step is checked
against the budgets bench/journey.py checks:
a first visit at most 4 requests and 30,000 B, its document at most 14,000 B; a swap
one request of at most 2,000 B; no static file fetched twice; an unchanged fragment
answered 304."""

from __future__ import annotations

import pyotp
import pytest

import demo
from bench.journey import check_budgets, run_journey

pytestmark = pytest.mark.browser


@pytest.fixture
def bench_taxpayer(live_server):
    """A small benchmark database (the same builder as make bench's, 6 accounts and
    1,200 entries) and its typical taxpayer, owner of three accounts with several
    pages of transactions each."""
    engine = live_server.app.extensions["portal.engine"]
    now = live_server.clock()
    demo.build_benchmark(engine, now, accounts=6, transactions=1_200, progress=lambda _line: None)
    demo.ensure_bench_taxpayer(engine, now, min_entries=110)
    return demo.ensure_bench_two_step(engine, now)


def test_the_journey_is_within_its_byte_and_request_budgets(playwright_browser, live_server, bench_taxpayer):
    assert len(bench_taxpayer) == 3
    context = playwright_browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-CA")
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        steps = run_journey(
            page,
            cdp,
            live_server.url,
            email=demo.BENCH_TWO_STEP_EMAIL,
            password=demo.BENCH_TAXPAYER_PASSWORD,
            account_number=bench_taxpayer[0],
            code=lambda: pyotp.TOTP(demo.BENCH_TWO_STEP_TOTP_SECRET).at(live_server.clock()),
        )
    finally:
        context.close()
    names = [step.name for step in steps if not step.skipped]
    assert "return form step" in names and "next page" in names, names
    # Every form sent with POST is one request (issue 21): its answer is the next page.
    posts = [step.name for step in steps if step.post]
    assert posts == [
        "sign in → code page",
        "code → dashboard",
        "open the return",
        "return form step",
        "upload → documents",
        "sign out",
    ] or posts == ["sign in → code page", "code → dashboard", "return form step", "upload → documents", "sign out"]
    assert all(step.requests == 1 for step in steps if step.post), [(s.name, s.requests) for s in steps if s.post]
    assert next(s for s in steps if s.name == "dashboard again").requests == 1  # no /auth/session on load
    budgets = check_budgets(steps, None)
    assert {b.budget for b in budgets} >= {
        "first visit: requests",
        "first visit: bytes",
        "HTML document bytes",
        "swap: requests",
        "swap: bytes",
        "repeat: answered 304",
        "repeat: static files from network",
        "POST: one request",
    }
    broken = [f"{b.step}: {b.budget} {b.measured} > {b.limit}" for b in budgets if not b.ok]
    assert broken == []
    swaps = [step for step in steps if step.kind == "swap" and step.rows == 50]
    assert swaps and all(step.requests == 1 for step in swaps)
