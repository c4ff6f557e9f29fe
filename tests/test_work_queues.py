"""Work queues (issue 6): every submission opens an item in its queue; staff take
it, put it back, a supervisor reassigns it and sees counts and ages; deciding it
decides the thing itself (a consent, an arrangement, a renewal, a waiver, a
direct deposit change, an objection, a document review) with a reason the
taxpayer sees, tells the account's people by secure message, and is audited."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import date

import pytest
from sqlalchemy import func, select

from domain import arrangements, audit, decisions, direct_deposit, requests, waivers, words, work
from models import (
    Account,
    AuditEvent,
    Consent,
    DirectDeposit,
    Document,
    LedgerEntry,
    Licence,
    Message,
    MessagePost,
    MessageThread,
    PaymentArrangement,
    ServiceRequest,
    User,
    WorkItem,
)
from tests.accounts_factory import as_written, body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user, outbox

OWNER, CLERK, REP = "owner@example.com", "clerk@example.com", "rep@example.com"
TODAY = date(2026, 11, 23)
BALANCE = 1_481_484


@pytest.fixture
def office(app, clock):
    """Olive owns Prairie Inn (Tourism Levy): it owes an assessment, a late-filing
    penalty and interest, and has a fuel seller's licence. Casey may only view it."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=REP, name="Riley Preparer")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=81, legal_name="Prairie Inn Ltd.", opened_on=date(2026, 1, 1))
        post(db, account, "assessment", BALANCE - 15_917, date(2026, 9, 15), period_end=date(2026, 8, 31))
        penalty = post(
            db,
            account,
            "penalty",
            12_500,
            date(2026, 10, 5),
            period_end=date(2026, 8, 31),
            description="Late filing penalty",
        )
        interest = post(
            db,
            account,
            "interest",
            3_417,
            date(2026, 10, 31),
            period_end=date(2026, 8, 31),
            description="Interest on late payment",
        )
        licence = Licence(
            account_id=account.id,
            licence_number="FSL-1001",
            kind="Fuel seller's licence",
            issued_on=date(2025, 12, 1),
            expires_on=date(2026, 12, 31),
        )
        db.add(licence)
        give(db, clock(), owner, account)
        give(db, clock(), clerk, account, role="viewer")
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "owner": owner,
            "clerk": clerk,
            "penalty": penalty.id,
            "interest": interest.id,
            "licence": licence.id,
        }


# --- Submissions, made through each feature's own domain functions ------------------------


def _account(db, office) -> Account:
    return db.get(Account, office["account_id"])


def _submit(app, clock, office, kind, summary, data, key, *, build=None, tax_return_id=None) -> str:
    with sessionmaker_of(app)() as db:
        made = requests.submit(
            db,
            clock(),
            account=_account(db, office),
            user_id=office["owner"],
            kind=kind,
            key=key,
            summary=summary,
            data=data,
            build=build,
            tax_return_id=tax_return_id,
        )
        db.commit()
        return made.request.reference


def _arrangement(app, clock, office) -> str:
    proposal = arrangements.Proposal("monthly", 123_457, date(2026, 12, 1))
    rows = proposal.schedule(BALANCE)
    return _submit(
        app,
        clock,
        office,
        "arrangement",
        arrangements.summary(BALANCE, rows, "monthly"),
        arrangements.request_data(BALANCE, proposal, rows),
        "arrangement-1",
        build=arrangements.builder(office["account_id"], clock(), BALANCE, proposal),
    )


def _objection(app, clock, office, key="objection-1") -> str:
    return _submit(
        app,
        clock,
        office,
        "objection",
        "Notice of objection to the assessment of August 2026",
        {"reasons": "The levy was charged on rooms that were not let.", "relief": "Reassess"},
        key,
    )


def _waiver(app, clock, office) -> str:
    with sessionmaker_of(app)() as db:
        chosen = waivers.charges(db, _account(db, office))
    answers = {"reason": "circumstances", "explanation": "Our bookkeeper was in hospital in September."}
    return _submit(
        app,
        clock,
        office,
        "waiver",
        waivers.summary(chosen),
        waivers.request_data(chosen, answers, ["hospital-letter.pdf"]),
        "waiver-1",
    )


def _renewal(app, clock, office) -> str:
    return _submit(
        app,
        clock,
        office,
        "renewal",
        "Renewal of Fuel seller's licence FSL-1001",
        {"licence": "Fuel seller's licence FSL-1001", "licence_id": office["licence"], "expires_on": "2026-12-31"},
        "renewal-1",
    )


