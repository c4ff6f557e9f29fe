"""Issue 5's "Done when", in a real browser, on the demo data, with JavaScript on
and with it off: as the demo owner, file a Tourism Levy return and see it as
received, upload a PDF to it, object to a notice, ask for a waiver, propose a
payment arrangement and see the schedule, set up direct deposit, renew the fuel
licence and update the address. Every step ends on a confirmation with a
reference; the request history lists them all. axe runs on each page with
JavaScript on (axe needs it); screenshots are taken in both modes."""

from __future__ import annotations

import re

import pytest
from fpdf import FPDF
from playwright.sync_api import expect

import demo
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

REFERENCE = re.compile(r"SR-[A-Z0-9]{4}-[A-Z0-9]{4}")
OWNER_PASSWORD = next(p[3] for p in demo.DEMO_PEOPLE if p[2] == demo.OWNER)
TOURISM = demo.demo_account("tourism").number
FUEL = demo.demo_account("fuel").number


@pytest.fixture
def demo_server(live_server):
    with live_server.app.extensions["portal.sessionmaker"]() as db:
        assert demo.build_demo(db, live_server.clock())
    return live_server


def _pdf(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Occupancy report, October 2026")
    path = tmp_path / "occupancy-report.pdf"
    pdf.output(str(path))
    return path


class Walk:
    """One person's walk through the journeys, checked as it goes."""

    def __init__(self, browser, page, javascript: bool):
        self.browser, self.page, self.javascript = browser, page, javascript

    def look(self, step: str) -> None:
        self.browser.check(self.page, step, axe=self.javascript)

    def button(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def link(self, name: str) -> None:
        self.page.locator("main").get_by_role("link", name=name, exact=True).click()

    def confirmed(self, step: str) -> str:
        panel = self.page.locator("#confirmation")
        expect(panel).to_contain_text(REFERENCE)
        self.look(f"{step}-confirmation")
        return REFERENCE.search(panel.inner_text()).group(0)

    def summary(self, number: str) -> None:
        self.page.goto(f"/accounts/{number}/")
        expect(self.page.locator("#services")).to_be_visible()


def _file_a_return(walk: Walk) -> str:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("File a return or amend one")
    expect(page.locator("#open-periods")).to_be_visible()
    walk.look("periods-to-file")
    page.locator("#open-periods tbody tr").first.get_by_role("button").click()
    page.fill("#accommodation_price", "48,250.00")
    page.fill("#exempt_price", "1250")
    if walk.javascript:
        # The levy appears as the figures are typed, and the draft saves itself.
        expect(page.locator("#computed")).to_contain_text("$1,880.00")
        expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    else:
        walk.button("Calculate")
        expect(page.locator("#computed")).to_contain_text("$1,880.00")
    walk.look("return-figures")
    walk.button("Continue")
    expect(page.locator("main")).to_contain_text("$1,880.00")
    page.check("#declaration")
    walk.look("return-check")
    page.locator("main form button[type=submit]").last.click()
    reference = walk.confirmed("return")
    page.goto(f"/accounts/{TOURISM}/returns")
    expect(page.locator("main")).to_contain_text("Received")
    expect(page.locator("main table tbody tr").first).to_contain_text("23 November 2026")
    return reference


def _upload_a_pdf(walk: Walk, reference: str, pdf_path) -> None:
    page = walk.page
    page.goto(f"/documents/{TOURISM}/upload?about={reference}")
    page.set_input_files("#files", str(pdf_path))
    walk.look("upload")
    walk.button("Upload")
    if walk.javascript:
        expect(page.locator("main")).to_contain_text("occupancy-report.pdf")
    page.goto(f"/documents/{TOURISM}/")
    expect(page.locator("main")).to_contain_text("occupancy-report.pdf")
    expect(page.locator("main")).to_contain_text(reference)


def _object_to_a_notice(walk: Walk) -> str:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("Object to a notice of assessment")
    walk.look("notices")
    page.get_by_role("button", name=re.compile("^Object to this notice")).first.click()
    page.fill("#reasons", "The levy was charged on a 30-night stay, which is exempt.")
    page.fill("#facts", "Guest stayed from 1 to 30 July in room 12; the folio is attached.")
    page.fill("#relief", "Remove the levy on that stay.")
    walk.look("objection-form")
    walk.button("Continue")
    walk.link("Continue")
    page.check("#declaration")
    walk.look("objection-check")
    walk.button("Send my objection")
    return walk.confirmed("objection")


def _ask_for_a_waiver(walk: Walk) -> str:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("Ask us to waive penalties and interest")
    page.locator("input[name=entries]").first.check()
    walk.look("waiver-charges")
    walk.button("Continue")
    page.locator("input[name=reason]").first.check()
    page.fill("#explanation", "The office was closed by the Canmore flood for three weeks.")
    walk.button("Continue")
    walk.link("Continue")
    page.check("#declaration")
    walk.look("waiver-check")
    walk.button("Send my request")
    return walk.confirmed("waiver")


def _propose_an_arrangement(walk: Walk) -> str:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("Set up a payment arrangement")
    page.locator("main").get_by_role("link", name=re.compile("^Propose")).first.click()
    page.check("input[name=frequency][value=monthly]")
    page.fill("#instalment", "100")
    page.fill("#first_day", "15")
    page.fill("#first_month", "12")
    page.fill("#first_year", "2026")
    walk.look("arrangement-proposal")
    walk.button("Continue")
    schedule = page.locator("main table")
    expect(schedule).to_contain_text("15 December 2026")
    expect(schedule).to_contain_text("$100.00")
    page.check("#declaration")
    walk.look("arrangement-schedule")
    walk.button("Send proposal")
    reference = walk.confirmed("arrangement")
    page.goto(f"/arrangements/{TOURISM}/")
    expect(page.locator("main")).to_contain_text("15 December 2026")
    return reference


def _set_direct_deposit(walk: Walk) -> str:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("Direct deposit for refunds")
    walk.link("Set up direct deposit")
    page.fill("#institution", "001")
    page.fill("#transit", "12345")
    page.fill("#bank_account", "1234567")
    walk.look("bank-details")
    walk.button("Continue")
    expect(page.locator("main")).not_to_contain_text("1234567")
    page.check("#declaration")
    page.fill("#password", OWNER_PASSWORD)
    walk.look("bank-check")
    page.locator("main form button[type=submit]").last.click()
    reference = walk.confirmed("direct-deposit")
    page.goto(f"/direct-deposit/{TOURISM}/")
    expect(page.locator("main")).to_contain_text("567")
    expect(page.locator("main")).not_to_contain_text("1234567")
    return reference


def _renew_the_fuel_licence(walk: Walk) -> str:
    page = walk.page
    walk.summary(FUEL)
    walk.link("Renew your licence")
    walk.look("licences")
    page.locator("main form button[type=submit]").first.click()
    page.check("input[name=details_correct][value=yes]")
    page.check("input[name=fuel_kinds][value=gasoline]")
    page.check("input[name=fuel_kinds][value=diesel]")
    page.fill("#locations", "3")
    walk.look("renewal-questions")
    walk.button("Continue")
    page.check("#declaration")
    walk.look("renewal-check")
    walk.button("Send the renewal")
    return walk.confirmed("renewal")


def _update_the_address(walk: Walk) -> None:
    page = walk.page
    walk.summary(TOURISM)
    walk.link("Update addresses and contacts")
    page.locator("main").get_by_role("link", name=re.compile("^Change")).first.click()
    page.fill("#mailing_line1", "PO Box 9120")
    page.fill("#mailing_postal", "t1w2t9")
    walk.look("address-form")
    walk.button("Save changes")
    expect(page.locator("main")).to_contain_text("PO Box 9120")
    expect(page.locator("main")).to_contain_text("T1W 2T9")
    expect(page.locator(".notice")).to_contain_text(REFERENCE)
    walk.look("address-saved")


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_demo_owner_files_uploads_objects_asks_proposes_sets_renews_and_updates(
    browser, demo_server, tmp_path, javascript
):
    page = browser.page(javascript=javascript)
    sign_in(page, demo.OWNER, OWNER_PASSWORD, expect_heading=None)
    walk = Walk(browser, page, javascript)

    references = [_file_a_return(walk)]
    _upload_a_pdf(walk, references[0], _pdf(tmp_path))
    references += [
        _object_to_a_notice(walk),
        _ask_for_a_waiver(walk),
        _propose_an_arrangement(walk),
        _set_direct_deposit(walk),
    ]
    renewal = _renew_the_fuel_licence(walk)
    _update_the_address(walk)

    page.goto(f"/requests/{TOURISM}/")
    history = page.locator("#request-history")
    for reference in references:
        expect(history).to_contain_text(reference)
    walk.look("request-history")
    page.goto(f"/requests/{FUEL}/")
    expect(page.locator("#request-history")).to_contain_text(renewal)
    # Everyone with access was told of the new bank details in their online mail.
    page.goto("/messages/")
    expect(page.locator("main")).to_contain_text("Direct deposit")
