"""Filing returns and claims (issue 5): rates as dated data, each program's
figures worked out by the server to the cent, the journey from the periods to
file through the figures (saved as a draft as the person types) and the check
page to the confirmation, the return shown as Received on the assessment status
page, one return however often it is submitted, amended returns, and bad input
refused with a message and nothing stored."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain import filing
from domain.accounts import format_money
from domain.programs import RATES, ensure_programs
from models import Draft, ProgramRate, ServiceRequest, TaxReturn
from tests.accounts_factory import TODAY, body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import Auth, csrf_from, make_user

OWNER, CLERK, STRANGER = "owner@example.com", "clerk@example.com", "stranger@example.com"

# One account of each program that files here, and the period each test files.
PERIODS = {"TL": "2026-10-31", "FT": "2026-10-31", "TT": "2026-10-31", "ICT": "2025-12-31", "FTR": "2026-09-30"}
OPENED = {
    "TL": date(2026, 6, 1),
    "FT": date(2026, 6, 1),
    "TT": date(2026, 6, 1),
    "ICT": date(2025, 1, 1),
    "FTR": date(2026, 1, 1),
    "CIT": date(2025, 1, 1),
}
# Figures as a person types them, and what they come to at the rates of 2026 (or
# 2025 for the insurer's year): each case has a line that rounds half up.
CASES = {
    "TL": ({"accommodation_price": "$12,345.67", "exempt_price": "345.67"}, [("Tourism levy", 48000)], 48000),
    "FT": (
        {"gasoline_litres": "10,000.50", "diesel_litres": "2500"},
        [("Fuel tax on gasoline", 130007), ("Fuel tax on diesel", 32500)],
        162507,
    ),
    "TT": (
        {"cigarettes": "2,000", "fine_cut_grams": "501", "cigar_price": "1000.50"},
        [
            ("Tax on cigarettes and tobacco sticks", 60000),
            ("Tax on fine-cut and other tobacco", 22545),
            ("Tax on cigars", 129065),
        ],
        211610,
    ),
    "ICT": (
        {"life_premiums": "1000000", "other_premiums": "2,500,000.50"},
        [("Tax on life, accident and sickness premiums", 3000000), ("Tax on other premiums", 10000002)],
        13000002,
    ),
    "FTR": ({"eligible_litres": "12345.5"}, [("Fuel tax refund", 160492)], 160492),
}


@pytest.fixture
def firm(app, clock):
    """Olive owns one account of every program; Casey may file on the Tourism Levy one."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        numbers = {}
        for serial, (code, opened) in enumerate(OPENED.items(), start=61):
            account = open_account(
                db, program_code=code, serial=serial, legal_name=f"{code} Holdings Ltd.", opened_on=opened
            )
            give(db, clock(), owner, account)
            numbers[code] = account.number
            if code == "TL":
                give(db, clock(), clerk, account, role="delegate", permissions=("file",))
        db.commit()
    return {"owner": owner, "clerk": clerk, **numbers}


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _post(client, url, data=None, **kwargs):
    return client.post(url, data={**(data or {}), "csrf_token": _token(client)}, **kwargs)


def _url(number, period_end, step, amended=False):
    return f"/filing/{number}/{period_end}/{step}" + ("?amended=1" if amended else "")


def _to_check(client, number, period_end, figures, amended=False):
    """Begin, enter the figures, continue: the check page."""
    begun = _post(client, _url(number, period_end, "begin"), {"amended": "1"} if amended else {})
    assert begun.status_code == 303 and begun.headers["Location"] == _url(number, period_end, "figures", amended)
    sent = _post(client, _url(number, period_end, "figures", amended), {**figures, "action": "continue"})
    assert sent.status_code == 303, body(sent)
    assert sent.headers["Location"] == _url(number, period_end, "check", amended)
    page = client.get(_url(number, period_end, "check", amended))
    assert page.status_code == 200
    return body(page)


def _token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _submit(client, number, period_end, page, amended=False, declaration="y"):
    return _post(
        client, _url(number, period_end, "check", amended), {"declaration": declaration, "token": _token_of(page)}
    )


def _count(app, model, **where):
    with sessionmaker_of(app)() as db:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return db.scalar(query)


