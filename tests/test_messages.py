"""Secure messages, the taxpayer's side (issues 5 and 6): each message is a
thread; the inbox lists the threads the person takes part in, newest activity
first, unread ones marked in words; opening one marks the person's copies read
(bookkeeping at the end of the GET) and the header's unread count drops; a reply
(with attachments through the document checks) reaches the staff's messages
queue; a thread to an account is read only by those whose grant in force allows
"receive messages"; anyone else gets 404. The email only says a message is
waiting. Automatic messages: a return received, access granted or removed."""

from __future__ import annotations

import io
import os
import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain import consents, enrolment, messages
from domain.access import Caps
from models import (
    Account,
    AuditEvent,
    Consent,
    Document,
    DocumentContent,
    Grant,
    Message,
    MessagePost,
    MessageThread,
    OutboxEmail,
    User,
    WorkItem,
)
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user
from tests.test_documents import make_pdf

ANN, BO = "ann@example.com", "bo@example.com"
OWNER, DELEGATE, VIEWER, REP, STRANGER = (
    "owner@example.com",
    "delegate@example.com",
    "viewer@example.com",
    "rep@example.com",
    "stranger@example.com",
)
TODAY = date(2026, 11, 23)


def _send(app, clock, user_ids, subject, body_text="Hello.", account_id=None):
    """Automatic messages, one thread each: the ids of the threads."""
    with sessionmaker_of(app)() as db:
        sent = messages.send(db, clock(), user_ids=user_ids, account_id=account_id, subject=subject, body=body_text)
        db.commit()
        return [m.thread_id for m in sent]


def _count(app, model, *where):
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def lodge(app, clock):
    """Maple Lodge: Olive owns it (everything, managing access included); Dee is a
    delegate (receives messages); Vic only views; Rae represents it (a
    representative does not receive messages by default); Sam has no access."""
    ids = {
        email: make_user(app, email=email, name=name)
        for email, name in (
            (OWNER, "Olive Owner"),
            (DELEGATE, "Dee Delegate"),
            (VIEWER, "Vic Viewer"),
            (REP, "Rae Rep"),
            (STRANGER, "Sam Stranger"),
        )
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Maple Lodge Ltd.", opened_on=date(2026, 6, 1))
        give(db, clock(), ids[OWNER], account)
        grant = give(db, clock(), ids[DELEGATE], account, role="delegate")
        give(db, clock(), ids[VIEWER], account, role="viewer")
        give(db, clock(), ids[REP], account, role="representative")
        db.commit()
        return {"number": account.number, "account_id": account.id, "delegate_grant": grant.id, **ids}


def _to_account(app, clock, lodge, subject="About your levy", text="Please send your receipts."):
    with sessionmaker_of(app)() as db:
        sent = messages.to_everyone_with_access(db, clock(), db.get(Account, lodge["account_id"]), subject, text, TODAY)
        db.commit()
        return sent[0].thread_id


def _token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _reply(client, thread_id, text, files=(), token=None):
    page = body(client.get(f"/messages/{thread_id}"))
    data = {"body": text, "csrf_token": csrf_from(page), "token": _token_of(page) if token is None else token}
    if files:
        data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(f"/messages/{thread_id}/reply", data=data, content_type="multipart/form-data")


def _header(page: str) -> str:
    return re.search(r'<a href="/messages/" id="messages-link">([^<]*)</a>', page).group(1)


# --- The inbox and reading --------------------------------------------------------------


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


def test_opening_a_thread_marks_the_persons_copies_read_and_nothing_else(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    first, second = (
        _send(app, clock, [ann], "Your notice", "Line one.\nLine two.")[0],
        _send(app, clock, [ann], "Another")[0],
    )
    client = signed_in(app, ANN)
    assert _header(body(client.get("/"))) == "Messages (2 unread)"
    with sessionmaker_of(app)() as db:
        audit_before = db.scalar(select(func.count(AuditEvent.id)))
    clock.advance(minutes=1)
    response = client.get(f"/messages/{first}")
    assert response.status_code == 200
    page = body(response)
    assert '<h1 class="heading-l">Your notice</h1>' in page and "Line one.\nLine two." in page
    assert "<strong>Tax and Revenue Administration</strong>" in page
    # The page that reads it already counts it read.
    assert _header(page) == "Messages (1 unread)"
    with sessionmaker_of(app)() as db:
        read = db.scalar(select(Message).where(Message.thread_id == first))
        assert read.read_at == clock()
        assert db.scalar(select(Message).where(Message.thread_id == second)).read_at is None
        assert messages.unread_count(db, ann) == 1
        assert db.scalar(select(func.count(AuditEvent.id))) == audit_before
    inbox = body(client.get("/messages/"))
    assert "You have 2 messages, 1 unread." in inbox and inbox.count('<strong class="tag">Unread</strong>') == 1
    # Opening it again keeps the first time it was read.
    clock.advance(minutes=1)
    client.get(f"/messages/{first}")
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Message).where(Message.thread_id == first)).read_at == clock() - timedelta(minutes=1)
    client.get(f"/messages/{second}")
    assert _header(body(client.get("/"))) == "Messages"


