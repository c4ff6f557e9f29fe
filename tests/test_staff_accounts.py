"""Accounts and people as the agency sees them (issue 6): one search box for
accounts and people, the account on one page, registering an account, invitation
letters and PINs, and PINs across accounts. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from domain import documents, enrolment, mail, requests, work
from domain.accounts import format_number, make_number, number_problem, periods_between
from models import (
    Account,
    AuditEvent,
    Consent,
    Document,
    FilingPeriod,
    InvitationPin,
    MailItem,
    MessageThread,
    Program,
    UsedToken,
)
from tests.accounts_factory import (
    as_written,
    body,
    file_return,
    give,
    issue_pin,
    open_account,
    sessionmaker_of,
    signed_in,
)
from tests.conftest import csrf_from, make_user
from tests.test_returns import pdf_text

OWNER, HELPER, REP = "owner@example.com", "helper@example.com", "rep@example.com"
NO_MATCH = "The account number and PIN do not match an invitation"


@pytest.fixture
def seeded(app, clock):
    """Prairie Inn (Tourism Levy) with something in every section of the agency's page:
    an owner, a helper whose access was removed, a consent waiting for review, a
    manager's PIN, a waiver request, a return, a document, a message thread and a
    letter in its mail."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    helper = make_user(app, email=HELPER, name="Hal Helper")
    now = clock()
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=81, legal_name="Prairie Inn Ltd.", operating_name="Prairie Inn")
        owner_grant = give(db, now, owner, account)
        removed = give(db, now, helper, account, role="delegate")
        removed.revoked_at, removed.revoked_by_user_id = now, owner
        consent = Consent(
            account_id=account.id,
            representative_name="Riley Preparer",
            representative_email=REP,
            firm_name="Prairie Books LLP",
            permissions="view_financial",
            starts_on=date(2026, 11, 23),
            status="submitted",
            declared_by_user_id=owner,
            declared_at=now,
        )
        db.add(consent)
        db.flush()
        consent_item = work.open_for_consent(db, now, consent)
        issue_pin(
            db,
            now,
            account,
            role="delegate",
            issued_by_user_id=owner,
            invitee_name="Dee Delegate",
            invitee_email="dee@example.com",
        )
        waiver = requests.submit(
            db,
            now,
            account=account,
            user_id=owner,
            kind="waiver",
            key="waiver-key-1",
            summary="Waiver of the late filing penalty",
            data={},
        ).request
        tax_return = file_return(db, account, date(2026, 9, 30), received_on=date(2026, 10, 20))
        content = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\nstartxref\n0\n%%EOF\n"
        stored = documents.new_stored_name()
        documents.DatabaseStore().put(db, stored, content)
        document = Document(
            account_id=account.id,
            stored_name=stored,
            uploaded_name="Bank statement.pdf",
            content_type="application/pdf",
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            storage="database",
            description="September statement",
            uploaded_at=now,
            uploaded_by_user_id=owner,
        )
        db.add(document)
        thread = MessageThread(
            account_id=account.id,
            subject="About your September return",
            to_user_id=None,
            started_by_user_id=None,
            started_at=now,
            last_post_at=now,
        )
        db.add(thread)
        letter = mail.post(
            db,
            now,
            date(2026, 11, 23),
            account=account,
            kind="letter",
            title="Letter about records",
            pdf=b"%PDF-1.4 letter",
        )
        db.commit()
        return dict(
            number=account.number,
            account_id=account.id,
            owner=owner,
            helper=helper,
            owner_grant=owner_grant.id,
            consent=consent.id,
            consent_item=consent_item.id,
            waiver=waiver.reference,
            waiver_item=work.for_request(db, waiver.id).id,
            tax_return=tax_return.id,
            document=document.id,
            content=content,
            thread=thread.id,
            letter=letter.id,
        )


def text(response) -> str:
    return body(response)


# --- The staff home: one search box ---------------------------------------------------------