def _documents(app, clock, office) -> str:
    return _submit(
        app,
        clock,
        office,
        "documents",
        "1 supporting document: receipts.pdf",
        {"files": [{"name": "receipts.pdf", "type": "PDF"}], "description": "Receipts", "about": ""},
        "documents-1",
    )


def _return(app, clock, office) -> str:
    from tests.accounts_factory import file_return

    with sessionmaker_of(app)() as db:
        tax_return = file_return(db, _account(db, office), date(2026, 10, 31))
        db.commit()
        return_id = tax_return.id
    return _submit(
        app,
        clock,
        office,
        "return",
        "Tourism Levy return for October 2026",
        {"rooms": 12},
        "return-1",
        tax_return_id=return_id,
    )


def _direct_deposit(app, clock, office, account_digits="1234567", institution="004") -> str:
    with sessionmaker_of(app)() as db:
        account, user = _account(db, office), db.get(User, office["owner"])
        details = direct_deposit.Details(institution, "12345", account_digits)
        draft = direct_deposit.keep_in_draft(db, clock(), account_id=account.id, user_id=user.id, details=details)
        made = direct_deposit.submit(
            db, clock(), TODAY, account=account, user=user, draft=draft, details=details, zone="America/Edmonton"
        )
        db.commit()
        return made.request.reference


def _sign_consent(app, office):
    owner = signed_in(app, OWNER)
    token = csrf_from(body(owner.get("/profile/")))
    response = owner.post(
        f"/consents/{office['number']}/new",
        data={
            "representative_name": "Riley Preparer",
            "representative_email": REP,
            "firm_name": "Ledger & Co.",
            "permissions": ["view_financial", "view_returns"],
            "starts_on": "2026-11-23",
            "ends_on": "",
            "declaration": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303, body(response)
    return owner


def _thread(app, clock, office) -> int:
    with sessionmaker_of(app)() as db:
        thread = MessageThread(
            account_id=office["account_id"],
            subject="Your October return",
            to_user_id=None,
            started_by_user_id=None,
            started_at=clock(),
            last_post_at=clock(),
        )
        db.add(thread)
        db.flush()
        work.open_for_thread(db, clock(), thread, "Reply from Olive Owner: Your October return")
        db.commit()
        return thread.id


# --- Reading back -------------------------------------------------------------------------


def _item(app, **where) -> WorkItem:
    with sessionmaker_of(app)() as db:
        query = select(WorkItem)
        for name, value in where.items():
            query = query.where(getattr(WorkItem, name) == value)
        return db.scalar(query.order_by(WorkItem.id.desc()))


def _item_of(app, reference) -> WorkItem:
    with sessionmaker_of(app)() as db:
        request_id = db.scalar(select(ServiceRequest.id).where(ServiceRequest.reference == reference))
    return _item(app, service_request_id=request_id)


def _request(app, reference) -> ServiceRequest:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(ServiceRequest).where(ServiceRequest.reference == reference))


def _events(app, name) -> list[dict]:
    with sessionmaker_of(app)() as db:
        return [
            json.loads(e.detail) | {"actor": e.actor_user_id}
            for e in db.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id))
        ]


def _messages_to(app, user_id) -> list[tuple[str, str]]:
    """(subject, text) of each secure message the person received."""
    with sessionmaker_of(app)() as db:
        found = []
        for message in db.scalars(select(Message).where(Message.user_id == user_id).order_by(Message.id)):
            text = message.body or ""
            if message.post_id is not None:
                post_row = db.get(MessagePost, message.post_id)
                text = post_row.body if post_row is not None else text
            subject = message.subject
            if message.thread_id is not None and not subject:
                subject = db.get(MessageThread, message.thread_id).subject
            found.append((subject, text))
        return found


def _page(staff, item_id) -> str:
    return body(staff.get(f"/staff/queues/items/{item_id}"))


def _decide(staff, item_id, decision, reason=""):
    return staff.post(
        f"/staff/queues/items/{item_id}/decide",
        {"decision": decision, "reason": reason},
        token_from=f"/staff/queues/items/{item_id}",
    )


def _act(staff, item_id, action, data=None):
    return staff.post(
        f"/staff/queues/items/{item_id}/{action}", data or {}, token_from=f"/staff/queues/items/{item_id}"
    )


