"""Notices of objection (issue 5): against a notice of assessment or
reassessment, within the program's 90 days of the notice date (still open on
the last day, closed the day after), through a draft that survives a time-out,
a documents step, "check your answers" and a declaration; one request however
many times it is sent; after the deadline, an explanation and what to do
instead."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Document, Draft, Program, ServiceRequest
from tests.accounts_factory import body, file_return, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import Auth, csrf_from, make_user

OWNER, CLERK, STRANGER = "owner@example.com", "clerk@example.com", "stranger@example.com"
ANSWERS = {
    "reasons": "The levy was charged on rooms that were let for more than 30 days.",
    "facts": "Rooms 4 and 5 were let to one guest from 1 to 30 September 2026.",
    "relief": "Remove the levy on those rooms.",
    "amount": "1,234.50",
}


def _notice(db, account, period_end, kind, notice_date):
    tax_return = file_return(db, account, period_end)
    tax_return.status, tax_return.processed_on = ("assessed" if kind == "assessment" else "reassessed"), notice_date
    tax_return.notice_kind, tax_return.notice_date = kind, notice_date
    return tax_return


@pytest.fixture
def inn(app, clock):
    """Olive owns Prairie Inn's account. Its notices: an assessment of 20 October
    (open until 18 January 2027), a reassessment of 25 August (whose last day is
    today, 23 November 2026), an assessment of 15 July (closed on 13 October) and
    a return not yet assessed. Casey may only view; Sam is a stranger."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Prairie Inn Ltd.", opened_on=date(2026, 1, 1))
        other = open_account(db, serial=62, legal_name="Other Motel Ltd.", opened_on=date(2026, 1, 1))
        post(db, account, "assessment", 250000, date(2026, 10, 20), period_end=date(2026, 9, 30))
        open_return = _notice(db, account, date(2026, 9, 30), "assessment", date(2026, 10, 20))
        last_day = _notice(db, account, date(2026, 7, 31), "reassessment", date(2026, 8, 25))
        closed = _notice(db, account, date(2026, 6, 30), "assessment", date(2026, 7, 15))
        pending = file_return(db, account, date(2026, 10, 31))
        foreign = _notice(db, other, date(2026, 9, 30), "assessment", date(2026, 10, 20))
        give(db, clock(), owner, account)
        give(db, clock(), owner, other)
        give(db, clock(), clerk, account, role="viewer")
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "other": other.number,
            "owner": owner,
            "open": open_return.id,
            "last_day": last_day.id,
            "closed": closed.id,
            "pending": pending.id,
            "foreign": foreign.id,
        }


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _post(client, url, data=None, token=None):
    return client.post(url, data={**(data or {}), "csrf_token": token or _token(client)})


def _url(inn, return_id, step=""):
    return f"/objections/{inn['number']}/{return_id}/{step}"


def _drafts(app):
    with sessionmaker_of(app)() as db:
        return [(d.subject, d.data, d.submitted_request_id) for d in db.scalars(select(Draft).order_by(Draft.id))]


def _requests(app):
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(ServiceRequest).order_by(ServiceRequest.id)))


def _draft_token(app, return_id) -> str:
    with sessionmaker_of(app)() as db:
        return db.scalar(
            select(Draft.token).where(Draft.subject.like(f"return:{return_id}:%"), Draft.submitted_request_id.is_(None))
        )


def _submit(client, app, inn, return_id, answers=ANSWERS):
    """Begin, answer, check and send; the answer of the sending POST."""
    assert _post(client, _url(inn, return_id, "begin")).status_code == 303
    assert _post(client, _url(inn, return_id), answers).status_code == 303
    return _post(client, _url(inn, return_id, "check"), {"token": _draft_token(app, return_id), "declaration": "y"})