@pytest.mark.parametrize("query", ["4100 0008", "4100000", "prairie inn", "PRAIRIE"])
def test_the_home_search_finds_an_account_by_number_or_name(seeded, staff_member, query):
    officer = staff_member("officer")
    response = officer.get(f"/staff/?q={query}")
    assert response.status_code == 200
    page = text(response)
    assert '<div id="staff-search-results"' in page and 'role="search"' in page
    assert f'href="/staff/accounts/{seeded["number"]}"' in page and "Prairie Inn Ltd." in page
    assert "1 account found" in page


@pytest.mark.parametrize("query", ["olive", "owner@example", "Olive Owner"])
def test_the_home_search_finds_people_by_name_or_email(seeded, staff_member, query):
    officer = staff_member("officer")
    page = text(officer.get(f"/staff/?q={query}"))
    assert f'href="/staff/people/{seeded["owner"]}"' in page and OWNER in page
    assert "No account matches that search." in page
    fragment = text(officer.get(f"/staff/?q={query}", headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<div id="staff-search-results"') and "<html" not in fragment
    assert f'href="/staff/people/{seeded["owner"]}"' in fragment


def test_the_search_results_come_alone_over_htmx(seeded, staff_member):
    officer = staff_member("officer")
    response = officer.get(f"/staff/?q={format_number(seeded['number'])}", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    fragment = text(response)
    assert fragment.lstrip().startswith('<div id="staff-search-results"')
    assert "<html" not in fragment and "<form" not in fragment and "Your work" not in fragment
    assert "Prairie Inn Ltd." in fragment


def test_a_search_with_nothing_in_it_says_so(staff_member):
    officer = staff_member("officer")
    response = officer.get("/staff/?q=+")
    assert response.status_code == 400
    assert "Enter an account number, a name or an email address" in text(response)
    fragment = officer.get("/staff/?q=", headers={"HX-Request": "true"})
    assert fragment.status_code == 400 and "Enter an account number" in text(fragment)


@pytest.mark.parametrize("path", ["/staff/?q=a%00b", "/staff/accounts/?q=a%00b"])
def test_a_search_with_special_characters_is_refused(seeded, staff_member, path):
    response = staff_member("officer").get(path)
    assert response.status_code == 400 and "Enter the search without special characters" in text(response)


def test_a_search_takes_percent_and_underscore_literally(seeded, staff_member):
    page = text(staff_member("officer").get("/staff/?q=%25"))
    assert "No account matches that search." in page and "No one matches that search." in page


def test_the_home_shows_my_open_work_and_the_queues(app, seeded, staff_member, clock):
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        from models import User, WorkItem

        work.take(db, clock(), db.get(WorkItem, seeded["waiver_item"]), db.get(User, officer.id))
        db.commit()
    page = as_written(text(officer.get("/staff/")))
    assert "Your work" in page
    assert f'href="/staff/queues/items/{seeded["waiver_item"]}"' in page
    assert "Waiver of the late filing penalty" in page
    assert f'href="/staff/queues/items/{seeded["consent_item"]}"' not in page  # not mine
    queues = page[page.index('id="queues-caption"') :]
    assert re.search(r"Consents for representatives.*?<td class=\"num\">1</td><td class=\"num\">1</td>", queues, re.S)
    assert re.search(
        r"Waivers of penalties and interest.*?<td class=\"num\">1</td><td class=\"num\">0</td>", queues, re.S
    )


def test_the_person_page_lists_their_accounts(seeded, staff_member):
    officer = staff_member("officer")
    page = text(officer.get(f"/staff/people/{seeded['helper']}"))
    accounts = page[page.index('id="grants-caption"') :]
    assert f'href="/staff/accounts/{seeded["number"]}"' in accounts
    assert "Delegate" in accounts and "Upload documents" in accounts
    assert "by Olive Owner" in accounts  # removed by the owner
    owner_page = as_written(text(officer.get(f"/staff/people/{seeded['owner']}")))
    assert "Owner" in owner_page and "Manage who can use this account" in owner_page and "<td>No</td>" in owner_page


# --- The accounts page and the account ------------------------------------------------------


def test_the_accounts_page_searches_and_offers_registration(seeded, staff_member):
    officer = staff_member("officer")
    page = text(officer.get("/staff/accounts/"))
    assert 'href="/staff/accounts/new"' in page and "Register an account" in page
    found = officer.get("/staff/accounts/?q=inn", headers={"HX-Request": "true"})
    assert text(found).lstrip().startswith('<div id="account-search-results"')
    assert f'href="/staff/accounts/{seeded["number"]}"' in text(found)
    assert officer.get("/staff/accounts/?q=").status_code == 400


def test_the_account_page_shows_every_section(app, seeded, staff_member):
    officer = staff_member("officer")
    response = officer.get(f"/staff/accounts/{seeded['number']}")
    assert response.status_code == 200
    page = text(response)
    for anchor in (
        "details",
        "access",
        "consents",
        "pins",
        "submissions",
        "returns",
        "documents",
        "messages",
        "mail",
        "history",
    ):
        assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page, anchor

    def section(anchor: str) -> str:
        start = page.index(f'id="{anchor}"')
        following = page.find('<h2 class="heading-m" id="', start + 1)
        return page[start : following if following > 0 else len(page)]

    details = section("details")
    assert "Tourism Levy (TL)" in details and "Prairie Inn Ltd." in details and "Prairie Inn" in details
    assert "PO Box 100" in details and "10020 100 Street NW" in details and "Robin Example" in details
    assert "Active" in details and "1 January 2026" in details and "$0.00" in details
    assert "Online" in details
    assert f'href="/staff/ledger/{seeded["number"]}/"' in details

    access = section("access")
    assert "Olive Owner" in access and OWNER in access and "Owner" in access
    assert f'href="/staff/people/{seeded["owner"]}"' in access
    assert "Access removed" in access and "Hal Helper" in access and "by Olive Owner" in access
    assert "by Tax and Revenue Administration" in access  # the factory's grants come from the agency

    consent = section("consents")
    assert "Riley Preparer" in consent and "Prairie Books LLP" in consent and "Submitted" in consent
    assert f'href="/staff/queues/items/{seeded["consent_item"]}"' in consent

    pin_section = section("pins")
    assert "Dee Delegate" in pin_section and "Outstanding" in pin_section and "Delegate" in pin_section
    assert "by Olive Owner" in pin_section and "Issue an invitation letter" in pin_section

    submissions = section("submissions")
    assert seeded["waiver"] in submissions and "Waiver of penalties and interest" in submissions
    assert "Received" in submissions and f'href="/staff/queues/items/{seeded["waiver_item"]}"' in submissions

    returns = section("returns")
    assert f'href="/staff/returns/{seeded["tax_return"]}"' in returns and "1–30 September 2026" in returns

    docs = section("documents")
    assert "Bank statement.pdf" in docs and "September statement" in docs and "by Olive Owner" in docs
    assert f'href="/staff/accounts/{seeded["number"]}/documents/{seeded["document"]}"' in docs

    threads = section("messages")
    assert "About your September return" in threads and f'href="/staff/messages/{seeded["thread"]}"' in threads
    assert f'href="/staff/messages/new?account={seeded["number"]}"' in threads

    mailed = section("mail")
    assert "Letter about records" in mailed and f'href="/staff/mail/items/{seeded["letter"]}.pdf"' in mailed

    history = section("history")
    assert "Waiver request sent" in history and "Mail posted to the account" in history and "PIN issued" in history
    assert "Olive Owner" in history


def test_the_audit_history_shows_the_latest_fifty(app, seeded, staff_member, clock):
    from domain import audit

    with sessionmaker_of(app)() as db:
        for number in range(60):
            audit.record(
                db, clock(), "test.event", actor_user_id=seeded["owner"], account_id=seeded["account_id"], step=number
            )
        db.commit()
    page = text(staff_member("officer").get(f"/staff/accounts/{seeded['number']}"))
    history = page[page.index('id="history-caption"') :]
    assert "The latest 50 events" in history
    assert "Step: 59" in history and "Step: 10" in history and "Step: 9<" not in history


@pytest.mark.parametrize("number", ["4100000010", "4100 0000 10", "abc", "41000008199"])
def test_an_unknown_account_number_is_not_found(seeded, staff_member, number):
    assert staff_member("officer").get(f"/staff/accounts/{number}").status_code == 404


def test_the_account_page_takes_a_number_with_spaces(seeded, staff_member):
    response = staff_member("officer").get(f"/staff/accounts/{format_number(seeded['number'])}")
    assert response.status_code == 200 and "Prairie Inn Ltd." in text(response)


def test_the_account_page_with_a_trailing_slash_redirects_to_the_one_address(seeded, staff_member):
    officer = staff_member("officer")
    response = officer.get(f"/staff/accounts/{seeded['number']}/")
    assert response.status_code == 308 and response.headers["Location"] == f"/staff/accounts/{seeded['number']}"
    followed = officer.get(f"/staff/accounts/{seeded['number']}/", follow_redirects=True)
    assert followed.status_code == 200 and "Prairie Inn Ltd." in text(followed)
    assert officer.get("/staff/accounts/4100000010/", follow_redirects=True).status_code == 404


def test_staff_download_a_document_as_an_attachment(seeded, staff_member):
    officer = staff_member("officer")
    response = officer.get(f"/staff/accounts/{seeded['number']}/documents/{seeded['document']}")
    assert response.status_code == 200
    assert response.data == seeded["content"]
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "Bank statement.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_document_of_another_account_is_not_found(app, seeded, staff_member):
    with sessionmaker_of(app)() as db:
        other = open_account(db, serial=82, legal_name="Other Inn Ltd.")
        db.commit()
        other_number = other.number
    officer = staff_member("officer")
    assert officer.get(f"/staff/accounts/{other_number}/documents/{seeded['document']}").status_code == 404
    assert officer.get(f"/staff/accounts/{seeded['number']}/documents/99999999999").status_code == 404


# --- Registering an account ----------------------------------------------------------------


def _registration(**changes) -> dict:
    answers = {
        "program_code": "TL",
        "legal_name": "Glacier View Motel Ltd.",
        "operating_name": "Glacier View",
        "mailing_line1": "PO Box 2200",
        "mailing_line2": "",
        "mailing_city": "Jasper",
        "mailing_province": "AB",
        "mailing_postal": "t0e1e0",
        "physical_line1": "902 Connaught Drive",
        "physical_line2": "",
        "physical_city": "Jasper",
        "physical_province": "AB",
        "physical_postal": "T0E 1E0",
        "contact_name": "Gail Glacier",
        "contact_phone": "780 852 3301",
        "contact_email": "gail@example.com",
        "opened_on": "2026-03-15",
    }
    answers.update(changes)
    return answers


def _register(member, **changes):
    form = text(member.get("/staff/accounts/new"))
    key = re.search(r'name="key" value="([^"]+)"', form).group(1)
    return member.post(
        "/staff/accounts/new", {**_registration(**changes), "key": key}, token_from="/staff/accounts/new"
    ), key


def _accounts(app, legal_name: str = "Glacier View Motel Ltd.") -> list[Account]:
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(Account).where(Account.legal_name == legal_name)))


def test_an_officer_registers_an_account_with_a_valid_number_and_its_periods(app, seeded, staff_member):
    officer = staff_member("officer")
    response, _key = _register(officer)
    assert response.status_code == 303
    [account] = _accounts(app)
    assert urlsplit(response.headers["Location"]).path == f"/staff/accounts/{account.number}"
    # The next serial after the seeded account's 81, with its check digit.
    assert account.number == make_number("41", 82) and number_problem(account.number) is None
    assert account.mailing_address == "PO Box 2200\nJasper AB  T0E 1E0"
    assert account.physical_address == "902 Connaught Drive\nJasper AB  T0E 1E0"
    assert account.contact_phone == "780-852-3301" and account.opened_on == date(2026, 3, 15)
    assert account.status == "active" and account.operating_name == "Glacier View"
    with sessionmaker_of(app)() as db:
        program = db.get(Program, "TL")
        periods = db.execute(
            select(FilingPeriod.period_start, FilingPeriod.period_end)
            .where(FilingPeriod.account_id == account.id)
            .order_by(FilingPeriod.period_end)
        ).all()
        assert [tuple(p) for p in periods] == periods_between(program, date(2026, 3, 1), date(2026, 11, 23))
        assert periods[0] == (date(2026, 3, 1), date(2026, 3, 31)) and periods[-1][1] == date(2026, 10, 31)
        [event] = db.scalars(select(AuditEvent).where(AuditEvent.event == "account.registered"))
        assert event.actor_user_id == officer.id and event.account_id == account.id
        assert "Glacier" not in event.detail and "gail" not in event.detail
    page = text(officer.get(response.headers["Location"]))
    assert "Registered account" in page and "8 filing periods" in page and "Glacier View Motel Ltd." in page


def test_quarterly_and_annual_periods_start_on_their_calendar_boundary(app, staff_member):
    officer = staff_member("officer")
    with sessionmaker_of(app)() as db:
        from domain.programs import ensure_programs

        ensure_programs(db)
        db.commit()
    assert _register(officer, program_code="FTR", opened_on="2025-05-20")[0].status_code == 303
    assert (
        _register(officer, program_code="ICT", legal_name="Insurer Ltd.", opened_on="2024-06-01")[0].status_code == 303
    )
    with sessionmaker_of(app)() as db:
        [claims] = _accounts(app)
        [insurer] = _accounts(app, "Insurer Ltd.")
        assert claims.number.startswith("46") and insurer.number.startswith("44")
        quarters = db.scalars(
            select(FilingPeriod.period_start)
            .where(FilingPeriod.account_id == claims.id)
            .order_by(FilingPeriod.period_start)
        ).all()
        assert quarters == [
            date(2025, 4, 1),
            date(2025, 7, 1),
            date(2025, 10, 1),
            date(2026, 1, 1),
            date(2026, 4, 1),
            date(2026, 7, 1),
        ]
        years = db.scalars(
            select(FilingPeriod.period_end)
            .where(FilingPeriod.account_id == insurer.id)
            .order_by(FilingPeriod.period_end)
        ).all()
        assert years == [date(2024, 12, 31), date(2025, 12, 31)]


def test_the_same_registration_sent_twice_makes_one_account(app, seeded, staff_member):
    officer = staff_member("officer")
    first, key = _register(officer)
    second = officer.post("/staff/accounts/new", {**_registration(), "key": key}, token_from="/staff/accounts/new")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_accounts(app)) == 1
    with sessionmaker_of(app)() as db:
        assert (
            db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "account.registered")) == 1
        )
        assert db.scalar(select(func.count()).select_from(UsedToken)) == 1