# --- Opening items ----------------------------------------------------------------------


def test_every_submission_opens_one_item_in_its_queue(app, clock, office):
    _sign_consent(app, office)
    made = {
        "arrangements": _arrangement(app, clock, office),
        "objections": _objection(app, clock, office),
        "waivers": _waiver(app, clock, office),
        "renewals": _renewal(app, clock, office),
        "documents": _documents(app, clock, office),
        "direct_deposit": _direct_deposit(app, clock, office),
        "returns": _return(app, clock, office),
    }
    for queue, reference in made.items():
        item = _item_of(app, reference)
        assert item.queue == queue and item.status == "received" and item.assignee_user_id is None, queue
        assert item.account_id == office["account_id"] and item.received_at == clock()
    consent_item = _item(app, queue="consents")
    with sessionmaker_of(app)() as db:
        consent = db.get(Consent, consent_item.consent_id)
        assert consent.status == "submitted" and consent_item.summary == "Consent for Riley Preparer"
        assert db.scalar(select(func.count(WorkItem.id))) == 8
    # The same submission again (a double click) is the same request and the same item.
    assert _objection(app, clock, office) == made["objections"]
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(WorkItem.id)).where(WorkItem.queue == "objections")) == 1


def test_counts_and_ages_per_queue_for_supervisors_and_the_open_count_for_everyone(app, clock, office, staff_member):
    _objection(app, clock, office, "objection-1")
    clock.advance(days=2)
    _objection(app, clock, office, "objection-2")
    clock.advance(hours=5)
    third = _objection(app, clock, office, "objection-3")
    clock.advance(hours=1)
    officer, supervisor = staff_member("officer"), staff_member("supervisor")
    assert _act(officer, _item_of(app, third).id, "take").status_code == 303

    page = as_written(body(supervisor.get("/staff/queues/")))
    row = re.search(r'href="/staff/queues/objections">Objections</a></th>(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells == ["3", "2", "1", "2 days", "6 hours"]  # open, received, in progress, oldest, median
    empty = re.search(r'href="/staff/queues/renewals">Licence renewals</a></th>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", empty) == ["0", "0", "0", "None waiting", "None waiting"]
    assert re.search(r"Staff Officer</th><td class=\"num\">1<", page)
    assert re.search(r"No one yet \(unassigned\)</th><td class=\"num\">2<", page)

    seen = as_written(body(officer.get("/staff/queues/")))
    assert re.search(r'href="/staff/queues/objections">Objections</a></th>\s*<td class="num">3</td>', seen)
    assert "Oldest open item" not in seen and "Open items by who holds them" not in seen
    assert "Your items</a>: 1 open" in seen
    for queue in work.QUEUE_LABELS:
        assert f'href="/staff/queues/{queue}"' in seen


# --- Take, put back, reassign ---------------------------------------------------------------


def test_take_put_back_and_reassign_are_audited_and_an_officer_cannot_reassign(app, clock, office, staff_member):
    reference = _objection(app, clock, office)
    item_id = _item_of(app, reference).id
    officer, other, supervisor = staff_member("officer"), staff_member("officer"), staff_member("supervisor")
    owner = signed_in(app, OWNER)
    assert "Received" in body(owner.get(f"/requests/{office['number']}/{reference}"))

    taken = _act(officer, item_id, "take")
    assert taken.status_code == 303 and taken.headers["Location"] == f"/staff/queues/items/{item_id}"
    item = _item(app, id=item_id)
    assert item.status == "in_progress" and item.assignee_user_id == officer.id
    assert _request(app, reference).status == "in_review"
    assert "In review" in body(owner.get(f"/requests/{office['number']}/{reference}"))
    assert _act(officer, item_id, "take").status_code == 303  # again: nothing more
    assert [e["item"] for e in _events(app, "work.taken")] == [item_id]

    # Another officer can neither take it over, put it back, nor decide it.
    refused = _act(other, item_id, "take")
    assert refused.status_code == 409 and "Someone else is working on this item" in body(refused)
    assert _act(other, item_id, "release").status_code == 409
    assert _decide(other, item_id, "approve").status_code == 409
    assert _item(app, id=item_id).assignee_user_id == officer.id

    # Reassigning is for supervisors: an officer is refused (403, audited), and sees no form.
    assert 'id="assign-form"' not in _page(officer, item_id)
    assert _act(officer, item_id, "assign", {"assignee": str(other.id)}).status_code == 403
    assert _events(app, "access.refused")[-1]["reason"] == "supervisor-only"
    assert _item(app, id=item_id).assignee_user_id == officer.id
    page = _page(supervisor, item_id)
    assert 'id="assign-form"' in page and f'<option value="{other.id}">Staff Officer (officer)</option>' in page
    bad = _act(supervisor, item_id, "assign", {"assignee": "999999"})
    assert bad.status_code == 400 and body(bad).count("Choose a staff member") >= 2
    moved = _act(supervisor, item_id, "assign", {"assignee": str(other.id)})
    assert moved.status_code == 303 and _item(app, id=item_id).assignee_user_id == other.id
    assert _act(supervisor, item_id, "assign", {"assignee": str(other.id)}).status_code == 303
    [assigned] = _events(app, "work.assigned")
    assert assigned["item"] == item_id and assigned["previous_assignee"] == officer.id

    # Put back: unassigned and received again; a second click changes nothing.
    assert _act(other, item_id, "release").status_code == 303
    item = _item(app, id=item_id)
    assert item.status == "received" and item.assignee_user_id is None
    assert _act(other, item_id, "release").status_code == 303
    assert len(_events(app, "work.released")) == 1
    history = as_written(_page(supervisor, item_id))
    for event in ("request.objection", "work.taken", "work.assigned", "work.released"):
        assert f"<td>{words.event_words(event)}</td>" in history, event


# --- Deciding, queue by queue ------------------------------------------------------------------


def test_approving_a_consent_emails_the_representative_a_pin_and_tells_the_owner(app, clock, office, staff_member):
    owner = _sign_consent(app, office)
    item = _item(app, queue="consents")
    officer = staff_member("officer")
    page = _page(officer, item.id)
    for text in (
        "Riley Preparer of Ledger &amp; Co.",
        REP,
        "View balances and financial transactions",
        "Not uploaded (signed online)",
        "No end date (until revoked)",
        "Olive Owner",
        'value="approve"',
        'value="decline"',
    ):
        assert text in page, text
    before = len(outbox(app))
    decided = _decide(officer, item.id, "approve")
    assert decided.status_code == 303
    assert "Decided: approved" in _page(officer, item.id)
    with sessionmaker_of(app)() as db:
        consent = db.get(Consent, item.consent_id)
        assert consent.status == "approved" and consent.decided_by_user_id == officer.id
        closed = db.get(WorkItem, item.id)
        assert closed.status == "decided" and closed.outcome == "approved" and closed.assignee_user_id == officer.id
    [pin_email] = [m for m in outbox(app)[before:] if m.to_address == REP]
    assert re.search(r"^\s+[A-Z0-9]{10}$", pin_email.body_text, re.MULTILINE)
    assert "Corner" not in pin_email.body_text and "Prairie Inn Ltd." in pin_email.body_text
    [(subject, text)] = _messages_to(app, office["owner"])  # consents.approve tells the managers
    assert subject == "We approved the consent for Riley Preparer"
    assert "In force" in body(owner.get(f"/consents/{office['number']}/"))

    again = _decide(officer, item.id, "approve")
    assert again.status_code == 409 and "This item has already been decided" in body(again)
    assert len([m for m in outbox(app) if m.to_address == REP]) == 1
    assert len(_events(app, "work.decided")) == 1


def test_declining_a_consent_needs_a_reason_the_managers_see(app, clock, office, staff_member):
    owner = _sign_consent(app, office)
    item = _item(app, queue="consents")
    supervisor = staff_member("supervisor")
    refused = _decide(supervisor, item.id, "decline", "   ")
    page = body(refused)
    assert refused.status_code == 400 and page.count("Give the reason for declining") == 2
    assert 'id="reason-error"' in page
    with sessionmaker_of(app)() as db:
        assert db.get(Consent, item.consent_id).status == "submitted"
        assert db.get(WorkItem, item.id).status == "received"
    assert _messages_to(app, office["owner"]) == [] and _events(app, "work.decided") == []
    assert _decide(supervisor, item.id, "decline", "The consent names a firm, not a person.").status_code == 303
    with sessionmaker_of(app)() as db:
        consent = db.get(Consent, item.consent_id)
        assert consent.status == "rejected" and consent.decision_reason == "The consent names a firm, not a person."
    assert "The consent names a firm, not a person." in body(owner.get(f"/consents/{office['number']}/"))
    [(_subject, text)] = _messages_to(app, office["owner"])
    assert "Our reason: The consent names a firm, not a person." in text


def test_approving_an_arrangement_makes_its_schedule_the_live_one(app, clock, office, staff_member):
    reference = _arrangement(app, clock, office)
    item_id = _item_of(app, reference).id
    officer = staff_member("officer")
    page = _page(officer, item_id)
    assert "The proposed schedule: monthly payments for $14,814.84" in page
    assert page.count("$1,234.57") >= 11 and reference in page
    assert _decide(officer, item_id, "approve", "Thank you: keep to the dates.").status_code == 303
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(PaymentArrangement)).status == "approved"
        request = db.scalar(select(ServiceRequest).where(ServiceRequest.reference == reference))
        assert request.status == "approved" and request.decision_reason == "Thank you: keep to the dates."
    owner = signed_in(app, OWNER)
    schedule = body(owner.get(f"/arrangements/{office['number']}/"))
    assert "Approved" in schedule and schedule.count(">Due</strong>") == 12
    shown = body(owner.get(f"/requests/{office['number']}/{reference}"))
    assert "Approved" in shown and "Thank you: keep to the dates." in shown
    messages = _messages_to(app, office["owner"])
    assert [s for s, _t in messages] == [f"Decision on your payment arrangement {reference}"]
    assert _messages_to(app, office["clerk"]) == []  # a viewer does not receive the account's messages
    assert "Our note: Thank you: keep to the dates." in messages[0][1]
    assert _decide(officer, item_id, "decline", "No").status_code == 409
    assert _item(app, id=item_id).outcome == "approved"


def test_approving_a_renewal_extends_the_licence(app, clock, office, staff_member):
    reference = _renewal(app, clock, office)
    item_id = _item_of(app, reference).id
    supervisor = staff_member("supervisor")
    assert _decide(supervisor, item_id, "approve").status_code == 303
    with sessionmaker_of(app)() as db:
        assert db.get(Licence, office["licence"]).expires_on == date(2027, 12, 31)
    assert _request(app, reference).status == "approved"
    [(subject, text)] = _messages_to(app, office["owner"])
    assert subject == f"Decision on your licence renewal {reference}"
    assert "It now expires on 31 December 2027" in text
    assert _decide(supervisor, item_id, "approve").status_code == 409
    with sessionmaker_of(app)() as db:
        assert db.get(Licence, office["licence"]).expires_on == date(2027, 12, 31)


def test_approving_a_waiver_credits_each_charge_once(app, clock, office, staff_member):
    reference = _waiver(app, clock, office)
    item_id = _item_of(app, reference).id
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        before = int(db.scalar(select(func.sum(LedgerEntry.amount_cents))))
    assert _decide(officer, item_id, "approve").status_code == 303
    with sessionmaker_of(app)() as db:
        credits = list(
            db.scalars(select(LedgerEntry).where(LedgerEntry.kind == "adjustment").order_by(LedgerEntry.amount_cents))
        )
        assert [c.amount_cents for c in credits] == [-12_500, -3_417]
        for credit in credits:
            assert credit.request_reference == reference and credit.period_end == date(2026, 8, 31)
            assert credit.reference.startswith("ADJ-")  # its own reference, not the request's
            assert credit.description == f"Waiver approved ({reference})" and credit.processed_date == TODAY
        assert int(db.scalar(select(func.sum(LedgerEntry.amount_cents)))) == before - 15_917
        request = db.scalar(select(ServiceRequest).where(ServiceRequest.reference == reference))
        # Posting the credits again (a retry, a second approval) posts nothing.
        assert decisions.credit_waived_charges(db, clock(), TODAY, request, officer.id) == 0
        db.commit()
    assert _decide(officer, item_id, "approve").status_code == 409
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "adjustment")) == 2
    [(subject, text)] = _messages_to(app, office["owner"])
    assert subject == f"Decision on your waiver of penalties and interest {reference}"
    assert "$159.17 has been credited" in text
    assert _events(app, "waiver.credited")[0]["cents"] == 15_917


