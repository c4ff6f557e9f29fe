"""Online mail (issue 6): the account's mailbox and its PDFs for the people allowed
to see it, the owner's choice of paper for two years, the email alert that says
nothing about the letter, the posting date as the date of receipt (the 90 days
of an objection), and the agency's paper queue. Time moves only by the clock."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from domain import mail, objections
from models import Account, AuditEvent, Grant, MailItem, Message, OutboxEmail
from tests.accounts_factory import TODAY, body, file_return, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user
from tests.test_documents import make_pdf
from tests.test_returns import pdf_strings

OWNER, PARTNER, VIEWER, BOOKS, CLERK, READER, STRANGER = (
    "owner@example.com",
    "partner@example.com",
    "viewer@example.com",
    "books@example.com",
    "clerk@example.com",
    "reader@example.com",
    "stranger@example.com",
)
ZONE = ZoneInfo("America/Edmonton")


def pdf_words(data: bytes) -> str:
    return " ".join(pdf_strings(data))


@pytest.fixture
def shop(app, clock):
    """Olive owns the account. Pat is an authorized individual (every permission,
    not an owner); Vic sees returns only, Bea finances only, Cal uploads only, Rae
    only receives messages. Sam has no access at all."""
    people = {
        "owner": make_user(app, email=OWNER, name="Olive Owner"),
        "partner": make_user(app, email=PARTNER, name="Pat Partner"),
        "viewer": make_user(app, email=VIEWER, name="Vic Viewer"),
        "books": make_user(app, email=BOOKS, name="Bea Books"),
        "clerk": make_user(app, email=CLERK, name="Cal Clerk"),
        "reader": make_user(app, email=READER, name="Rae Reader"),
        "stranger": make_user(app, email=STRANGER, name="Sam Stranger"),
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Mailroom Ltd.", opened_on=date(2026, 1, 1))
        other = open_account(db, serial=62, legal_name="Elsewhere Inc.", opened_on=date(2026, 1, 1))
        give(db, clock(), people["owner"], account)
        give(db, clock(), people["partner"], account, role="authorized")
        give(db, clock(), people["viewer"], account, role="delegate", permissions=("view_returns",))
        give(db, clock(), people["books"], account, role="delegate", permissions=("view_financial",))
        give(db, clock(), people["clerk"], account, role="delegate", permissions=("upload",))
        give(db, clock(), people["reader"], account, role="delegate", permissions=("receive_messages",))
        give(db, clock(), people["stranger"], other)
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "other_number": other.number,
            "other_id": other.id,
            **people,
        }


def _post(
    app,
    clock,
    account_id,
    title="Notice of assessment, June 2026",
    kind="notice_of_assessment",
    text="Your notice",
    **kwargs,
) -> int:
    with sessionmaker_of(app)() as db:
        account = db.get(Account, account_id)
        item = mail.post(
            db,
            clock(),
            clock().astimezone(ZONE).date(),
            account=account,
            kind=kind,
            title=title,
            pdf=make_pdf(text),
            **kwargs,
        )
        db.commit()
        return item.id


def _form_post(client, url, data=None):
    token = csrf_from(body(client.get("/profile/")))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _item(app, item_id) -> MailItem:
    with sessionmaker_of(app)() as db:
        return db.get(MailItem, item_id)


def _count(app, model, *where) -> int:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


# --- The mailbox -------------------------------------------------------------------------


def test_the_mailbox_lists_online_items_newest_first_with_their_date_of_receipt(app, shop, clock):
    first = _post(app, clock, shop["account_id"], title="Notice of assessment, May 2026")
    clock.advance(days=3)
    second = _post(app, clock, shop["account_id"], title="Decision on your waiver request", kind="decision_letter")
    _post(app, clock, shop["other_id"], title="Elsewhere's own notice")
    _post(
        app,
        clock,
        shop["account_id"],
        title="Invitation letter with a PIN",
        kind="invitation_letter",
        shown_online=False,
    )
    page = body(signed_in(app, VIEWER).get(f"/mail/{shop['number']}/"))
    assert page.index("Decision on your waiver request") < page.index("Notice of assessment, May 2026")
    assert "Date of receipt" in page and "23 November 2026" in page and "26 November 2026" in page
    assert "Elsewhere" not in page and "Invitation letter with a PIN" not in page
    assert page.count('<strong class="tag">New</strong>') == 2 and "Opened" not in page
    assert (
        f'href="/mail/{shop["number"]}/{first}.pdf"' in page and f'href="/mail/{shop["number"]}/{second}.pdf"' in page
    )
    assert 'aria-current="page">Mail</a>' in page
    assert "Online" in page and "Sent by post" not in page


def test_everyone_who_sees_returns_or_finances_reads_the_mail_and_no_one_else(app, shop, clock):
    item_id = _post(app, clock, shop["account_id"])
    for email in (OWNER, PARTNER, VIEWER, BOOKS):
        client = signed_in(app, email)
        assert client.get(f"/mail/{shop['number']}/").status_code == 200, email
        assert client.get(f"/mail/{shop['number']}/{item_id}.pdf").status_code == 200, email
    for email in (CLERK, READER, STRANGER):
        client = signed_in(app, email)
        for path in (
            f"/mail/{shop['number']}/",
            f"/mail/{shop['number']}/{item_id}.pdf",
            f"/mail/{shop['number']}/delivery",
        ):
            response = client.get(path)
            assert response.status_code == 404, (email, path)
            assert b"Mailroom" not in response.data


def test_the_mail_link_appears_where_the_person_may_read_the_mail(app, shop):
    number = shop["number"]
    summary = body(signed_in(app, BOOKS).get(f"/accounts/{number}/"))
    assert summary.count(f'href="/mail/{number}/"') == 2  # the account's pages and its services list
    assert f'href="/mail/{number}/"' not in body(signed_in(app, CLERK).get(f"/documents/{number}/"))


def test_a_pdf_is_a_sandboxed_attachment_and_its_first_opening_is_noted(app, shop, clock):
    item_id = _post(app, clock, shop["account_id"], text="Balance owing 40.00")
    client, owner = signed_in(app, VIEWER), signed_in(app, OWNER)
    with sessionmaker_of(app)() as db:
        audit_before = db.scalar(select(func.count(AuditEvent.id)))
    clock.advance(minutes=5)
    response = client.get(f"/mail/{shop['number']}/{item_id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert f"notice-of-assessment-{shop['number']}-2026-11-23-{item_id}.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    assert "Balance owing 40.00" in pdf_words(response.data)
    opened_at = clock()
    assert _item(app, item_id).first_read_at == opened_at
    assert "Opened" in body(client.get(f"/mail/{shop['number']}/"))
    clock.advance(minutes=5)
    owner.get(f"/mail/{shop['number']}/{item_id}.pdf")
    assert _item(app, item_id).first_read_at == opened_at  # the first opening stays
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(AuditEvent.id))) == audit_before  # reading is bookkeeping, not an event


def test_another_accounts_item_a_post_only_letter_and_impossible_ids_are_404(app, shop, clock):
    theirs = _post(app, clock, shop["other_id"], title="Elsewhere's notice")
    pin_letter = _post(
        app,
        clock,
        shop["account_id"],
        title="Invitation letter",
        kind="invitation_letter",
        text="PIN K7QX2M",
        shown_online=False,
    )
    client = signed_in(app, OWNER)
    for item_id in (theirs, pin_letter, 999999, 2**31, 2**63, 10**30, 0):
        response = client.get(f"/mail/{shop['number']}/{item_id}.pdf")
        assert response.status_code == 404, item_id
        assert b"K7QX2M" not in response.data
    # The stranger owns the other account, and still cannot reach this one's mail through it.
    assert signed_in(app, STRANGER).get(f"/mail/{shop['other_number']}/{theirs}.pdf").status_code == 200
    assert signed_in(app, STRANGER).get(f"/mail/{shop['other_number']}/{pin_letter}.pdf").status_code == 404
    assert _item(app, theirs).first_read_at is not None and _item(app, pin_letter).first_read_at is None


# --- Email alerts --------------------------------------------------------------------------


def test_an_online_posting_alerts_everyone_who_may_read_it_or_gets_messages_without_content(app, shop, clock):
    with sessionmaker_of(app)() as db:
        viewer_grant = db.scalar(select(Grant).where(Grant.user_id == shop["viewer"]))
        viewer_grant.revoked_at = clock()  # removed: no longer told
        db.commit()
    _post(app, clock, shop["account_id"], title="Notice of reassessment, June 2026", kind="notice_of_reassessment")
    with sessionmaker_of(app)() as db:
        alerts = db.scalars(select(OutboxEmail).where(OutboxEmail.subject == mail.ALERT_SUBJECT)).all()
    assert sorted(a.to_address for a in alerts) == sorted([OWNER, PARTNER, BOOKS, READER])
    for alert in alerts:
        text = alert.body_text
        assert "new notice or letter" in text and "choose the account, then Mail" in text
        assert "reassessment" not in text.lower() and "Mailroom" not in text
        assert shop["number"] not in text and "http" not in text and "/mail/" not in text


def test_a_paper_posting_sends_no_alert(app, shop, clock):
    _post(app, clock, shop["account_id"], title="Invitation letter", kind="invitation_letter", shown_online=False)
    with sessionmaker_of(app)() as db:
        db.get(Account, shop["account_id"]).paper_mail_until = date(2027, 1, 1)
        db.commit()
    item_id = _post(app, clock, shop["account_id"], title="Notice by post")
    assert _item(app, item_id).delivery == "paper"
    assert _count(app, OutboxEmail, OutboxEmail.subject == mail.ALERT_SUBJECT) == 0
    page = body(signed_in(app, OWNER).get(f"/mail/{shop['number']}/"))
    assert "Notice by post" in page and "Sent by post" in page


# --- The date of receipt starts the objection's 90 days -------------------------------------


def test_an_objection_is_open_on_day_90_after_posting_and_closed_on_day_91(app, shop, clock):
    item_id = _post(app, clock, shop["account_id"], title="Notice of assessment, October 2026")
    with sessionmaker_of(app)() as db:
        account = db.get(Account, shop["account_id"])
        posted_on = db.get(MailItem, item_id).posted_on
        assert posted_on == TODAY
        tax_return = file_return(db, account, date(2026, 10, 31))
        # What the assessment does: the notice's date is the day it was posted.
        tax_return.status, tax_return.notice_kind, tax_return.notice_date = "assessed", "assessment", posted_on
        db.commit()
        (row,) = objections.notices_of(db, account, posted_on + timedelta(days=90))
        assert row.open and row.deadline == date(2027, 2, 21)
        (row,) = objections.notices_of(db, account, posted_on + timedelta(days=91))
        assert not row.open


# --- Paper or online ------------------------------------------------------------------------


def test_paper_holds_for_two_years_less_a_day():
    assert mail.paper_until(date(2026, 11, 23)) == date(2028, 11, 22)
    assert mail.paper_until(date(2028, 2, 29)) == date(2030, 2, 28)
    assert mail.paper_until(date(2027, 3, 1)) == date(2029, 2, 28)


def test_the_owner_chooses_paper_everyone_is_told_and_it_lapses_after_two_years(app, shop, clock):
    owner = signed_in(app, OWNER)
    url = f"/mail/{shop['number']}/delivery"
    page = body(owner.get(url))
    assert "<strong>Online.</strong>" in page and 'name="delivery"' in page
    assert "holds until 22 November 2028" in page
    response = _form_post(owner, url, {"delivery": "paper"})
    assert response.status_code == 303 and response.headers["Location"] == url
    page = body(owner.get(url))
    assert "By post until 22 November 2028." in page
    with sessionmaker_of(app)() as db:
        account = db.get(Account, shop["account_id"])
        assert (account.paper_mail_until, account.paper_mail_chosen_by_user_id) == (date(2028, 11, 22), shop["owner"])
        (event,) = db.scalars(select(AuditEvent).where(AuditEvent.event == "mail.delivery_chosen")).all()
        assert (event.actor_user_id, event.account_id) == (shop["owner"], shop["account_id"])
        assert '"delivery": "paper"' in event.detail and "@" not in event.detail
        told = db.scalars(select(Message.user_id).where(Message.subject.like("%will now be sent by post"))).all()
        # Everyone on the account who receives its messages.
        assert sorted(told) == sorted([shop["owner"], shop["partner"], shop["reader"]])
    # Pressing again changes nothing and tells no one again.
    assert _form_post(owner, url, {"delivery": "paper"}).status_code == 303
    assert _count(app, AuditEvent, AuditEvent.event == "mail.delivery_chosen") == 1
    assert _count(app, Message, Message.subject.like("%will now be sent by post")) == 3

    # Still paper on its last day; online the day after, by itself.
    clock.advance(days=(date(2028, 11, 22) - TODAY).days)
    assert _post_delivery(app, clock, shop) == "paper"
    assert "By post until 22 November 2028." in body(signed_in(app, OWNER).get(url))
    clock.advance(days=1)
    assert _post_delivery(app, clock, shop) == "online"
    page = body(signed_in(app, OWNER).get(url))
    assert "<strong>Online.</strong>" in page and "ran out on 23 November 2028" in page


def _post_delivery(app, clock, shop) -> str:
    return _item(app, _post(app, clock, shop["account_id"], title="A letter")).delivery


def test_the_owner_goes_back_to_online_at_any_time(app, shop, clock):
    owner = signed_in(app, OWNER)
    url = f"/mail/{shop['number']}/delivery"
    _form_post(owner, url, {"delivery": "paper"})
    clock.advance(days=40)
    assert _post_delivery(app, clock, shop) == "paper"
    owner = signed_in(app, OWNER)
    assert _form_post(owner, url, {"delivery": "online"}).status_code == 303
    with sessionmaker_of(app)() as db:
        account = db.get(Account, shop["account_id"])
        assert account.paper_mail_until is None and account.paper_mail_chosen_by_user_id is None
        events = db.scalars(
            select(AuditEvent.detail).where(AuditEvent.event == "mail.delivery_chosen").order_by(AuditEvent.id)
        ).all()
        assert ['"paper"' in e for e in events] == [True, False] and '"online"' in events[1]
        assert db.scalar(select(func.count(Message.id)).where(Message.subject.like("%posted online"))) == 3
    assert _post_delivery(app, clock, shop) == "online"
    assert "<strong>Online.</strong>" in body(owner.get(url))


def test_only_an_owner_chooses_and_others_see_the_choice_without_a_form(app, shop, clock):
    url = f"/mail/{shop['number']}/delivery"
    for email in (PARTNER, VIEWER, BOOKS):
        client = signed_in(app, email)
        page = body(client.get(url))
        assert "<strong>Online.</strong>" in page and 'name="delivery"' not in page
        assert "Only an owner of the account can choose" in page
        assert _form_post(client, url, {"delivery": "paper"}).status_code == 403
    with sessionmaker_of(app)() as db:
        assert db.get(Account, shop["account_id"]).paper_mail_until is None
        refusals = db.scalars(
            select(AuditEvent).where(AuditEvent.event == "access.refused", AuditEvent.actor_user_id == shop["partner"])
        ).all()
        assert len(refusals) == 1 and '"owner-only"' in refusals[0].detail
    assert _form_post(signed_in(app, CLERK), url, {"delivery": "paper"}).status_code == 404
    assert _form_post(signed_in(app, STRANGER), url, {"delivery": "paper"}).status_code == 404


@pytest.mark.parametrize("data", [{}, {"delivery": "pigeon"}, {"delivery": ""}])
def test_a_choice_that_is_not_one_gets_a_message_and_changes_nothing(app, shop, data):
    owner = signed_in(app, OWNER)
    response = _form_post(owner, f"/mail/{shop['number']}/delivery", data)
    assert response.status_code == 400
    page = body(response)
    assert "Choose online or by post" in page and 'href="#delivery"' in page
    with sessionmaker_of(app)() as db:
        assert db.get(Account, shop["account_id"]).paper_mail_until is None
        assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.event == "mail.delivery_chosen")) == 0


def test_the_choice_needs_a_csrf_token(app, shop):
    owner = signed_in(app, OWNER)
    assert owner.post(f"/mail/{shop['number']}/delivery", data={"delivery": "paper"}).status_code == 400
    with sessionmaker_of(app)() as db:
        assert db.get(Account, shop["account_id"]).paper_mail_until is None


# --- The agency's paper queue --------------------------------------------------------------------


def test_the_paper_queue_lists_unmailed_paper_items_oldest_first(app, shop, clock, staff_member):
    online = _post(app, clock, shop["account_id"], title="Online notice")
    clock.advance(hours=1)
    older = _post(
        app,
        clock,
        shop["account_id"],
        title="Invitation letter for Mailroom",
        kind="invitation_letter",
        shown_online=False,
    )
    clock.advance(hours=1)
    newer = _post(
        app,
        clock,
        shop["other_id"],
        title="Invitation letter for Elsewhere",
        kind="invitation_letter",
        shown_online=False,
    )
    officer = staff_member("officer")
    response = officer.get("/staff/mail/")
    assert response.status_code == 200
    page = body(response)
    assert page.index("Invitation letter for Mailroom") < page.index("Invitation letter for Elsewhere")
    assert "Online notice" not in page and "2 items to mail, oldest first" in page
    assert f'href="/staff/mail/items/{older}.pdf"' in page and f'action="/staff/mail/items/{newer}/mailed"' in page
    assert "Mailroom Ltd." in page and 'aria-current="page">Paper mail</a>' in page
    # Staff may download any item, online ones too, as sandboxed attachments; each download is on the record.
    for item_id in (online, older):
        pdf = officer.get(f"/staff/mail/items/{item_id}.pdf")
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert pdf.headers["Content-Security-Policy"] == "sandbox"
        assert pdf.headers["Content-Disposition"].startswith("attachment;")
    assert _count(app, AuditEvent, AuditEvent.event == "mail.downloaded", AuditEvent.actor_user_id == officer.id) == 2
    assert officer.get("/staff/mail/items/999999.pdf").status_code == 404
    assert officer.get(f"/staff/mail/items/{2**40}.pdf").status_code == 404
    assert signed_in(app, OWNER).get("/staff/mail/").status_code == 403
    assert signed_in(app, OWNER).get(f"/staff/mail/items/{older}.pdf").status_code == 403


def test_marking_an_invitation_letter_mailed_replaces_it_and_its_pin(app, shop, clock, staff_member):
    letter = _post(
        app,
        clock,
        shop["account_id"],
        title="Invitation letter",
        kind="invitation_letter",
        text="Your PIN is K7QX2M",
        shown_online=False,
    )
    assert "K7QX2M" in pdf_words(_item(app, letter).content)
    clock.advance(days=1)
    officer = staff_member("officer")
    response = officer.post(f"/staff/mail/items/{letter}/mailed", token_from="/staff/mail/")
    assert response.status_code == 303 and response.headers["Location"] == "/staff/mail/"
    item = _item(app, letter)
    assert item.mailed_at == clock()
    words = pdf_words(item.content)
    assert "K7QX2M" not in words and "Mailed on 24 November 2026" in words and "PIN" in words
    assert item.sha256 == hashlib.sha256(item.content).hexdigest() and item.size_bytes == len(item.content)
    page = body(officer.get("/staff/mail/"))
    assert "Marked “Invitation letter” as mailed." in page and "Nothing is waiting to be mailed." in page
    with sessionmaker_of(app)() as db:
        (event,) = db.scalars(select(AuditEvent).where(AuditEvent.event == "mail.mailed")).all()
        assert (event.actor_user_id, event.account_id) == (officer.id, shop["account_id"])
        assert '"letter_replaced": true' in event.detail
    # A second press (a double click, a second officer) does nothing more.
    clock.advance(minutes=10)
    again = officer.post(f"/staff/mail/items/{letter}/mailed", token_from="/staff/mail/")
    assert again.status_code == 303
    assert _item(app, letter).mailed_at == clock() - timedelta(minutes=10)
    assert _count(app, AuditEvent, AuditEvent.event == "mail.mailed") == 1
    assert "already marked as mailed" in body(officer.get("/staff/mail/"))


def test_marking_a_paper_notice_mailed_keeps_it_and_an_online_item_cannot_be_marked(app, shop, clock, staff_member):
    with sessionmaker_of(app)() as db:
        db.get(Account, shop["account_id"]).paper_mail_until = date(2028, 1, 1)
        db.commit()
    notice = _post(app, clock, shop["account_id"], title="Notice by post", text="Assessed 40.00")
    online = _post(app, clock, shop["other_id"], title="Online notice")
    officer = staff_member("officer")
    assert officer.post(f"/staff/mail/items/{notice}/mailed", token_from="/staff/mail/").status_code == 303
    item = _item(app, notice)
    assert item.mailed_at is not None and "Assessed 40.00" in pdf_words(item.content)
    refused = officer.post(f"/staff/mail/items/{online}/mailed", token_from="/staff/mail/")
    assert refused.status_code == 409 and "nothing to mail" in body(refused)
    assert _item(app, online).mailed_at is None
    assert officer.post("/staff/mail/items/999999/mailed", token_from="/staff/mail/").status_code == 404
    assert officer.client.post(f"/staff/mail/items/{notice}/mailed").status_code == 400  # no CSRF token
