"""Writing to the agency (issue 20, item 2): whoever reads an account's messages
may start a conversation about it, with a topic, a subject, the text and files
through the document checks; it is sent once however often the form is sent,
lands in the staff's messages queue with its topic, and the officer's answer
reaches the writer. Anyone else gets the same 404 as no account at all."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from models import AuditEvent, Document, Message, MessagePost, MessageThread, OutboxEmail, WorkItem
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user
from tests.test_documents import make_pdf

OWNER, DELEGATE, VIEWER, REP, STRANGER = (
    "owner@example.com",
    "delegate@example.com",
    "viewer@example.com",
    "rep@example.com",
    "stranger@example.com",
)


@pytest.fixture
def lodge(app, clock):
    """Maple Lodge: Olive owns it and Dee is a delegate (both read its messages);
    Vic only views it and Rae represents it (neither reads its messages); Sam has no access."""
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
        give(db, clock(), ids[DELEGATE], account, role="delegate")
        give(db, clock(), ids[VIEWER], account, role="viewer")
        give(db, clock(), ids[REP], account, role="representative")
        db.commit()
        return {"number": account.number, "account_id": account.id, **ids}


def _count(app, model, *where):
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def _form(client, number):
    page = body(client.get(f"/messages/{number}/new"))
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return {"csrf_token": csrf_from(page), "token": token}


def _write(client, number, files=(), **answers):
    data = {
        **_form(client, number),
        "topic": "return",
        "subject": "June return",
        "body": "I entered the wrong room nights.\r\nCan I correct it?",
        **answers,
    }
    if files:
        data["files"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(f"/messages/{number}/new", data=data, content_type="multipart/form-data")


def _nothing_kept(app):
    for model in (MessageThread, MessagePost, Message, Document, WorkItem):
        assert _count(app, model) == 0, model.__name__


# --- Attackers first --------------------------------------------------------------------------


def test_a_stranger_cannot_open_or_send_the_form_for_an_account(app, lodge):
    sam = signed_in(app, STRANGER)
    assert sam.get(f"/messages/{lodge['number']}/new").status_code == 404
    own = _form(signed_in(app, OWNER), lodge["number"])  # a form taken from someone who may write
    data = {"topic": "other", "subject": "Hello", "body": "Let me in", "token": own["token"]}
    data["csrf_token"] = csrf_from(body(sam.get("/messages/")))
    response = sam.post(f"/messages/{lodge['number']}/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 404
    _nothing_kept(app)
    assert _count(app, AuditEvent, AuditEvent.event == "access.refused") >= 2


@pytest.mark.parametrize("email", [VIEWER, REP])
def test_someone_on_the_account_who_does_not_read_its_messages_is_refused(app, lodge, email):
    person = signed_in(app, email)
    assert person.get(f"/messages/{lodge['number']}/new").status_code == 404
    data = {"topic": "other", "subject": "Hi", "body": "Text", "token": "t" * 30}
    data["csrf_token"] = csrf_from(body(person.get("/messages/")))
    assert person.post(f"/messages/{lodge['number']}/new", data=data).status_code == 404
    assert f"/messages/{lodge['number']}/new" not in body(person.get("/messages/"))
    if email == VIEWER:
        assert f"/messages/{lodge['number']}/new" not in body(person.get(f"/accounts/{lodge['number']}/"))
    _nothing_kept(app)


def test_an_attachment_failing_the_checks_is_refused_and_nothing_is_kept(app, lodge):
    olive = signed_in(app, OWNER)
    response = _write(olive, lodge["number"], files=[("receipts.pdf", b"MZ\x90\x00 not a pdf at all")])
    assert response.status_code == 400
    page = body(response)
    assert 'id="files-error"' in page and "The message was not sent and none of the files were kept" in page
    assert 'class="error-summary"' in page and 'href="#files"' in page
    assert "I entered the wrong room nights." in page  # what was typed is kept in the form
    _nothing_kept(app)


def test_missing_answers_are_named_beside_each_field_and_nothing_is_sent(app, lodge):
    olive = signed_in(app, OWNER)
    response = _write(olive, lodge["number"], topic="", subject=" ", body="")
    assert response.status_code == 400
    page = body(response)
    for field, words in (
        ("topic", "Choose what your message is about"),
        ("subject", "Enter a subject"),
        ("body", "Enter your message"),
    ):
        assert f'<a href="#{field}">{words}</a>' in page
        assert f'id="{field}-error"' in page
    assert _write(olive, lodge["number"], topic="lottery").status_code == 400
    _nothing_kept(app)


# --- Writing, once ------------------------------------------------------------------------------


def test_a_message_with_a_file_is_sent_once_and_reaches_the_staff_queue(app, clock, lodge, staff_member):
    dee = signed_in(app, DELEGATE)
    data = {**_form(dee, lodge["number"]), "topic": "notice", "subject": "The notice of 3 June", "body": "Why?"}
    pdf = make_pdf("notice")

    def send():
        return dee.post(
            f"/messages/{lodge['number']}/new",
            data={**data, "files": [(io.BytesIO(pdf), "notice.pdf")]},
            content_type="multipart/form-data",
        )

    first, again = send(), send()  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert (_count(app, MessageThread), _count(app, MessagePost), _count(app, Document), _count(app, WorkItem)) == (
        1,
        1,
        1,
        1,
    )
    with sessionmaker_of(app)() as db:
        thread = db.scalar(select(MessageThread))
        assert (thread.topic, thread.subject, thread.account_id, thread.to_user_id) == (
            "notice",
            "The notice of 3 June",
            lodge["account_id"],
            lodge[DELEGATE],
        )
        item = db.scalar(select(WorkItem))
        assert (item.queue, item.thread_id, item.account_id) == ("messages", thread.id, lodge["account_id"])
    assert _count(app, OutboxEmail) == 0  # nobody is emailed about their own message
    # The writer finds it in their messages; the owner does not (it is between Dee and the agency).
    assert "The notice of 3 June" in body(dee.get("/messages/"))
    assert body(dee.get(first.headers["Location"])).count("Dee Delegate</strong> wrote") == 1
    assert "The notice of 3 June" not in body(signed_in(app, OWNER).get("/messages/"))
    assert signed_in(app, OWNER).get(first.headers["Location"]).status_code == 404
    # The officer sees topic, account, text and file in the queue, and answers.
    officer = staff_member("officer")
    queue = body(officer.get("/staff/messages/"))
    assert "The notice of 3 June" in queue and "A notice or assessment" in queue
    page = body(officer.get(f"/staff/messages/{thread.id}"))
    for shown in ("A notice or assessment", "Maple Lodge Ltd.", "Dee Delegate", "Why?", "notice.pdf"):
        assert shown in page, shown
    reply = {"body": "Because of the late filing.", "csrf_token": csrf_from(page)}
    reply["token"] = re.search(r'name="token" value="([^"]+)"', page).group(1)
    answer = officer.client.post(f"/staff/messages/{thread.id}/reply", data=reply, content_type="multipart/form-data")
    assert answer.status_code == 303
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(WorkItem)).outcome == "answered"
        assert db.scalar(select(Message).where(Message.user_id == lodge[DELEGATE], Message.read_at.is_(None)))
    assert "Because of the late filing." in body(dee.get(first.headers["Location"]))


def test_the_form_works_without_javascript_and_lists_the_topics(app, lodge):
    olive = signed_in(app, OWNER)
    inbox = body(olive.get("/messages/"))
    assert f'href="/messages/{lodge["number"]}/new"' in inbox
    assert f'href="/messages/{lodge["number"]}/new"' in body(olive.get(f"/accounts/{lodge['number']}/"))
    page = body(olive.get(f"/messages/{lodge['number']}/new"))
    assert 'method="post"' in page and 'enctype="multipart/form-data"' in page and "data-hx-post" not in page
    for label in ("My account", "A return or claim", "A payment or refund", "Access and representatives"):
        assert label in page
    assert _write(olive, lodge["number"]).status_code == 303


def test_files_too_large_to_send_are_refused_beside_the_field_and_a_stranger_still_gets_404(app_with, lodge):
    small = app_with(UPLOAD_MAX_BYTES=1024, MAX_FILES_PER_UPLOAD=1)
    big = b"%PDF-1.4\n" + b"0" * 200_000
    response = _write(signed_in(small, OWNER), lodge["number"], files=[("big.pdf", big)])
    assert response.status_code == 413
    page = body(response)
    assert "The files you selected are too large to send" in page and 'id="files-error"' in page
    sam = signed_in(small, STRANGER)
    data = {"csrf_token": csrf_from(body(sam.get("/messages/"))), "files": [(io.BytesIO(big), "big.pdf")]}
    refused = sam.post(f"/messages/{lodge['number']}/new", data=data, content_type="multipart/form-data")
    assert refused.status_code == 404 and "too large" not in body(refused)
    _nothing_kept(small)


def test_a_program_that_takes_no_messages_online_says_so_and_keeps_nothing(app, lodge):
    """The program's "messages" function (staff may turn it off): the form is not
    linked, opening it says how else to reach us, and a POST made anyway sends nothing."""
    from models import Account

    with sessionmaker_of(app)() as db:
        program = db.get_one(Account, lodge["account_id"]).program
        program.functions = ",".join(f for f in program.functions.split(",") if f != "messages")
        db.commit()
    olive = signed_in(app, OWNER)
    url = f"/messages/{lodge['number']}/new"
    assert url not in body(olive.get("/messages/")) and url not in body(olive.get(f"/accounts/{lodge['number']}/"))
    page = olive.get(url)
    assert page.status_code == 200 and "does not take messages online" in body(page)
    data = {"topic": "other", "subject": "Hi", "body": "Text", "token": "t" * 30}
    data["csrf_token"] = csrf_from(body(olive.get("/messages/")))
    assert olive.post(url, data=data, content_type="multipart/form-data").status_code == 200
    _nothing_kept(app)