def _returns(app):
    with sessionmaker_of(app)() as db:
        rows = db.scalars(select(TaxReturn).order_by(TaxReturn.id)).all()
        db.expunge_all()
        return rows


# --- Rates ----------------------------------------------------------------------------


def test_rate_for_takes_the_rate_in_force_on_the_first_day_of_the_period(app):
    with sessionmaker_of(app)() as db:
        ensure_programs(db)
        ensure_programs(db)  # idempotent: every rate once
        assert db.scalar(select(func.count(ProgramRate.id))) == len(RATES)

        def value(program, key, start):
            row = filing.rate_for(db, program, key, start)
            return None if row is None else Decimal(row.value)

        # The fuel tax relief: no tax from 1 April 2022 to the end of 2023, 13 cents before and after.
        assert value("FT", "gasoline", date(2022, 3, 1)) == Decimal("0.13")
        assert value("FT", "gasoline", date(2022, 4, 1)) == 0
        assert value("FT", "diesel", date(2023, 12, 1)) == 0
        assert value("FT", "diesel", date(2024, 1, 1)) == Decimal("0.13")
        assert value("FTR", "refund", date(2023, 10, 1)) == 0  # the quarter is inside the relief
        assert value("FTR", "refund", date(2024, 1, 1)) == Decimal("0.13")
        # A change in the middle of a period applies from the next one (29 February 2024).
        assert value("TT", "cigarette", date(2024, 2, 1)) == Decimal("0.275")
        assert value("TT", "cigarette", date(2024, 3, 1)) == Decimal("0.30")
        # The insurer's year 2016 began before the 1 April 2016 increase.
        assert value("ICT", "other", date(2016, 1, 1)) == 3
        assert value("ICT", "other", date(2017, 1, 1)) == 4
        assert value("TL", "levy", date(2026, 10, 1)) == 4
        assert value("FT", "gasoline", date(2015, 1, 1)) is None  # before any rate kept here
        row = filing.rate_for(db, "FT", "gasoline", date(2026, 10, 1))
        assert row.effective_from == date(2024, 1, 1) and filing.rate_text(row) == "$0.13 per litre"


def test_the_rates_data_is_consistent():
    keys = [(r["program_code"], r["rate_key"], r["effective_from"]) for r in RATES]
    assert len(keys) == len(set(keys))
    for rate in RATES:
        assert Decimal(rate["value"]) >= 0 and rate["unit"] in ("percent", "per_litre", "per_unit", "per_gram")
    # The refund follows the tax: the same value from the same dates.
    fuel = {
        (r["effective_from"], r["value"]) for r in RATES if (r["program_code"], r["rate_key"]) == ("FT", "gasoline")
    }
    refund = {(r["effective_from"], r["value"]) for r in RATES if r["program_code"] == "FTR"}
    assert fuel == refund
    for form in filing.FORMS.values():
        for line in form.lines:
            units = {
                r["unit"] for r in RATES if (r["program_code"], r["rate_key"]) == (form.program_code, line.rate_key)
            }
            assert units == ({"percent"} if line.percent else units - {"percent"}) and units, (form.program_code, line)


# --- Working out the amounts --------------------------------------------------------------

