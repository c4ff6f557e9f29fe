"""Online mail (issue 5): each person's own messages, newest first, unread ones
marked in words; opening one marks it read (bookkeeping at the end of the GET);
anyone else's message is a 404. The email only says a message is waiting."""
from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from domain import messages
from models import Account, AuditEvent, Message, OutboxEmail
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user

ANN, BO = "ann@example.com", "bo@example.com"


def _send(app, clock, user_ids, subject, body_text="Hello.", account_id=None):
    with sessionmaker_of(app)() as db:
        sent = messages.send(db, clock(), user_ids=user_ids, account_id=account_id, subject=subject, body=body_text)
        db.commit()
        return [m.id for m in sent]


def test_the_inbox_shows_only_ones_own_messages_newest_first_with_unread_marked(app, clock):
    ann, bo = make_user(app, email=ANN, name="Ann Able"), make_user(app, email=BO, name="Bo Baker")
    _send(app, clock, [ann], "First for Ann")
    clock.advance(minutes=5)
    _send(app, clock, [ann], "Second for Ann")
    _send(app, clock, [bo], "Only for Bo")
    client = signed_in(app, ANN)
    page = body(client.get("/messages/"))
    assert "You have 2 messages, 2 unread." in page
    assert page.index("Second for Ann") < page.index("First for Ann")
    assert "Only for Bo" not in page
    # Unread: bold and the word, not colour alone.
    assert page.count('<strong class="tag">Unread</strong>') == 2
    assert re.search(r"<strong><a href=\"/messages/\d+\">Second for Ann</a></strong>", page)
    make_user(app, email="nobody@example.com", name="No Body")
    assert "You have no messages." in body(signed_in(app, "nobody@example.com").get("/messages/"))


def test_opening_a_message_marks_it_read_and_nothing_else(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    first, second = _send(app, clock, [ann], "Your notice", "Line one.\nLine two.")[0], _send(
        app, clock, [ann], "Another")[0]
    client = signed_in(app, ANN)
    with sessionmaker_of(app)() as db:
        audit_before = db.scalar(select(func.count(AuditEvent.id)))
    clock.advance(minutes=1)
    response = client.get(f"/messages/{first}")
    assert response.status_code == 200
    page = body(response)
    assert "<h1 class=\"heading-l\">Your notice</h1>" in page and "Line one.\nLine two." in page
    with sessionmaker_of(app)() as db:
        read = db.get(Message, first)
        assert read.read_at == clock() and db.get(Message, second).read_at is None
        assert messages.unread_count(db, ann) == 1
        assert db.scalar(select(func.count(AuditEvent.id))) == audit_before
    inbox = body(client.get("/messages/"))
    assert "You have 2 messages, 1 unread." in inbox and inbox.count('<strong class="tag">Unread</strong>') == 1
    # Opening it again keeps the first time it was read.
    clock.advance(minutes=1)
    client.get(f"/messages/{first}")
    with sessionmaker_of(app)() as db:
        assert db.get(Message, first).read_at == clock() - timedelta(minutes=1)


def test_another_persons_message_and_unknown_ids_are_404(app, clock):
    make_user(app, email=ANN, name="Ann Able")
    bo = make_user(app, email=BO, name="Bo Baker")
    bos = _send(app, clock, [bo], "Private to Bo")[0]
    client = signed_in(app, ANN)
    for path in (f"/messages/{bos}", "/messages/999999", f"/messages/{2**31}", f"/messages/{2**63}",
                 f"/messages/{10**40}", "/messages/0", "/messages/-1", "/messages/abc"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Private to Bo" not in body(response)
    with sessionmaker_of(app)() as db:
        assert db.get(Message, bos).read_at is None  # looking does not mark another's message


def test_messages_need_a_sign_in(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    ids = _send(app, clock, [ann], "Secret")
    client = app.test_client()
    for path in ("/messages/", f"/messages/{ids[0]}"):
        response = client.get(path)
        assert response.status_code == 303 and "/auth/sign-in" in response.headers["Location"]


def test_send_tells_each_person_once_by_email_without_details(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    sent = _send(app, clock, [ann, ann, 424242], "Refund paid for Acme", "Account 4100000019, $1,234.00")
    assert len(sent) == 1  # once each; nobody for an unknown id
    with sessionmaker_of(app)() as db:
        emails = list(db.scalars(select(OutboxEmail)))
    assert len(emails) == 1 and emails[0].to_address == ANN
    assert emails[0].subject == "You have a new message in TRA Client Self-Service"
    for secret in ("Acme", "4100000019", "1,234", "Ann", "http"):
        assert secret not in emails[0].subject + emails[0].body_text


def test_everyone_with_access_means_grants_in_force_today(app, clock):
    names = ("owner", "viewer", "revoked", "ended", "future", "disabled", "elsewhere")
    ids = {n: make_user(app, email=f"{n}@example.com", name=n.title()) for n in names}
    today = date(2026, 11, 23)
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=71, legal_name="Acme Ltd.")
        other = open_account(db, serial=72, legal_name="Other Ltd.")
        give(db, clock(), ids["owner"], account)
        give(db, clock(), ids["owner"], account, role="viewer")  # two grants: still one message
        give(db, clock(), ids["viewer"], account, role="viewer", permissions=("view_returns",))
        give(db, clock(), ids["revoked"], account).revoked_at = clock()
        give(db, clock(), ids["ended"], account, role="representative").valid_until = today - timedelta(days=1)
        give(db, clock(), ids["future"], account, role="representative").valid_from = today + timedelta(days=1)
        give(db, clock(), ids["disabled"], account)
        give(db, clock(), ids["elsewhere"], other)
        db.flush()
        from models import User
        db.get(User, ids["disabled"]).disabled_at = clock()
        sent = messages.to_everyone_with_access(db, clock(), db.get(Account, account.id), "Subject", "Body", today)
        db.commit()
        assert sorted(m.user_id for m in sent) == sorted([ids["owner"], ids["viewer"]])
        assert all(m.account_id == account.id for m in sent)
        assert sorted(e.to_address for e in db.scalars(select(OutboxEmail))) == ["owner@example.com",
                                                                                   "viewer@example.com"]


def test_any_message_id_answers_without_an_error(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    own = _send(app, clock, [ann], "Mine")[0]
    client = signed_in(app, ANN)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(message_id=st.one_of(st.integers(min_value=0, max_value=2**80), st.just(own)))
    def open_any(message_id):
        response = client.get(f"/messages/{message_id}")
        assert response.status_code == (200 if message_id == own else 404)

    open_any()
