"""Payment arrangements (issue 5): the person proposes an instalment, a frequency
and a first payment date for a balance owing; the program's rules are checked
with a message that says what would work; the full schedule is checked and
declared; the agency approves (the schedule then shows Paid, Part paid, Missed
and Due from the ledger's payments) or declines (with a reason)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain import arrangements
from domain.arrangements import Rules, check, parse_money, schedule
from models import Draft, Instalment, PaymentArrangement, ServiceRequest
from tests.accounts_factory import as_written, body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user

OWNER, CLERK, STRANGER = "owner@example.com", "clerk@example.com", "stranger@example.com"
TODAY = date(2026, 11, 23)
BALANCE = 1_481_484  # $14,814.84: over 12 months, monthly payments of at least $1,234.57
DEFAULT_RULES = Rules(max_months=12, min_instalment_cents=5000, first_payment_days=30)
GOOD = {"frequency": "monthly", "instalment": "1,234.57", "first_day": "1", "first_month": "12", "first_year": "2026"}


# --- The schedule's arithmetic (pure functions, no database) --------------------------


def test_schedule_is_exact_in_cents_with_the_remainder_last():
    rows = schedule(100_001, 33_334, "monthly", date(2026, 12, 1))
    assert [cents for _day, cents in rows] == [33_334, 33_334, 33_333]
    rows = schedule(BALANCE, 123_457, "monthly", date(2026, 12, 1))
    assert len(rows) == 12 and sum(c for _d, c in rows) == BALANCE
    assert rows[-1] == (date(2027, 11, 1), BALANCE - 11 * 123_457)
    rows = schedule(10_020, 5_000, "weekly", date(2026, 12, 1))
    assert rows == [(date(2026, 12, 1), 5_000), (date(2026, 12, 8), 5_000), (date(2026, 12, 15), 20)]
    rows = schedule(30_000, 10_000, "biweekly", date(2026, 12, 30))
    assert [d for d, _c in rows] == [date(2026, 12, 30), date(2027, 1, 13), date(2027, 1, 27)]
    assert schedule(5_000, 10_000, "monthly", date(2026, 12, 1)) == [(date(2026, 12, 1), 5_000)]
    assert schedule(0, 10_000, "monthly", date(2026, 12, 1)) == []
    assert schedule(-500, 10_000, "monthly", date(2026, 12, 1)) == []
    with pytest.raises(ValueError):
        schedule(100, 0, "monthly", date(2026, 12, 1))
    with pytest.raises(ValueError):
        schedule(100, 10, "daily", date(2026, 12, 1))


def test_monthly_dates_keep_the_day_clamped_to_the_end_of_short_months():
    days = [d for d, _c in schedule(50_000, 10_000, "monthly", date(2027, 1, 31))]
    assert days == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]
    leap = [d for d, _c in schedule(30_000, 10_000, "monthly", date(2028, 1, 30))]
    assert leap == [date(2028, 1, 30), date(2028, 2, 29), date(2028, 3, 30)]


@pytest.mark.parametrize(
    "text, cents",
    [
        ("1250", 125_000),
        ("1,234.50", 123_450),
        ("$1234.5", 123_450),
        (" $ 12.05 ", 1_205),
        (".5", 50),
        ("9,999,999,999.99", 999_999_999_999),
    ],
)
def test_money_is_read_exactly(text, cents):
    assert parse_money(text) == (cents, None)


def _problems(balance=BALANCE, rules=DEFAULT_RULES, **answers):
    return check({**GOOD, **answers}, balance_cents=balance, today=TODAY, rules=rules)


@pytest.mark.parametrize(
    "answers, field, message",
    [
        # The longest term: the message says the smallest instalment that fits.
        (
            {"instalment": "100"},
            "instalment",
            "With monthly payments over at most 12 months, each payment must be at least $1,234.57",
        ),
        (
            {"instalment": "1,234.56"},
            "instalment",
            "With monthly payments over at most 12 months, each payment must be at least $1,234.57",
        ),
        (
            {"frequency": "weekly", "instalment": "100"},
            "instalment",
            "With weekly payments over at most 12 months, each payment must be at least $284.91",
        ),
        (
            {"frequency": "biweekly", "instalment": "100"},
            "instalment",
            "With payments every two weeks over at most 12 months, each payment must be at least $569.81",
        ),
        # The first payment: not in the past, within 30 days.
        (
            {"first_day": "22", "first_month": "11"},
            "first_date",
            "The date of your first payment must be today or in the future",
        ),
        (
            {"first_day": "24", "first_month": "12"},
            "first_date",
            "Enter a first payment date on or before 23 December 2026",
        ),
        ({"first_day": "", "first_month": "", "first_year": ""}, "first_date", "Enter the date of your first payment"),
        ({"first_month": ""}, "first_month", "The date of your first payment must include a month"),
        (
            {"first_day": "", "first_year": ""},
            "first_day",
            "The date of your first payment must include a day and year",
        ),
        (
            {"first_day": "30", "first_month": "2", "first_year": "2027"},
            "first_day",
            "The date of your first payment must be a real date",
        ),
        ({"first_month": "13"}, "first_month", "The date of your first payment must be a real date"),
        ({"first_year": "26"}, "first_year", "Year must include 4 numbers"),
        ({"first_day": "1st"}, "first_day", "The date of your first payment must be a real date"),
        # The frequency and the amount.
        ({"frequency": ""}, "frequency", "Select how often you will pay"),
        ({"frequency": "daily"}, "frequency", "Select how often you will pay"),
        ({"instalment": ""}, "instalment", "Enter the amount of each payment"),
        ({"instalment": "12,34"}, "instalment", "Amount must be a number, like 1250.00"),
        ({"instalment": "1e5"}, "instalment", "Amount must be a number, like 1250.00"),
        (
            {"instalment": "1.005"},
            "instalment",
            "Amount must be in dollars and cents, with no more than 2 numbers after the decimal point",
        ),
        ({"instalment": "-2000"}, "instalment", "Amount must be more than $0.00"),
        ({"instalment": "0.00"}, "instalment", "Amount must be more than $0.00"),
        ({"instalment": "10000000000"}, "instalment", "Amount must be $9,999,999,999.99 or less"),
        ({"instalment": "9" * 400}, "instalment", "Amount must be $9,999,999,999.99 or less"),
        ({"instalment": "1" * 2000}, "instalment", "Amount must be a number, like 1250.00"),
        ({"instalment": "20000"}, "instalment", "Each payment cannot be more than your balance of $14,814.84"),
    ],
)
def test_every_rule_has_a_message_saying_what_would_work(answers, field, message):
    proposal, found = _problems(**answers)
    assert proposal is None and found[field] == message


def test_the_smallest_instalment_except_the_last_and_a_small_balance_in_one_payment():
    _none, found = _problems(balance=100_000, instalment="49.99")
    assert found == {"instalment": "Each payment must be at least $50.00. Only the last payment can be less"}
    proposal, found = _problems(balance=10_020, instalment="50")
    assert found == {} and proposal.schedule(10_020)[-1][1] == 20  # the last one is smaller
    _none, found = _problems(balance=3_000, instalment="10")
    assert found["instalment"].endswith("so pay it in one payment of $30.00")
    assert _problems(balance=3_000, instalment="30")[1] == {}


def test_the_edges_of_each_rule_are_allowed():
    assert _problems(instalment="1234.57")[1] == {}
    assert _problems(first_day="23", first_month="11")[1] == {}  # today
    assert _problems(first_day="23", first_month="12")[1] == {}  # the 30th day
    # The term is counted from the first date: 13 monthly payments fit from today, 12 from 1 December.
    assert _problems(instalment="1139.61", first_day="23", first_month="11")[1] == {}
    _none, found = _problems(instalment="1139.61")
    assert found["instalment"].endswith("at least $1,234.57")
    # Without a usable date: refused only when no date would do, asking for what works with any date.
    _none, found = _problems(instalment="1139.61", first_day="")
    assert "instalment" not in found
    _none, found = _problems(instalment="100", first_day="", first_month="", first_year="")
    assert found["instalment"].endswith("at least $1,234.57")


# --- The journey through the portal ------------------------------------------------------


@pytest.fixture
def owing(app, clock):
    """Olive owns Prairie Inn (Tourism Levy) and owes $14,814.84; Casey may only view it."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Prairie Inn Ltd.", opened_on=date(2026, 1, 1))
        post(db, account, "assessment", BALANCE, date(2026, 10, 15), period_end=date(2026, 9, 30))
        other = open_account(db, serial=62, legal_name="Other Inn Ltd.", opened_on=date(2026, 1, 1))
        post(db, other, "assessment", 90_000, date(2026, 10, 15), period_end=date(2026, 9, 30))
        give(db, clock(), owner, account)
        give(db, clock(), owner, other)
        give(db, clock(), clerk, account, role="viewer")
        db.commit()
        return {"number": account.number, "account_id": account.id, "other": other.number, "owner": owner}


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _post(client, url, data=None, token=None):
    return client.post(url, data={**(data or {}), "csrf_token": token or _token(client)})