RATES_2026 = {
    "TL": {"levy": Decimal("4")},
    "FT": {"gasoline": Decimal("0.13"), "diesel": Decimal("0.13")},
    "TT": {"cigarette": Decimal("0.30"), "fine_cut": Decimal("0.45"), "cigar": Decimal("129")},
    "ICT": {"life": Decimal("3"), "other": Decimal("4")},
    "FTR": {"refund": Decimal("0.13")},
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_compute_each_program_to_the_cent(code):
    typed, lines, total = CASES[code]
    form = filing.FORMS[code]
    got = filing.read(form, typed)
    assert got.ok, got.errors
    worked = filing.compute(code, got.values, RATES_2026[code])
    assert [(line.label, line.cents) for line in worked.lines] == lines
    assert worked.total_cents == total == sum(cents for _label, cents in lines)


def test_compute_rounds_each_line_half_up_and_uses_the_rates_given():
    form = filing.FORMS["FT"]
    figures = filing.read(form, {"gasoline_litres": "0.50", "diesel_litres": "0.50"}).values
    worked = filing.compute("FT", figures, {"gasoline": Decimal("0.13"), "diesel": Decimal("0")})
    assert [line.cents for line in worked.lines] == [7, 0]  # 6.5 cents rounds up; the relief rate is nothing
    levy = filing.compute(
        "TL", {"accommodation_price": Decimal("1234.56"), "exempt_price": Decimal("0")}, {"levy": Decimal("4")}
    )
    assert levy.total_cents == 4938 and levy.lines[0].description == "4% of $1,234.56"


# --- The journey, for every program -------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_program_is_filed_end_to_end_and_shows_as_received(app, firm, code):
    number, period_end = firm[code], PERIODS[code]
    typed, lines, total = CASES[code]
    form = filing.FORMS[code]
    client = signed_in(app, OWNER)
    start = body(client.get(f"/filing/{number}/"))
    assert f'action="/filing/{number}/{period_end}/begin"' in start
    page = _to_check(client, number, period_end, typed)
    # Every figure, every line with its rate and the date it took effect, the total, the declaration.
    for figure in form.figures:
        assert figure.label in page
    for label, cents in lines:
        assert label in page and format_money(cents) in page
    assert f'id="worked-total"><strong>{format_money(total)}</strong>' in page
    assert "in force from" in page
    assert "I certify the information given is correct and complete" in page
    done = _submit(client, number, period_end, page)
    assert done.status_code == 303
    location = done.headers["Location"]
    reference = location.rsplit("/", 1)[1]
    assert location == f"/filing/{number}/done/{reference}"
    confirmation = body(client.get(location))
    paper = form.paper
    assert f"{paper.capitalize()} received" in confirmation and reference in confirmation
    assert "What happens next" in confirmation and format_money(total) in confirmation
    assert f'href="/accounts/{number}/returns"' in confirmation
    if "documents.upload" in app.view_functions:
        assert f"about={reference}" in confirmation and "Upload supporting documents" in confirmation
        upload = re.search(r'<a href="([^"]+)">Upload supporting documents', confirmation).group(1)
        assert reference in body(client.get(upload.replace("&amp;", "&")))
    with sessionmaker_of(app)() as db:
        tax_return = db.scalar(select(TaxReturn))
        request = db.scalar(select(ServiceRequest))
        draft = db.scalar(select(Draft))
        assert tax_return.status == "received" and tax_return.received_on == TODAY
        assert tax_return.kind == paper and tax_return.amended is False
        assert tax_return.period_end == date.fromisoformat(period_end)
        assert tax_return.amount_cents == total and tax_return.filed_by_user_id == firm["owner"]
        assert tax_return.service_request_id == request.id and request.tax_return_id == tax_return.id
        assert tax_return.reference == request.reference == reference
        stored = json.loads(tax_return.figures)
        assert set(stored) == set(form.keys)
        assert all(Decimal(stored[k]) == filing.read(form, typed).values[k] for k in form.keys)
        assert request.kind == paper and request.submitted_by_user_id == firm["owner"]
        assert request.summary.startswith(form.title) and format_money(total) in request.summary
        data = json.loads(request.data)
        assert data["total_cents"] == total and len(data["lines"]) == len(lines)
        assert draft.submitted_request_id == request.id and draft.subject == period_end and draft.kind == paper
    status = body(client.get(f"/accounts/{number}/returns"))
    row = next(r for r in re.findall(r"<tr>.*?</tr>", status, re.S) if "Received</strong>" in r)
    assert "23 November 2026" in row and paper.capitalize() in row
    # The period is filed now: it is offered for amendment, not for filing.
    again = body(client.get(f"/filing/{number}/"))
    assert f'action="/filing/{number}/{period_end}/begin"' in again and f"File an amended {paper}" in again


def test_the_start_page_lists_periods_oldest_first_with_due_dates_drafts_and_filed_ones(app, firm):
    number = firm["TL"]
    client = signed_in(app, OWNER)
    page = body(client.get(f"/filing/{number}/"))
    open_part = page.split('id="open-periods"')[1].split("</table>")[0]
    order = re.findall(r"<th scope=\"row\">([^<]+)</th>", open_part)
    assert order == ["1–30 June 2026", "1–31 July 2026", "1–31 August 2026", "1–30 September 2026", "1–31 October 2026"]
    assert "31 July 2026" in open_part and "Overdue" in open_part  # June's return was due on 31 July
    assert "30 November 2026" in open_part  # October's is due at the end of November
    _post(client, _url(number, "2026-08-31", "begin"))
    page = body(client.get(f"/filing/{number}/"))
    assert 'id="open-drafts"' in page and "Return for 1–31 August 2026" in page
    assert f'href="/filing/{number}/2026-08-31/figures">Continue' in page


def test_cit_is_filed_elsewhere_and_its_other_filing_urls_are_not_found(app, firm):
    client = signed_in(app, OWNER)
    page = client.get(f"/filing/{firm['CIT']}/")
    assert page.status_code == 200 and "net filing" in body(page) and "AT1" in body(page)
    assert _post(client, _url(firm["CIT"], "2025-12-31", "begin")).status_code == 404
    assert client.get(_url(firm["CIT"], "2025-12-31", "figures")).status_code == 404


def test_the_computed_amounts_show_before_anything_is_sent(app, firm):
    number = firm["TL"]
    client = signed_in(app, OWNER)
    # Under htmx: the live region's preview, which stores nothing.
    preview = _post(
        client,
        _url(number, "2026-10-31", "compute"),
        {"accommodation_price": "1000", "exempt_price": ""},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and "<html" not in body(preview)
    assert "4% of $1,000.00" not in body(preview) and "Not worked out yet" in body(preview)
    preview = _post(
        client,
        _url(number, "2026-10-31", "compute"),
        {"accommodation_price": "1000", "exempt_price": "0"},
        headers={"HX-Request": "true"},
    )
    assert "4% of $1,000.00" in body(preview) and 'id="computed-total"><strong>$40.00' in body(preview)
    assert _count(app, Draft) == 0
    # Without JavaScript: the Calculate button shows them on the page (and keeps the figures).
    page = _post(
        client,
        _url(number, "2026-10-31", "figures"),
        {"accommodation_price": "2500", "exempt_price": "500", "action": "calculate"},
    )
    assert page.status_code == 200 and 'id="computed-total"><strong>$80.00' in body(page)
    assert 'value="2500"' in body(page)
    assert _count(app, TaxReturn) == 0 and _count(app, ServiceRequest) == 0


# --- Drafts ------------------------------------------------------------------------------


def test_autosave_keeps_the_figures_across_a_session_time_out(app, firm, clock):
    number = firm["TL"]
    client = signed_in(app, OWNER)
    assert _post(client, _url(number, "2026-10-31", "begin")).status_code == 303
    saved = _post(
        client,
        _url(number, "2026-10-31", "autosave"),
        {"accommodation_price": "9,876.54"},
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200 and 'id="draft-status"' in body(saved) and "Draft saved at" in body(saved)
    clock.advance(minutes=16)  # idle past the 15 minutes
    gone = client.get(_url(number, "2026-10-31", "figures"))
    assert gone.status_code in (302, 303) and "/auth/sign-in" in gone.headers["Location"]
    assert Auth(client, app).sign_in(email=OWNER).status_code == 303
    page = body(client.get(_url(number, "2026-10-31", "figures")))
    assert 'value="9,876.54"' in page and "Draft saved at" in page
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Draft.id))) == 1