def test_two_registrations_take_two_numbers(app, seeded, staff_member):
    officer, other = staff_member("officer"), staff_member("supervisor")
    assert _register(officer)[0].status_code == 303
    assert _register(other, legal_name="Second Motel Ltd.")[0].status_code == 303
    [first], [second] = _accounts(app), _accounts(app, "Second Motel Ltd.")
    assert (first.number, second.number) == (make_number("41", 82), make_number("41", 83))


def test_a_number_taken_meanwhile_is_skipped(app, seeded, clock):
    """Another registration took the next number between the look-up and the
    insert: the unique number refuses it and the next one is taken."""
    from domain import registration

    with sessionmaker_of(app)() as db:
        taken = registration.next_serial(db, "41")
        clash = open_account(db, serial=taken + 1, legal_name="Clash Ltd.")  # the next after the one looked up
        fields = registration.AccountFields(
            program_code="TL",
            legal_name="Racer Ltd.",
            operating_name=None,
            mailing_address="a",
            physical_address="b",
            contact_name="c",
            contact_phone="780-852-3301",
            contact_email=None,
            opened_on=date(2026, 10, 1),
        )
        made = registration.register_account(
            db, clock(), date(2026, 11, 23), fields=fields, actor_user_id=1, key="racer-key"
        )
        db.commit()
        assert made.created and made.account.number == make_number("41", taken + 2) != clash.number