def _propose(client, number, token=None, **answers):
    return _post(client, f"/arrangements/{number}/propose", {**GOOD, **answers}, token=token)


def _check_fields(page: str) -> dict:
    return {
        "token": re.search(r'name="token" value="([^"]+)"', page).group(1),
        "seen_balance": re.search(r'name="seen_balance" value="([^"]+)"', page).group(1),
    }


def _submit(client, number, **answers):
    assert _propose(client, number, **answers).status_code == 303
    page = body(client.get(f"/arrangements/{number}/check"))
    return _post(client, f"/arrangements/{number}/check", {**_check_fields(page), "declaration": "y"})


def _count(app, model, **where):
    with sessionmaker_of(app)() as db:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return db.scalar(query)


def _decide(app, clock, number_account_id, approve, reason=None):
    with sessionmaker_of(app)() as db:
        request = db.scalar(
            select(ServiceRequest).where(
                ServiceRequest.account_id == number_account_id, ServiceRequest.kind == "arrangement"
            )
        )
        arrangements.decide(db, clock(), request, approve, reason, staff_user_id=999)
        db.commit()


def test_propose_check_declare_and_send_end_to_end(app, owing):
    client = signed_in(app, OWNER)
    number = owing["number"]
    start = body(client.get(f"/arrangements/{number}/"))
    assert "$14,814.84 owing" in start and "at least $50.00" in start and "12 months" in start
    assert f'href="/arrangements/{number}/propose"' in start
    assert "Set up a payment arrangement" in body(client.get(f"/accounts/{number}/"))
    form = client.get(f"/arrangements/{number}/propose")
    page = body(form)
    assert form.status_code == 200 and "23 December 2026" in page
    assert 'class="input input--width-2' in page and 'class="input input--width-4' in page
    assert f'data-hx-post="/arrangements/{number}/autosave"' in page
    assert _count(app, Draft) == 0  # a GET changes nothing

    response = _propose(client, number)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/arrangements/{number}/check")
    check_page = as_written(body(client.get(f"/arrangements/{number}/check")))
    assert check_page.count('<td class="num">$1,234.57</td>') == 12
    assert "1 December 2026" in check_page and "1 November 2027" in check_page
    assert re.search(r'id="schedule-total">\$14,814.84<', check_page)
    assert 'Number of payments</dt>\n    <dd class="address">12</dd>' in check_page
    assert "interest keeps accruing on the unpaid balance" in check_page
    assert "missing a payment may cancel the arrangement" in check_page
    assert f'href="/arrangements/{number}/propose#instalment"' in check_page

    refused = _post(client, f"/arrangements/{number}/check", _check_fields(check_page))
    assert refused.status_code == 400
    assert body(refused).count("Confirm that you agree to pay as scheduled to send your proposal") == 2
    assert _count(app, ServiceRequest) == 0

    sent = _post(client, f"/arrangements/{number}/check", {**_check_fields(check_page), "declaration": "y"})
    assert sent.status_code == 303
    done = body(client.get(sent.headers["Location"]))
    reference = re.search(r'class="reference">(SR-[A-Z0-9-]+)<', done).group(1)
    assert "Payment arrangement proposed" in done and "What happens next" in done
    assert "12 monthly payments for $14,814.84" in done
    with sessionmaker_of(app)() as db:
        request = db.scalar(select(ServiceRequest))
        assert request.reference == reference and request.kind == "arrangement" and request.status == "received"
        assert "12 monthly payments" in request.summary
        arrangement = db.scalar(select(PaymentArrangement))
        assert arrangement.status == "proposed" and arrangement.balance_cents == BALANCE
        assert arrangement.service_request_id == request.id and arrangement.first_due_on == date(2026, 12, 1)
        rows = list(db.scalars(select(Instalment).order_by(Instalment.sequence)))
        assert len(rows) == 12 and sum(r.amount_cents for r in rows) == BALANCE
        assert db.scalar(select(Draft)).submitted_request_id == request.id
    start = body(client.get(f"/arrangements/{number}/"))
    assert "Waiting for our decision" in start and reference in start
    assert f'href="/arrangements/{number}/propose"' not in start
    assert client.get(f"/arrangements/{number}/propose").status_code == 303  # one at a time