def test_two_tabs_share_the_draft_and_a_double_submit_files_one_return(app, firm):
    number = firm["TL"]
    first = signed_in(app, OWNER)
    second = signed_in(app, OWNER)  # another tab, or another window
    page = _to_check(first, number, "2026-10-31", CASES["TL"][0])
    shared = body(second.get(_url(number, "2026-10-31", "figures")))
    assert 'value="$12,345.67"' in shared
    second_page = body(second.get(_url(number, "2026-10-31", "check")))
    assert _token_of(second_page) == _token_of(page)
    one = _submit(first, number, "2026-10-31", page)
    two = _submit(first, number, "2026-10-31", page)  # a double click
    three = _submit(second, number, "2026-10-31", second_page)  # the other tab, afterwards
    assert one.status_code == two.status_code == three.status_code == 303
    assert one.headers["Location"] == two.headers["Location"] == three.headers["Location"]
    assert _count(app, TaxReturn) == 1 and _count(app, ServiceRequest) == 1
    # Starting the period again is refused with the amendment on offer; still one return.
    again = _post(second, _url(number, "2026-10-31", "begin"))
    assert again.status_code == 409 and "You have already filed a return" in body(again)
    assert "File an amended return" in body(again)
    assert second.get(_url(number, "2026-10-31", "figures")).status_code == 200
    assert _count(app, TaxReturn) == 1 and _count(app, Draft) == 1


