"""Enrolment with an account number and the PIN from an invitation letter: the
number is checked before any look-up, the PIN is stored hashed, works once,
expires after 90 days; five wrong tries counted in the database hold back the
guesser (never the PIN), and no answer says whether an account number exists. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from domain import enrolment
from domain.accounts import make_number
from models import AuditEvent, Grant, InvitationPin, ThrottleEvent
from tests.accounts_factory import give, issue_pin, open_account, sessionmaker_of
from tests.conftest import Auth, csrf_from, make_user

EMAIL = "newcomer@example.com"
NO_MATCH = "The account number and PIN do not match an invitation. Check both and try again."


def signed_in(app, email: str = EMAIL):
    client = app.test_client()
    assert Auth(client, app).sign_in(email=email).status_code == 303
    return client


def enrol(client, number: str, pin: str, headers=None):
    token = csrf_from(client.get("/enrol/").get_data(as_text=True))
    return client.post("/enrol/", data={"number": number, "pin_code": pin, "csrf_token": token}, headers=headers)


def text_of(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def invited(app, clock):
    """A newcomer, an account, and a PIN for it issued by the agency for a delegate."""
    user_id = make_user(app, email=EMAIL, name="Nia Newcomer")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=5, legal_name="Lakeside Lodge Ltd.", operating_name=None)
        pin = issue_pin(db, clock(), account, role="delegate")
        db.commit()
        return dict(user_id=user_id, number=account.number, account_id=account.id, pin=pin)


def _grants(app, user_id):
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(Grant).where(Grant.user_id == user_id)))


def _pins(app, account_id):
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(InvitationPin).where(InvitationPin.account_id == account_id)))


def _throttle_count(app) -> int:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(ThrottleEvent).where(ThrottleEvent.scope == "enrol"))


def test_the_enrol_page_asks_for_number_and_pin(app, invited):
    client = signed_in(app)
    page = text_of(client.get("/"))
    assert 'href="/enrol/"' in page  # from the dashboard, even with no accounts yet
    response = client.get("/enrol/")
    assert response.status_code == 200
    page = text_of(response)
    assert '<label class="label" for="number">Account number</label>' in page
    assert "10 digits, from your invitation letter" in page and "From your invitation letter" in page
    number_input = re.search(r'<input[^>]*id="number"[^>]*>', page).group(0)
    assert 'inputmode="numeric"' in number_input and 'autocomplete="off"' in number_input
    pin_input = re.search(r'<input[^>]*id="pin"[^>]*>', page).group(0)
    assert 'autocomplete="off"' in pin_input
    assert 'name="csrf_token"' in page


def test_a_pin_links_the_account_with_the_permissions_it_carries(app, invited, clock):
    client = signed_in(app)
    response = enrol(client, " " + invited["number"][:4] + " " + invited["number"][4:], invited["pin"].lower())
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"/accounts/{invited['number']}/"
    page = text_of(client.get(response.headers["Location"]))
    assert "You can now use Tourism Levy account" in page and "Lakeside Lodge Ltd." in page
    [grant] = _grants(app, invited["user_id"])
    assert grant.role == "delegate" and grant.revoked_at is None and grant.granted_by_user_id is None
    assert grant.permissions == "view_financial,view_returns,file,upload,receive_messages"
    [pin] = _pins(app, invited["account_id"])
    assert pin.used_at == clock() and pin.used_by_user_id == invited["user_id"]
    # The dashboard now lists it.
    assert "Lakeside Lodge Ltd." in text_of(client.get("/"))


def test_htmx_success_answers_with_the_summary(app, invited):
    response = enrol(signed_in(app), invited["number"], invited["pin"], headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == f"/accounts/{invited['number']}/"
    assert "Lakeside Lodge Ltd." in text_of(response)


def test_a_pin_works_once(app, invited):
    first = signed_in(app)
    assert enrol(first, invited["number"], invited["pin"]).status_code == 303
    other_id = make_user(app, email="other@example.com", name="Otto Other")
    response = enrol(signed_in(app, "other@example.com"), invited["number"], invited["pin"])
    assert response.status_code == 400 and NO_MATCH in text_of(response)
    assert _grants(app, other_id) == []


def test_someone_who_already_has_access_is_told_so(app, invited, clock):
    with sessionmaker_of(app)() as db:
        from models import Account

        give(db, clock(), invited["user_id"], db.get(Account, invited["account_id"]), role="viewer")
        db.commit()
    client = signed_in(app)
    response = enrol(client, invited["number"], invited["pin"])
    assert response.status_code == 303
    assert "You already have access to Tourism Levy account" in text_of(client.get(response.headers["Location"]))
    assert len(_grants(app, invited["user_id"])) == 1


def test_the_pin_is_stored_hashed(app, invited):
    [pin] = _pins(app, invited["account_id"])
    assert invited["pin"] not in pin.pin_hash and pin.pin_hash.startswith("$argon2id$")
    assert len(invited["pin"]) == enrolment.PIN_LENGTH
    with sessionmaker_of(app)() as db:
        for event in db.scalars(select(AuditEvent)):
            assert invited["pin"] not in event.detail


def test_a_pin_expires_after_ninety_days(app, invited, clock):
    clock.advance(days=89, hours=23)
    client = signed_in(app)
    assert enrol(client, invited["number"], invited["pin"]).status_code == 303


def test_an_expired_pin_says_who_can_issue_another(app, invited, clock):
    clock.advance(days=90)
    response = enrol(signed_in(app), invited["number"], invited["pin"])
    assert response.status_code == 400
    page = text_of(response)
    assert "This PIN has expired. Call Tax and Revenue Administration at 780-427-3044" in page
    assert _grants(app, invited["user_id"]) == []


def test_an_expired_pin_from_an_account_manager_says_to_ask_them(app, invited, clock):
    manager = make_user(app, email="manager@example.com", name="Mia Manager")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=6, legal_name="Managed Ltd.")
        pin = issue_pin(db, clock(), account, role="viewer", issued_by_user_id=manager, valid_days=30)
        db.commit()
        number = account.number
    clock.advance(days=30)
    response = enrol(signed_in(app), number, pin)
    assert response.status_code == 400
    assert "This PIN has expired. Ask the account manager who issued it for a new one" in text_of(response)


def test_five_wrong_tries_hold_back_the_guesser_counted_in_the_database(app, invited, clock):
    client = signed_in(app)
    wrong = "ABCDEFGHJK" if invited["pin"] != "ABCDEFGHJK" else "KJHGFEDCBA"
    for _attempt in range(1, 6):
        response = enrol(client, invited["number"], wrong)
        assert response.status_code == 400 and NO_MATCH in text_of(response)
    assert _throttle_count(app) == 5
    [pin] = _pins(app, invited["account_id"])
    assert pin.failed_attempts == 0 and pin.locked_at is None  # the PIN itself is never locked
    # Now even the right PIN is refused to this person, with when to try again (a day
    # after the first wrong try, in the service's time zone).
    response = enrol(client, invited["number"], invited["pin"])
    assert response.status_code == 429
    page = text_of(response)
    assert (
        "You have got the PIN for this account number wrong too many times. "
        "Try again after 11:00 am on Tuesday 24 November 2026"
    ) in page
    assert _grants(app, invited["user_id"]) == []
    # Someone else may use it at once; the guesser may try again a day later.
    make_user(app, email="other@example.com", name="Otto Other")
    assert enrol(signed_in(app, "other@example.com"), invited["number"], invited["pin"]).status_code == 303
    clock.advance(hours=24)
    assert enrol(signed_in(app), invited["number"], wrong).status_code == 400


def test_an_unknown_number_and_a_wrong_pin_read_the_same(app, invited):
    client = signed_in(app)
    unknown = make_number("41", 4242)  # a well-formed number no account has
    wrong_pin = enrol(client, invited["number"], "WRONGPIN22")
    no_account = enrol(client, unknown, "WRONGPIN22")
    assert wrong_pin.status_code == no_account.status_code == 400
    assert NO_MATCH in text_of(wrong_pin) and NO_MATCH in text_of(no_account)

    def same(page, number):
        page = page.replace(number, "NUMBER")
        page = re.sub(r'"X-CSRFToken": "[^"]+"', "TOKEN", page)
        return re.sub(r'name="csrf_token" value="[^"]+"', "TOKEN", page)

    assert same(text_of(wrong_pin), invited["number"]) == same(text_of(no_account), unknown)
    # And an unknown number is locked after five tries too, the same way.
    for _ in range(4):
        enrol(client, unknown, "WRONGPIN22")
    assert enrol(client, unknown, "WRONGPIN22").status_code == 429


@pytest.mark.parametrize(
    "number, message",
    [
        ("", "Enter your account number"),
        ("4100 0O12 34", "An account number has digits only, like 4100 0012 34"),
        ("410001234", "An account number has 10 digits"),
        ("4100000051", "Check the account number: one of the digits is not right"),
    ],
)
def test_a_mistyped_number_is_caught_before_any_look_up(app, invited, number, message):
    assert number_is_wrong(number)
    response = enrol(signed_in(app), number, invited["pin"])
    assert response.status_code == 400
    page = text_of(response)
    assert f'<p class="field-error" id="number-error"><span class="visually-hidden">Error:</span> {message}</p>' in page
    assert f'<a href="#number">{message}</a>' in page
    assert _throttle_count(app) == 0  # never looked up, never counted
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "enrolment")) == 0
    assert f'value="{invited["pin"]}"' not in page  # the PIN is never sent back


def number_is_wrong(number: str) -> bool:
    from domain.accounts import number_problem

    return number_problem(number) is not None


def test_the_pin_is_required(app, invited):
    response = enrol(signed_in(app), invited["number"], "")
    assert response.status_code == 400
    assert "Enter the PIN from your invitation letter" in text_of(response)


def test_enrolment_needs_the_csrf_token(app, invited):
    client = signed_in(app)
    response = client.post("/enrol/", data={"number": invited["number"], "pin_code": invited["pin"]})
    assert response.status_code == 400
    assert _grants(app, invited["user_id"]) == []


def test_enrolment_needs_a_sign_in(app, invited):
    response = app.test_client().get("/enrol/")
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/auth/sign-in"


def test_a_pin_without_view_rights_lands_on_the_dashboard(app, invited, clock):
    with sessionmaker_of(app)() as db:
        from models import Account

        pin = issue_pin(db, clock(), db.get(Account, invited["account_id"]), role="owner", permissions=("upload",))
        db.commit()
    client = signed_in(app)
    response = enrol(client, invited["number"], pin)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = text_of(client.get("/"))
    assert "You can now use Tourism Levy account" in page
    assert "Lakeside Lodge Ltd." in page and f'href="/accounts/{invited["number"]}/"' not in page
    assert client.get(f"/accounts/{invited['number']}/").status_code == 404


def test_today_is_the_services_day(app):
    with app.test_request_context():
        from web.dates import today

        assert today() == date(2026, 11, 23)
