"""Assessing and reassessing returns (issue 6): staff assess a return filed online
through the staff pages; the ledger gets the assessment and any penalty and
interest (each with its reason), the notice of assessment goes to the account's
online mail as a PDF, the request is completed, the queue item decided and the
account's people told by secure message; the owner then sees the entries and
the return as Assessed. Reassessing posts only the difference. A form sent
twice acts once; bad input is refused with its message and changes nothing."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select

from domain import assessments, messages, work
from models import AuditEvent, LedgerEntry, MailItem, Message, OutboxEmail, ServiceRequest, TaxReturn, User, WorkItem
from tests.accounts_factory import body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user
from tests.test_returns import pdf_text

OWNER, CLERK = "owner@example.com", "clerk@example.com"
PERIOD = "2026-10-31"
TODAY = date(2026, 11, 23)
FIGURES = {"accommodation_price": "$12,345.67", "exempt_price": "345.67"}  # $480.00 of levy
AMENDED_FIGURES = {"accommodation_price": "15000", "exempt_price": "0"}  # $600.00


# --- Helpers ------------------------------------------------------------------------------


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _file(client, number: str, figures: dict, amended: bool = False) -> None:
    """File the October return through the taxpayer's own pages."""
    suffix = "?amended=1" if amended else ""

    def send(step, data):
        return client.post(f"/filing/{number}/{PERIOD}/{step}{suffix}", data={**data, "csrf_token": _token(client)})

    assert send("begin", {"amended": "1"} if amended else {}).status_code == 303
    assert send("figures", {**figures, "action": "continue"}).status_code == 303
    check = body(client.get(f"/filing/{number}/{PERIOD}/check{suffix}"))
    token = re.search(r'name="token" value="([^"]+)"', check).group(1)
    assert send("check", {"declaration": "y", "token": token}).status_code == 303