@pytest.mark.parametrize(
    "changes,field,message",
    [
        ({"legal_name": ""}, "legal_name", "Enter the legal name"),
        ({"program_code": ""}, "program_code", "Choose a program"),
        ({"program_code": "ZZ"}, "program_code", "Choose a program"),
        ({"mailing_postal": "D0E 1E0"}, "mailing_postal", "Enter a real postal code"),
        ({"physical_province": "XX"}, "physical_province", "Select the province or territory of the physical address"),
        ({"contact_phone": "555-0100"}, "contact_phone", "Enter the phone number with its area code"),
        ({"contact_email": "not-an-email"}, "contact_email", "Enter an email address in the correct format"),
        (
            {"opened_on_day": "15", "opened_on_month": "", "opened_on_year": "2026"},
            "opened_on",
            "The date the account opened must include a month",
        ),
        (
            {"opened_on_day": "29", "opened_on_month": "2", "opened_on_year": "2026"},
            "opened_on",
            "The date the account opened must be a real date",
        ),
        ({"opened_on": "2026-11-24"}, "opened_on", "The date the account opened must be today or in the past"),
        ({"legal_name": "Null\x00 Ltd."}, "legal_name", "Enter the legal name on one line"),
    ],
)
def test_bad_registrations_are_refused_beside_their_field(app, seeded, staff_member, changes, field, message):
    officer = staff_member("officer")
    response, _key = _register(officer, **changes)
    assert response.status_code == 400
    page = text(response)
    # A date's error summary links to its first wrong box.
    assert re.search(rf'href="#{field}(_day|_month|_year)?"', page) and message in page
    assert f'<p class="field-error" id="{field}-error">' in page
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Account.id))) == 1  # the seeded account only
        assert db.scalar(select(func.count()).select_from(UsedToken)) == 0