def test_the_start_page_lists_every_notice_with_its_deadline_and_whether_it_is_open(app, inn):
    client = signed_in(app, OWNER)
    page = body(client.get(f"/objections/{inn['number']}/"))
    assert "Notice of assessment" in page and "Notice of reassessment" in page
    assert "1\u201330 September 2026" in page and "1\u201331 July 2026" in page and "1\u201330 June 2026" in page
    assert "1\u201331 October 2026" not in page  # no notice yet: nothing to object to
    assert "18 January 2027" in page and "23 November 2026" in page and "13 October 2026" in page
    assert page.count(">Open<") == 2 and page.count(">Closed<") == 1
    assert page.count("Today is the last day") == 1
    assert f"/objections/{inn['number']}/{inn['open']}/begin" in page
    assert f"/objections/{inn['number']}/{inn['closed']}/begin" not in page
    # The account summary offers the service.
    assert f'href="/objections/{inn["number"]}/"' in body(client.get(f"/accounts/{inn['number']}/"))


def test_an_objection_end_to_end_with_a_document_and_its_confirmation(app, inn, clock):
    client = signed_in(app, OWNER)
    begun = _post(client, _url(inn, inn["open"], "begin"))
    assert begun.status_code == 303 and begun.headers["Location"] == _url(inn, inn["open"])
    form = body(client.get(_url(inn, inn["open"])))
    assert "Notice of assessment dated 20 October 2026" in form and "18 January 2027" in form
    assert 'id="reasons"' in form and 'id="facts"' in form and 'id="relief"' in form and 'id="amount"' in form
    assert f'data-hx-post="{_url(inn, inn["open"], "autosave")}"' in form and 'id="draft-status"' in form
    sent = _post(client, _url(inn, inn["open"]), ANSWERS)
    assert sent.status_code == 303 and sent.headers["Location"] == _url(inn, inn["open"], "documents")
    documents = body(client.get(_url(inn, inn["open"], "documents")))
    assert "You have not added any documents" in documents and "Documents are optional" in documents
    # A document uploaded for the draft (the documents feature ties it to the draft's token).
    with sessionmaker_of(app)() as db:
        draft = db.scalar(select(Draft).where(Draft.kind == "objection"))
        assert json.loads(draft.data)["reasons"] == ANSWERS["reasons"]
        document = Document(
            account_id=inn["account_id"],
            draft_id=draft.id,
            stored_name=secrets.token_hex(16),
            uploaded_name="guest-register.pdf",
            content_type="application/pdf",
            size_bytes=2048,
            sha256=hashlib.sha256(b"x").hexdigest(),
            storage="database",
            uploaded_at=clock(),
            uploaded_by_user_id=inn["owner"],
        )
        db.add(document)
        db.commit()
        document_id, token = document.id, draft.token
    assert "guest-register.pdf" in body(client.get(_url(inn, inn["open"], "documents")))
    check = body(client.get(_url(inn, inn["open"], "check")))
    for text in (
        "Notice of assessment dated 20 October 2026",
        "1\u201330 September 2026",
        ANSWERS["reasons"],
        ANSWERS["facts"],
        ANSWERS["relief"],
        "$1,234.50",
        "guest-register.pdf",
        'id="declaration"',
    ):
        assert text in check, text
    assert f'href="{_url(inn, inn["open"])}#reasons"' in check and f'value="{token}"' in check
    done = _post(client, _url(inn, inn["open"], "check"), {"token": token, "declaration": "y"})
    assert done.status_code == 303
    [request] = _requests(app)
    assert done.headers["Location"] == f"/objections/{inn['number']}/done/{request.reference}"
    assert request.kind == "objection" and request.tax_return_id == inn["open"] and request.idempotency_key == token
    assert request.summary == (
        "Notice of objection to the notice of assessment dated 20 October 2026, period 1\u201330 September 2026"
    )
    data = json.loads(request.data)
    assert data["notice_kind"] == "assessment" and data["notice_date"] == "2026-10-20"
    assert data["reasons"] == ANSWERS["reasons"] and data["facts"] == ANSWERS["facts"]
    assert data["relief"] == ANSWERS["relief"] and data["amount_cents"] == 123450
    assert data["documents"] == ["guest-register.pdf"] and data["deadline"] == "2027-01-18"
    with sessionmaker_of(app)() as db:
        assert db.get(Document, document_id).service_request_id == request.id
        assert db.get(Document, document_id).draft_id is None
        assert db.scalar(select(Draft.submitted_request_id).where(Draft.token == token)) == request.id
    confirmation = body(client.get(done.headers["Location"]))
    assert "Objection sent" in confirmation and request.reference in confirmation
    assert "appeals officer" in confirmation and "We write to you with the decision" in confirmation
    assert "the officer will tell you" in confirmation
    assert request.reference in body(client.get(f"/objections/{inn['number']}/"))


