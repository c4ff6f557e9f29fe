"""Representatives by consent, the issue's "Done when", in a real browser: the
owner files a consent for a representative from Manage access; staff approve it
(the `flask consents` CLI, until the back office); the representative, in a
browser of their own, enrols with the account number and the emailed PIN and
sees the client in "Your clients". The owner then sees the consent "In force";
the representative is refused (404) the owner's other account and has no
"Manage access" on the client's. axe on the consent form with errors, the
owner's representatives page and the client list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from domain.accounts import format_number
from models import Consent
from tests.accounts_factory import TODAY
from tests.browser.conftest import fill_date, sign_in
from tests.browser.test_access_journey import MONEY, OWNER, RETURNS, enrol, heading, olive_owns_prairie_inn, sub_nav
from tests.conftest import outbox

pytestmark = pytest.mark.browser

REP = "riley@example.com"
PIN_LINE = re.compile(r"^[ \t]+([ABCDEFGHJKMNPQRSTUVWXYZ2-9]{10})[ \t]*$", re.MULTILINE)
NOT_GIVEN = ("File returns and claims", "Upload documents", "File objections and ask for waivers")


@pytest.fixture
def accounts(live_server):
    """Olive owns Prairie Inn (the client: $1,250.00 owing, a filed return) and Back
    Office (another of her accounts); Riley, a tax preparer, has a sign-in and no account."""
    inn, other = olive_owns_prairie_inn(live_server, {REP: "Riley Preparer"}, more=("Back Office Ltd.",))
    return inn, other


def test_owner_files_a_consent_staff_approve_it_and_the_representative_sees_the_client(browser, live_server, accounts):
    number, other_number = accounts
    app = live_server.app

    # --- Olive, the owner: from the account, Manage access, then Representatives.
    owner = browser.page()
    sign_in(owner, OWNER, expect_heading="Welcome, Olive Owner")
    owner.goto(f"/accounts/{number}/")
    expect(heading(owner)).to_have_text("Prairie Inn Ltd.")
    sub_nav(owner).get_by_role("link", name="Manage access").click()
    expect(owner).to_have_url(re.compile(rf"/access/{number}/$"))
    owner.get_by_role("link", name="Representatives and consents").click()
    expect(owner).to_have_url(re.compile(rf"/consents/{number}/$"))
    expect(heading(owner)).to_have_text("Representatives")
    expect(owner.locator("main")).to_contain_text("No representative has consent to act for this account.")
    owner.get_by_role("link", name="Give a representative access").click()
    expect(owner).to_have_url(re.compile(rf"/consents/{number}/new$"))
    expect(heading(owner)).to_have_text("Give a representative access")
    start = owner.get_by_role("group", name="Start date")
    expect(start.get_by_label("Day", exact=True)).to_have_value(str(TODAY.day))  # today, until changed
    expect(start.get_by_label("Year", exact=True)).to_have_value(str(TODAY.year))

    # Sent as it stands (nobody named, nothing declared): 400, the error summary, focused.
    with owner.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/consents/{number}/new")
    ) as answer:
        owner.get_by_role("button", name="Sign and send for review").click()
    assert answer.value.status == 400, f"the empty consent form answered {answer.value.status}, not 400"
    errors = owner.locator(".error-summary")
    expect(errors).to_be_focused()
    expect(errors).to_contain_text("Enter the representative's full name")
    expect(errors).to_contain_text("Enter the representative's email address")
    expect(errors).to_contain_text("Confirm the declaration to sign the consent")
    expect(errors.get_by_role("link", name="Enter the representative's full name")).to_have_attribute(
        "href", "#representative_name"
    )
    expect(owner.locator("#representative_name")).to_have_attribute("aria-invalid", "true")
    expect(owner).to_have_title(re.compile(r"^Error: "))
    browser.check(owner, "consent-errors")

    # The consent: Riley, view money and returns only, from today, no end date.
    owner.get_by_label("Representative's full name").fill("Riley Preparer")
    owner.get_by_label("Representative's email address").fill(REP)
    owner.get_by_label("Firm (optional)").fill("Ledger & Co.")
    owner.get_by_label(MONEY, exact=True).check()
    owner.get_by_label(RETURNS, exact=True).check()
    for label in NOT_GIVEN:
        owner.get_by_label(label, exact=True).uncheck()
    fill_date(owner, "Start date", TODAY)
    fill_date(owner, "End date (optional)", None)
    owner.get_by_label(re.compile(r"^I declare that I may sign for this taxpayer")).check()
    owner.get_by_role("button", name="Sign and send for review").click()
    expect(owner).to_have_url(re.compile(rf"/consents/{number}/$"))
    expect(owner.locator(".notice")).to_contain_text("Consent signed for Riley Preparer.")
    consents_table = owner.locator("table", has=owner.locator("caption", has_text="Consents and requests"))
    riley_row = consents_table.locator("tbody tr", has_text="Riley Preparer")
    expect(riley_row).to_have_count(1)
    expect(riley_row).to_contain_text(REP)
    expect(riley_row).to_contain_text("Ledger & Co.")
    expect(riley_row.locator(".permission-list li")).to_have_text([MONEY, RETURNS])
    expect(riley_row).to_contain_text("Waiting for our review")
    browser.check(owner, "consents-waiting")

    # --- Staff: approve it with the CLI; the PIN is emailed to Riley.
    with app.extensions["portal.sessionmaker"]() as db:
        consent_id = db.scalar(select(Consent.id).where(Consent.representative_email == REP))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["consents", "list"])
    assert listed.exit_code == 0, listed.output
    assert (
        f"{consent_id}: Prairie Inn Ltd. ({format_number(number)}) -> Riley Preparer of Ledger & Co." in listed.output
    ), listed.output
    approved = runner.invoke(args=["consents", "approve", str(consent_id)])
    assert approved.exit_code == 0, approved.output
    mails = [m for m in outbox(app) if m.to_address == REP]
    assert len(mails) == 1, f"{len(mails)} emails to {REP}"
    found = PIN_LINE.search(mails[0].body_text)
    assert found, f"no PIN on a line of its own in:\n{mails[0].body_text}"
    pin = found.group(1)
    assert number not in mails[0].body_text, "the PIN email gives away the whole account number"

    # --- Riley, in a browser of his own: no clients yet; link the account.
    rep = browser.page()
    sign_in(rep, REP, expect_heading="Welcome, Riley Preparer")
    rep.goto("/consents/clients")
    expect(heading(rep)).to_have_text("Your clients")
    expect(rep.locator("main")).to_contain_text("You do not represent any client yet.")
    enrol(rep, number, pin)
    expect(rep).to_have_url(re.compile(rf"/accounts/{number}/$"))
    expect(rep.locator("main")).to_contain_text("$1,250.00")
    expect(sub_nav(rep).get_by_role("link", name="Summary")).to_be_visible()
    expect(rep.get_by_role("link", name="Manage access")).to_have_count(0)
    response = rep.goto(f"/access/{number}/")
    assert response.status == 404, f"Manage access for a representative answered {response.status}"
    response = rep.goto(f"/consents/{number}/")
    assert response.status == 404, f"the representatives page for a representative answered {response.status}"

    # "Your clients", from the home page (which shows none of Olive's other accounts).
    rep.goto("/")
    expect(rep.locator("main")).not_to_contain_text("Back Office")
    rep.get_by_role("link", name="your clients").click()
    expect(rep).to_have_url(re.compile(r"/consents/clients$"))
    expect(heading(rep)).to_have_text("Your clients")
    clients = rep.locator("table", has=rep.locator("caption", has_text="Accounts you act on as a representative"))
    expect(clients.locator("caption")).to_have_text("Accounts you act on as a representative (1)")
    expect(clients.locator("tbody tr")).to_have_count(1)
    client = clients.locator("tbody tr").first
    expect(client).to_contain_text(format_number(number))
    expect(client.locator(".permission-list li")).to_have_text([MONEY, RETURNS])
    expect(client).to_contain_text("Until revoked")
    expect(clients).not_to_contain_text("Back Office")
    browser.check(rep, "clients")
    client.get_by_role("link", name="Prairie Inn Ltd.").click()
    expect(rep).to_have_url(re.compile(rf"/accounts/{number}/$"))
    expect(heading(rep)).to_have_text("Prairie Inn Ltd.")

    # The owner's other account: Page not found, nothing of it shown.
    response = rep.goto(f"/accounts/{other_number}/")
    assert response.status == 404, f"the owner's other account answered {response.status} to the representative"
    expect(heading(rep)).to_have_text("Page not found")
    expect(rep.locator("main")).not_to_contain_text("Back Office")

    # --- Olive: the consent is in force now.
    owner.goto(f"/consents/{number}/")
    expect(riley_row).to_contain_text("In force")
    expect(riley_row).not_to_contain_text("Waiting for our review")
    browser.check(owner, "consents-in-force")


def test_consent_form_error_summary_follows_the_page_order(browser, live_server, accounts):
    """The error summary lists the problems in the order the fields appear on the
    page (its first link leads to the first problem field), so someone working down
    the list with a screen reader or keyboard does not start at the bottom of the
    form. The summary follows `for field in form`, which is WTForms' declaration
    order: ConsentForm declares the representative's fields before the terms."""
    number, _other = accounts
    page = browser.page()
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.goto(f"/consents/{number}/new")
    page.get_by_role("button", name="Sign and send for review").click()
    expect(page.locator(".error-summary")).to_be_focused()
    summary = [
        href.lstrip("#")
        for href in page.locator(".error-summary__list a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
    ]
    on_page = page.locator("#consent-form").evaluate(
        "(form, ids) => [...form.querySelectorAll('[id]')].map(e => e.id).filter(id => ids.includes(id))", summary
    )
    assert summary == on_page, (
        f"the error summary lists {summary}, the page shows the fields in the order {on_page}: "
        "blueprints/consents/forms.py ConsentForm inherits TermsMixin's fields before its own, and "
        "templates/macros/forms.html error_summary follows `for field in form`; declare the representative's "
        "fields first (e.g. a RepresentativeMixin listed before TermsMixin) or have the summary follow the "
        "template's order"
    )


def test_the_signed_paper_form_is_uploaded_as_a_pdf(browser, live_server, accounts, tmp_path):
    """The other way to give consent: the signed form AT4931 as a PDF. A file that
    is not a PDF (whatever its name) gets a message beside the field; a real one
    sends the consent for review."""
    number, _other = accounts
    page = browser.page()
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.goto(f"/consents/{number}/")
    page.get_by_role("link", name="Upload the signed form instead").click()
    expect(heading(page)).to_have_text("Upload a signed consent form")
    page.get_by_label("Representative's full name").fill("Riley Preparer")
    page.get_by_label("Representative's email address").fill(REP)
    page.get_by_label(RETURNS, exact=True).check()  # nothing is ticked for the manager
    disguised = tmp_path / "AT4931.pdf"
    disguised.write_bytes(b"<html><script>alert(1)</script></html>")
    page.get_by_label("The signed form (PDF)").set_input_files(str(disguised))
    page.get_by_role("button", name="Upload and send for review").click()
    errors = page.locator(".error-summary")
    expect(errors).to_be_focused()
    expect(errors).to_contain_text("The selected file must be a PDF")
    expect(page.locator("#signed_form-error")).to_contain_text("The selected file must be a PDF")
    browser.check(page, "upload-errors")
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\nstartxref\n0\n%%EOF\n"
    )
    page.get_by_label("The signed form (PDF)").set_input_files(str(signed))
    page.get_by_role("button", name="Upload and send for review").click()
    expect(page).to_have_url(re.compile(rf"/consents/{number}/$"))
    expect(page.locator("main")).to_contain_text("Signed form received for Riley Preparer")
    expect(page.locator("main")).to_contain_text("Signed form uploaded: signed.pdf")
    expect(page.locator("main")).to_contain_text("Waiting for our review")