def test_a_registration_without_its_key_is_refused(app, seeded, staff_member):
    officer = staff_member("officer")
    response = officer.post(
        "/staff/accounts/new", {**_registration(), "key": "bad key!"}, token_from="/staff/accounts/new"
    )
    assert response.status_code == 400 and "This form has expired" in text(response)
    assert _accounts(app) == []


# --- Invitation letters and PINs -------------------------------------------------------------


def _letter_button(page: str, action: str) -> dict:
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S).group(1)
    return {"csrf_token": csrf_from(form), "key": re.search(r'name="key" value="([^"]+)"', form).group(1)}


def _press(member, number: str, action: str = "letters"):
    page = text(member.get(f"/staff/accounts/{number}"))
    fields = _letter_button(page, f"/staff/accounts/{number}/{action}")
    return member.client.post(f"/staff/accounts/{number}/{action}", data=fields), fields


def _letter(app, item_id: int) -> MailItem:
    with sessionmaker_of(app)() as db:
        return db.get(MailItem, item_id)


def _pin_in(pdf: bytes) -> str:
    shown = pdf_text(pdf)
    return re.search(r"\b([A-Z2-9]{10})\b", shown[shown.index("Your PIN") :]).group(1)


def _enrol(app, email: str, number: str, pin: str):
    client = signed_in(app, email)
    token = csrf_from(text(client.get("/enrol/")))
    return client.post("/enrol/", data={"number": number, "pin_code": pin, "csrf_token": token})


