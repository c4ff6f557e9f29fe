"""Assessment status in a real browser: the table passes axe, and the notice link
downloads the PDF (not swapped into the page by data-hx-boost), with JavaScript and without."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from domain import grants, ledger
from domain.accounts import make_number
from domain.programs import ensure_programs
from models import Account, TaxReturn
from tests.browser.conftest import sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser
MARCH = date(2026, 3, 31)


@pytest.fixture
def inn(live_server):
    app = live_server.app
    owner = make_user(app, email="owner@example.com")
    with app.extensions["portal.sessionmaker"]() as db:
        ensure_programs(db)
        account = Account(
            number=make_number("41", 12),
            program_code="TL",
            legal_name="Prairie Inn Ltd.",
            status="active",
            mailing_address="PO Box 100\nEdmonton AB  T5J 2Z2",
            opened_on=date(2025, 1, 1),
        )
        db.add(account)
        db.flush()
        ledger.post(
            db,
            account_id=account.id,
            kind="assessment",
            amount_cents=123456,
            effective_date=MARCH,
            processed_date=date(2026, 5, 4),
            reference="TL-A-2603",
            period_end=MARCH,
        )
        db.add(
            TaxReturn(
                account_id=account.id,
                period_end=MARCH,
                received_on=date(2026, 4, 20),
                status="assessed",
                processed_on=date(2026, 5, 4),
                reference="R-2603",
                notice_kind="assessment",
                notice_date=date(2026, 5, 4),
            )
        )
        db.add(
            TaxReturn(
                account_id=account.id,
                period_end=date(2026, 4, 30),
                received_on=date(2026, 5, 20),
                status="in_progress",
                reference="R-2604",
            )
        )
        grants.give(db, app.extensions["portal.clock"](), user_id=owner, account=account, role="owner")
        db.commit()
        return account.number


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_assessment_status_and_notice_download(browser, live_server, inn, javascript):
    page = browser.page(javascript=javascript)
    sign_in(page, "owner@example.com", expect_heading=None)
    page.goto(f"/accounts/{inn}/returns")
    expect(page.get_by_role("heading", level=1)).to_have_text("Assessment status")
    expect(page.get_by_role("row")).to_have_count(3)
    browser.check(page, "returns", axe=javascript)
    link = page.get_by_role("link", name="Notice of assessment for the period 1\u201331 March 2026 (PDF)")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"notice-{inn}-2026-03-31.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    # The page is still the table, not a PDF swapped into it.
    expect(page.get_by_role("heading", level=1)).to_have_text("Assessment status")
