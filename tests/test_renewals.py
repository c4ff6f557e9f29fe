"""Licence renewals (issue 5): when a licence can be renewed (the program's window
before expiry, and after expiry), the journey from the list of licences through
the confirmation of details and the program's questions (autosaved as a draft)
to check your answers and the confirmation, one request however often it is
sent, and the agency's decision extending the licence."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain import drafts, renewals
from models import AuditEvent, Draft, Licence, ProgramSetting, ServiceRequest
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user

OWNER, VIEWER, STRANGER = "owner@example.com", "viewer@example.com", "stranger@example.com"


def _licence(db, account, number, expires_on, issued_on=None, kind="Fuel seller's licence"):
    licence = Licence(
        account_id=account.id,
        licence_number=number,
        kind=kind,
        expires_on=expires_on,
        issued_on=issued_on or date(expires_on.year - 1, expires_on.month, 1),
    )
    db.add(licence)
    db.flush()
    return licence.id


@pytest.fixture
def fuel(app, clock):
    """Olive owns a Fuel Tax account with three licences: one in its renewal window
    (expires 31 January 2027; the window of 90 days opened on 2 November), one not
    yet (expires 30 June 2027) and one expired (31 October 2026). She also owns a
    Tobacco Tax and a Tourism Levy account; Vic may only view the fuel account."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    viewer = make_user(app, email=VIEWER, name="Vic Viewer")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(
            db,
            program_code="FT",
            serial=71,
            legal_name="Prairie Fuels Ltd.",
            operating_name="Prairie Gas",
            opened_on=date(2026, 1, 1),
        )
        tobacco = open_account(db, program_code="TT", serial=72, legal_name="Smoke Shop Ltd.")
        levy = open_account(db, program_code="TL", serial=73, legal_name="Prairie Inn Ltd.")
        other = open_account(db, program_code="FT", serial=74, legal_name="Other Fuels Ltd.")
        ids = {
            "open": _licence(db, account, "FT-1001", date(2027, 1, 31)),
            "later": _licence(db, account, "FT-1002", date(2027, 6, 30)),
            "expired": _licence(db, account, "FT-1003", date(2026, 10, 31)),
            "tobacco": _licence(db, tobacco, "TT-2001", date(2027, 1, 15), kind="Tobacco wholesaler's licence"),
            "others": _licence(db, other, "FT-9001", date(2027, 1, 31)),
        }
        for each in (account, tobacco, levy, other):
            give(db, clock(), owner, each)
        give(db, clock(), viewer, account, role="viewer")
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "tobacco_number": tobacco.number,
            "levy": levy.number,
            "owner": owner,
            **ids,
        }


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _post(client, url, data=None):
    response = client.post(url, data={**(data or {}), "csrf_token": _token(client)})
    response.get_data()  # read to the end: a streamed answer holds its request open until then
    return response


FUEL_ANSWERS = {"details_correct": "yes", "fuel_kinds": ["gasoline", "diesel"], "locations": "3"}


def _through_to_check(client, number, licence_id, answers=None):
    assert _post(client, f"/renewals/{number}/{licence_id}/begin").status_code == 303
    response = _post(client, f"/renewals/{number}/{licence_id}/", answers or FUEL_ANSWERS)
    assert response.status_code == 303 and response.headers["Location"] == f"/renewals/{number}/{licence_id}/check"
    page = body(client.get(response.headers["Location"]))
    return page, re.search(r'name="token" value="([^"]+)"', page).group(1)


def _requests(app) -> list[ServiceRequest]:
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(ServiceRequest).order_by(ServiceRequest.id)))


def _expiry(app, licence_id) -> date:
    with sessionmaker_of(app)() as db:
        return db.get(Licence, licence_id).expires_on


# --- When a licence can be renewed ------------------------------------------------------------


@pytest.mark.parametrize(
    "today, state",
    [
        (date(2026, 11, 1), "not_yet"),  # the day before the window opens
        (date(2026, 11, 2), "open"),  # 90 days before expiry
        (date(2027, 1, 31), "open"),  # the day it expires
        (date(2027, 2, 1), "expired"),  # after: still renewable, and said to have expired
        (date(2030, 1, 1), "expired"),
    ],
)
def test_the_renewal_window_opens_days_before_expiry_and_stays_open_after_it(today, state):
    licence = Licence(expires_on=date(2027, 1, 31))
    window = renewals.window(licence, today, 90)
    assert window.state == state and window.opens_on == date(2026, 11, 2)
    assert window.can_renew == (state != "not_yet")