def test_declining_a_direct_deposit_change_ends_those_details(app, clock, office, staff_member):
    reference = _direct_deposit(app, clock, office, "1234567")
    item = _item_of(app, reference)
    assert _request(app, reference).status == "completed"
    clock.advance(hours=2)
    officer = staff_member("officer")
    page = _page(officer, item.id)
    assert 'value="confirm"' in page and 'value="decline"' in page and "1234567" not in page
    reason = "The account holder's name does not match the bank's records."
    assert _decide(officer, item.id, "decline", reason).status_code == 303
    with sessionmaker_of(app)() as db:
        row = db.scalar(select(DirectDeposit))
        assert row.ended_at == clock() and direct_deposit.current(db, office["account_id"]) is None
    request = _request(app, reference)
    assert request.status == "declined" and request.decision_reason == reason
    owner = signed_in(app, OWNER)
    shown = body(owner.get(f"/requests/{office['number']}/{reference}"))
    assert "Declined" in shown and "does not match the bank" in shown
    messages = [m for m in _messages_to(app, office["owner"]) if m[0].startswith("Decision")]
    [(subject, text)] = messages
    assert subject == f"Decision on your direct deposit details {reference}"
    assert "refunds will be paid by cheque" in text and "1234567" not in text and "567" not in text
    assert _decide(officer, item.id, "confirm").status_code == 409


