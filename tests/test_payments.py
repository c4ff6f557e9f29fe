"""Issue 20 item 5: how to pay. A "Make a payment" page per account (the amount
owing now and by period, the program's ways to pay with the account number as
the reference), a remittance voucher PDF, links from where people are told to
pay, and the ways to pay held as data on the program. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from domain import notices
from models import Account, Program, TaxReturn
from tests.accounts_factory import body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import make_user
from tests.test_returns import pdf_text


def plain(page: str) -> str:
    """The page without the labels and classes the table macro adds for phones (web/tables.py)."""
    return re.sub(r' data-label="[^"]*"| class="nowrap"', "", page)


OWNER = "owner@example.com"


@pytest.fixture
def inn(app, clock):
    """An account owing $1,296.29 for March and $250.00 for April, less a $100.00
    payment of no period; its owner, a returns-only viewer and a stranger."""
    people = {
        who: make_user(app, email=f"{who}@example.com", name=who.title()) for who in ("owner", "viewer", "stranger")
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=51)
        post(db, account, "assessment", 123456, date(2026, 4, 10), period_end=date(2026, 3, 31), reference="A-03")
        post(db, account, "penalty", 6173, date(2026, 5, 2), period_end=date(2026, 3, 31), reference="P-03")
        post(db, account, "assessment", 25000, date(2026, 5, 10), period_end=date(2026, 4, 30), reference="A-04")
        post(db, account, "payment", -10000, date(2026, 5, 12), reference="PMT-NOPERIOD")
        tax_return = TaxReturn(
            account_id=account.id,
            period_end=date(2026, 3, 31),
            kind="return",
            received_on=date(2026, 4, 9),
            status="assessed",
            processed_on=date(2026, 4, 10),
            reference="R-1",
            notice_kind="assessment",
            notice_date=date(2026, 5, 2),
        )
        db.add(tax_return)
        give(db, clock(), people["owner"], account)
        give(db, clock(), people["viewer"], account, role="viewer", permissions=("view_returns",))
        db.commit()
        return account.number, tax_return.id


def test_the_page_shows_what_is_owing_now_and_by_period_and_every_way_to_pay(app, inn):
    number, _ = inn
    page = plain(body(signed_in(app, OWNER).get(f"/payments/{number}/")))
    assert '<p class="panel__value" id="owing">$1,446.29 owing</p>' in page
    assert '31 March 2026</td><td>30 April 2026</td><td class="num">$1,296.29<' in page
    assert '30 April 2026</td><td>31 May 2026</td><td class="num">$250.00<' in page
    assert 'Unallocated: not yet applied to a filing period</th><td class="num">$100.00 credit<' in page
    reference = f"{number[:4]} {number[4:8]} {number[8:]}"
    assert f"<strong>{reference}</strong> as the reference" in page
    for expected in ("Alberta Tourism Levy", "Institution number: 219", "Government of Alberta", "9811 109 Street NW"):
        assert expected in page, expected
    assert "does not take card payments" in page and "card number" not in page.lower()
    assert f'href="/payments/{number}/voucher.pdf" download data-hx-boost="false"' in page


def test_the_ways_to_pay_are_the_program_s_data(app, inn):
    number, _ = inn
    with sessionmaker_of(app)() as db:
        program = db.get(Program, "TL")
        program.pay_online_payee = "Alberta Levy Payments"
        program.pay_wire = ""
        db.commit()
    page = body(signed_in(app, OWNER).get(f"/payments/{number}/"))
    assert "Alberta Levy Payments" in page and "Alberta Tourism Levy<" not in page
    assert "Wire transfer or EFT" not in page and "Cheque by mail" in page


def test_the_voucher_is_a_pdf_with_the_account_the_amount_and_where_to_mail_it(app, inn):
    number, _ = inn
    response = signed_in(app, OWNER).get(f"/payments/{number}/voucher.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="remittance-voucher-{number}.pdf"'
    text = pdf_text(response.data)
    reference = f"{number[:4]} {number[4:8]} {number[8:]}"
    for expected in ("Remittance voucher", reference, "Prairie Inn Ltd.", "$1,446.29 owing", "9811 109 Street NW"):
        assert expected in text, expected


@pytest.mark.parametrize("url", ["/payments/{n}/", "/payments/{n}/voucher.pdf"])
def test_a_stranger_and_a_grant_that_cannot_see_the_balance_are_refused(app, inn, url):
    number, _ = inn
    for who in ("stranger", "viewer"):
        response = signed_in(app, f"{who}@example.com").get(url.format(n=number))
        assert response.status_code == 404 and b"Prairie Inn" not in response.data and b"%PDF" not in response.data
    assert app.test_client().get(url.format(n=number)).status_code == 303  # signed out: to sign in


def test_make_a_payment_is_linked_from_the_summary_its_balance_and_the_notice(app, inn):
    number, return_id = inn
    client = signed_in(app, OWNER)
    summary = body(client.get(f"/accounts/{number}/"))
    assert summary.count(f'href="/payments/{number}/"') == 2  # the balance panel and "What you can do"
    viewer = body(signed_in(app, "viewer@example.com").get(f"/accounts/{number}/"))
    assert "/payments/" not in viewer
    text = pdf_text(client.get(f"/accounts/{number}/returns/{return_id}/notice.pdf").data)
    assert "please pay it now" in text.replace("\n", " ")
    assert "Make a payment" in text.replace("\n", " ")


def test_the_notice_says_how_to_pay_where_it_says_pay_now(app, inn):
    number, return_id = inn
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == number))
        notice = notices.notice_for(db, account, db.get(TaxReturn, return_id))
        sentence = notices.balance_sentence(notice)
    assert "please pay it now" in sentence and "choose Make a payment" in sentence


def test_an_administrator_changes_a_program_s_ways_to_pay_and_the_page_follows(app, inn, staff_member):
    number, _ = inn
    admin = staff_member("administrator")
    form = body(admin.get("/staff/programs/TL/edit"))
    assert 'value="Alberta Tourism Levy"' in form and "Institution number: 219" in form
    answers = {
        "name": "Tourism Levy",
        "number_prefix": "41",
        "filing_frequency": "monthly",
        "due_rule": "M+1:last",
        "is_claim": "no",
        "functions": ["file", "payment_arrangement"],
        "objection_days": "90",
        "description": "",
        "pay_online_payee": "AB Tourism Levy Payments",
        "pay_wire": "",
        "pay_cheque_payable_to": "Minister of Finance",
        "pay_cheque_address": "Box 1\nEdmonton AB  T5J 0A1",
    }
    wrong = {**answers, "pay_online_payee": "A" * 121}
    refused = admin.post("/staff/programs/TL/edit", wrong, token_from="/staff/programs/TL/edit")
    assert refused.status_code == 400 and "Enter a payee of 120 characters or fewer" in body(refused)
    assert _program_payee(app) == "Alberta Tourism Levy"  # nothing changed
    assert admin.post("/staff/programs/TL/edit", answers, token_from="/staff/programs/TL/edit").status_code == 303
    page = body(signed_in(app, OWNER).get(f"/payments/{number}/"))
    assert "AB Tourism Levy Payments" in page and "Minister of Finance" in page and "Box 1" in page
    assert "Wire transfer or EFT" not in page


def test_ways_to_pay_are_only_changed_by_an_administrator(app, inn, staff_member):
    officer = staff_member("officer")
    response = officer.post("/staff/programs/TL/edit", {"pay_online_payee": "Mine"}, token_from="/staff/programs/")
    assert response.status_code == 403
    assert _program_payee(app) == "Alberta Tourism Levy"


def _program_payee(app) -> str:
    with sessionmaker_of(app)() as db:
        return db.get(Program, "TL").pay_online_payee
