"""Issue 6's "Done when", in a real browser, on the demo data, with JavaScript on
and with it off. The demo owner files a Tourism Levy return and proposes a
payment arrangement. The demo staff member signs in with their second factor and:
- issues an invitation letter (a PDF with the account number and a PIN);
- approves the consent waiting in the queue;
- assesses the return;
- approves the arrangement;
- sends a message.
The owner then sees the notice in the account's mail and the assessment's ledger
entries, reads the message and answers it; the answer reaches the staff queue.
axe runs on each page with JavaScript on; screenshots in both modes."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

import demo
from tests.browser.conftest import sign_in
from tests.browser.test_filing_and_requests_journey import (
    OWNER_PASSWORD,
    TOURISM,
    Walk,
    _file_a_return,
    _propose_an_arrangement,
)
from tests.test_returns import pdf_text

pytestmark = pytest.mark.browser

STAFF = next(p for p in demo.DEMO_PEOPLE if p[4])
STAFF_EMAIL, STAFF_PASSWORD = STAFF[2], STAFF[3]
REFUND = demo.demo_account("refund")
FUEL = demo.demo_account("fuel")


@pytest.fixture
def demo_server(live_server):
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        assert demo.build_demo(db, live_server.clock())
    return live_server


def _staff_sign_in(walk: Walk, clock) -> None:
    page = walk.page
    page.goto("/staff/sign-in")
    page.get_by_label("Work email address").fill(STAFF_EMAIL)
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("Security code").fill(pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).at(clock()))
    walk.button("Sign in")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Find an account or a person")
    walk.look("staff-home")


def _issue_an_invitation_letter(walk: Walk) -> None:
    page = walk.page
    page.get_by_label("Account number, name or email").fill(REFUND.number)
    walk.button("Search")
    results = page.locator("#staff-search-results")
    expect(results).to_contain_text(REFUND.legal_name)
    results.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(REFUND.legal_name)
    walk.look("staff-account")
    walk.button("Issue an invitation letter")
    expect(page.locator("#confirmation")).to_contain_text("paper mail queue")
    walk.look("invitation-letter")
    with page.expect_download() as download:
        page.locator("main").get_by_role("link", name=re.compile(r"\(PDF\)")).click()
    text = pdf_text(Path(download.value.path()).read_bytes())
    assert REFUND.number in text.replace(" ", ""), "the letter names the account"
    assert re.search(r"\b[A-Z0-9]{10}\b", text.replace(" ", "")), "the letter carries a PIN"


def _queue_item(walk: Walk, queue_name: str, summary: str | re.Pattern) -> None:
    page = walk.page
    page.locator(".staff-nav").get_by_role("link", name="Work queues").click()
    walk.look(f"queues-{queue_name}")
    page.locator("main").get_by_role("link", name=re.compile(f"^{queue_name}")).first.click()
    page.locator("#queue-items tbody tr").filter(has_text=summary).first.get_by_role("link").first.click()
    expect(page.locator("#item-facts")).to_be_visible()


def _decide(walk: Walk, step: str, choice: str, note: str = "") -> None:
    page = walk.page
    walk.button("Take this item")
    expect(page.locator("#item-facts")).to_contain_text("In progress")
    page.check(f"input[name=decision][value={choice}]")
    if note:
        page.fill("#reason", note)
    walk.look(f"{step}-decision")
    walk.button("Record the decision")
    expect(page.locator("#item-facts")).to_contain_text("Decided")
    walk.look(f"{step}-decided")


def _assess_the_return(walk: Walk, reference: str) -> None:
    page = walk.page
    _queue_item(walk, "Returns and claims", reference)
    page.locator("#assess-link").click()
    expect(page.locator("#assessed")).to_have_value("1880.00")
    page.fill("#note", "Assessed as filed.")
    walk.look("assess-return")
    walk.button("Assess and send the notice")
    expect(page.locator(".notice")).to_contain_text("assessed")
    expect(page.locator("main")).to_contain_text("Notice of assessment")
    walk.look("return-assessed")


def _send_a_message(walk: Walk) -> None:
    page = walk.page
    page.goto(f"/staff/messages/new?account={TOURISM}")
    page.fill("#subject", "Your 2026 Tourism Levy filings")
    page.fill("#body", "Thank you for filing online. Please confirm the number of rooms you let this season.")
    walk.look("staff-message")
    walk.button("Send message")
    expect(page.locator("main")).to_contain_text("Thank you for filing online")


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_staff_issue_a_letter_approve_a_consent_assess_a_return_approve_an_arrangement_and_write_to_the_owner(
    browser, demo_server, javascript
):
    owner = Walk(browser, browser.page(javascript=javascript), javascript)
    sign_in(owner.page, demo.OWNER, OWNER_PASSWORD, expect_heading=None)
    filed = _file_a_return(owner)
    proposed = _propose_an_arrangement(owner)

    staff = Walk(browser, browser.page(javascript=javascript), javascript)
    _staff_sign_in(staff, demo_server.clock)
    _issue_an_invitation_letter(staff)
    _queue_item(staff, "Consents for representatives", "Lee Chen")
    _decide(staff, "consent", "approve")
    _assess_the_return(staff, filed)
    _queue_item(staff, "Payment arrangements", proposed)
    _decide(staff, "arrangement", "approve", "Approved: the first payment is due on 15 December.")
    _send_a_message(staff)

    # The owner: the notice in the account's mail, the entries in the ledger, the decision.
    page = owner.page
    page.goto(f"/mail/{TOURISM}/")
    expect(page.locator("main")).to_contain_text("Notice of assessment")
    owner.look("owner-mail")
    with page.expect_download() as download:
        page.locator("main").get_by_role("link", name=re.compile("^Notice of assessment")).first.click()
    assert "1,880.00" in pdf_text(Path(download.value.path()).read_bytes())
    page.goto(f"/accounts/{TOURISM}/transactions")
    expect(page.locator("main")).to_contain_text("$1,880.00")
    owner.look("owner-transactions")
    page.goto(f"/accounts/{TOURISM}/returns")
    expect(page.locator("main table tbody tr").first).to_contain_text("Assessed")
    page.goto(f"/requests/{TOURISM}/{proposed}")
    expect(page.locator("main")).to_contain_text("Approved")

    # The message: the header counts it, the owner reads it and answers.
    page.goto(f"/accounts/{TOURISM}/")
    expect(page.locator("#messages-link")).to_contain_text("unread")
    page.locator("#messages-link").click()
    owner.look("owner-inbox")
    page.locator("main").get_by_role("link", name=re.compile("Your 2026 Tourism Levy filings")).click()
    expect(page.locator("main")).to_contain_text("Please confirm the number of rooms")
    page.fill("#body", "We let 42 rooms from May to September.")
    owner.look("owner-reply")
    owner.button("Send reply")
    expect(page.locator("main")).to_contain_text("We let 42 rooms")
    owner.look("owner-replied")

    # The answer waits in the staff queue of replies.
    _queue_item(staff, "Replies to messages", "Your 2026 Tourism Levy filings")
    expect(staff.page.locator("main")).to_contain_text("Your 2026 Tourism Levy filings")
    staff.look("reply-in-queue")


def test_every_back_office_page_passes_axe_on_the_demo_data(browser, demo_server):
    """Every staff page a GET reaches, each with its data (the demo's accounts,
    a consent and a return waiting), and the taxpayer's new mail pages."""
    from sqlalchemy import select

    from models import LedgerEntry, TaxReturn, WorkItem

    with demo_server.app.extensions["portal.sessionmaker"]() as db:
        item_id = db.scalar(select(WorkItem.id).where(WorkItem.queue == "consents"))
        return_id = db.scalar(select(TaxReturn.id).where(TaxReturn.notice_kind.is_not(None)).limit(1))
        entry_id = db.scalar(select(LedgerEntry.id).where(LedgerEntry.kind == "payment").limit(1))
        entry_number = db.scalar(select(LedgerEntry.account_id).where(LedgerEntry.id == entry_id))
        from models import Account

        entry_account = db.get(Account, entry_number).number
    staff = Walk(browser, browser.page(javascript=True), True)
    _staff_sign_in(staff, demo_server.clock)
    pages = [
        ("/staff/queues/", "Work queues"),
        ("/staff/queues/consents", "Consents"),
        ("/staff/queues/mine", None),
        (f"/staff/queues/items/{item_id}", "Consent"),
        ("/staff/accounts/", "Accounts"),
        (f"/staff/accounts/{TOURISM}", "Tremblay Hospitality"),
        ("/staff/accounts/new", "Register an account"),
        ("/staff/accounts/pins", "PINs"),
        ("/staff/messages/", "Messages"),
        (f"/staff/messages/new?account={TOURISM}", "Write a message"),
        ("/staff/mail/", None),
        ("/staff/audit/", None),
        ("/staff/audit/?action=consent.", None),
        ("/staff/programs/", "Programs"),
        ("/staff/programs/new", None),
        ("/staff/programs/TL/edit", None),
        ("/staff/team/", "Staff sign-ins"),
        (f"/staff/ledger/{TOURISM}/", None),
        (f"/staff/ledger/{entry_account}/entries/{entry_id}/reverse", None),
        (f"/staff/returns/{return_id}", None),
        ("/staff/?q=tremblay", "Find an account"),
    ]
    for path, heading in pages:
        staff.page.goto(path)
        if heading:
            expect(staff.page.get_by_role("heading", level=1)).to_contain_text(heading)
        staff.look("staff" + path.replace("/", "-").replace("?", "-").replace("=", "-"))

    owner = Walk(browser, browser.page(javascript=True), True)
    sign_in(owner.page, demo.OWNER, OWNER_PASSWORD, expect_heading=None)
    for path in (f"/mail/{TOURISM}/", f"/mail/{TOURISM}/delivery", "/messages/"):
        owner.page.goto(path)
        owner.look("owner" + path.replace("/", "-"))