def test_confirming_a_direct_deposit_change_keeps_it_and_a_decline_never_ends_newer_details(
    app, clock, office, staff_member
):
    first = _direct_deposit(app, clock, office, "1234567")
    clock.advance(minutes=5)
    second = _direct_deposit_again(app, clock, office)
    officer = staff_member("officer")
    assert _decide(officer, _item_of(app, second).id, "confirm").status_code == 303
    assert _request(app, second).status == "completed" and _item_of(app, second).outcome == "confirmed"
    # The first details were replaced by the second: declining the first leaves the second in force.
    assert _decide(officer, _item_of(app, first).id, "decline", "Not the holder's account").status_code == 303
    with sessionmaker_of(app)() as db:
        current = direct_deposit.current(db, office["account_id"])
        assert current is not None and current.bank_account == "7654321"
    assert _request(app, first).status == "declined"


def _direct_deposit_again(app, clock, office) -> str:
    with sessionmaker_of(app)() as db:
        account, user = _account(db, office), db.get(User, office["owner"])
        details = direct_deposit.Details("010", "54321", "7654321")
        draft = direct_deposit.keep_in_draft(db, clock(), account_id=account.id, user_id=user.id, details=details)
        made = direct_deposit.submit(
            db, clock(), TODAY, account=account, user=user, draft=draft, details=details, zone="America/Edmonton"
        )
        db.commit()
        return made.request.reference