def test_a_period_filed_by_someone_else_meanwhile_is_not_filed_twice(app, firm):
    number = firm["TL"]
    owner, clerk = signed_in(app, OWNER), signed_in(app, CLERK)
    clerk_page = _to_check(clerk, number, "2026-10-31", {"accommodation_price": "100", "exempt_price": "0"})
    owner_page = _to_check(owner, number, "2026-10-31", CASES["TL"][0])
    assert _submit(owner, number, "2026-10-31", owner_page).status_code == 303
    late = _submit(clerk, number, "2026-10-31", clerk_page)
    assert late.status_code == 409 and "You have already filed a return" in body(late)
    assert _count(app, TaxReturn) == 1 and _count(app, ServiceRequest) == 1


# --- Amended returns -------------------------------------------------------------------------


def test_an_amended_return_is_marked_and_points_at_the_latest_return_of_the_period(app, firm):
    number = firm["TL"]
    client = signed_in(app, OWNER)
    original = _submit(client, number, "2026-10-31", _to_check(client, number, "2026-10-31", CASES["TL"][0]))
    assert original.status_code == 303
    # The amendment starts from the figures filed.
    begun = _post(client, _url(number, "2026-10-31", "begin"), {"amended": "1"})
    assert begun.headers["Location"] == _url(number, "2026-10-31", "figures", amended=True)
    page = body(client.get(begun.headers["Location"]))
    assert 'value="12345.67"' in page and "You are amending the return we received on 23 November 2026" in page
    check = _to_check(client, number, "2026-10-31", {"accommodation_price": "15000", "exempt_price": "0"}, amended=True)
    assert "Check your amended return" in check and "$600.00" in check
    amended = _submit(client, number, "2026-10-31", check, amended=True)
    assert amended.status_code == 303
    assert "Amended return received" in body(client.get(amended.headers["Location"]))
    first, second = _returns(app)
    assert second.amended is True and second.kind == "return" and second.amends_return_id == first.id
    assert second.amount_cents == 60000 and second.reference != first.reference
    with sessionmaker_of(app)() as db:
        request = db.get(ServiceRequest, second.service_request_id)
        assert request.kind == "amended_return"
        assert request.summary == "Amended Tourism Levy return for 1\u201331 October 2026: levy payable $600.00"
        assert db.scalar(select(Draft.subject).where(Draft.kind == "amended_return")) == "2026-10-31:amended"
    status = body(client.get(f"/accounts/{number}/returns"))
    assert "Amended return" in status
    # A second amendment amends the latest one.
    third = _submit(
        client,
        number,
        "2026-10-31",
        _to_check(client, number, "2026-10-31", {"accommodation_price": "1", "exempt_price": "0"}, amended=True),
        amended=True,
    )
    assert third.status_code == 303
    assert _returns(app)[2].amends_return_id == second.id


def test_an_amended_claim_is_an_amended_claim(app, firm):
    number, period = firm["FTR"], PERIODS["FTR"]
    client = signed_in(app, OWNER)
    _submit(client, number, period, _to_check(client, number, period, CASES["FTR"][0]))
    page = _to_check(client, number, period, {"eligible_litres": "100"}, amended=True)
    assert _submit(client, number, period, page, amended=True).status_code == 303
    claim, amended = _returns(app)
    assert claim.kind == amended.kind == "claim" and amended.amended and amended.amends_return_id == claim.id
    assert _count(app, ServiceRequest, kind="amended_claim") == 1


def test_nothing_to_amend_is_not_found(app, firm):
    client = signed_in(app, OWNER)
    assert _post(client, _url(firm["TL"], "2026-10-31", "begin"), {"amended": "1"}).status_code == 404
    assert client.get(_url(firm["TL"], "2026-10-31", "figures", amended=True)).status_code == 404