def test_sending_twice_makes_one_objection_and_answers_the_same_confirmation(app, inn):
    client = signed_in(app, OWNER)
    assert _post(client, _url(inn, inn["open"], "begin")).status_code == 303
    assert _post(client, _url(inn, inn["open"]), ANSWERS).status_code == 303
    token = _draft_token(app, inn["open"])
    first = _post(client, _url(inn, inn["open"], "check"), {"token": token, "declaration": "y"})
    second = _post(client, _url(inn, inn["open"], "check"), {"token": token, "declaration": "y"})
    other_tab = _post(client, _url(inn, inn["open"], "check"), {"token": token})  # even without the box ticked
    assert first.status_code == second.status_code == other_tab.status_code == 303
    assert first.headers["Location"] == second.headers["Location"] == other_tab.headers["Location"]
    assert len(_requests(app)) == 1


def test_a_reassessment_can_be_objected_to_on_its_last_day_and_not_the_day_after(app, inn, clock):
    client = signed_in(app, OWNER)
    form = body(client.get(_url(inn, inn["last_day"])))
    assert "Notice of reassessment dated 25 August 2026" in form and "23 November 2026" in form
    assert 'id="objection-form"' in form
    done = _submit(client, app, inn, inn["last_day"])
    assert done.status_code == 303
    [request] = _requests(app)
    assert json.loads(request.data)["notice_kind"] == "reassessment"
    assert request.summary.startswith("Notice of objection to the notice of reassessment dated 25 August 2026")
    # A second objection begun the same day, then the day passes.
    assert _post(client, _url(inn, inn["last_day"], "begin")).status_code == 303
    assert _post(client, _url(inn, inn["last_day"]), ANSWERS).status_code == 303
    token = _draft_token(app, inn["last_day"])
    clock.advance(days=1)  # Tuesday 24 November 2026: the deadline has passed
    client = signed_in(app, OWNER)
    before = _drafts(app)
    closed = client.get(_url(inn, inn["last_day"]))
    assert closed.status_code == 200
    page = body(closed)
    assert "The time to object to this notice has passed" in page and "the last day was 23 November 2026" in page
    assert 'id="objection-form"' not in page
    assert request.reference in page  # the objection sent in time is acknowledged
    for step, data in (
        ("begin", {}),
        ("", ANSWERS),
        ("autosave", ANSWERS),
        ("check", {"token": token, "declaration": "y"}),
    ):
        refused = _post(client, _url(inn, inn["last_day"], step), data)
        assert refused.status_code == 400, step
    assert client.get(_url(inn, inn["last_day"], "check")).status_code == 200
    assert "has passed" in body(client.get(_url(inn, inn["last_day"], "documents")))
    assert len(_requests(app)) == 1 and _drafts(app) == before
    start = body(client.get(f"/objections/{inn['number']}/"))
    assert start.count(">Open<") == 1 and start.count(">Closed<") == 2
    # The confirmation of the one sent in time is still there.
    assert client.get(f"/objections/{inn['number']}/done/{request.reference}").status_code == 200


def test_a_closed_notice_explains_the_90_day_rule_and_what_to_do_instead(app, inn):
    client = signed_in(app, OWNER)
    page = body(client.get(_url(inn, inn["closed"])))
    assert "The time to object to this notice has passed" in page
    assert "within 90 days of the date of the notice" in page
    assert "dated 15 July 2026, the last day was 13 October 2026" in page
    assert "Ask for an extension of time to object" in page and "by 13 October 2027" in page
    assert "reasons you could not object within 90 days" in page
    assert "Contact us" in page
    assert f'href="/waivers/{inn["number"]}/"' in page
    # Long ago: the year for an extension has passed too.
    with sessionmaker_of(app)() as db:
        from models import Account

        account = db.scalar(select(Account).where(Account.number == inn["number"]))
        old = _notice(db, account, date(2025, 5, 31), "assessment", date(2025, 7, 1))
        db.commit()
        old_id = old.id
    old_page = body(client.get(_url(inn, old_id)))
    assert "An extension of time is no longer possible" in old_page and "by 29 September 2026" in old_page
    assert "Ask for an extension of time to object" not in old_page


