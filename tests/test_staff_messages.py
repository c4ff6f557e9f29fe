"""Secure messages, the agency's side (issue 6): staff write to an account
(everyone whose grant in force allows "receive messages") or to one person, each
recipient emailed once with no content and no link; they see the threads
awaiting a reply and answer them, which closes the item in the messages queue.
Officers and above; bad input is refused beside the field with nothing kept; a
double POST sends once."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from domain import messages, work
from domain.accounts import make_number
from models import Account, AuditEvent, Document, Grant, Message, MessagePost, MessageThread, OutboxEmail, WorkItem
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user
from tests.test_documents import make_pdf

OWNER, DELEGATE, VIEWER, STRANGER = (
    "owner@example.com",
    "delegate@example.com",
    "viewer@example.com",
    "stranger@example.com",
)
TODAY = date(2026, 11, 23)


@pytest.fixture
def lodge(app, clock):
    """Maple Lodge: Olive owns it, Dee is a delegate (both receive messages), Vic
    only views it; Sam has no access."""
    ids = {
        email: make_user(app, email=email, name=name)
        for email, name in (
            (OWNER, "Olive Owner"),
            (DELEGATE, "Dee Delegate"),
            (VIEWER, "Vic Viewer"),
            (STRANGER, "Sam Stranger"),
        )
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Maple Lodge Ltd.", opened_on=date(2026, 6, 1))
        give(db, clock(), ids[OWNER], account)
        grant = give(db, clock(), ids[DELEGATE], account, role="delegate")
        give(db, clock(), ids[VIEWER], account, role="viewer")
        db.commit()
        return {"number": account.number, "account_id": account.id, "delegate_grant": grant.id, **ids}


def _count(app, model, *where):
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def _token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _compose(
    staff, query: str, subject="About your levy", text="Please send your June receipts.", files=(), token=None
):
    path = f"/staff/messages/new?{query}"
    page = body(staff.get(path))
    data = {
        "subject": subject,
        "body": text,
        "csrf_token": csrf_from(page),
        "token": _token_of(page) if token is None else token,
    }
    if files:
        data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return staff.client.post(path, data=data, content_type="multipart/form-data")


def _staff_reply(staff, thread_id, text, files=()):
    page = body(staff.get(f"/staff/messages/{thread_id}"))
    data = {"body": text, "csrf_token": csrf_from(page), "token": _token_of(page)}
    if files:
        data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return staff.client.post(f"/staff/messages/{thread_id}/reply", data=data, content_type="multipart/form-data")


def _thread_id(response) -> int:
    return int(re.match(r"/staff/messages/(\d+)", response.headers["Location"]).group(1))


def _header(page: str) -> str:
    return re.search(r'<a href="/messages/" id="messages-link">([^<]*)</a>', page).group(1)


# --- Writing to an account or a person ---------------------------------------------------------


def test_staff_write_to_an_account_and_each_person_who_receives_messages_gets_it_once(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    page = body(officer.get(f"/staff/messages/new?account={lodge['number']}"))
    assert "Everyone on the account who receives messages: Dee Delegate, Olive Owner" in page
    assert "Write to Vic Viewer only" in page and 'aria-current="page">Messages<' in page
    response = _compose(officer, f"account={lodge['number']}")
    assert response.status_code == 303
    thread_id = _thread_id(response)
    with sessionmaker_of(app)() as db:
        thread = db.get(MessageThread, thread_id)
        assert (thread.account_id, thread.to_user_id, thread.started_by_user_id) == (
            lodge["account_id"],
            None,
            officer.id,
        )
        delivered = list(db.scalars(select(Message)))
        assert sorted(m.user_id for m in delivered) == sorted([lodge[OWNER], lodge[DELEGATE]])
        assert all(m.thread_id == thread_id and m.read_at is None for m in delivered)
        emails = list(db.scalars(select(OutboxEmail)))
        assert sorted(e.to_address for e in emails) == sorted([OWNER, DELEGATE])
        for email in emails:
            assert email.subject == "You have a new message in TRA Client Self-Service"
            for secret in ("levy", "receipts", "Maple", lodge["number"], "http", "Olive", "Dee"):
                assert secret not in email.subject + email.body_text, secret
        event = db.scalar(select(AuditEvent).where(AuditEvent.event == "message.sent"))
        assert event.actor_user_id == officer.id and event.account_id == lodge["account_id"]
        assert "levy" not in event.detail and "Olive" not in event.detail
    assert "Message sent to 2 people." in body(officer.get(f"/staff/messages/{thread_id}"))
    for email in (OWNER, DELEGATE):
        client = signed_in(app, email)
        assert _header(body(client.get("/"))) == "Messages (1 unread)"
        assert "Please send your June receipts." in body(client.get(f"/messages/{thread_id}"))
    for email in (VIEWER, STRANGER):
        assert signed_in(app, email).get(f"/messages/{thread_id}").status_code == 404


def test_a_double_post_sends_one_message(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    path = f"/staff/messages/new?account={lodge['number']}"
    page = body(officer.get(path))
    data = {"subject": "Once", "body": "Only once.", "csrf_token": csrf_from(page), "token": _token_of(page)}
    first, second = officer.client.post(path, data=data), officer.client.post(path, data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(app, MessageThread) == 1 and _count(app, Message) == 2 and _count(app, OutboxEmail) == 2


def test_staff_write_to_one_person_about_an_account_or_not(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    response = _compose(officer, f"account={lodge['number']}&person={lodge[VIEWER]}", subject="Your access")
    assert response.status_code == 303
    about_account = _thread_id(response)
    response = _compose(officer, f"person={lodge[STRANGER]}", subject="Your sign-in")
    assert response.status_code == 303
    personal = _thread_id(response)
    with sessionmaker_of(app)() as db:
        assert [(m.user_id, m.thread_id) for m in db.scalars(select(Message).order_by(Message.id))] == [
            (lodge[VIEWER], about_account),
            (lodge[STRANGER], personal),
        ]
        assert db.get(MessageThread, personal).account_id is None
        assert [e.to_address for e in db.scalars(select(OutboxEmail).order_by(OutboxEmail.id))] == [VIEWER, STRANGER]
    # A person about an account (even without "receive messages") reads it; nobody else on the account does.
    assert signed_in(app, VIEWER).get(f"/messages/{about_account}").status_code == 200
    assert signed_in(app, OWNER).get(f"/messages/{about_account}").status_code == 404
    assert "Your sign-in" in body(signed_in(app, STRANGER).get(f"/messages/{personal}"))
    # Someone with no access to the account cannot be written to about it.
    refused = _compose(officer, f"account={lodge['number']}&person={lodge[STRANGER]}", subject="Not theirs")
    assert refused.status_code == 400 and "This person has no access to the account now" in body(refused)
    assert _count(app, MessageThread) == 2


@pytest.mark.parametrize(
    "subject, text, message, field",
    [
        ("", "Body", "Enter a subject", "subject"),
        ("Subject", "   ", "Enter the message", "body"),
        ("S" * 201, "Body", "Enter a subject of 200 characters or fewer", "subject"),
        ("Subject", "x" * 5001, "Enter a message of 5,000 characters or fewer", "body"),
    ],
)
def test_a_bad_message_is_refused_beside_the_field_and_nothing_is_sent(
    app, clock, lodge, staff_member, subject, text, message, field
):
    officer = staff_member("officer")
    response = _compose(officer, f"account={lodge['number']}", subject=subject, text=text)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'<a href="#{field}">' in page
    assert _count(app, MessageThread) == 0 and _count(app, Message) == 0 and _count(app, OutboxEmail) == 0


def test_a_bad_attachment_is_named_and_nothing_is_kept(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    response = _compose(officer, f"account={lodge['number']}", files=[("letter.pdf", b"MZ\x90\x00" + b"\x00" * 64)])
    assert response.status_code == 400
    assert "“letter.pdf” is named as a PDF but it is a program: we cannot accept it" in body(response)
    assert _count(app, MessageThread) == 0 and _count(app, Document) == 0


def test_staff_attachments_reach_the_readers(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    pdf = make_pdf("Your statement")
    response = _compose(officer, f"account={lodge['number']}", files=[("statement.pdf", pdf)])
    assert response.status_code == 303
    thread_id = _thread_id(response)
    with sessionmaker_of(app)() as db:
        document = db.scalar(select(Document))
        assert document.uploaded_by_user_id == officer.id and document.message_post_id is not None
    olive = signed_in(app, OWNER)
    page = body(olive.get(f"/messages/{thread_id}"))
    assert "statement.pdf" in page and "Staff Officer" not in page  # the agency speaks, not the officer
    assert olive.get(f"/messages/{thread_id}/attachments/{document.id}").data == pdf
    staff_copy = officer.get(f"/staff/messages/{thread_id}/attachments/{document.id}")
    assert staff_copy.status_code == 200 and staff_copy.headers["Content-Security-Policy"] == "sandbox"


def test_who_to_write_to_is_checked(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    assert 'name="account"' in body(officer.get("/staff/messages/new"))
    bad = officer.get("/staff/messages/new?account=12ab")
    assert bad.status_code == 400 and "An account number has digits only" in body(bad)
    unknown = officer.get(f"/staff/messages/new?account={make_number('41', 999)}")
    assert unknown.status_code == 404 and "No account has this number" in body(unknown)
    for query in ("person=999999", "person=abc", f"person={officer.id}", f"person={2**40}"):
        assert officer.get(f"/staff/messages/new?{query}").status_code == 404, query
    # An account with nobody who receives messages: said, nothing sent.
    with sessionmaker_of(app)() as db:
        quiet = open_account(db, serial=73, legal_name="Quiet Ltd.")
        give(db, clock(), lodge[VIEWER], quiet, role="viewer")
        db.commit()
        number = quiet.number
    refused = _compose(officer, f"account={number}")
    assert refused.status_code == 400 and "Nobody on this account receives messages now" in body(refused)
    assert _count(app, MessageThread) == 0


def test_taxpayers_are_refused_the_staff_side(app, clock, lodge):
    olive = signed_in(app, OWNER)
    for path in ("/staff/messages/", "/staff/messages/new", "/staff/messages/1"):
        assert olive.get(path).status_code == 403, path


# --- Replies and the queue ---------------------------------------------------------------------


def _taxpayer_reply(app, email, thread_id, text, files=()):
    client = signed_in(app, email)
    page = body(client.get(f"/messages/{thread_id}"))
    data = {"body": text, "csrf_token": csrf_from(page), "token": _token_of(page)}
    if files:
        data["files"] = [(io.BytesIO(content), name) for name, content in files]
    response = client.post(f"/messages/{thread_id}/reply", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, body(response)
    return client


def test_read_reply_answer_the_whole_conversation(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    thread_id = _thread_id(_compose(officer, f"account={lodge['number']}"))
    clock.advance(minutes=5)
    olive = _taxpayer_reply(app, OWNER, thread_id, "Attached.", files=[("june.pdf", make_pdf("June"))])
    assert _header(body(olive.get("/"))) == "Messages"
    # The reply waits in the staff list and the messages queue.
    waiting = body(officer.get("/staff/messages/"))
    assert "About your levy" in waiting and "Awaiting a reply" in waiting
    assert "About your levy" in body(officer.get("/staff/messages/?show=all"))
    with sessionmaker_of(app)() as db:
        item = work.open_for_thread_id(db, thread_id)
        assert item.queue == "messages" and item.status == "received"
        document_id = db.scalar(select(Document.id))
    page = body(officer.get(f"/staff/messages/{thread_id}"))
    assert "<strong>Olive Owner</strong> replied" in page and "june.pdf" in page
    assert "Delivered to 2, read by 1" in page
    assert officer.get(f"/staff/messages/{thread_id}/attachments/{document_id}").status_code == 200
    # The agency answers: to everyone on the account, and the item closes. Both were
    # emailed about the first message ten minutes ago: within the hour, no second email.
    emails_before = _count(app, OutboxEmail)
    clock.advance(minutes=5)
    response = _staff_reply(officer, thread_id, "Thank you, we have them.")
    assert response.status_code == 303
    with sessionmaker_of(app)() as db:
        item = db.get(WorkItem, item.id)
        assert (item.status, item.outcome, item.decided_by_user_id) == ("decided", "answered", officer.id)
        post = db.scalar(select(MessagePost).order_by(MessagePost.id.desc()))
        assert post.from_agency and post.author_user_id == officer.id
        assert sorted(m.user_id for m in db.scalars(select(Message).where(Message.post_id == post.id))) == sorted(
            [lodge[OWNER], lodge[DELEGATE]]
        )
        assert db.get(MessageThread, thread_id).last_post_at == clock()
    assert _count(app, OutboxEmail) == emails_before == 2
    assert "No replies are waiting" in body(officer.get("/staff/messages/"))
    assert _header(body(olive.get("/"))) == "Messages (1 unread)"
    assert "Thank you, we have them." in body(olive.get(f"/messages/{thread_id}"))
    # A new reply opens a new item.
    _taxpayer_reply(app, DELEGATE, thread_id, "One more thing.")
    assert _count(app, WorkItem, WorkItem.thread_id == thread_id) == 2


def test_a_bad_staff_reply_is_refused_and_nothing_changes(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    thread_id = _thread_id(_compose(officer, f"account={lodge['number']}"))
    _taxpayer_reply(app, OWNER, thread_id, "Question?")
    for text, message in (("", "Enter the reply"), ("y" * 5001, "Enter a message of 5,000 characters or fewer")):
        response = _staff_reply(officer, thread_id, text)
        assert response.status_code == 400 and message in body(response)
    assert _count(app, MessagePost) == 2 and _count(app, WorkItem, WorkItem.status == "received") == 1


def test_an_officer_cannot_answer_a_reply_another_officer_is_working_on(app, clock, lodge, staff_member):
    first, second, supervisor = staff_member("officer"), staff_member("officer"), staff_member("supervisor")
    thread_id = _thread_id(_compose(first, f"account={lodge['number']}"))
    _taxpayer_reply(app, OWNER, thread_id, "Question?")
    with sessionmaker_of(app)() as db:
        from models import User

        item = work.open_for_thread_id(db, thread_id)
        work.take(db, clock(), item, db.get(User, first.id))
        db.commit()
    refused = _staff_reply(second, thread_id, "I will answer.")
    assert refused.status_code == 400 and "Someone else is working on this item" in body(refused)
    assert _count(app, MessagePost) == 2
    assert _staff_reply(supervisor, thread_id, "Answered by a supervisor.").status_code == 303
    assert _count(app, WorkItem, WorkItem.outcome == "answered") == 1


def test_a_reply_with_nobody_left_to_receive_it_is_refused(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    thread_id = _thread_id(_compose(officer, f"account={lodge['number']}&person={lodge[DELEGATE]}"))
    with sessionmaker_of(app)() as db:
        db.get(Grant, lodge["delegate_grant"]).revoked_at = clock()
        db.commit()
    refused = _staff_reply(officer, thread_id, "Are you there?")
    assert refused.status_code == 400 and "Nobody can receive a reply in this conversation now" in body(refused)
    assert _count(app, MessagePost) == 1


def test_unknown_threads_are_404_for_staff(app, clock, staff_member):
    officer = staff_member("officer")
    for path in (
        "/staff/messages/999999",
        f"/staff/messages/{2**40}",
        "/staff/messages/0",
        "/staff/messages/1/attachments/1",
    ):
        assert officer.get(path).status_code == 404, path


def test_threads_of_account_lists_the_accounts_conversations(app, clock, lodge, staff_member):
    officer = staff_member("officer")
    _compose(officer, f"account={lodge['number']}", subject="First")
    clock.advance(minutes=1)
    _compose(officer, f"account={lodge['number']}&person={lodge[VIEWER]}", subject="Second")
    _compose(officer, f"person={lodge[STRANGER]}", subject="Elsewhere")
    with sessionmaker_of(app)() as db:
        rows = messages.threads_of_account(db, lodge["account_id"])
        assert [r.thread.subject for r in rows] == ["Second", "First"]
        assert rows[0].person.id == lodge[VIEWER] and rows[1].person is None and rows[1].waiting is None
        assert rows[0].account.id == lodge["account_id"]
        assert db.get(Account, lodge["account_id"]) is not None