def test_the_header_counts_unread_messages_for_taxpayers_only(app, clock, staff_member):
    ann = make_user(app, email=ANN, name="Ann Able")
    _send(app, clock, [ann], "One")
    _send(app, clock, [ann], "Two")
    client = signed_in(app, ANN)
    for path in ("/", "/profile/", "/messages/"):
        assert _header(body(client.get(path))) == "Messages (2 unread)", path
    assert "unread)" not in body(app.test_client().get("/auth/sign-in"))
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        messages.send(db, clock(), user_ids=[officer.id], account_id=None, subject="For staff", body="x")
        db.commit()
    assert "unread)" not in body(officer.get("/profile/"))


def test_another_persons_thread_and_unknown_ids_are_404(app, clock):
    make_user(app, email=ANN, name="Ann Able")
    bo = make_user(app, email=BO, name="Bo Baker")
    bos = _send(app, clock, [bo], "Private to Bo")[0]
    client = signed_in(app, ANN)
    for path in (
        f"/messages/{bos}",
        "/messages/999999",
        f"/messages/{2**31}",
        f"/messages/{2**63}",
        f"/messages/{10**40}",
        "/messages/0",
        "/messages/-1",
        "/messages/abc",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Private to Bo" not in body(response)
    page = body(client.get("/messages/"))
    assert _reply(signed_in(app, BO), bos, "Mine").status_code == 303
    response = client.post(
        f"/messages/{bos}/reply", data={"body": "Not mine", "token": "t" * 30, "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 404
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Message).where(Message.thread_id == bos)).read_at is not None  # Bo's own visit
        assert db.scalar(select(func.count(MessagePost.id)).where(MessagePost.body == "Not mine")) == 0


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
        thread = db.get(MessageThread, sent[0])
        assert thread.to_user_id == ann and thread.started_by_user_id is None
    assert len(emails) == 1 and emails[0].to_address == ANN
    assert emails[0].subject == "You have a new message in TRA Client Self-Service"
    for secret in ("Acme", "4100000019", "1,234", "Ann", "http"):
        assert secret not in emails[0].subject + emails[0].body_text
    assert "never ask for your password" in emails[0].body_text


def test_everyone_with_access_means_grants_in_force_today_that_receive_messages(app, clock):
    names = ("owner", "delegate", "viewer", "revoked", "ended", "future", "disabled", "elsewhere")
    ids = {n: make_user(app, email=f"{n}@example.com", name=n.title()) for n in names}
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=71, legal_name="Acme Ltd.")
        other = open_account(db, serial=72, legal_name="Other Ltd.")
        give(db, clock(), ids["owner"], account)
        give(db, clock(), ids["owner"], account, role="delegate")  # two grants: still one message
        give(db, clock(), ids["delegate"], account, role="delegate")
        give(db, clock(), ids["viewer"], account, role="viewer")  # no "receive messages"
        give(db, clock(), ids["revoked"], account).revoked_at = clock()
        ended = give(db, clock(), ids["ended"], account, role="delegate")
        ended.valid_until = TODAY - timedelta(days=1)
        give(db, clock(), ids["future"], account, role="delegate").valid_from = TODAY + timedelta(days=1)
        give(db, clock(), ids["disabled"], account)
        give(db, clock(), ids["elsewhere"], other)
        db.flush()
        db.get(User, ids["disabled"]).disabled_at = clock()
        sent = messages.to_everyone_with_access(db, clock(), db.get(Account, account.id), "Subject", "Body", TODAY)
        db.commit()
        assert sorted(m.user_id for m in sent) == sorted([ids["owner"], ids["delegate"]])
        assert all(m.account_id == account.id for m in sent) and len({m.thread_id for m in sent}) == 1
        thread = db.get(MessageThread, sent[0].thread_id)
        assert thread.account_id == account.id and thread.to_user_id is None
        assert sorted(e.to_address for e in db.scalars(select(OutboxEmail))) == [
            "delegate@example.com",
            "owner@example.com",
        ]
        # Nobody to tell (only a viewer): nothing is made.
        quiet = open_account(db, serial=73, legal_name="Quiet Ltd.")
        give(db, clock(), ids["viewer"], quiet, role="viewer")
        assert messages.to_everyone_with_access(db, clock(), quiet, "S", "B", TODAY) == []
        assert db.scalar(select(func.count(MessageThread.id)).where(MessageThread.account_id == quiet.id)) == 0