def test_an_objection_declined_shows_its_reason_on_the_taxpayers_request_page(app, clock, office, staff_member):
    reference = _objection(app, clock, office)
    item_id = _item_of(app, reference).id
    with sessionmaker_of(app)() as db:
        document = Document(
            account_id=office["account_id"],
            service_request_id=_request(app, reference).id,
            stored_name=secrets.token_hex(16),
            uploaded_name="room-register.pdf",
            content_type="application/pdf",
            size_bytes=4096,
            sha256=hashlib.sha256(b"x").hexdigest(),
            storage="database",
            uploaded_at=clock(),
            uploaded_by_user_id=office["owner"],
        )
        db.add(document)
        db.commit()
        document_id = document.id
    officer = staff_member("officer")
    page = _page(officer, item_id)
    assert "The levy was charged on rooms that were not let." in page and "Olive Owner" in page
    assert f'<a href="/staff/accounts/{office["number"]}">Prairie Inn Ltd.</a>' in page
    assert (
        f'href="/staff/accounts/{office["number"]}/documents/{document_id}" download data-hx-boost="false">'
        "room-register.pdf</a>"
    ) in page

    refused = _decide(officer, item_id, "decline", "")
    assert refused.status_code == 400 and "Give the reason for declining" in body(refused)
    nothing = _decide(officer, item_id, "", "A reason")
    assert nothing.status_code == 400 and "Choose a decision" in body(nothing)
    assert _decide(officer, item_id, "confirm", "A reason").status_code == 400  # not a choice for objections
    assert _request(app, reference).status == "received" and _item(app, id=item_id).status == "received"
    assert _messages_to(app, office["owner"]) == []

    reason = "The rooms were let: the register shows guests on each night."
    assert _decide(officer, item_id, "decline", reason).status_code == 303
    owner = signed_in(app, OWNER)
    shown = body(owner.get(f"/requests/{office['number']}/{reference}"))
    assert "Declined" in shown and reason in shown
    [(subject, text)] = _messages_to(app, office["owner"])
    assert subject == f"Decision on your notice of objection {reference}" and f"Our reason: {reason}" in text
    assert _item(app, id=item_id).decision_reason == reason
    history = as_written(_page(officer, item_id))
    assert "<td>Request declined</td>" in history and "<td>Work item decided" in history


