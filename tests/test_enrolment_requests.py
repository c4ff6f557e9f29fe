"""Asking for an invitation letter online (issue 20, item 6): the attacker's
tests first (the answer never says whether an account matched, the limits hold
back the guesser and not the account's people, the letter goes only to the
address on file and never twice in a month), then the officer's side."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from domain.accounts import format_number
from domain.enrolment_requests import EMAIL_SUBJECT
from models import EnrolmentRequest, InvitationPin, MailItem, ThrottleEvent, WorkItem
from tests.accounts_factory import open_account, sessionmaker_of
from tests.conftest import csrf_from, outbox

ASK = "/enrol/ask"


def ask(client, **overrides):
    data = {
        "account_number": "",
        "legal_name": "",
        "business_number": "",
        "business_address": "",
        "name": "Casey Clerk",
        "email": "casey@example.com",
        "phone": "780 555 0142",
        "role": "employee",
        **overrides,
    }
    data["csrf_token"] = csrf_from(client.get(ASK).get_data(as_text=True))
    return client.post(ASK, data=data, environ_overrides={"REMOTE_ADDR": overrides.pop("ip", "203.0.113.9")})


def seeded(app):
    with sessionmaker_of(app)() as db:
        account = open_account(db)
        db.commit()
        return account.number, account.id


def count(app, model) -> int:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


# --- What an attacker can learn, and what they can make happen -----------------------------


def test_a_matching_and_a_made_up_number_get_the_same_answer_and_email(app, caplog):
    number, _ = seeded(app)
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    matched = ask(client, account_number=number, email="one@example.com")
    unknown = ask(client, account_number="4100000027", email="two@example.com")
    assert matched.status_code == unknown.status_code == 303
    assert matched.headers["Location"] == unknown.headers["Location"] == "/enrol/asked"
    page = client.get("/enrol/asked").get_data(as_text=True)
    assert "If the details you gave match an account" in page and "10 business days" in page
    first, second = outbox(app)
    assert (first.subject, first.body_text) == (second.subject, second.body_text)
    assert first.subject == EMAIL_SUBJECT and "mailing address we have on file" in first.body_text
    assert number not in first.body_text and "Casey" not in first.body_text  # nothing typed goes out
    # Both land in the queue alike: nothing was looked up when they arrived.
    with sessionmaker_of(app)() as db:
        items = list(db.scalars(select(WorkItem).where(WorkItem.queue == "enrolments")))
    assert [i.account_id for i in items] == [None, None]
    assert "casey" not in caplog.text.lower() and "780 555 0142" not in caplog.text


def test_the_audit_log_keeps_nothing_the_requester_typed(app):
    ask(app.test_client(), legal_name="Secret Farms Ltd.", business_number="AB-778899")
    with sessionmaker_of(app)() as db:
        from models import AuditEvent

        details = " ".join(e.detail or "" for e in db.scalars(select(AuditEvent)))
    for typed in ("Secret Farms", "AB-778899", "casey", "Casey", "555 0142"):
        assert typed not in details


def test_the_form_needs_a_post_with_its_csrf_token(app):
    client = app.test_client()
    client.get(ASK)
    response = client.post(ASK, data={"account_number": "4100000018", "name": "X", "email": "x@example.com"})
    assert response.status_code == 400
    assert count(app, EnrolmentRequest) == 0 and outbox(app) == []


def test_one_guesser_is_held_back_but_the_accounts_people_are_not(app):
    number, _ = seeded(app)
    guesser = app.test_client()
    for n in range(5):
        assert ask(guesser, account_number=number, email=f"g{n}@example.com", ip="198.51.100.7").status_code == 303
    held = ask(guesser, account_number=number, email="g9@example.com", ip="198.51.100.7")
    assert held.status_code == 429
    assert "too many letters today" in held.get_data(as_text=True)
    assert count(app, EnrolmentRequest) == 5
    # The account's own person, from their own connection and address, can still ask.
    owner = app.test_client()
    assert ask(owner, account_number=number, email="owner@example.com", ip="192.0.2.44").status_code == 303
    assert count(app, EnrolmentRequest) == 6


def test_one_email_address_is_held_back_from_any_connection(app):
    client = app.test_client()
    for n in range(3):
        assert ask(client, legal_name="Any Co.", business_number="1", ip=f"192.0.2.{n + 1}").status_code == 303
    assert ask(client, legal_name="Any Co.", business_number="1", ip="192.0.2.99").status_code == 429
    assert len(outbox(app)) == 3
    with sessionmaker_of(app)() as db:  # counted by keyed hashes: no address or email at rest
        keys = list(db.scalars(select(ThrottleEvent.key_hash)))
    assert keys and not any("example" in k or "192.0.2" in k for k in keys)


def test_the_limits_are_the_deployers_to_set(app_with):
    """LETTER_REQUESTS_PER_CLIENT_PER_DAY and _PER_EMAIL_PER_DAY, not numbers in the code."""
    strict = app_with(LETTER_REQUESTS_PER_CLIENT_PER_DAY=1, LETTER_REQUESTS_PER_EMAIL_PER_DAY=5)
    client = strict.test_client()
    assert ask(client, legal_name="Any Co.", business_number="1", email="a@example.com").status_code == 303
    assert ask(client, legal_name="Any Co.", business_number="1", email="b@example.com").status_code == 429
    assert count(strict, EnrolmentRequest) == 1


# --- What the form asks -------------------------------------------------------------------


def test_the_page_works_signed_out_and_is_linked_where_a_letter_is_lacking(app):
    client = app.test_client()
    page = client.get(ASK)
    assert page.status_code == 200
    assert 'action="/enrol/ask"' in page.get_data(as_text=True)
    assert 'href="/enrol/ask"' in client.get("/auth/sign-in").get_data(as_text=True)
    assert 'href="/enrol/ask"' in client.get("/auth/register").get_data(as_text=True)


def test_an_account_or_the_businesss_details_are_needed(app):
    client = app.test_client()
    nothing = ask(client)
    assert nothing.status_code == 400
    assert "Enter the account number, or the business&#39;s legal name" in nothing.get_data(as_text=True)
    name_only = ask(client, legal_name="Prairie Inn Ltd.")
    assert name_only.status_code == 400
    assert "registration number or its address" in name_only.get_data(as_text=True)
    bad_number = ask(client, account_number="4100000018")
    assert bad_number.status_code == 400 and "one of the digits is not right" in bad_number.get_data(as_text=True)
    no_role = ask(client, account_number="4100000027", role="king")
    assert no_role.status_code == 400 and "Choose your role" in no_role.get_data(as_text=True)
    assert count(app, EnrolmentRequest) == 0 and outbox(app) == []
    by_address = ask(client, legal_name="Prairie Inn Ltd.", business_address="1 Main St\nBanff")
    assert by_address.status_code == 303


# --- The officer's side -------------------------------------------------------------------


def _item_id(app) -> int:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(WorkItem.id).where(WorkItem.queue == "enrolments").order_by(WorkItem.id.desc()))


def test_the_officer_finds_the_account_and_the_letter_goes_to_the_address_on_file(app, staff_member):
    number, account_id = seeded(app)
    ask(app.test_client(), legal_name="Prairie Inn Ltd.", business_address="99 Attacker Road\nElsewhere")
    item_id = _item_id(app)
    officer = staff_member("officer")
    assert "Requests for an invitation letter" in officer.get("/staff/queues/").get_data(as_text=True)
    page = officer.get(f"/staff/queues/items/{item_id}").get_data(as_text=True)
    assert "99 Attacker Road" in page and "Casey Clerk" in page and 'id="letter-form"' in page
    key = _key_in(page)
    sent = officer.post(
        f"/staff/queues/items/{item_id}/letter",
        {"number": number, "key": key},
        token_from=f"/staff/queues/items/{item_id}",
    )
    assert sent.status_code == 303
    with sessionmaker_of(app)() as db:
        (letter,) = db.scalars(select(MailItem).where(MailItem.account_id == account_id))
        item = db.get(WorkItem, item_id)
        assert letter.kind == "invitation_letter" and letter.delivery == "paper" and not letter.shown_online
        assert (item.status, item.outcome, item.account_id) == ("decided", "letter_sent", account_id)
        assert b"Attacker" not in letter.content
    # The same button again posts no second letter.
    again = officer.post(
        f"/staff/queues/items/{item_id}/letter",
        {"number": number, "key": key},
        token_from=f"/staff/queues/items/{item_id}",
    )
    assert again.status_code in (400, 409)
    assert count(app, MailItem) == 1


def _key_in(page: str) -> str:
    import re

    match = re.search(r'name="key" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_many_requests_cannot_flood_the_owner_with_letters(app, staff_member):
    number, _ = seeded(app)
    for n in range(2):
        ask(app.test_client(), account_number=number, email=f"r{n}@example.com", ip=f"192.0.2.{n + 1}")
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        first, second = db.scalars(select(WorkItem.id).where(WorkItem.queue == "enrolments").order_by(WorkItem.id))
    for item_id, expected in ((first, 303), (second, 409)):
        page = officer.get(f"/staff/queues/items/{item_id}").get_data(as_text=True)
        response = officer.post(
            f"/staff/queues/items/{item_id}/letter",
            {"number": number, "key": _key_in(page)},
            token_from=f"/staff/queues/items/{item_id}",
        )
        assert response.status_code == expected
    assert "in the last 30 days" in response.get_data(as_text=True)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(InvitationPin)) == 1
        assert db.get(WorkItem, second).status != "decided"
    # The officer closes the second without a letter; the requester hears nothing more.
    emails = len(outbox(app))
    closed = officer.post(
        f"/staff/queues/items/{second}/decide",
        {"decision": "close", "reason": "A letter went on the first request"},
        token_from=f"/staff/queues/items/{second}",
    )
    assert closed.status_code == 303 and len(outbox(app)) == emails


def test_an_unknown_account_number_is_refused_beside_the_field(app, staff_member):
    seeded(app)
    ask(app.test_client(), account_number="4100000027")
    item_id = _item_id(app)
    officer = staff_member("officer")
    page = officer.get(f"/staff/queues/items/{item_id}").get_data(as_text=True)
    response = officer.post(
        f"/staff/queues/items/{item_id}/letter",
        {"number": "4100000027", "key": _key_in(page)},
        token_from=f"/staff/queues/items/{item_id}",
    )
    assert response.status_code == 400 and "No account has this number" in response.get_data(as_text=True)
    assert count(app, MailItem) == 0


def test_the_requesters_details_are_erased_90_days_after_the_request_closes(app, staff_member, clock, runner):
    """domain.retention's rule for letter requests: a closed request keeps what the
    requester said about themselves 90 days, then `flask purge` erases it (the
    account it named stays); a request still open keeps it, however old."""
    from datetime import timedelta

    number, _ = seeded(app)
    ask(app.test_client(), account_number=number, business_number="BN 12345", email="closed@example.com")
    closed_id = _item_id(app)
    ask(app.test_client(), account_number=number, email="open@example.com", ip="192.0.2.77")
    open_id = _item_id(app)
    officer = staff_member("officer")
    officer.post(
        f"/staff/queues/items/{closed_id}/decide",
        {"decision": "close", "reason": "Asked by telephone instead"},
        token_from=f"/staff/queues/items/{closed_id}",
    )

    def requesters():
        with sessionmaker_of(app)() as db:
            rows = db.scalars(select(EnrolmentRequest).order_by(EnrolmentRequest.id))
            return [(r.requester_name, r.requester_email, r.requester_phone, r.business_number) for r in rows]

    start = clock()
    clock.set(start + timedelta(days=89))
    assert runner.invoke(args=["purge"]).exit_code == 0
    assert [r[1] for r in requesters()] == ["closed@example.com", "open@example.com"]
    clock.set(start + timedelta(days=91))
    assert runner.invoke(args=["purge"]).exit_code == 0
    assert requesters() == [("", "", "", None), ("Casey Clerk", "open@example.com", "780 555 0142", None)]
    officer = staff_member("officer")  # signed in afresh: 91 days on, the first session has ended
    page = officer.get(f"/staff/queues/items/{closed_id}").get_data(as_text=True)
    assert "Erased 90 days after the request was closed" in page and "casey" not in page.lower()
    assert format_number(number) in page  # the account asked about stays
    assert "open@example.com" in officer.get(f"/staff/queues/items/{open_id}").get_data(as_text=True)