def test_a_double_submit_makes_one_arrangement_and_the_same_confirmation(app, owing):
    client = signed_in(app, OWNER)
    number = owing["number"]
    assert _propose(client, number).status_code == 303
    fields = {**_check_fields(body(client.get(f"/arrangements/{number}/check"))), "declaration": "y"}
    first = _post(client, f"/arrangements/{number}/check", fields)
    second = _post(client, f"/arrangements/{number}/check", fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(app, ServiceRequest) == 1 and _count(app, PaymentArrangement) == 1 and _count(app, Instalment) == 12


def test_the_draft_saves_as_the_person_types_and_comes_back(app, owing, clock):
    client = signed_in(app, OWNER)
    number = owing["number"]
    saved = _post(
        client, f"/arrangements/{number}/autosave", {"frequency": "weekly", "instalment": "3o0"}, token=_token(client)
    )
    assert saved.status_code == 200 and 'id="draft-status"' in body(saved)
    clock.advance(seconds=40)
    assert "Draft saved at" in body(_post(client, f"/arrangements/{number}/autosave", {"first_day": "4"}))
    # An answer too long to be one is left out, never cut short.
    _post(client, f"/arrangements/{number}/autosave", {"instalment": "5" * 5000})
    page = body(client.get(f"/arrangements/{number}/propose"))
    assert 'value="3o0"' in page and 'value="weekly" checked' in page and 'id="first_day" name="first_day"' in page
    assert re.search(r'id="first_day" name="first_day" type="text" inputmode="numeric"\s+value="4"', page)
    assert "Continue your proposal" in body(client.get(f"/arrangements/{number}/"))
    fragment = client.post(
        f"/arrangements/{number}/autosave",
        data={"instalment": "300", "csrf_token": _token(client)},
        headers={"HX-Request": "true"},
    )
    assert body(fragment).startswith('<p class="draft-status') and "<html" not in body(fragment)
    # Continue under htmx: the answer is the check page, with its URL.
    moved = client.post(
        f"/arrangements/{number}/propose",
        data={**GOOD, "csrf_token": _token(client)},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert moved.status_code == 200 and moved.headers["HX-Push-Url"].endswith("/check")
    assert _count(app, Draft) == 1 and _count(app, ServiceRequest) == 0


def test_after_approval_the_schedule_shows_paid_part_paid_missed_and_due(app, owing, clock):
    client = signed_in(app, OWNER)
    number, account_id = owing["number"], owing["account_id"]
    assert _submit(client, number).status_code == 303
    with sessionmaker_of(app)() as db:
        from models import Account

        account = db.get(Account, account_id)
        post(db, account, "payment", -500_000, date(2026, 11, 2))  # before the arrangement: not an instalment
        db.commit()
    _decide(app, clock, account_id, approve=True)
    with pytest.raises(arrangements.AlreadyDecided):
        _decide(app, clock, account_id, approve=False, reason="Second thoughts")
    page = body(client.get(f"/arrangements/{number}/"))
    assert "Approved" in page and page.count(">Due</strong>") == 12
    assert f'href="/arrangements/{number}/propose"' not in page

    with sessionmaker_of(app)() as db:
        account = db.get(Account, account_id)
        post(db, account, "payment", -123_457, date(2026, 11, 30))
        post(db, account, "payment", -50_000, date(2026, 12, 20))
        post(db, account, "assessment", 7_000, date(2026, 12, 20))  # not a payment
        db.commit()
    clock.advance(days=27)  # 20 December 2026
    client = signed_in(app, OWNER)
    page = body(client.get(f"/arrangements/{number}/"))
    assert page.count(">Paid</strong>") == 1 and page.count(">Part paid</strong>") == 1
    assert page.count(">Due</strong>") == 10 and ">Missed</strong>" not in page
    clock.advance(days=16)  # 5 January 2027: the second instalment (1 January) is past and not covered
    client = signed_in(app, OWNER)
    page = body(client.get(f"/arrangements/{number}/"))
    assert page.count(">Paid</strong>") == 1 and page.count(">Missed</strong>") == 1
    assert page.count(">Due</strong>") == 10 and ">Part paid</strong>" not in page
    with sessionmaker_of(app)() as db:
        request = db.scalar(select(ServiceRequest))
        assert request.status == "approved" and request.decided_by_user_id == 999 and request.decided_at
        assert db.scalar(select(PaymentArrangement)).status == "approved"


def test_a_declined_proposal_shows_the_reason_and_a_new_one_can_be_made(app, owing, clock):
    client = signed_in(app, OWNER)
    number, account_id = owing["number"], owing["account_id"]
    assert _submit(client, number).status_code == 303
    with pytest.raises(ValueError):
        _decide(app, clock, account_id, approve=False, reason="  ")  # a decline needs a reason
    _decide(app, clock, account_id, approve=False, reason="Please propose larger payments")
    page = body(client.get(f"/arrangements/{number}/"))
    assert "Declined" in page and "Please propose larger payments" in page
    assert f'href="/arrangements/{number}/propose"' in page
    assert client.get(f"/arrangements/{number}/propose").status_code == 200
    with sessionmaker_of(app)() as db:
        request = db.scalar(select(ServiceRequest))
        assert request.status == "declined" and request.decision_reason == "Please propose larger payments"
        assert db.scalar(select(PaymentArrangement)).status == "declined"


def test_a_changed_balance_is_recomputed_and_said_on_the_check_page(app, owing):
    client = signed_in(app, OWNER)
    number, account_id = owing["number"], owing["account_id"]
    assert _propose(client, number).status_code == 303
    seen = body(client.get(f"/arrangements/{number}/check"))
    from models import Account

    with sessionmaker_of(app)() as db:
        post(db, db.get(Account, account_id), "payment", -1_484, date(2026, 11, 23))  # now $14,800.00
        db.commit()
    stale = _post(client, f"/arrangements/{number}/check", {**_check_fields(seen), "declaration": "y"})
    assert stale.status_code == 400 and "Your balance is now $14,800.00" in body(stale)
    assert _count(app, ServiceRequest) == 0
    page = body(client.get(f"/arrangements/{number}/check"))
    assert "it was $14,814.84 and is now $14,800.00" in page
    assert re.search(r'id="schedule-total">\$14,800.00<', page)
    last = schedule(BALANCE - 1_484, 123_457, "monthly", date(2026, 12, 1))[-1][1]
    assert last == 121_973 and "$1,219.73</td>" in page  # the last instalment is the new remainder
    with sessionmaker_of(app)() as db:
        post(db, db.get(Account, account_id), "penalty", 500_000, date(2026, 11, 23))  # now too much for $1,234.57
        db.commit()
    page = body(client.get(f"/arrangements/{number}/check"))
    assert "does not meet the rules" in page and "each payment must be at least $1,650.00" in page
    assert 'id="check-form"' not in page
    again = _post(client, f"/arrangements/{number}/check", {**_check_fields(seen), "declaration": "y"})
    assert again.status_code == 400 and "does not meet the rules any more" in body(again)
    assert _count(app, ServiceRequest) == 0 and _count(app, PaymentArrangement) == 0


def test_nothing_owing_shows_no_form(app, owing, clock):
    from models import Account

    with sessionmaker_of(app)() as db:
        post(db, db.get(Account, owing["account_id"]), "payment", -BALANCE, date(2026, 11, 20))
        db.commit()
    client = signed_in(app, OWNER)
    page = body(client.get(f"/arrangements/{owing['number']}/"))
    assert "nothing owing" in page and "/propose" not in page
    assert client.get(f"/arrangements/{owing['number']}/propose").status_code == 303
    assert _propose(client, owing["number"]).status_code == 303
    assert _post(client, f"/arrangements/{owing['number']}/autosave", GOOD).status_code == 200
    assert _count(app, Draft) == 0 and _count(app, ServiceRequest) == 0


def test_a_program_without_arrangements_explains_and_another_uses_its_own_rules(app, clock):
    make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        from models import User

        owner = db.scalar(select(User.id).where(User.email == OWNER))
        refund = open_account(db, program_code="FTR", serial=63, legal_name="Farm Fuel Ltd.")
        post(db, refund, "assessment", 10_000, date(2026, 10, 15))
        fuel = open_account(db, program_code="FT", serial=64, legal_name="Fuel Stop Ltd.")
        post(db, fuel, "assessment", 1_000_000, date(2026, 10, 15))
        give(db, clock(), owner, refund)
        give(db, clock(), owner, fuel)
        db.commit()
        numbers = refund.number, fuel.number
    client = signed_in(app, OWNER)
    for url in (f"/arrangements/{numbers[0]}/", f"/arrangements/{numbers[0]}/propose"):
        response = client.get(url)
        assert response.status_code == 200 and "not available for Fuel Tax Refund" in body(response)
    assert _propose(client, numbers[0]).status_code == 200 and _count(app, Draft) == 0
    refused = _propose(client, numbers[1], instalment="500")
    assert refused.status_code == 400
    assert "With monthly payments over at most 6 months, each payment must be at least $1,666.67" in body(refused)
    refused = _propose(client, numbers[1], instalment="200", first_day="1", first_month="12")
    assert "Each payment must be at least $250.00" in body(refused)


BAD = [
    {"instalment": "12,34"},
    {"instalment": "1.005"},
    {"instalment": "abc"},
    {"instalment": "-50"},
    {"instalment": "1e5"},
    {"instalment": "$"},
    {"instalment": "9" * 400},
    {"instalment": "\uff11\uff10\uff10"},
    {"instalment": "NaN"},
    {"instalment": "Infinity"},
    {"instalment": "0"},
    {"first_day": "30", "first_month": "2", "first_year": "2026"},
    {"first_day": "2026-02-30"},
    {"first_day": "99999999999999999999"},
    {"first_year": "99999"},
    {"first_year": "0000"},
    {"first_month": "\u0661\u0662"},
    {"frequency": "yearly"},
    {"frequency": "x" * 5000},
    {"first_day": "", "first_month": "", "first_year": ""},
    {"instalment": "<script>alert(1)</script>"},
    {"instalment": "5000" + " " * 200 + "x"},
    {"instalment": "1" * 5000},
]


def test_bad_input_is_refused_with_its_message_and_stores_nothing(app, owing):
    client = signed_in(app, OWNER)
    token = _token(client)
    for bad in BAD:  # one client for all of them: the file stays quick
        response = _propose(client, owing["number"], token=token, **bad)
        page = body(response)
        assert response.status_code == 400, bad
        assert "There is a problem" in page and 'class="field-error"' in page, bad
        message = re.search(r'<li><a href="#[a-z_]+">([^<]+)</a></li>', page).group(1)
        assert page.count(message) >= 2, bad  # in the summary and beside the field
        assert "<script>alert" not in page
    assert _count(app, Draft) == 0 and _count(app, ServiceRequest) == 0


def test_missing_fields_and_a_bare_post_are_refused(app, owing):
    client = signed_in(app, OWNER)
    response = _post(client, f"/arrangements/{owing['number']}/propose")
    page = body(response)
    assert response.status_code == 400
    for message in (
        "Select how often you will pay",
        "Enter the amount of each payment",
        "Enter the date of your first payment",
    ):
        assert page.count(message) == 2
    assert page.index("Select how often") < page.index("Enter the amount") < page.index("Enter the date")
    # The check step with nothing proposed, or with someone else's token: back to the proposal.
    assert _post(client, f"/arrangements/{owing['number']}/check").status_code == 303
    for token in ("x" * 10_000, "\x00", "a\x00b"):
        bad_token = _post(client, f"/arrangements/{owing['number']}/check", {"token": token, "declaration": "y"})
        assert bad_token.status_code == 303
    assert _count(app, ServiceRequest) == 0


def test_strangers_and_people_without_the_permission_get_404(app, owing):
    owner = signed_in(app, OWNER)
    assert _submit(owner, owing["number"]).status_code == 303
    with sessionmaker_of(app)() as db:
        reference = db.scalar(select(ServiceRequest.reference))
    urls = [
        f"/arrangements/{owing['number']}/",
        f"/arrangements/{owing['number']}/propose",
        f"/arrangements/{owing['number']}/check",
        f"/arrangements/{owing['number']}/done/{reference}",
    ]
    for email in (STRANGER, CLERK):
        client = signed_in(app, email)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 404 and "Prairie Inn" not in body(response), (email, url)
        assert _post(client, f"/arrangements/{owing['number']}/autosave", GOOD).status_code == 404
        assert _post(client, f"/arrangements/{owing['number']}/check", {"declaration": "y"}).status_code == 404
    # A reference is only found within its own account; unknown and absurd ones are 404.
    assert owner.get(f"/arrangements/{owing['other']}/done/{reference}").status_code == 404
    assert owner.get(f"/arrangements/{owing['number']}/done/SR-NONE-XXXX").status_code == 404
    assert owner.get(f"/arrangements/{owing['number']}/done/{'9' * 300}").status_code == 404
    assert owner.get(f"/arrangements/{owing['number']}/done/%00").status_code == 404
    assert owner.get(f"/arrangements/{owing['number']}/done/SR-%E2%9C%93").status_code == 404
    assert owner.get(f"/arrangements/{'9' * 40}/").status_code == 404
    assert _count(app, Draft) == 1 and _count(app, ServiceRequest) == 1


# --- Property: any text in any field never breaks the page, and failure stores nothing ----------

_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["", "1", "12", "2026", "2027", "monthly", "weekly", "biweekly", "1,234.57", "5000", "$50", "0.01"]
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frequency=_TEXT, instalment=_TEXT, day=_TEXT, month=_TEXT, year=_TEXT)
def test_any_proposal_answers_never_fail_and_refusals_store_nothing(
    app, owing, frequency, instalment, day, month, year
):
    client = _hypothesis_client(app)
    before = _draft_state(app)
    response = client.post(
        f"/arrangements/{owing['number']}/propose",
        data={
            "frequency": frequency,
            "instalment": instalment,
            "first_day": day,
            "first_month": month,
            "first_year": year,
            "csrf_token": client.token,
        },
    )
    assert response.status_code < 500
    if response.status_code != 303:
        assert response.status_code == 400 and _draft_state(app) == before
    assert _count(app, ServiceRequest) == 0
    saved = client.post(
        f"/arrangements/{owing['number']}/autosave",
        data={"frequency": frequency, "instalment": instalment, "first_day": day, "csrf_token": client.token},
    )
    assert saved.status_code == 200


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=_TEXT, seen=_TEXT, declaration=_TEXT)
def test_any_check_answers_never_fail_and_refusals_store_nothing(app, owing, token, seen, declaration):
    client = _hypothesis_client(app)
    if _count(app, Draft) == 0:
        assert _propose(client, owing["number"]).status_code == 303
    sent_before = _count(app, ServiceRequest)
    response = client.post(
        f"/arrangements/{owing['number']}/check",
        data={"token": token, "seen_balance": seen, "declaration": declaration, "csrf_token": client.token},
    )
    assert response.status_code < 500
    if response.status_code == 303 and "/done/" in response.headers["Location"]:
        assert _count(app, ServiceRequest) == 1  # only with the balance shown and the declaration
        assert seen == str(BALANCE) and declaration
    else:
        assert _count(app, ServiceRequest) == sent_before


_CLIENTS: dict = {}


def _hypothesis_client(app):
    """One signed-in client per app (Hypothesis runs many examples on one fixture)."""
    client = _CLIENTS.get(id(app))
    if client is None or client.app is not app:
        _CLIENTS.clear()
        client = signed_in(app, OWNER)
        client.app = app
        client.token = _token(client)
        _CLIENTS[id(app)] = client
    return client


def _draft_state(app):
    with sessionmaker_of(app)() as db:
        return [(d.id, d.data, d.submitted_request_id) for d in db.scalars(select(Draft).order_by(Draft.id))]