def test_a_document_review_is_reviewed_and_a_message_item_closes_with_a_reason(app, clock, office, staff_member):
    reference = _documents(app, clock, office)
    officer = staff_member("officer")
    assert _decide(officer, _item_of(app, reference).id, "approve").status_code == 303
    assert _item_of(app, reference).outcome == "reviewed" and _request(app, reference).status == "approved"

    thread_id = _thread(app, clock, office)
    item = _item(app, thread_id=thread_id)
    page = _page(officer, item.id)
    assert "Your October return" in page and "Close without a reply" in page
    refused = _decide(officer, item.id, "close", "")
    assert refused.status_code == 400 and "Give the reason for closing it without a reply" in body(refused)
    assert _decide(officer, item.id, "close", "They said thank you; nothing to answer.").status_code == 303
    closed = _item(app, id=item.id)
    assert closed.outcome == "closed" and closed.decision_reason == "They said thank you; nothing to answer."


def test_a_return_is_not_decided_in_the_queue(app, clock, office, staff_member):
    reference = _return(app, clock, office)
    item_id = _item_of(app, reference).id
    officer = staff_member("officer")
    page = _page(officer, item_id)
    assert 'id="decision-form"' not in page
    return_id = _request(app, reference).tax_return_id
    assert f'href="/staff/returns/{return_id}" id="assess-link">Assess this return</a>' in page
    refused = _decide(officer, item_id, "approve")
    assert refused.status_code == 409 and "decided by assessing it" in body(refused)
    assert _item(app, id=item_id).status == "received"


def test_a_supervisor_may_decide_an_item_someone_else_holds(app, clock, office, staff_member):
    reference = _objection(app, clock, office)
    item_id = _item_of(app, reference).id
    officer, supervisor = staff_member("officer"), staff_member("supervisor")
    assert _act(officer, item_id, "take").status_code == 303
    assert 'id="decision-form"' in _page(supervisor, item_id)
    assert _decide(supervisor, item_id, "approve").status_code == 303
    item = _item(app, id=item_id)
    assert item.outcome == "approved" and item.decided_by_user_id == supervisor.id
    assert _request(app, reference).status == "approved"


# --- Lists and filters ----------------------------------------------------------------------------


def test_a_queue_lists_its_items_oldest_first_with_filters_and_an_htmx_fragment(app, clock, office, staff_member):
    first = _objection(app, clock, office, "objection-1")
    clock.advance(hours=1)
    second = _objection(app, clock, office, "objection-2")
    clock.advance(hours=1)
    third = _objection(app, clock, office, "objection-3")
    officer, other = staff_member("officer"), staff_member("officer")
    assert _act(officer, _item_of(app, second).id, "take").status_code == 303
    assert _act(other, _item_of(app, third).id, "take").status_code == 303

    listed = officer.get("/staff/queues/objections")
    page = body(listed)
    assert listed.status_code == 200 and "HX-Request" in listed.headers["Vary"]
    assert page.index(first) < page.index(second) < page.index(third)
    assert 'data-hx-get="/staff/queues/objections"' in page and 'data-hx-target="#queue-items"' in page
    assert 'data-hx-push-url="true"' in page and 'method="get"' in page

    def shown(query, client=officer, **headers):
        response = client.get(f"/staff/queues/objections?{query}", headers=headers)
        return response, [r for r in (first, second, third) if r in body(response)]

    assert shown("assignee=mine")[1] == [second]
    assert shown("assignee=unassigned")[1] == [first]
    assert shown("status=received")[1] == [first]
    assert shown("status=in_progress&assignee=everyone")[1] == [second, third]
    assert shown("status=decided")[1] == []
    fragment, found = shown("status=in_progress", **{"HX-Request": "true"})
    text = body(fragment)
    assert found == [second, third] and text.startswith('<div id="queue-items"') and "<html" not in text
    assert "HX-Request" in fragment.headers["Vary"]
    bad, _found = shown("status=lost")
    assert bad.status_code == 400 and "Choose a status from the list" in body(bad)

    mine = body(officer.get("/staff/queues/mine"))
    assert second in mine and first not in mine and third not in mine and "Objections" in mine
    assert officer.get("/staff/queues/parcels").status_code == 404
    named = officer.get("/staff/queues/?queue=objections")
    assert named.status_code == 302 and named.headers["Location"] == "/staff/queues/objections"
    assert officer.get("/staff/queues/items/999999").status_code == 404