def test_any_thread_id_answers_without_an_error(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    own = _send(app, clock, [ann], "Mine")[0]
    client = signed_in(app, ANN)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(thread_id=st.one_of(st.integers(min_value=0, max_value=2**80), st.just(own)))
    def open_any(thread_id):
        response = client.get(f"/messages/{thread_id}")
        assert response.status_code == (200 if thread_id == own else 404)

    open_any()


# --- Who reads a thread to an account ---------------------------------------------------------


def test_a_thread_to_an_account_is_read_by_those_who_receive_messages_only(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    for email in (OWNER, DELEGATE):
        client = signed_in(app, email)
        assert "About your levy" in body(client.get("/messages/"))
        page = body(client.get(f"/messages/{thread_id}"))
        assert "Please send your receipts." in page and "About Maple Lodge Ltd." in page
    for email in (VIEWER, REP, STRANGER):
        client = signed_in(app, email)
        assert "About your levy" not in body(client.get("/messages/"))
        assert client.get(f"/messages/{thread_id}").status_code == 404
    # Someone given access later sees it once the agency writes in it again.
    late = make_user(app, email="late@example.com", name="Lee Late")
    with sessionmaker_of(app)() as db:
        give(db, clock(), late, db.get(Account, lodge["account_id"]), role="delegate")
        db.commit()
    assert signed_in(app, "late@example.com").get(f"/messages/{thread_id}").status_code == 404


def test_a_removed_person_gets_404_on_the_thread_and_cannot_reply(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    dee = signed_in(app, DELEGATE)
    page = body(dee.get(f"/messages/{thread_id}"))
    with sessionmaker_of(app)() as db:
        db.get(Grant, lodge["delegate_grant"]).revoked_at = clock()
        db.commit()
    assert dee.get(f"/messages/{thread_id}").status_code == 404
    response = dee.post(
        f"/messages/{thread_id}/reply",
        data={"body": "Still here?", "token": _token_of(page), "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 404
    assert "About your levy" not in body(dee.get("/messages/"))
    assert _count(app, MessagePost, MessagePost.from_agency.is_(False)) == 0
    assert _count(app, WorkItem) == 0


# --- Replying -------------------------------------------------------------------------------------


def test_a_reply_with_an_attachment_reaches_the_messages_queue_once(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    dee = signed_in(app, DELEGATE)
    clock.advance(minutes=3)
    page = body(dee.get(f"/messages/{thread_id}"))
    token = _token_of(page)
    pdf = make_pdf("June receipts")
    data = {
        "body": "Here they are.\r\nAll of June.",
        "token": token,
        "csrf_token": csrf_from(page),
        "files": [(io.BytesIO(pdf), "receipts.pdf")],
    }
    response = dee.post(f"/messages/{thread_id}/reply", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/messages/{thread_id}#post-")
    # The same form again (a double click): the same answer, nothing more kept.
    again = dee.post(
        f"/messages/{thread_id}/reply",
        content_type="multipart/form-data",
        data={**data, "files": [(io.BytesIO(pdf), "receipts.pdf")]},
    )
    assert again.status_code == 303 and again.headers["Location"] == response.headers["Location"]
    with sessionmaker_of(app)() as db:
        post = db.scalar(select(MessagePost).where(MessagePost.from_agency.is_(False)))
        assert post.body == "Here they are.\nAll of June." and post.author_user_id == lodge[DELEGATE]
        assert db.scalar(select(func.count(MessagePost.id))) == 2
        document = db.scalar(select(Document))
        assert document.message_post_id == post.id and document.account_id == lodge["account_id"]
        assert document.uploaded_name == "receipts.pdf" and document.service_request_id is None
        item = db.scalar(select(WorkItem))
        assert (item.queue, item.status, item.thread_id, item.account_id) == (
            "messages",
            "received",
            thread_id,
            lodge["account_id"],
        )
        assert db.get(MessageThread, thread_id).last_post_at == clock()
        assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.event == "message.reply_received")) == 1
    # Everyone in the thread sees the reply with its author and the file.
    olive = signed_in(app, OWNER)
    shown = body(olive.get(f"/messages/{thread_id}"))
    assert "<strong>Dee Delegate</strong> replied" in shown and "receipts.pdf" in shown
    download = olive.get(f"/messages/{thread_id}/attachments/{document.id}")
    assert download.status_code == 200 and download.data == pdf
    assert download.headers["Content-Security-Policy"] == "sandbox"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in download.headers["Content-Disposition"]
    for email in (VIEWER, STRANGER):
        assert signed_in(app, email).get(f"/messages/{thread_id}/attachments/{document.id}").status_code == 404
    # The attachment belongs to the conversation, not the account's documents page.
    assert "receipts.pdf" not in body(olive.get(f"/documents/{lodge['number']}/"))
    assert olive.get(f"/documents/{lodge['number']}/{document.id}/download").status_code == 404
    # A second reply before the agency answers: still one item.
    assert _reply(olive, thread_id, "And July soon.").status_code == 303
    assert _count(app, WorkItem) == 1


def test_an_attachment_of_another_thread_is_not_found(app, clock, lodge):
    first, second = _to_account(app, clock, lodge, "First"), _to_account(app, clock, lodge, "Second")
    olive = signed_in(app, OWNER)
    assert _reply(olive, first, "With a file", files=[("a.pdf", make_pdf())]).status_code == 303
    with sessionmaker_of(app)() as db:
        document_id = db.scalar(select(Document.id))
    assert olive.get(f"/messages/{first}/attachments/{document_id}").status_code == 200
    for path in (
        f"/messages/{second}/attachments/{document_id}",
        f"/messages/{first}/attachments/999999",
        f"/messages/{first}/attachments/{2**40}",
    ):
        assert olive.get(path).status_code == 404, path


@pytest.mark.parametrize(
    "text, files, field, message",
    [
        ("", (), "body", "Enter your reply"),
        (" \r\n ", (), "body", "Enter your reply"),
        ("x" * 5001, (), "body", "Enter a reply of 5,000 characters or fewer"),
        (
            "Here you go",
            [("notes.pdf", b"<html><script>alert(1)</script></html>")],
            "files",
            "“notes.pdf” is named as a PDF but it is a web page (HTML): we cannot accept it",
        ),
        (
            "Here you go",
            [("good.pdf", b"%PDF-1.4 broken"), ("fine.pdf", None)],
            "files",
            "“good.pdf” looks incomplete. Save the PDF again and upload it",
        ),
    ],
)
def test_a_bad_reply_is_refused_beside_the_field_and_nothing_is_kept(app, clock, lodge, text, files, field, message):
    thread_id = _to_account(app, clock, lodge)
    olive = signed_in(app, OWNER)
    files = [(name, content if content is not None else make_pdf()) for name, content in files]
    response = _reply(olive, thread_id, text, files=files)
    assert response.status_code == 400
    page = body(response)
    assert message.replace("“", "&#8220;") in page or message in page
    assert f'<a href="#{field}">' in page and 'aria-invalid="true"' in page
    if files:
        assert "The message was not sent and none of the files were kept." in page
    assert _count(app, MessagePost) == 1 and _count(app, Document) == 0 and _count(app, DocumentContent) == 0
    assert _count(app, WorkItem) == 0
    folder = app.config["DOCUMENT_DIR"]
    assert not os.path.isdir(folder) or not os.listdir(folder)


def test_a_reply_without_its_forms_token_is_refused(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    response = _reply(signed_in(app, OWNER), thread_id, "Hello", token="")
    assert response.status_code == 400 and "This form has expired" in body(response)
    assert _count(app, MessagePost) == 1


def test_a_thread_to_one_person_has_no_attachments_and_takes_replies(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    thread_id = _send(app, clock, [ann], "Your sign-in")[0]
    client = signed_in(app, ANN)
    page = body(client.get(f"/messages/{thread_id}"))
    assert 'type="file"' not in page and "To you" in page
    refused = _reply(client, thread_id, "A file", files=[("a.pdf", make_pdf())])
    assert refused.status_code == 400 and "Files can be attached only to messages about an account" in body(refused)
    assert _reply(client, thread_id, "Thanks").status_code == 303
    with sessionmaker_of(app)() as db:
        item = db.scalar(select(WorkItem))
        assert item.queue == "messages" and item.account_id is None and item.thread_id == thread_id


def test_the_reply_form_swaps_as_a_fragment_for_htmx(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    olive = signed_in(app, OWNER)
    page = body(olive.get(f"/messages/{thread_id}"))
    assert 'data-hx-target="#thread"' in page and '<div id="thread">' in page
    response = olive.post(
        f"/messages/{thread_id}/reply",
        headers={"HX-Request": "true"},
        data={"body": "", "token": _token_of(page), "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 400 and body(response).startswith('<div id="thread">')
    assert "HX-Request" in response.headers["Vary"]
    sent = olive.post(
        f"/messages/{thread_id}/reply",
        headers={"HX-Request": "true"},
        data={"body": "Yes", "token": _token_of(page), "csrf_token": csrf_from(page)},
    )
    assert sent.status_code == 200 and sent.headers["HX-Push-Url"].startswith(f"/messages/{thread_id}")
    assert sent.headers["HX-Retarget"] == "body" and "Yes" in body(sent)


# --- Automatic messages -------------------------------------------------------------------------


def test_a_return_received_is_told_to_those_who_receive_messages(app, clock, lodge):
    from tests.test_filing import CASES, _submit, _to_check

    olive = signed_in(app, OWNER)
    page = _to_check(olive, lodge["number"], "2026-10-31", CASES["TL"][0])
    done = _submit(olive, lodge["number"], "2026-10-31", page)
    reference = done.headers["Location"].rsplit("/", 1)[1]
    _submit(olive, lodge["number"], "2026-10-31", page)  # a double click: told once
    with sessionmaker_of(app)() as db:
        sent = list(db.scalars(select(Message)))
        assert sorted(m.user_id for m in sent) == sorted([lodge[OWNER], lodge[DELEGATE]])
        for message in sent:
            assert message.subject == "We received your Tourism Levy return"
            assert reference in message.body and "1–31 October 2026" in message.body
            assert message.account_id == lodge["account_id"]
        emails = list(db.scalars(select(OutboxEmail)))
        assert sorted(e.to_address for e in emails) == sorted([OWNER, DELEGATE])
        for email in emails:
            for secret in (reference, "Maple", lodge["number"], "http"):
                assert secret not in email.body_text + email.subject
    assert "We received your Tourism Levy return" in body(signed_in(app, DELEGATE).get("/messages/"))
    assert "We received your" not in body(signed_in(app, VIEWER).get("/messages/"))


def test_access_granted_with_a_pin_tells_the_person_and_the_managers(app, clock, lodge):
    newcomer = make_user(app, email="new@example.com", name="Nia Newcomer")
    with sessionmaker_of(app)() as db:
        pin = enrolment.issue_pin(
            db, clock(), db.get(Account, lodge["account_id"]), role="delegate", issued_by_user_id=lodge[OWNER]
        )
        db.commit()
    client = signed_in(app, "new@example.com")
    page = body(client.get("/enrol/"))
    response = client.post("/enrol/", data={"number": lodge["number"], "pin_code": pin, "csrf_token": csrf_from(page)})
    assert response.status_code == 303
    assert "You now have access to Maple Lodge Ltd." in body(client.get("/messages/"))
    with sessionmaker_of(app)() as db:
        told = {m.user_id: m for m in db.scalars(select(Message))}
        assert set(told) == {newcomer, lodge[OWNER]}  # the delegate manages nothing
        assert told[lodge[OWNER]].subject == "Nia Newcomer now has access to Maple Lodge Ltd."
        assert told[lodge[OWNER]].account_id == lodge["account_id"]
        assert _count(app, OutboxEmail) == 2
    owner = signed_in(app, OWNER)
    assert _header(body(owner.get("/"))) == "Messages (1 unread)"
    assert "Nia Newcomer now has access" in body(owner.get("/messages/"))


def test_access_removed_tells_the_person_and_the_managers_and_hides_the_accounts_threads(app, clock, lodge):
    thread_id = _to_account(app, clock, lodge)
    dee = signed_in(app, DELEGATE)
    assert _header(body(dee.get("/"))) == "Messages (1 unread)"
    olive = signed_in(app, OWNER)
    path = f"/access/{lodge['number']}/people/{lodge['delegate_grant']}/remove"
    response = olive.post(path, data={"csrf_token": csrf_from(body(olive.get(path)))})
    assert response.status_code == 303
    inbox = body(dee.get("/messages/"))
    assert "Your access to Maple Lodge Ltd. has ended" in inbox and "About your levy" not in inbox
    # What Dee can no longer open no longer counts as waiting.
    assert _header(body(dee.get("/"))) == "Messages (1 unread)"
    assert dee.get(f"/messages/{thread_id}").status_code == 404
    assert "Dee Delegate no longer has access to Maple Lodge Ltd." in body(olive.get("/messages/"))


def test_a_consent_approved_then_revoked_tells_the_managers_and_the_representative(app, clock, lodge):
    rep = make_user(app, email="riley@example.com", name="Riley Preparer")
    with sessionmaker_of(app)() as db:
        account = db.get(Account, lodge["account_id"])
        owner_grant = db.scalar(select(Grant).where(Grant.user_id == lodge[OWNER]))
        consent = consents.sign(
            db,
            clock(),
            TODAY,
            account=account,
            actor=owner_grant,
            name="Riley Preparer",
            email="riley@example.com",
            firm_name=None,
            permissions=["view_returns"],
            starts_on=TODAY,
            ends_on=None,
            caps=Caps(owners=5, representatives=5),
        )
        _row, pin = consents.approve(db, clock(), consent=consent, staff_user_id=None)
        db.commit()
        assert [m.subject for m in db.scalars(select(Message).where(Message.user_id == lodge[OWNER]))] == [
            "We approved the consent for Riley Preparer"
        ]
        assert enrolment.enrol(db, clock(), "secret", user_id=rep, number=lodge["number"], pin=pin).result == "linked"
        consents.revoke(db, clock(), account=account, actor=owner_grant, consent=db.get(Consent, consent.id))
        db.commit()
        subjects = [m.subject for m in db.scalars(select(Message).where(Message.user_id == rep).order_by(Message.id))]
        assert subjects == ["You now have access to Maple Lodge Ltd.", "Your access to Maple Lodge Ltd. has ended"]
        to_owner = [
            m.subject for m in db.scalars(select(Message).where(Message.user_id == lodge[OWNER]).order_by(Message.id))
        ]
        assert to_owner[1:] == [
            "Riley Preparer now has access to Maple Lodge Ltd.",
            "Riley Preparer no longer has access to Maple Lodge Ltd.",
        ]


def test_files_too_large_to_send_are_refused_beside_the_field(app_with, clock, lodge):
    small = app_with(UPLOAD_MAX_BYTES=1024, MAX_FILES_PER_UPLOAD=1)
    thread_id = _to_account(small, clock, lodge)
    big = b"%PDF-1.4\n" + b"0" * 200_000
    response = _reply(signed_in(small, OWNER), thread_id, "A big one", files=[("big.pdf", big)])
    assert response.status_code == 413
    page = body(response)
    assert "The files you selected are too large to send" in page and 'id="files-error"' in page
    assert _count(small, MessagePost) == 1 and _count(small, Document) == 0


def test_attachments_count_against_the_accounts_quota(app_with, clock, lodge):
    """Files sent with a reply are kept as the account's documents, so they count
    against its quota like an upload (issue 8, ASVS 5.0 5.2.4): over it, 422 beside
    the field and nothing kept, not the post either."""
    pdf = make_pdf("June receipts")
    tight = app_with(DOCUMENT_QUOTA_FILES=1)
    thread_id = _to_account(tight, clock, lodge)
    olive = signed_in(tight, OWNER)
    assert _reply(olive, thread_id, "The first", files=[("one.pdf", pdf)]).status_code == 303
    response = _reply(olive, thread_id, "The second", files=[("two.pdf", pdf)])
    assert response.status_code == 422
    page = body(response)
    assert 'id="files-error"' in page and "The second" in page
    assert _count(tight, MessagePost) == 2 and _count(tight, Document) == 1