def test_the_program_sets_the_number_of_days(app, inn, clock):
    with sessionmaker_of(app)() as db:
        db.get(Program, "TL").objection_days = 30
        db.commit()
    client = signed_in(app, OWNER)
    page = body(client.get(_url(inn, inn["open"])))  # 20 October + 30 days = 19 November: closed
    assert "the last day was 19 November 2026" in page and "within 30 days" in page


def test_a_program_without_online_objections_explains_how_to_object_in_writing(app, inn):
    with sessionmaker_of(app)() as db:
        program = db.get(Program, "TL")
        program.functions = ",".join(f for f in program.functions.split(",") if f != "objection")
        db.commit()
    client = signed_in(app, OWNER)
    page = client.get(f"/objections/{inn['number']}/")
    assert page.status_code == 200
    assert "cannot be sent through TRA Client Self-Service" in body(page) and "How to object in writing" in body(page)
    assert client.get(_url(inn, inn["open"])).status_code == 200
    assert _post(client, _url(inn, inn["open"], "begin")).status_code == 400
    assert _post(client, _url(inn, inn["open"]), ANSWERS).status_code == 400
    assert _drafts(app) == [] and _requests(app) == []


def test_a_timed_out_session_keeps_the_draft_and_what_was_typed(app, inn, clock):
    client = signed_in(app, OWNER)
    auth = Auth(client, app)
    assert _post(client, _url(inn, inn["open"], "begin")).status_code == 303
    clock.advance(minutes=1)
    saved = _post(client, _url(inn, inn["open"], "autosave"), {"reasons": "Typed so far", "facts": "Some facts"})
    assert saved.status_code == 200 and "Draft saved at 11:01 am" in body(saved)
    clock.advance(minutes=16)
    away = client.get(_url(inn, inn["open"]))
    assert away.status_code == 303 and "/auth/sign-in" in away.headers["Location"]
    assert auth.sign_in(email=OWNER).status_code == 303
    page = body(client.get(_url(inn, inn["open"])))
    assert "Typed so far" in page and "Some facts" in page
    # Typing more, then timing out before pressing Continue: the typed text comes back too.
    token = _token(client)
    clock.advance(minutes=16)
    lost = client.post(
        _url(inn, inn["open"]), data={**ANSWERS, "reasons": "Typed before the time-out", "csrf_token": token}
    )
    assert lost.status_code == 303 and "/auth/sign-in" in lost.headers["Location"]
    assert auth.sign_in(email=OWNER).status_code == 303
    restored = body(client.get(_url(inn, inn["open"])))
    assert "Typed before the time-out" in restored and "We kept what you had typed" in restored
    assert _requests(app) == []


BAD_ANSWERS = [
    ("reasons", "", "Enter why you disagree with the notice"),
    ("reasons", "   \n  ", "Enter why you disagree with the notice"),
    ("facts", "", "Enter the facts that support your objection"),
    ("relief", "", "Enter what you want us to change"),
    ("reasons", "x" * 5001, "Why you disagree must be 5,000 characters or fewer"),
    ("facts", "é" * 5001, "The facts must be 5,000 characters or fewer"),
    ("relief", "x" * 5001, "What you want us to change must be 5,000 characters or fewer"),
    ("amount", "a lot", "Amount must be a number, like 1250.00"),
    ("amount", "12.345", "Amount must not have more than 2 decimal places, like 1250.00"),
    ("amount", "-50", "Amount must be more than $0.00, or leave it empty"),
    ("amount", "0", "Amount must be more than $0.00, or leave it empty"),
    ("amount", "1e5", "Amount must be a number, like 1250.00"),
    ("amount", "NaN", "Amount must be a number, like 1250.00"),
    ("amount", "10000000000000", "Amount must be $9,999,999,999.99 or less"),
]