def test_the_taxpayer_side_cannot_reach_the_queues(app, clock, office):
    owner = signed_in(app, OWNER)
    assert owner.get("/staff/queues/").status_code == 403
    item_id = _item_of(app, _objection(app, clock, office)).id
    token = csrf_from(body(owner.get("/profile/")))
    assert owner.post(f"/staff/queues/items/{item_id}/take", data={"csrf_token": token}).status_code == 403
    assert _item(app, id=item_id).status == "received"


def test_a_consent_revoked_while_it_waits_leaves_nothing_to_decide(app, clock, office, staff_member):
    _sign_consent(app, office)
    item = _item(app, queue="consents")
    with sessionmaker_of(app)() as db:
        from domain import consents

        consent, account = db.get(Consent, item.consent_id), db.get(Account, office["account_id"])
        consents.revoke(db, clock(), account=account, actor=None, consent=consent)
        db.commit()
    with sessionmaker_of(app)() as db:
        closed = db.get(WorkItem, item.id)
        assert (closed.status, closed.outcome, closed.decided_by_user_id) == ("decided", "withdrawn", None)
    supervisor = staff_member("supervisor")
    assert _decide(supervisor, item.id, "approve").status_code == 409
    decided = [e for e in _events(app, "work.decided") if e.get("item") == item.id]
    assert [e["decision"] for e in decided] == ["withdrawn"]


def test_staff_open_the_uploaded_signed_consent_form_from_the_item(app, clock, office, staff_member):
    owner = _sign_consent(app, office)
    item = _item(app, queue="consents")
    officer = staff_member("officer")
    assert officer.get(f"/staff/queues/items/{item.id}/signed-form.pdf").status_code == 404, "none uploaded yet"
    signed = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    with sessionmaker_of(app)() as db:
        from domain import consents

        consents.attach_signed_form(
            db,
            clock(),
            consent=db.get(Consent, item.consent_id),
            uploaded_name="AT4931 signed.pdf",
            content=signed,
            user_id=office["owner"],
        )
        db.commit()
    assert 'signed-form.pdf" download data-hx-boost="false">AT4931 signed.pdf (PDF)</a>' in _page(officer, item.id)
    response = officer.get(f"/staff/queues/items/{item.id}/signed-form.pdf")
    assert response.status_code == 200 and response.data == signed
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert owner.get(f"/staff/queues/items/{item.id}/signed-form.pdf").status_code == 403
    assert officer.get("/staff/queues/items/999999/signed-form.pdf").status_code == 404


def test_an_items_trail_is_found_by_the_audit_logs_indexed_columns(app, clock):
    """domain.audit.record files each event under the item, request, consent and
    conversation its detail names; the trail reads those columns (no LIKE over the
    JSON: item 1 is not item 12, nor an event that merely mentions it)."""
    with app.extensions["portal.sessionmaker"]() as db:
        audit.record(db, clock(), "work.taken", item=1, queue="objections")
        audit.record(db, clock(), "work.taken", item=12, queue="objections")
        audit.record(db, clock(), "request.objection", reference="SR-AAAA-0001")
        audit.record(db, clock(), "message.sent", thread=5, post=3)
        audit.record(db, clock(), "consent.submitted", consent=1)
        audit.record(db, clock(), "note", text='"item": 1, "thread": 5')
        db.commit()
        first = db.scalar(select(AuditEvent).order_by(AuditEvent.id))
        assert (first.work_item_id, first.request_reference, first.consent_id, first.thread_id) == (1, None, None, None)
        found = audit.events_about(db, work_item_id=1, request_reference="SR-AAAA-0001", thread_id=5)
        assert [(e.event, json.loads(e.detail).get("post")) for e in found] == [
            ("work.taken", None),
            ("request.objection", None),
            ("message.sent", 3),
        ]
        assert [e.event for e in audit.events_about(db, consent_id=1)] == ["consent.submitted"]
        assert audit.events_about(db) == []