def test_an_invitation_letter_carries_the_number_and_a_pin_that_enrols(app, seeded, staff_member, clock, caplog):
    caplog.set_level(logging.DEBUG)
    officer = staff_member("officer")
    response, _fields = _press(officer, seeded["number"])
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"]).path
    item_id = int(re.fullmatch(rf"/staff/accounts/{seeded['number']}/letters/(\d+)", location).group(1))
    page = text(officer.get(location))
    assert "The letter is in the paper mail queue" in page
    assert f'href="/staff/mail/items/{item_id}.pdf"' in page

    item = _letter(app, item_id)
    assert (item.kind, item.title, item.delivery, item.shown_online) == (
        "invitation_letter",
        "Invitation letter",
        "paper",
        False,
    )
    assert item.posted_by_user_id == officer.id and item.pin_id is not None
    shown = pdf_text(item.content)
    assert format_number(seeded["number"]) in shown and "Prairie Inn Ltd." in shown and "PO Box 100" in shown
    assert "Edmonton AB  T5J 2Z2" in shown
    assert "http://localhost/auth/register" in shown and "never asks for your password or PIN by email" in shown
    assert "21 February 2027" in shown  # 90 days on
    pin = _pin_in(item.content)

    with sessionmaker_of(app)() as db:
        row = db.get(InvitationPin, item.pin_id)
        assert (row.role, row.issued_by_user_id, row.consent_id) == ("owner", None, None)
        assert row.expires_at == clock() + timedelta(days=90)
        # Never online: the account's people do not see it in their mail.
        assert item_id not in [m.id for m in mail.mailbox(db, seeded["account_id"])]
        for event in db.scalars(select(AuditEvent)):
            assert pin not in event.detail
        events = [
            e.event
            for e in db.scalars(
                select(AuditEvent).where(AuditEvent.account_id == seeded["account_id"]).order_by(AuditEvent.id)
            )
        ]
        assert events[-3:] == ["pin.issued", "mail.posted", "letter.issued"]
    assert pin not in caplog.text

    newcomer = make_user(app, email="newcomer@example.com", name="Nia Newcomer")
    enrolled = _enrol(app, "newcomer@example.com", seeded["number"], pin)
    assert (
        enrolled.status_code == 303 and urlsplit(enrolled.headers["Location"]).path == f"/accounts/{seeded['number']}/"
    )
    with sessionmaker_of(app)() as db:
        from models import Grant

        grant = db.scalar(select(Grant).where(Grant.user_id == newcomer))
        assert grant.role == "owner" and grant.account_id == seeded["account_id"] and grant.granted_by_user_id is None


