"""A representative's request is seen (issue 20, item 7): the day a
representative asks for access, the account's managers (and only they) get a
message in their inbox, the email saying one is waiting (no names, no account)
and a line on their dashboard; the hourly run reminds them once, three working
days before an unanswered request lapses."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from domain import consents
from models import AuditEvent, Consent, Message, OutboxEmail
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user

OWNER, DELEGATE, REP = "owner@example.com", "delegate@example.com", "rep@example.com"


@pytest.fixture
def shop(app, clock):
    """Olive owns Corner Shop (she manages access); Dee is a delegate (she does
    not); Riley is a tax preparer with a sign-in."""
    ids = {
        email: make_user(app, email=email, name=name)
        for email, name in ((OWNER, "Olive Owner"), (DELEGATE, "Dee Delegate"), (REP, "Riley Preparer"))
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=51, legal_name="Corner Shop Ltd.", opened_on=date(2026, 3, 1))
        give(db, clock(), ids[OWNER], account)
        give(db, clock(), ids[DELEGATE], account, role="delegate")
        db.commit()
        return {"number": account.number, "account_id": account.id, **ids}


def _ask(app, shop, legal_name="Corner Shop Ltd."):
    rep = signed_in(app, REP)
    token = csrf_from(body(rep.get("/consents/ask")))
    data = {"number": shop["number"], "legal_name": legal_name, "csrf_token": token}
    assert rep.post("/consents/ask", data=data).status_code == 303


def _messages_to(app, user_id):
    with sessionmaker_of(app)() as db:
        return [m.subject for m in db.scalars(select(Message).where(Message.user_id == user_id).order_by(Message.id))]


def _emails_to(app, address):
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(OutboxEmail).where(OutboxEmail.to_address == address).order_by(OutboxEmail.id)))


def test_a_request_that_matches_no_account_tells_nobody(app, shop):
    _ask(app, shop, legal_name="Someone Else Ltd.")
    assert _messages_to(app, shop[OWNER]) == [] and _emails_to(app, OWNER) == []


def test_the_managers_and_only_they_are_told_the_day_it_arrives(app, shop):
    _ask(app, shop)
    assert _messages_to(app, shop[OWNER]) == ["Riley Preparer asked for access to Corner Shop Ltd."]
    assert _messages_to(app, shop[DELEGATE]) == [] and _emails_to(app, DELEGATE) == []
    assert _messages_to(app, shop[REP]) == []
    (email,) = _emails_to(app, OWNER)
    # The email says only that a message is waiting, as every other one does.
    assert "Riley" not in email.body_text and "Corner Shop" not in email.body_text
    assert shop["number"] not in email.body_text and "http" not in email.body_text
    olive = signed_in(app, OWNER)
    home = body(olive.get("/"))
    assert 'id="representative-requests"' in home
    assert "Riley Preparer asked for access to Corner Shop Ltd." in home
    assert f'href="/consents/{shop["number"]}/">review' in home
    thread = body(olive.get("/messages/"))
    assert "Riley Preparer asked for access to Corner Shop Ltd." in thread
    # Not on the dashboard of someone who cannot answer it.
    assert "representative-requests" not in body(signed_in(app, DELEGATE).get("/"))


def test_the_dashboard_line_goes_once_the_request_is_answered(app, shop):
    _ask(app, shop)
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id))
    olive = signed_in(app, OWNER)
    token = csrf_from(body(olive.get(f"/consents/{shop['number']}/")))
    declined = olive.post(f"/consents/{shop['number']}/{consent_id}/decline", data={"csrf_token": token})
    assert declined.status_code == 303
    assert "representative-requests" not in body(olive.get("/"))


def test_the_reminder_is_sent_once_three_working_days_before_it_lapses(app, shop, clock, runner):
    clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # Monday
    _ask(app, shop)
    with sessionmaker_of(app)() as db:
        assert consents.lapses_on(db.scalar(select(Consent))) == date(2026, 12, 7)
    clock.set(datetime(2026, 12, 1, 17, 0, tzinfo=UTC))  # four working days to go
    assert "0 request(s)" in runner.invoke(args=["consents", "remind"]).output
    clock.set(datetime(2026, 12, 2, 17, 0, tzinfo=UTC))  # three to go: remind
    for _ in range(2):  # the hourly run, and a second run at once
        result = runner.invoke(args=["consents", "remind"])
        assert result.exit_code == 0, result.output
    clock.set(datetime(2026, 12, 3, 17, 0, tzinfo=UTC))
    runner.invoke(args=["consents", "remind"])
    reminders = [s for s in _messages_to(app, shop[OWNER]) if s.startswith("Reminder")]
    assert reminders == ["Reminder: Riley Preparer's request for access lapses on 7 December"]
    assert len(_emails_to(app, OWNER)) == 2  # the day it arrived, and the reminder
    assert _messages_to(app, shop[DELEGATE]) == []
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Consent)).reminded_at == datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
        events = db.scalars(select(AuditEvent.event).where(AuditEvent.event == "consent.reminded")).all()
        assert len(events) == 1
    # The managers see that the reminder went, in words, in the access history.
    history = body(signed_in(app, OWNER).get(f"/access/{shop['number']}/history"))
    assert history.count("Managers reminded of a representative&#39;s request") == 1


def test_no_reminder_for_a_request_answered_or_already_lapsed(app, shop, clock, runner):
    clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))
    _ask(app, shop)
    with sessionmaker_of(app)() as db:
        db.scalar(select(Consent)).status = "declined"
        db.commit()
    clock.set(datetime(2026, 12, 2, 17, 0, tzinfo=UTC))
    assert "0 request(s)" in runner.invoke(args=["consents", "remind"]).output
    with sessionmaker_of(app)() as db:
        consent = db.scalar(select(Consent))
        consent.status = "requested"
        db.commit()
    clock.set(datetime(2026, 12, 8, 17, 0, tzinfo=UTC))  # lapsed on the 7th
    assert "0 request(s)" in runner.invoke(args=["consents", "remind"]).output
    assert [s for s in _messages_to(app, shop[OWNER]) if s.startswith("Reminder")] == []