def test_the_window_is_the_programs_setting(app, fuel):
    with sessionmaker_of(app)() as db:
        assert renewals.window_days(db, "FT") == 90
        db.add(ProgramSetting(program_code="FT", key="renewal_window_days", value="30"))
        db.commit()
    page = body(signed_in(app, OWNER).get(f"/renewals/{fuel['number']}/"))
    assert "from 30 days before it expires" in page
    row = page.split(f'id="licence-{fuel["open"]}"')[1].split("</tr>")[0]
    assert "Renewal opens on 1 January 2027" in row


def test_the_list_shows_each_licence_and_when_it_can_be_renewed(app, fuel):
    client = signed_in(app, OWNER)
    assert f'href="/renewals/{fuel["number"]}/"' in body(client.get(f"/accounts/{fuel['number']}/"))
    page = body(client.get(f"/renewals/{fuel['number']}/"))
    rows = {key: page.split(f'id="licence-{fuel[key]}"')[1].split("</tr>")[0] for key in ("open", "later", "expired")}
    assert "FT-1001" in rows["open"] and "31 January 2027" in rows["open"] and "Can be renewed now" in rows["open"]
    assert f'action="/renewals/{fuel["number"]}/{fuel["open"]}/begin"' in rows["open"]
    assert "Renewal opens on 1 April 2027" in rows["later"] and "begin" not in rows["later"]
    assert "expired on 31 October 2026" in rows["expired"] and "You can still renew it" in rows["expired"]
    assert f'/{fuel["expired"]}/begin"' in rows["expired"]
    assert "FT-9001" not in page  # another account's licence


def test_a_program_without_licences_says_so(app, fuel):
    client = signed_in(app, OWNER)
    page = body(client.get(f"/renewals/{fuel['levy']}/"))
    assert "The Tourism Levy program has no licence to renew" in page
    assert "Renew your licence" not in body(client.get(f"/accounts/{fuel['levy']}/"))


# --- The journey ----------------------------------------------------------------------------------