def test_the_letter_button_pressed_twice_sends_one_letter(app, seeded, staff_member):
    officer = staff_member("officer")
    first, fields = _press(officer, seeded["number"])
    second = officer.client.post(f"/staff/accounts/{seeded['number']}/letters", data=fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(MailItem.id)).where(MailItem.kind == "invitation_letter")) == 1
        assert db.scalar(select(func.count(InvitationPin.id)).where(InvitationPin.role == "owner")) == 1


def test_a_letter_button_without_its_key_does_nothing(app, seeded, staff_member):
    officer = staff_member("officer")
    page = text(officer.get(f"/staff/accounts/{seeded['number']}"))
    response = officer.client.post(
        f"/staff/accounts/{seeded['number']}/letters", data={"csrf_token": csrf_from(page), "key": ""}
    )
    assert response.status_code == 400
    assert (
        officer.client.post(
            "/staff/accounts/4100000010/letters", data={"csrf_token": csrf_from(page), "key": "abc"}
        ).status_code
        == 404
    )
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(MailItem.id)).where(MailItem.kind == "invitation_letter")) == 0


def test_reissuing_cancels_the_old_pin(app, seeded, staff_member):
    officer = staff_member("officer")
    first, _ = _press(officer, seeded["number"])
    old_item = int(first.headers["Location"].rsplit("/", 1)[1])
    old_pin = _pin_in(_letter(app, old_item).content)
    page = text(officer.get(f"/staff/accounts/{seeded['number']}"))
    assert "Reissue the PIN" in page and "Issue another invitation letter" in page

    again, _ = _press(officer, seeded["number"], "letters/reissue")
    assert again.status_code == 303
    new_item = int(again.headers["Location"].rsplit("/", 1)[1])
    assert new_item != old_item
    new_pin = _pin_in(_letter(app, new_item).content)
    assert new_pin != old_pin
    with sessionmaker_of(app)() as db:
        old_row = db.get(InvitationPin, _letter(app, old_item).pin_id)
        assert old_row.cancelled_at is not None
        # The manager's delegate PIN is not the agency's letter: it stays.
        assert db.scalar(select(InvitationPin).where(InvitationPin.invitee_name == "Dee Delegate")).cancelled_at is None
        [event] = db.scalars(select(AuditEvent).where(AuditEvent.event == "pin.reissued"))
        assert event.actor_user_id == officer.id and event.account_id == seeded["account_id"]
        detail = json.loads(event.detail)
        assert detail["replaced"] == [old_row.id] and detail["mail"] == new_item
        assert old_pin not in event.detail and new_pin not in event.detail

    make_user(app, email="newcomer@example.com", name="Nia Newcomer")
    refused = _enrol(app, "newcomer@example.com", seeded["number"], old_pin)
    assert refused.status_code == 400 and NO_MATCH in text(refused)
    assert _enrol(app, "newcomer@example.com", seeded["number"], new_pin).status_code == 303