# --- Bad input -----------------------------------------------------------------------------

BAD = [
    ("", "Enter the total purchase price of accommodation"),
    ("twelve", "Total purchase price must be a number, like 1250.00"),
    ("-5", "Total purchase price must be 0 or more"),
    ("$-5.00", "Total purchase price must be 0 or more"),
    ("12.345", "Total purchase price must have no more than 2 decimal places"),
    (str(10**30), "Total purchase price must be $9,999,999,999.99 or less"),
    ("9" * 10_000, "Total purchase price must be $9,999,999,999.99 or less"),
    ("x" * 10_000, "Total purchase price must be a number, like 1250.00"),
    ("١٢٣", "Total purchase price must be a number, like 1250.00"),
    ("１２３", "Total purchase price must be a number, like 1250.00"),
    ("1,2,3", "Total purchase price must be a number, like 1250.00"),
]


def _refused(app, client, url, data, field, message):
    response = _post(client, url, data)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'href="#{field}"' in page and f'id="{field}-error"' in page
    assert page.count(message) >= 2  # beside the field and in the summary
    assert _count(app, Draft) == 0 and _count(app, TaxReturn) == 0 and _count(app, ServiceRequest) == 0


@pytest.mark.parametrize("value, message", BAD)
def test_a_wrong_money_figure_gets_its_message_and_nothing_is_stored(app, firm, value, message):
    client = signed_in(app, OWNER)
    _refused(
        app,
        client,
        _url(firm["TL"], "2026-10-31", "figures"),
        {"accommodation_price": value, "exempt_price": "0", "action": "continue"},
        "accommodation_price",
        message,
    )


@pytest.mark.parametrize(
    "code, field, value, message",
    [
        ("TL", "exempt_price", "", "Enter the price of exempt accommodation, or 0 if there was none"),
        ("TL", "exempt_price", "20000", "Exempt accommodation cannot be more than the total purchase price"),
        ("FT", "gasoline_litres", "10.255", "Litres of gasoline must have no more than 2 decimal places"),
        ("FT", "diesel_litres", "lots", "Litres of diesel must be a number, like 15000.5"),
        ("FT", "diesel_litres", "-1", "Litres of diesel must be 0 or more"),
        ("FT", "gasoline_litres", str(10**30), "Litres of gasoline must be 9,999,999,999.99 litres or less"),
        ("TT", "cigarettes", "12.5", "Number of cigarettes must be a whole number, like 2000"),
        ("TT", "fine_cut_grams", "", "Enter the grams of fine-cut and other tobacco, or 0 if none"),
        ("TT", "cigar_price", "9999999999.99", "The tax payable works out to more than $9,999,999,999.99"),
        ("ICT", "other_premiums", "1.001", "Premiums for other insurance must have no more than 2 decimal places"),
        ("FTR", "eligible_litres", "🚜", "Litres of eligible fuel must be a number, like 15000.5"),
    ],
)
def test_each_program_refuses_wrong_figures_beside_the_field(app, firm, code, field, value, message):
    typed = {**CASES[code][0], field: value, "action": "continue"}
    client = signed_in(app, OWNER)
    _refused(app, client, _url(firm[code], PERIODS[code], "figures"), typed, field, message)


def test_a_missing_field_and_a_missing_declaration_are_refused(app, firm):
    number = firm["TL"]
    client = signed_in(app, OWNER)
    _refused(
        app,
        client,
        _url(number, "2026-10-31", "figures"),
        {"exempt_price": "0"},
        "accommodation_price",
        "Enter the total purchase price of accommodation",
    )
    page = _to_check(client, number, "2026-10-31", CASES["TL"][0])
    refused = _submit(client, number, "2026-10-31", page, declaration="")
    assert refused.status_code == 400
    assert "Confirm that the information given is correct and complete" in body(refused)
    assert 'href="#declaration"' in body(refused)
    assert _count(app, TaxReturn) == 0 and _count(app, ServiceRequest) == 0


# --- Who may, and which URLs exist --------------------------------------------------------------


