"""Issue 20, item 10: assessing a late return proposes the late-filing penalty and
the interest from the program's rates (domain.late_filing), with how they were
worked out; the officer confirms by assessing, and nothing is posted before.
The arithmetic is exact (integer cents, fractions, rounded down), and the clock
is injected, so the days late are known."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain import late_filing
from domain.programs import RATES
from models import Account, LedgerEntry, TaxReturn
from tests.accounts_factory import give, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user
from tests.test_assessments import FIGURES, OWNER, _entries, _file, _key, _page

# October 2026 is due on 30 November; filed on 9 December (Mountain time), 9 days late.
FILED_AT = datetime(2026, 12, 9, 18, 0, tzinfo=UTC)


def test_the_arithmetic_is_exact_and_rounds_down():
    assert late_filing.penalty_cents(48000, Decimal("5")) == 2400
    assert late_filing.penalty_cents(123457, Decimal("5")) == 6172  # 6172.85 rounded down
    # $480.00 × 7.2% × 9/365 = 85.216… cents; $1,234.57 × 7.2% × 31/365 = 754.9… cents.
    assert late_filing.interest_cents(48000, Decimal("7.2"), 9) == 85
    assert late_filing.interest_cents(123457, Decimal("7.2"), 31) == 754
    assert late_filing.interest_cents(1, Decimal("7.2"), 365) == 0  # 0.072 of a cent is no charge
    assert late_filing.days_late(date(2026, 12, 9), date(2026, 11, 30)) == 9
    assert late_filing.days_late(date(2026, 11, 30), date(2026, 11, 30)) == 0


def test_every_program_that_files_returns_has_both_rates_and_a_claim_has_neither():
    def keys(code):
        return {r["rate_key"] for r in RATES if r["program_code"] == code}

    for code in ("TL", "FT", "TT", "ICT", "CIT"):
        assert {late_filing.PENALTY_RATE, late_filing.INTEREST_RATE} <= keys(code), code
    assert not {late_filing.PENALTY_RATE, late_filing.INTEREST_RATE} & keys("FTR")


@pytest.fixture
def late(app, clock):
    """Olive files Prairie Inn's October return ($480.00 of levy) 9 days late."""
    clock.set(FILED_AT)
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=72, opened_on=date(2026, 6, 1))
        give(db, clock(), owner, account)
        db.commit()
        number, account_id = account.number, account.id
    _file(signed_in(app, OWNER), number, FIGURES)
    with sessionmaker_of(app)() as db:
        return_id = db.scalar(select(TaxReturn.id).where(TaxReturn.account_id == account_id))
    return {"account_id": account_id, "return_id": return_id}


def test_a_late_return_proposes_penalty_and_interest_and_posts_only_when_confirmed(app, late, staff_member):
    officer = staff_member("officer")
    before = _entries(app, late["account_id"])
    page = _page(officer, late["return_id"])
    proposal = page[page.index('id="proposed-charges"') :]
    assert "Penalty: <strong>$24.00</strong>. 5% of the tax of $480.00, rounded down to the cent: $24.00." in proposal
    assert "$480.00 × 7.2% a year × 9 of 365 days (1 December to 9 December 2026)" in proposal
    assert 'id="charge1_amount" name="charge1_amount" type="text" value="24.00"' in page
    assert 'id="charge2_amount" name="charge2_amount" type="text" value="0.85"' in page
    assert "Late filing penalty: the return arrived 9 days after the due date, 30 November 2026" in page
    # Looking changes nothing: no entry until the officer assesses.
    assert _page(officer, late["return_id"]) and _entries(app, late["account_id"]) == before
    with sessionmaker_of(app)() as db:
        tax_return = db.get_one(TaxReturn, late["return_id"])
        proposals = late_filing.propose(db, tax_return, tax_return.amount_cents)
    page_url = f"/staff/returns/{late['return_id']}"
    data = {"key": _key(page), "assessed": "480.00", "note": ""}
    for number, p in enumerate(proposals, start=1):
        data |= {f"charge{number}_kind": p.kind, f"charge{number}_amount": f"{p.cents / 100:.2f}"}
        data[f"charge{number}_reason"] = p.reason
    assert officer.post(f"{page_url}/assess", data, token_from=page_url).status_code == 303
    posted = [(e.kind, e.amount_cents) for e in _entries(app, late["account_id"]) if e not in before]
    assert posted[-3:] == [("assessment", 48000), ("penalty", 2400), ("interest", 85)]


def test_a_return_on_time_or_a_claim_proposes_nothing(app, filed_on_time):
    with sessionmaker_of(app)() as db:
        tax_return = db.get_one(TaxReturn, filed_on_time)
        assert late_filing.propose(db, tax_return, tax_return.amount_cents) == []
        tax_return.kind = "claim"
        assert late_filing.propose(db, tax_return, tax_return.amount_cents) == []
        db.rollback()


@pytest.fixture
def filed_on_time(app, clock):
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=73, opened_on=date(2026, 6, 1))
        give(db, clock(), owner, account)
        db.commit()
        number, account_id = account.number, account.id
    _file(signed_in(app, OWNER), number, FIGURES)
    with sessionmaker_of(app)() as db:
        return db.scalar(select(TaxReturn.id).where(TaxReturn.account_id == account_id))


def test_each_entry_has_its_own_reference_and_links_to_the_request(app, late, staff_member):
    officer = staff_member("officer")
    page = _page(officer, late["return_id"])
    page_url = f"/staff/returns/{late['return_id']}"
    data = {"key": _key(page), "assessed": "480.00", "charge1_kind": "penalty", "charge1_amount": "24.00"}
    data |= {"charge1_reason": "Late filing penalty", "charge2_kind": "interest"}
    assert officer.post(f"{page_url}/assess", data, token_from=page_url).status_code == 303
    with sessionmaker_of(app)() as db:
        tax_return = db.get_one(TaxReturn, late["return_id"])
        entries = db.scalars(select(LedgerEntry).where(LedgerEntry.account_id == late["account_id"])).all()
        references = [e.reference for e in entries]
        assert len(references) == len(set(references)) == 2
        assert all(e.request_reference == tax_return.reference for e in entries)
    assert f"from request {tax_return.reference}" in _page(officer, late["return_id"])


def test_the_demo_has_a_late_return_waiting_whose_assessment_proposes_the_charges(app, clock, staff_member):
    """The README's walk: an officer opens the fuel account's return in progress (it came
    9 days late) and sees the penalty and interest proposed, before anything is posted."""
    import demo

    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
        fuel = db.scalars(select(Account).where(Account.number == demo.demo_account("fuel").number)).one()
        waiting = [
            r
            for r in db.scalars(select(TaxReturn).where(TaxReturn.account_id == fuel.id))
            if r.status in ("received", "in_progress") and late_filing.propose(db, r, r.amount_cents)
        ]
        assert len(waiting) == 1 and waiting[0].status == "in_progress"
        return_id, account_id = waiting[0].id, fuel.id
    before = [e.id for e in _entries(app, account_id)]
    page = _page(staff_member("officer"), return_id)
    proposal = page[page.index('id="proposed-charges"') :]
    assert "Late filing penalty: the return arrived 9 days after the due date" in page
    assert "Penalty: <strong>$" in proposal and "a year × 9 of 365 days" in proposal
    assert [e.id for e in _entries(app, account_id)] == before