def test_renewing_a_licence_end_to_end(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["open"]
    begun = _post(client, f"/renewals/{number}/{licence_id}/begin")
    assert begun.status_code == 303 and begun.headers["Location"] == f"/renewals/{number}/{licence_id}/"
    page = body(client.get(begun.headers["Location"]))
    for shown in (
        "Prairie Fuels Ltd.",
        "Prairie Gas",
        "PO Box 100\nEdmonton AB  T5J 2Z2",
        "Robin Example",
        "Are these details correct?",
        "Which kinds of fuel do you sell?",
        "Diesel",
        "How many locations do you sell fuel from?",
    ):
        assert shown in page
    assert f'data-hx-post="/renewals/{number}/{licence_id}/autosave"' in page
    # Nothing answered: every question says what it needs.
    refused = _post(client, f"/renewals/{number}/{licence_id}/", {})
    assert refused.status_code == 400
    for message in (
        "Select yes if these details are correct",
        "Select the kinds of fuel you sell",
        "Enter the number of locations you sell fuel from",
    ):
        assert message in body(refused)
    page, token = _through_to_check(client, number, licence_id)
    assert "Check your answers" in page and "Gasoline\nDiesel" in page and "Number of locations" in page
    assert f'href="/renewals/{number}/{licence_id}/#locations"' in page
    # The declaration is needed.
    undeclared = _post(client, f"/renewals/{number}/{licence_id}/check", {"token": token})
    assert undeclared.status_code == 400 and "Confirm the declaration to send the renewal" in body(undeclared)
    assert _requests(app) == []
    sent = _post(client, f"/renewals/{number}/{licence_id}/check", {"token": token, "declaration": "y"})
    assert sent.status_code == 303
    (request,) = _requests(app)
    assert sent.headers["Location"] == f"/renewals/{number}/done/{request.reference}"
    done = body(client.get(sent.headers["Location"]))
    assert "Renewal sent" in done and request.reference in done and "What happens next" in done
    assert request.kind == "renewal" and request.status == "received"
    assert request.summary == "Renewal of Fuel seller's licence FT-1001 (expires 31 January 2027)"
    data = json.loads(request.data)
    assert data["licence_id"] == licence_id and data["expires_on"] == "2027-01-31"
    assert data["kinds_of_fuel_sold"] == "Gasoline\nDiesel" and data["number_of_locations"] == "3"
    assert data["legal_name"] == "Prairie Fuels Ltd." and data["details_confirmed"] is True
    with sessionmaker_of(app)() as db:
        draft = db.scalar(select(Draft).where(Draft.kind == "renewal"))
        assert draft.submitted_request_id == request.id and request.idempotency_key == draft.token
        assert db.scalar(select(AuditEvent).where(AuditEvent.event == "request.renewal")) is not None
    # The list now shows the reference instead of a new start, and starting again leads to it.
    row = body(client.get(f"/renewals/{number}/")).split(f'id="licence-{licence_id}"')[1].split("</tr>")[0]
    assert request.reference in row and "begin" not in row
    again = _post(client, f"/renewals/{number}/{licence_id}/begin")
    assert again.headers["Location"] == f"/renewals/{number}/done/{request.reference}"
    assert client.get(f"/renewals/{number}/{licence_id}/").headers["Location"] == again.headers["Location"]
    assert request.reference in body(client.get(f"/requests/{number}/"))


def test_the_same_renewal_sent_twice_or_from_two_tabs_is_one_request(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["expired"]
    _page, token = _through_to_check(client, number, licence_id)
    first = _post(client, f"/renewals/{number}/{licence_id}/check", {"token": token, "declaration": "y"})
    second = _post(client, f"/renewals/{number}/{licence_id}/check", {"token": token, "declaration": "y"})
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_requests(app)) == 1
    assert body(client.get(first.headers["Location"])).count(_requests(app)[0].reference) >= 1


def test_answering_no_keeps_the_draft_and_explains_how_to_correct_the_details(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["open"]
    _post(client, f"/renewals/{number}/{licence_id}/begin")
    response = _post(client, f"/renewals/{number}/{licence_id}/", {"details_correct": "no", "locations": "4"})
    assert response.status_code == 303
    page = body(client.get(response.headers["Location"]))
    assert "Update your details before you renew" in page
    assert f'href="/details/{number}/edit"' in page
    assert 'value="4"' in page  # the answers so far are kept
    assert client.get(f"/renewals/{number}/{licence_id}/check").status_code == 303  # not ready to send
    with sessionmaker_of(app)() as db:
        draft = db.scalar(select(Draft).where(Draft.kind == "renewal"))
        assert drafts.answers(draft)["details_correct"] == "no" and draft.submitted_request_id is None
    assert _requests(app) == []


def test_autosave_keeps_what_is_typed_and_a_later_visit_shows_it(app, fuel, clock):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["open"]
    for typed in ("1", "12 sites"):  # the first pause in typing starts the draft, the next ones save it
        saved = client.post(
            f"/renewals/{number}/{licence_id}/autosave",
            headers={"HX-Request": "true"},
            data={"csrf_token": _token(client), "fuel_kinds": ["propane"], "locations": typed},
        )
        clock.advance(minutes=2)
    assert saved.status_code == 200 and 'id="draft-status"' in body(saved) and "Draft saved at" in body(saved)
    later = signed_in(app, OWNER)  # another session, after a time-out
    page = body(later.get(f"/renewals/{number}/{licence_id}/"))
    assert 'value="12 sites"' in page and re.search(r'value="propane"\s+checked', page)
    assert "Continue your renewal" in body(later.get(f"/renewals/{number}/"))
    # Kept as typed, and checked only when the person continues.
    refused = _post(
        later,
        f"/renewals/{number}/{licence_id}/",
        {"details_correct": "yes", "fuel_kinds": ["propane"], "locations": "12 sites"},
    )
    assert refused.status_code == 400 and "Number of locations must be a whole number, like 3" in body(refused)


BAD_ANSWERS = [
    ({"locations": "abc"}, "Number of locations must be a whole number, like 3"),
    ({"locations": "1.5"}, "Number of locations must be a whole number"),
    ({"locations": "-2"}, "Number of locations must be a whole number"),
    ({"locations": "0"}, "Number of locations must be between 1 and 9,999"),
    ({"locations": "10000"}, "Number of locations must be between 1 and 9,999"),
    ({"locations": "٣"}, "Number of locations must be a whole number"),  # not an ASCII digit
    ({"fuel_kinds": ["kerosene"]}, "Select the kinds of fuel you sell from the list"),
    ({"fuel_kinds": []}, "Select the kinds of fuel you sell"),
    ({"details_correct": "maybe"}, "Select yes if these details are correct"),
]


def test_bad_answers_are_refused_and_nothing_is_saved(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["open"]
    for answers, message in BAD_ANSWERS:
        response = _post(client, f"/renewals/{number}/{licence_id}/", {**FUEL_ANSWERS, **answers})
        assert response.status_code == 400 and message in body(response), answers
        assert "There is a problem" in body(response)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Draft)) is None


def test_a_tobacco_licence_asks_the_tobacco_questions(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["tobacco_number"], fuel["tobacco"]
    page = body(client.get(f"/renewals/{number}/{licence_id}/"))
    assert "How many retail locations do you supply with tobacco?" in page
    assert "Do you import tobacco products into Alberta?" in page and "fuel" not in page.lower()
    refused = _post(client, f"/renewals/{number}/{licence_id}/", {"details_correct": "yes"})
    assert "Enter the number of retail locations you supply" in body(refused)
    assert "Select yes if you import tobacco products into Alberta" in body(refused)
    page, token = _through_to_check(
        client, number, licence_id, {"details_correct": "yes", "retail_locations": "1,200", "imports": "no"}
    )
    assert "1,200" in page and "Imports tobacco products" in page
    assert (
        _post(client, f"/renewals/{number}/{licence_id}/check", {"token": token, "declaration": "y"}).status_code == 303
    )
    assert json.loads(_requests(app)[0].data)["retail_locations_supplied"] == "1,200"


def test_a_licence_not_yet_in_its_window_cannot_be_started(app, fuel):
    client = signed_in(app, OWNER)
    number, licence_id = fuel["number"], fuel["later"]
    response = _post(client, f"/renewals/{number}/{licence_id}/begin")
    assert response.status_code == 303 and response.headers["Location"] == f"/renewals/{number}/"
    assert "can be renewed from 1 April 2027" in body(client.get(response.headers["Location"]))
    assert client.get(f"/renewals/{number}/{licence_id}/").status_code == 303
    assert _post(client, f"/renewals/{number}/{licence_id}/", FUEL_ANSWERS).status_code == 303
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(Draft)) is None


def test_strangers_viewers_and_other_accounts_licences_get_404(app, fuel):
    number = fuel["number"]
    urls = [f"/renewals/{number}/", f"/renewals/{number}/{fuel['open']}/", f"/renewals/{number}/{fuel['open']}/check"]
    for email in (STRANGER, VIEWER):
        client = signed_in(app, email)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 404 and "Prairie Fuels" not in body(response)
        assert _post(client, f"/renewals/{number}/{fuel['open']}/begin").status_code == 404
    owner = signed_in(app, OWNER)
    for licence_id in (fuel["others"], fuel["tobacco"], 2**31, 2**63, 10**30):
        assert owner.get(f"/renewals/{number}/{licence_id}/").status_code == 404
        assert _post(owner, f"/renewals/{number}/{licence_id}/begin").status_code == 404
    assert owner.get(f"/renewals/{number}/done/SR-NONE-0000").status_code == 404
    assert owner.get(f"/renewals/{number}/done/{'X' * 500}").status_code == 404


# --- The agency's decision --------------------------------------------------------------------------


def _send(app, fuel, key):
    client = signed_in(app, OWNER)
    _page, token = _through_to_check(client, fuel["number"], fuel[key])
    assert (
        _post(client, f"/renewals/{fuel['number']}/{fuel[key]}/check", {"token": token, "declaration": "y"}).status_code
        == 303
    )
    return client, _requests(app)[-1].id


def test_approval_extends_a_licence_by_a_year_from_its_expiry(app, fuel, clock):
    client, request_id = _send(app, fuel, "open")
    with sessionmaker_of(app)() as db:
        request = db.get(ServiceRequest, request_id)
        decision = renewals.decide(db, clock(), request, True, None, staff_user_id=fuel["owner"])
        db.commit()
        assert decision.new_expiry == date(2028, 1, 31)
        assert request.status == "approved" and request.decided_at is not None
        assert db.scalar(select(AuditEvent).where(AuditEvent.event == "renewal.approved")) is not None
        with pytest.raises(renewals.DecisionRefused):  # no second decision
            renewals.decide(db, clock(), request, False, "Changed my mind", staff_user_id=fuel["owner"])
        db.rollback()
    assert _expiry(app, fuel["open"]) == date(2028, 1, 31)
    row = body(client.get(f"/renewals/{fuel['number']}/")).split(f'id="licence-{fuel["open"]}"')[1].split("</tr>")[0]
    assert "31 January 2028" in row and "Renewal opens on 2 November 2027" in row


def test_approval_of_an_expired_licence_runs_a_year_from_the_day_of_approval(app, fuel, clock):
    _client, request_id = _send(app, fuel, "expired")
    clock.advance(days=3)
    with sessionmaker_of(app)() as db:
        decision = renewals.decide(db, clock(), db.get(ServiceRequest, request_id), True, "", fuel["owner"])
        db.commit()
    assert decision.new_expiry == date(2027, 11, 26) == _expiry(app, fuel["expired"])


def test_a_decline_records_the_reason_and_leaves_the_licence_and_the_person_can_renew_again(app, fuel, clock):
    client, request_id = _send(app, fuel, "open")
    with sessionmaker_of(app)() as db:
        request = db.get(ServiceRequest, request_id)
        with pytest.raises(renewals.DecisionRefused):
            renewals.decide(db, clock(), request, False, "  ", fuel["owner"])  # a decline needs its reason
        db.rollback()
        renewals.decide(db, clock(), request, False, "Your bond has lapsed: renew it first.", fuel["owner"])
        db.commit()
        assert request.status == "declined" and request.decision_reason == "Your bond has lapsed: renew it first."
        with pytest.raises(renewals.DecisionRefused):
            renewals.decide(db, clock(), request, True, None, fuel["owner"])
        db.rollback()
    assert _expiry(app, fuel["open"]) == date(2027, 1, 31)
    assert "Your bond has lapsed" in body(client.get(f"/renewals/{fuel['number']}/done/{_requests(app)[0].reference}"))
    _page, token = _through_to_check(client, fuel["number"], fuel["open"])  # a new draft, a new request
    assert (
        _post(
            client, f"/renewals/{fuel['number']}/{fuel['open']}/check", {"token": token, "declaration": "y"}
        ).status_code
        == 303
    )
    assert len(_requests(app)) == 2


def test_one_year_on_from_29_february():
    assert renewals.one_year_on(date(2028, 2, 29)) == date(2029, 2, 28)


# --- Any input ------------------------------------------------------------------------------------------

_text = st.text(max_size=40)


@given(details_correct=_text, fuel_kinds=st.lists(_text, max_size=4), locations=_text)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_in_the_confirmation_never_fails_and_saves_only_good_answers(
    app, fuel, details_correct, fuel_kinds, locations
):
    if "renewals-test-client" not in app.extensions:
        app.extensions["renewals-test-client"] = signed_in(app, OWNER)
    client = app.extensions["renewals-test-client"]
    with sessionmaker_of(app)() as db:
        before = [(d.id, d.data) for d in db.scalars(select(Draft).order_by(Draft.id))]
    response = client.post(
        f"/renewals/{fuel['number']}/{fuel['open']}/",
        data={
            "csrf_token": _token(client),
            "details_correct": details_correct,
            "fuel_kinds": fuel_kinds,
            "locations": locations,
        },
    )
    response.get_data()
    assert response.status_code in (303, 400)
    with sessionmaker_of(app)() as db:
        after = [(d.id, d.data) for d in db.scalars(select(Draft).order_by(Draft.id))]
    if response.status_code == 400:
        assert after == before
    else:
        saved = json.loads(after[-1][1])
        assert saved["details_correct"] in ("yes", "no")


@given(token=_text, declaration=_text)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_in_the_declaration_never_fails_or_sends_anything_but_the_draft(app, fuel, token, declaration):
    if "renewals-test-client" not in app.extensions:
        client = app.extensions["renewals-test-client"] = signed_in(app, OWNER)
        _through_to_check(client, fuel["number"], fuel["open"])
    client = app.extensions["renewals-test-client"]
    response = client.post(
        f"/renewals/{fuel['number']}/{fuel['open']}/check",
        data={"csrf_token": _token(client), "token": token, "declaration": declaration},
    )
    response.get_data()
    assert response.status_code in (303, 400)
    sent = _requests(app)
    if response.status_code == 400:
        assert sent == []
    assert len(sent) <= 1