def test_a_stranger_gets_404_everywhere_and_wrong_periods_are_not_found(app, firm):
    owner = signed_in(app, OWNER)
    page = _to_check(owner, firm["TL"], "2026-10-31", CASES["TL"][0])
    done = _submit(owner, firm["TL"], "2026-10-31", page).headers["Location"]
    stranger = signed_in(app, STRANGER)
    number = firm["TL"]
    for method, url in [
        ("GET", f"/filing/{number}/"),
        ("POST", _url(number, "2026-09-30", "begin")),
        ("GET", _url(number, "2026-09-30", "figures")),
        ("POST", _url(number, "2026-09-30", "autosave")),
        ("POST", _url(number, "2026-09-30", "compute")),
        ("GET", _url(number, "2026-09-30", "check")),
        ("GET", done),
    ]:
        response = stranger.open(
            url, method=method, data={"csrf_token": _token(stranger)} if method == "POST" else None
        )
        assert response.status_code == 404 and "TL Holdings" not in body(response), url
    for bad in [
        "2026-13-01",
        "garbage",
        "2026-10-30",
        "2026-11-30",
        "2027-01-31",
        "2025-12-31",
        "9" * 5000,
        "2026-10-31x",
        "２０２６-10-31",
    ]:
        assert owner.get(f"/filing/{number}/{bad}/figures").status_code == 404, bad
        assert _post(owner, f"/filing/{number}/{bad}/begin").status_code == 404, bad
    # A confirmation of another account, or no such reference.
    assert owner.get(f"/filing/{firm['FT']}/done/{done.rsplit('/', 1)[1]}").status_code == 404
    assert owner.get(f"/filing/{number}/done/SR-NOPE-NOPE").status_code == 404
    assert owner.get(f"/filing/{number}/done/{'X' * 3000}").status_code == 404


def test_a_person_who_may_not_file_gets_404(app, firm, clock):
    viewer = make_user(app, email="viewer@example.com", name="Vi Viewer")
    with sessionmaker_of(app)() as db:
        from models import Account

        account = db.scalar(select(Account).where(Account.number == firm["TL"]))
        give(db, clock(), viewer, account, role="viewer")
        db.commit()
    client = signed_in(app, "viewer@example.com")
    assert client.get(f"/filing/{firm['TL']}/").status_code == 404
    assert "File a return" not in body(client.get(f"/accounts/{firm['TL']}/"))


# --- Property tests ---------------------------------------------------------------------------

ANY_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            "0",
            "-0",
            "1e5",
            "NaN",
            "Infinity",
            "1_000",
            "0x10",
            "$",
            ".",
            "1.",
            "99999999999",
            "\x00",
            "1,000.005",
            " 12 ",
            "\u00a0",
        ]
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=ANY_TEXT, exempt=ANY_TEXT, action=st.sampled_from(["continue", "calculate", "", "x"]))
def test_any_text_in_the_figures_form_never_fails_and_stores_nothing_unless_right(app, firm, price, exempt, action):
    client = signed_in(app, OWNER) if not hasattr(app, "_filing_client") else app._filing_client
    app._filing_client = client
    before = _count(app, Draft)
    response = _post(
        client,
        _url(firm["TL"], "2026-10-31", "figures"),
        {"accommodation_price": price, "exempt_price": exempt, "action": action},
    )
    assert response.status_code < 500
    if response.status_code == 400:
        assert _count(app, Draft) == before
    assert _count(app, TaxReturn) == 0 and _count(app, ServiceRequest) == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(declaration=ANY_TEXT, token=ANY_TEXT)
def test_any_text_in_the_check_form_never_fails_and_files_only_when_declared(app, firm, declaration, token):
    if not hasattr(app, "_filing_client"):
        app._filing_client = signed_in(app, OWNER)
        _to_check(app._filing_client, firm["TL"], "2026-10-31", CASES["TL"][0])
    client = app._filing_client
    before = _count(app, TaxReturn)
    response = _post(client, _url(firm["TL"], "2026-10-31", "check"), {"declaration": declaration, "token": token})
    assert response.status_code in (303, 400, 409)
    if response.status_code != 303:
        assert _count(app, TaxReturn) == before
    if response.status_code == 400:
        assert "Confirm that the information given is correct and complete" in body(response)
    assert _count(app, TaxReturn) <= 1 and _count(app, ServiceRequest) <= 1