# --- PINs across accounts -------------------------------------------------------------------


@pytest.fixture
def pins_of_every_kind(app, clock, seeded):
    """One PIN of each status besides the seeded manager's (outstanding)."""
    now = clock()
    user = make_user(app, email="user@example.com", name="Uma User")
    with sessionmaker_of(app)() as db:
        account = db.get(Account, seeded["account_id"])
        rows = {}
        for status in ("used", "expired", "locked", "cancelled", "outstanding"):
            row, _pin = enrolment.issue(db, now - timedelta(days=10), account, role="owner", valid_days=30)
            rows[status] = row
        rows["used"].used_at, rows["used"].used_by_user_id = now, user
        rows["expired"].expires_at = now - timedelta(days=1)
        rows["locked"].locked_at = now
        rows["cancelled"].cancelled_at = now
        db.commit()
        return {status: row.id for status, row in rows.items()}


def test_the_pin_list_counts_and_filters_by_status(app, pins_of_every_kind, staff_member):
    officer = staff_member("officer")
    page = text(officer.get("/staff/accounts/pins"))
    for label, count in (("All", 6), ("Outstanding", 2), ("Used", 1), ("Expired", 1), ("Locked", 1), ("Cancelled", 1)):
        assert f"{label} ({count})" in page, label
    for status in ("used", "expired", "locked", "cancelled"):
        listed = as_written(text(officer.get(f"/staff/accounts/pins?status={status}")))
        rows = listed[listed.index('id="pins-caption"') :]
        assert rows.count("<tr><td>") == 1, status
        assert f'aria-current="page">{status.capitalize()} (1)' in listed
    used = text(officer.get("/staff/accounts/pins?status=used"))
    assert "by Uma User" in used
    outstanding = text(officer.get("/staff/accounts/pins?status=outstanding"))
    assert "Dee Delegate" in outstanding and "Whoever receives the invitation letter" in outstanding
    response = officer.get("/staff/accounts/pins?status=everything")
    assert response.status_code == 400 and "Choose a status from the list" in text(response)


def test_the_pin_list_follows_the_clock(app, pins_of_every_kind, staff_member, clock):
    clock.advance(days=21)  # the fixture's outstanding PIN (30 days from 10 days ago) has now expired
    officer = staff_member("officer")
    page = text(officer.get("/staff/accounts/pins"))
    assert "Outstanding (1)" in page and "Expired (2)" in page