@pytest.fixture
def filed(app, clock):
    """Olive owns Prairie Inn (Tourism Levy) and has filed October online ($480.00);
    Casey may view its returns."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=71, opened_on=date(2026, 6, 1))
        give(db, clock(), owner, account)
        give(db, clock(), clerk, account, role="delegate", permissions=("view_returns", "receive_messages"))
        db.commit()
        number, account_id = account.number, account.id
    client = signed_in(app, OWNER)
    _file(client, number, FIGURES)
    with sessionmaker_of(app)() as db:
        return_id = db.scalar(select(TaxReturn.id).where(TaxReturn.account_id == account_id))
    return {
        "number": number,
        "account_id": account_id,
        "return_id": return_id,
        "owner": owner,
        "clerk": clerk,
        "client": client,
    }


def _page(staff, return_id):
    response = staff.get(f"/staff/returns/{return_id}")
    assert response.status_code == 200
    return body(response)


def _key(page: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', page).group(1)


def _assess(staff, return_id, key=None, **answers):
    page_url = f"/staff/returns/{return_id}"
    data = {
        "key": key or _key(_page(staff, return_id)),
        "assessed": "480.00",
        "charge1_kind": "penalty",
        "charge2_kind": "interest",
        **answers,
    }
    return staff.post(f"{page_url}/assess", data, token_from=page_url)


def _reassess(staff, return_id, key=None, **answers):
    page_url = f"/staff/returns/{return_id}"
    data = {"key": key or _key(_page(staff, return_id)), **answers}
    return staff.post(f"{page_url}/reassess", data, token_from=page_url)


def _count(app, model, **where):
    with sessionmaker_of(app)() as db:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return db.scalar(query)


def _entries(app, account_id):
    with sessionmaker_of(app)() as db:
        rows = db.scalars(
            select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)
        ).all()
        db.expunge_all()
        return rows


def _return(app, return_id) -> TaxReturn:
    with sessionmaker_of(app)() as db:
        row = db.get(TaxReturn, return_id)
        db.expunge(row)
        return row


def _told(app, user_id=None) -> list[Message]:
    """The messages about an assessment or reassessment (filing sends its own)."""
    with sessionmaker_of(app)() as db:
        query = select(Message).where(Message.subject.like("%has been %assessed")).order_by(Message.id)
        if user_id is not None:
            query = query.where(Message.user_id == user_id)
        rows = db.scalars(query).all()
        db.expunge_all()
        return rows


def _nothing_done(app, filed):
    assert _entries(app, filed["account_id"]) == []
    assert _return(app, filed["return_id"]).status == "received"
    assert _count(app, MailItem) == 0 and _told(app) == []
    assert _count(app, AuditEvent, event="return.assessed") == 0


# --- Assessing --------------------------------------------------------------------------------


def test_an_officer_assesses_a_return_filed_online_and_the_owner_sees_it(app, filed, staff_member):
    officer = staff_member("officer")
    return_id, number = filed["return_id"], filed["number"]
    page = _page(officer, return_id)
    assert "Olive Owner (owner@example.com), online" in page and "$480.00" in page
    assert 'id="assessed" name="assessed" type="text"' in page and 'value="480.00"' in page
    assert f'href="/staff/accounts/{number}"' in page and "Received" in page
    assert page.count('name="charge1_amount"') == 1 and page.count('name="charge2_amount"') == 1
    assert _count(app, LedgerEntry) == 0  # a GET changes nothing

    response = _assess(
        officer,
        return_id,
        charge1_amount="24.00",
        charge1_reason="Late payment penalty: the levy was paid 3 days late",
        charge2_amount="1.15",
        charge2_reason="Interest on the late payment, 1 to 3 November",
        note="Assessed as filed.",
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/staff/returns/{return_id}"
    after = body(officer.get(response.headers["Location"]))
    assert "Return assessed at $480.00" in after and "Notice of assessment, period 1\u201331 October 2026" in after
    assert 'name="new_total"' in after and 'name="assessed"' not in after  # now the reassess form

    tax_return = _return(app, return_id)
    assert (tax_return.status, tax_return.processed_on) == ("assessed", TODAY)
    assert (tax_return.notice_kind, tax_return.notice_date) == ("assessment", TODAY)
    entries = _entries(app, filed["account_id"])
    assert [(e.kind, e.amount_cents) for e in entries] == [("assessment", 48000), ("penalty", 2400), ("interest", 115)]
    # Each entry has its own reference; the request they came from is a link of its own.
    assert [e.reference[:4] for e in entries] == ["ASM-", "PEN-", "INT-"] and len({e.reference for e in entries}) == 3
    assert {e.request_reference for e in entries} == {tax_return.reference}
    assert all(e.period_end == date(2026, 10, 31) and e.processed_date == TODAY for e in entries)
    assert entries[0].effective_date == date(2026, 10, 31)
    assert entries[1].description == "Late payment penalty: the levy was paid 3 days late"
    assert entries[2].description == "Interest on the late payment, 1 to 3 November"

    with sessionmaker_of(app)() as db:
        item = db.scalar(select(MailItem))
        assert (item.kind, item.delivery, item.tax_return_id) == ("notice_of_assessment", "online", return_id)
        assert item.service_request_id == tax_return.service_request_id and item.posted_on == TODAY
        text = pdf_text(item.content)
        assert item.content.startswith(b"%PDF-") and "Notice of assessment" in text
        assert "$480.00" in text and "$505.15 owing" in text
        assert "Late payment penalty:" in text
        request = db.get(ServiceRequest, tax_return.service_request_id)
        assert request.status == "completed" and request.decision_reason == "Assessed as filed."
        work_item = db.scalar(select(WorkItem).where(WorkItem.service_request_id == request.id))
        assert (work_item.status, work_item.outcome, work_item.decided_by_user_id) == (
            "decided",
            "assessed",
            officer.id,
        )
        sent = _told(app)
        assert sorted(m.user_id for m in sent) == sorted([filed["owner"], filed["clerk"]])
        message = _told(app, filed["owner"])[0]
        assert message.subject == "Your Tourism Levy return for 1\u201331 October 2026 has been assessed"
        assert "Assessed amount: $480.00." in message.body and "under the account's Mail" in message.body
        assert "Our note: Assessed as filed." in message.body and "http" not in message.body
        emails = db.scalars(select(OutboxEmail).where(OutboxEmail.to_address == OWNER)).all()
        # The mail alert goes at once; the message's email does not, as the owner was
        # emailed about a message (the return received) within the hour (at most one an hour).
        assert any("new notice or letter" in e.body_text for e in emails)
        assert sum(e.subject == messages.EMAIL_SUBJECT for e in emails) == 1
        assert all("http" not in e.body_text and "480" not in e.body_text for e in emails)
        assert (
            db.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event == "return.assessed", AuditEvent.actor_user_id == officer.id)
            )
            == 1
        )

    owner = filed["client"]
    transactions = body(owner.get(f"/accounts/{number}/transactions"))
    assert all(e.reference in transactions for e in entries)  # each entry under its own reference
    assert "$480.00" in transactions and "$24.00" in transactions
    status_page = body(owner.get(f"/accounts/{number}/returns"))
    assert ">Assessed</strong>" in status_page and "Notice of assessment" in status_page
    notice = owner.get(f"/accounts/{number}/returns/{return_id}/notice.pdf")
    assert notice.status_code == 200 and "$505.15 owing" in pdf_text(notice.data)


def test_the_same_form_sent_twice_assesses_once(app, filed, staff_member):
    officer = staff_member("officer")
    key = _key(_page(officer, filed["return_id"]))
    first = _assess(officer, filed["return_id"], key=key)
    second = _assess(officer, filed["return_id"], key=key)
    assert first.status_code == second.status_code == 303
    assert "That form had been sent already" in body(officer.get(second.headers["Location"]))
    assert [(e.kind, e.amount_cents) for e in _entries(app, filed["account_id"])] == [("assessment", 48000)]
    assert _count(app, MailItem) == 1 and len(_told(app, filed["owner"])) == 1
    assert _count(app, AuditEvent, event="return.assessed") == 1


def test_an_assessed_return_is_not_assessed_again(app, filed, staff_member):
    officer = staff_member("officer")
    stale = _page(officer, filed["return_id"])  # a second tab, opened before the assessment
    assert _assess(officer, filed["return_id"]).status_code == 303
    again = _assess(officer, filed["return_id"], key=_key(stale), assessed="500.00", note="Changed my mind")
    assert again.status_code == 409
    assert "already been assessed: reassess it" in body(again) and 'name="new_total"' in body(again)
    assert [(e.kind, e.amount_cents) for e in _entries(app, filed["account_id"])] == [("assessment", 48000)]
    assert _count(app, MailItem) == 1


@pytest.mark.parametrize(
    "answers, field, message",
    [
        (
            {"charge1_amount": "25.00"},
            "charge1_reason",
            "Enter the reason for this penalty: the account&#39;s people will read it",
        ),
        (
            {"charge2_amount": "3.00", "charge2_reason": "  "},
            "charge2_reason",
            "Enter the reason for this interest: the account&#39;s people will read it",
        ),
        ({"charge1_reason": "Late filing"}, "charge1_amount", "Enter the amount of this charge"),
        (
            {"charge1_amount": "12.345", "charge1_reason": "Late"},
            "charge1_amount",
            "Amount must be in dollars and cents, with no more than 2 numbers after the decimal point",
        ),
        (
            {"charge1_amount": "-5", "charge1_reason": "Late"},
            "charge1_amount",
            "Enter the amount without a minus sign: the type of entry says whether it is a debit or a credit",
        ),
        (
            {"charge1_amount": "5", "charge1_reason": "Late", "charge1_kind": "bonus"},
            "charge1_kind",
            "Choose penalty or interest",
        ),
        (
            {"charge1_amount": "5", "charge1_reason": "x" * 201},
            "charge1_reason",
            "The reason must be 200 characters or fewer",
        ),
        ({"assessed": "-5"}, "assessed", "The assessed amount cannot be negative"),
        ({"assessed": "four hundred"}, "assessed", "Amount must be a number, like 1250.00"),
        (
            {"assessed": "480.001"},
            "assessed",
            "Amount must be in dollars and cents, with no more than 2 numbers after the decimal point",
        ),
        ({"assessed": "99999999999"}, "assessed", "Amount must be $9,999,999,999.99 or less"),
        ({"assessed": ""}, "assessed", "Enter the amount"),
        (
            {"assessed": "500.00"},
            "note",
            "Say why the assessed amount differs from the $480.00 filed: the account&#39;s people will read it",
        ),
    ],
)
def test_bad_answers_are_refused_beside_their_field_and_nothing_changes(
    app, filed, staff_member, answers, field, message
):
    officer = staff_member("officer")
    response = _assess(officer, filed["return_id"], **answers)
    page = body(response)
    assert response.status_code == 400
    assert (
        f'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> {message}</p>' in page
    )
    assert f'<a href="#{field}">{message}</a>' in page  # and in the error summary
    _nothing_done(app, filed)


def test_a_difference_from_the_filed_amount_with_a_reason_is_assessed_and_said(app, filed, staff_member):
    officer = staff_member("supervisor")
    response = _assess(
        officer,
        filed["return_id"],
        assessed="520.00",
        note="Rooms rented through a booking platform were left out of the return.",
    )
    assert response.status_code == 303
    [entry] = _entries(app, filed["account_id"])
    assert entry.amount_cents == 52000 and "changed from the $480.00 filed" in entry.description
    [message] = _told(app, filed["owner"])
    assert "Assessed amount: $520.00." in message.body and "booking platform" in message.body


def test_a_form_without_its_one_time_key_is_refused(app, filed, staff_member):
    officer = staff_member("officer")
    response = officer.post(
        f"/staff/returns/{filed['return_id']}/assess",
        {"assessed": "480.00"},
        token_from=f"/staff/returns/{filed['return_id']}",
    )
    assert response.status_code == 400 and "This form is out of date" in body(response)
    assert 'name="key" value="' in body(response)
    _nothing_done(app, filed)


def test_only_the_assignee_or_a_supervisor_decides_an_item_someone_has_taken(app, filed, staff_member, clock):
    taker, other, supervisor = staff_member("officer"), staff_member("officer"), staff_member("supervisor")
    with sessionmaker_of(app)() as db:
        item = db.scalar(select(WorkItem))
        work.take(db, clock(), item, db.get(User, taker.id))
        db.commit()
    refused = _assess(other, filed["return_id"])
    assert refused.status_code == 409 and "Someone else is working on this item" in body(refused)
    _nothing_done(app, filed)
    assert _assess(supervisor, filed["return_id"]).status_code == 303
    assert _return(app, filed["return_id"]).status == "assessed"


# --- Reassessing --------------------------------------------------------------------------------


def test_reassessing_posts_only_the_difference_and_issues_a_notice_of_reassessment(app, filed, staff_member):
    officer = staff_member("officer")
    return_id = filed["return_id"]
    assert _assess(officer, return_id, charge1_amount="10.00", charge1_reason="Late filing").status_code == 303
    page = _page(officer, return_id)
    assert 'name="new_total"' in page and 'value="480.00"' in page and 'name="assessed"' not in page

    key = _key(page)
    response = _reassess(
        officer, return_id, key=key, new_total="530.00", reason="Review found $1,250.00 of room revenue not reported"
    )
    assert response.status_code == 303
    assert "an adjustment of $50.00 posted" in body(officer.get(response.headers["Location"]))
    again = _reassess(officer, return_id, key=key, new_total="530.00", reason="Sent twice")
    assert again.status_code == 303  # the same form: nothing posted twice
    entries = _entries(app, filed["account_id"])
    assert [(e.kind, e.amount_cents) for e in entries] == [
        ("assessment", 48000),
        ("penalty", 1000),
        ("adjustment", 5000),
    ]
    assert entries[-1].description == "Review found $1,250.00 of room revenue not reported"
    tax_return = _return(app, return_id)
    assert (tax_return.status, tax_return.notice_kind, tax_return.notice_date) == ("reassessed", "reassessment", TODAY)
    with sessionmaker_of(app)() as db:
        notice = db.scalar(select(MailItem).where(MailItem.kind == "notice_of_reassessment"))
        text = pdf_text(notice.content)
        assert "Notice of reassessment" in text and "$540.00 owing" in text
        assert (
            _told(app, filed["owner"])[-1].subject
            == "Your Tourism Levy return for 1\u201331 October 2026 has been reassessed"
        )
        assert (
            db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "return.reassessed")) == 1
        )

    down = _reassess(officer, return_id, new_total="450.00", reason="Objection allowed in part")
    assert down.status_code == 303
    assert [e.amount_cents for e in _entries(app, filed["account_id"])][-1] == -8000
    same = _reassess(officer, return_id, new_total="450.00", reason="Nothing changes")
    assert same.status_code == 400 and "The period is assessed at $450.00 already" in body(same)
    missing = _reassess(officer, return_id, new_total="", reason="")
    assert missing.status_code == 400
    assert "Enter the reason for the reassessment" in body(missing) and "Enter the amount" in body(missing)
    assert len(_entries(app, filed["account_id"])) == 4


def test_a_return_not_yet_assessed_cannot_be_reassessed(app, filed, staff_member):
    officer = staff_member("officer")
    page = _page(officer, filed["return_id"])
    response = _reassess(officer, filed["return_id"], key=_key(page), new_total="500.00", reason="Why not")
    assert response.status_code == 409 and "has not been assessed yet" in body(response)
    _nothing_done(app, filed)


def test_an_amended_return_is_assessed_by_reassessing_the_period(app, filed, staff_member):
    officer = staff_member("officer")
    assert _assess(officer, filed["return_id"]).status_code == 303
    _file(filed["client"], filed["number"], AMENDED_FIGURES, amended=True)
    with sessionmaker_of(app)() as db:
        amended = db.scalar(select(TaxReturn).where(TaxReturn.amended.is_(True)))
        amended_id, request_id = amended.id, amended.service_request_id
    page = _page(officer, amended_id)
    assert 'name="new_total"' in page and 'value="600.00"' in page and 'name="assessed"' not in page
    refused = _assess(officer, amended_id, key=_key(page))
    assert refused.status_code == 409 and "An amended return is assessed by reassessing" in body(refused)

    response = _reassess(officer, amended_id, new_total="600.00", reason="Amended return accepted as filed")
    assert response.status_code == 303
    entries = _entries(app, filed["account_id"])
    assert [(e.kind, e.amount_cents) for e in entries] == [("assessment", 48000), ("adjustment", 12000)]
    with sessionmaker_of(app)() as db:
        amended = db.get(TaxReturn, amended_id)
        assert entries[-1].request_reference == amended.reference and entries[-1].reference.startswith("ADJ-")
        assert (amended.status, amended.notice_kind) == ("reassessed", "reassessment")
        assert db.get(TaxReturn, filed["return_id"]).status == "assessed"
        request = db.get(ServiceRequest, request_id)
        assert request.status == "completed" and request.decision_reason == "Amended return accepted as filed"
        item = db.scalar(select(WorkItem).where(WorkItem.service_request_id == request_id))
        assert (item.status, item.outcome) == ("decided", "reassessed")
        assert db.scalar(select(MailItem).where(MailItem.tax_return_id == amended_id)).kind == "notice_of_reassessment"
    status_page = body(filed["client"].get(f"/accounts/{filed['number']}/returns"))
    assert ">Reassessed</strong>" in status_page and "Notice of reassessment" in status_page


def test_an_amended_return_that_changes_nothing_is_still_decided(app, filed, staff_member):
    officer = staff_member("officer")
    assert _assess(officer, filed["return_id"]).status_code == 303
    _file(filed["client"], filed["number"], FIGURES, amended=True)
    with sessionmaker_of(app)() as db:
        amended_id = db.scalar(select(TaxReturn.id).where(TaxReturn.amended.is_(True)))
    assert _reassess(officer, amended_id, new_total="480.00", reason="No change").status_code == 303
    assert len(_entries(app, filed["account_id"])) == 1
    assert _return(app, amended_id).notice_kind == "reassessment"


# --- The rules without the pages ----------------------------------------------------------------


def test_a_period_already_charged_at_receipt_is_charged_only_the_difference(app, clock, staff_member):
    """A paper return whose tax was posted when it arrived: assessing posts what the
    total adds. Its owner chose paper mail: the notice is printed for the post."""
    officer = staff_member("officer")
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=72, opened_on=date(2026, 6, 1))
        account.paper_mail_until = date(2028, 11, 1)
        give(db, clock(), owner, account)
        tax_return = TaxReturn(
            account_id=account.id,
            period_end=date(2026, 9, 30),
            received_on=date(2026, 10, 20),
            status="in_progress",
            reference="TL-202609-R1",
        )
        db.add(tax_return)
        post(db, account, "assessment", 70000, date(2026, 10, 21), period_end=date(2026, 9, 30))
        db.commit()
        staff = db.get(User, officer.id)
        assessments.assess(db, clock(), TODAY, tax_return=tax_return, staff=staff, assessed_cents=72500)
        db.commit()
        amounts = db.scalars(
            select(LedgerEntry.amount_cents).where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id)
        ).all()
        assert amounts == [70000, 2500]
        assert assessments.stated_total(db, tax_return) == 72500
        notice = db.scalar(select(MailItem))
        assert (notice.kind, notice.delivery) == ("notice_of_assessment", "paper")
    [message] = _told(app, owner)
    assert "We are sending the notice of assessment by post" in message.body
    assert "Balance for the period: $725.00 owing." in message.body


def test_a_claim_is_assessed_as_a_credit(app, clock, staff_member):
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        account = open_account(db, program_code="FTR", serial=73, opened_on=date(2026, 1, 1))
        claim = TaxReturn(
            account_id=account.id,
            period_end=date(2026, 9, 30),
            kind="claim",
            received_on=date(2026, 10, 20),
            status="received",
            reference="FTR-202609-R1",
            amount_cents=160492,
        )
        db.add(claim)
        db.commit()
        staff = db.get(User, officer.id)
        assessments.assess(db, clock(), TODAY, tax_return=claim, staff=staff, assessed_cents=160492)
        db.commit()
        entry = db.scalar(select(LedgerEntry))
        assert (entry.kind, entry.amount_cents) == ("assessment", -160492)
        assert assessments.stated_total(db, claim) == 160492
        assessments.reassess(
            db,
            clock(),
            TODAY,
            tax_return=claim,
            staff=staff,
            new_total_cents=150000,
            reason="1,830 litres used on the road are not eligible",
        )
        db.commit()
        assert db.scalars(select(LedgerEntry.amount_cents).order_by(LedgerEntry.id)).all() == [-160492, 10492]


def test_an_unknown_return_is_404(app, staff_member):
    officer = staff_member("officer")
    assert officer.get("/staff/returns/999").status_code == 404
    assert officer.get(f"/staff/returns/{2**40}").status_code == 404
    assert officer.post("/staff/returns/999/assess", {"assessed": "1"}).status_code == 404