def test_bad_answers_are_refused_beside_the_field_and_change_nothing(app, inn):
    client = signed_in(app, OWNER)
    assert _post(client, _url(inn, inn["open"], "begin")).status_code == 303
    before = _drafts(app)
    token = _token(client)
    for field, value, message in BAD_ANSWERS:
        response = _post(client, _url(inn, inn["open"]), {**ANSWERS, field: value}, token=token)
        assert response.status_code == 400, (field, value)
        page = body(response)
        assert f'href="#{field}">{message}' in page, (field, value)  # in the error summary
        assert f'id="{field}-error"' in page  # and beside the field
    assert _drafts(app) == before


def test_the_declaration_is_required_and_incomplete_answers_cannot_be_sent(app, inn):
    client = signed_in(app, OWNER)
    assert _post(client, _url(inn, inn["open"], "begin")).status_code == 303
    token = _draft_token(app, inn["open"])
    # Nothing answered yet: the check page sends the person back, and sending is refused.
    assert client.get(_url(inn, inn["open"], "check")).headers["Location"] == _url(inn, inn["open"])
    refused = _post(client, _url(inn, inn["open"], "check"), {"token": token, "declaration": "y"})
    assert refused.status_code == 400 and "Enter why you disagree with the notice" in body(refused)
    assert _post(client, _url(inn, inn["open"]), ANSWERS).status_code == 303
    unticked = _post(client, _url(inn, inn["open"], "check"), {"token": token})
    assert unticked.status_code == 400
    assert "Confirm the declaration to send your objection" in body(unticked)
    assert f'value="{token}"' in body(unticked)
    assert _requests(app) == []


def test_returns_and_references_outside_the_account_are_not_found(app, inn):
    client = signed_in(app, OWNER)
    for return_id in (inn["foreign"], inn["pending"], 2**31, 2**40):
        assert client.get(_url(inn, return_id)).status_code == 404, return_id
        assert _post(client, _url(inn, return_id, "begin")).status_code == 404, return_id
        assert client.get(_url(inn, return_id, "check")).status_code == 404, return_id
    # A reference of the other account (Olive's too) is not this account's confirmation.
    done = _submit(client, app, {**inn, "number": inn["other"]}, inn["foreign"])
    assert done.status_code == 303
    reference = done.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/objections/{inn['other']}/done/{reference}").status_code == 200
    assert client.get(f"/objections/{inn['number']}/done/{reference}").status_code == 404
    assert client.get(f"/objections/{inn['number']}/done/SR-NONE-NONE").status_code == 404
    assert client.get(f"/objections/{inn['number']}/done/{'X' * 500}").status_code == 404
    # A stranger and a viewer without the permission: 404 everywhere, nothing made.
    for email in (STRANGER, CLERK):
        other = signed_in(app, email)
        assert other.get(f"/objections/{inn['number']}/").status_code == 404
        assert other.get(_url(inn, inn["open"])).status_code == 404
        assert _post(other, _url(inn, inn["open"], "begin")).status_code == 404
        assert _post(other, _url(inn, inn["open"]), ANSWERS).status_code == 404
        assert other.get(f"/objections/{inn['other']}/done/{reference}").status_code == 404
    assert len(_requests(app)) == 1


text = st.text(max_size=6000) | st.sampled_from(["", " ", "1,234.50", "$9.99", "12.345", "-1", "\x00", "<script>"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reasons=text, facts=text, relief=text, amount=text)
def test_any_text_in_the_objection_form_is_answered_without_a_server_error(app, inn, reasons, facts, relief, amount):
    client = _hypothesis_client(app)
    before = _drafts(app)
    response = client.post(
        _url(inn, inn["open"]),
        data={"reasons": reasons, "facts": facts, "relief": relief, "amount": amount, "csrf_token": client.csrf},
    )
    assert response.status_code < 500
    if response.status_code != 303:
        assert response.status_code == 400
        assert _drafts(app) == before
    assert _requests(app) == []


def _hypothesis_client(app):
    """One signed-in client per app (each Hypothesis example reuses it)."""
    client = app.config.get("_objections_client")
    if client is None:
        client = signed_in(app, OWNER)
        client.csrf = _token(client)
        app.config["_objections_client"] = client
    return client
