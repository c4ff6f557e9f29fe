"""Tax accounts: numbers and money, the dashboard, the account summary, the
financial transactions (filter, keyset pages, running balance, htmx, CSV), the
append-only ledger, and who may see what. Every database test runs on SQLite and
on PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import html
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from domain import ledger
from domain.accounts import (
    cents_to_decimal,
    describe_balance,
    format_amount,
    format_money,
    format_number,
    luhn_digit,
    make_number,
    normalise_number,
    number_problem,
)
from models import Account, Grant, LedgerEntry
from tests.accounts_factory import (
    TODAY,
    as_written,
    body,
    busy_history,
    file_return,
    give,
    month_end,
    open_account,
    post,
    sessionmaker_of,
    signed_in,
    without_tokens,
)
from tests.conftest import make_user

OWNER = "owner@example.com"


# --- Numbers and money (no database) ---------------------------------------------


def test_account_numbers_carry_a_check_digit_that_catches_typing_mistakes():
    number = make_number("41", 1234)
    assert number == "4100012345" and len(number) == 10
    assert luhn_digit(number[:-1]) == number[-1]
    assert number_problem(number) is None
    assert number_problem("4100 0123 45") is None and normalise_number("4100-0123.45") == number
    # Every single wrong digit, anywhere, is caught before any look-up.
    for position in range(10):
        for digit in "0123456789":
            if digit != number[position]:
                typo = number[:position] + digit + number[position + 1 :]
                assert number_problem(typo) == "Check the account number: one of the digits is not right"
    assert number_problem("") == "Enter your account number"
    assert number_problem("41000I2348") == "An account number has digits only, like 4100 0012 34"
    assert number_problem("410001234") == "An account number has 10 digits"
    assert format_number(number) == "4100 0123 45"


def test_money_is_exact_and_a_credit_is_said_in_words():
    assert cents_to_decimal(-123456) == Decimal("-1234.56")
    assert str(cents_to_decimal(5)) == "0.05" and str(cents_to_decimal(0)) == "0.00"
    assert str(cents_to_decimal(100000000001)) == "1000000000.01"
    assert format_money(123456) == "$1,234.56"
    assert describe_balance(123456) == "$1,234.56 owing"
    assert describe_balance(-500) == "$5.00 credit"
    assert describe_balance(0) == "$0.00"
    assert format_amount(-123456) == "$1,234.56 credit"
    assert format_amount(99) == "$0.99"
    with pytest.raises(TypeError):
        ledger.post(
            None,
            account_id=1,
            kind="payment",
            amount_cents=12.5,
            effective_date=TODAY,
            processed_date=TODAY,
            reference="X",
        )


# --- A small world -----------------------------------------------------------------


@pytest.fixture
def world(app, clock):
    """The owner holds: a Tourism Levy account (Sept return overdue and unpaid,
    October's due 30 November), a Fuel Tax account in credit with every return
    filed, and a Tobacco Tax account on a grant that shows returns but no money.
    A second account of the first kind belongs to someone else."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        inn = open_account(db, serial=1, legal_name="Prairie Inn Ltd.", operating_name="Prairie Inn")
        for month in range(1, 10):
            end = month_end(2026, month)
            post(db, inn, "assessment", 123456, end + timedelta(days=15), period_end=end)
            if month < 9:
                file_return(db, inn, end)
                post(db, inn, "payment", -123456, end + timedelta(days=20), period_end=end)
        post(db, inn, "penalty", 6173, date(2026, 11, 2), period_end=date(2026, 9, 30))
        fuel = open_account(
            db,
            program_code="FT",
            serial=2,
            legal_name="Northern Fuels Corp.",
            operating_name=None,
            opened_on=date(2026, 9, 1),
        )
        for end in (date(2026, 9, 30), date(2026, 10, 31)):
            file_return(db, fuel, end)
        post(db, fuel, "payment", -50000, date(2026, 11, 2), period_end=date(2026, 10, 31))
        tobacco = open_account(
            db, program_code="TT", serial=3, legal_name="Leaf and Co.", operating_name=None, opened_on=date(2026, 10, 1)
        )
        post(db, tobacco, "assessment", 99900, date(2026, 11, 10), period_end=date(2026, 10, 31))
        other = open_account(db, serial=4, legal_name="Someone Else Ltd.", operating_name=None)
        post(db, other, "assessment", 100, date(2026, 11, 1), period_end=date(2026, 10, 31))
        give(db, clock(), owner, inn)
        give(db, clock(), owner, fuel)
        give(db, clock(), owner, tobacco, role="viewer", permissions=("view_returns",))
        db.commit()
        numbers = dict(inn=inn.number, fuel=fuel.number, tobacco=tobacco.number, other=other.number)
    return dict(owner=owner, **numbers)


# --- Dashboard -----------------------------------------------------------------------


def _dashboard_rows(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", as_written(page), re.S)


def test_dashboard_shows_each_account_with_balance_next_due_and_what_needs_attention(app, world):
    client = signed_in(app, OWNER)
    response = client.get("/")
    assert response.status_code == 200
    page = body(response)
    assert "Welcome, Olive Owner" in page
    rows = _dashboard_rows(page)
    assert len(rows) == 3  # never someone else's account
    assert "Someone Else" not in page
    by_name = {re.search(r"(Prairie Inn Ltd\.|Northern Fuels Corp\.|Leaf and Co\.)", row).group(1): row for row in rows}
    inn = by_name["Prairie Inn Ltd."]
    assert "Tourism Levy · " + format_number(world["inn"]) in inn
    assert "Operating as Prairie Inn" in inn
    assert "$1,296.29 owing" in inn
    assert "30 November 2026" in inn and "Period ending 31 Oct 2026" in inn
    assert "1 return overdue" in inn and "Since the period ending 30 Sep 2026" in inn
    assert "Balance owing" in inn
    assert f'href="/accounts/{world["inn"]}/"' in inn
    fuel = by_name["Northern Fuels Corp."]
    assert "$500.00 credit" in fuel and "Nothing due" in fuel and ">Nothing</td>" in fuel.replace("\n", "")
    leaf = by_name["Leaf and Co."]
    # A grant without view_financial shows no money, but does show the filing.
    assert "$999.00" not in leaf and "Not in your access" in leaf
    assert "25 November 2026" in leaf  # Tobacco Tax: the 25th of the month after
    # The security section is still there, and a way to link another account.
    assert "Your sign-in security" in page and 'href="/profile/sessions"' in page
    assert 'href="/enrol/"' in page and "Link another account" in page
    assert 'role="search"' not in page  # three accounts need no search box


def test_dashboard_leaves_out_revoked_grants_and_says_when_there_are_none(app, world, clock):
    with sessionmaker_of(app)() as db:
        for grant in db.scalars(select(Grant).where(Grant.user_id == world["owner"])):
            grant.revoked_at = clock()
        db.commit()
    page = body(signed_in(app, OWNER).get("/"))
    assert "You have no tax accounts linked to your sign-in yet" in page
    assert "Prairie Inn" not in page
    assert 'class="button" href="/enrol/"' in page


def test_the_next_due_period_is_the_earliest_unfiled_one_due_today_or_later(app, world):
    with sessionmaker_of(app)() as db:
        from models import Account

        inn = db.scalar(select(Account).where(Account.number == world["inn"]))
        file_return(db, inn, date(2026, 10, 31))  # October filed: nothing left due
        db.commit()
    page = body(signed_in(app, OWNER).get("/"))
    inn_row = next(row for row in _dashboard_rows(page) if "Prairie Inn Ltd." in row)
    assert "Nothing due" in inn_row and "1 return overdue" in inn_row


@pytest.fixture
def many_accounts(app, clock):
    """A representative with 60 client accounts, and one account they do not hold."""
    rep = make_user(app, email="rep@example.com", name="Rae Representative")
    with sessionmaker_of(app)() as db:
        for serial in range(1, 61):
            account = open_account(
                db,
                serial=serial,
                legal_name=f"Client {serial:02d} Ltd.",
                operating_name="Special Widgets" if serial == 42 else None,
                periods_until=date(2026, 1, 1),
            )
            post(db, account, "assessment", serial * 100, date(2026, 11, 1))
            give(db, clock(), rep, account, role="representative")
        open_account(db, serial=99, legal_name="Client 99 Not Yours", periods_until=date(2026, 1, 1))
        db.commit()
    return rep


def test_a_representative_with_many_accounts_gets_search_and_keyset_pages(app, many_accounts):
    client = signed_in(app, "rep@example.com")
    page = body(client.get("/"))
    assert 'role="search"' in page and 'name="q"' in page
    seen, pages, url = [], 0, "/"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = body(response)
        names = re.findall(r"Client (\d\d) Ltd\.<span", page)
        assert len(names) <= 25
        seen += names
        pages += 1
        match = re.search(r'<a href="([^"]+)" rel="next"', page)
        url = html.unescape(match.group(1)) if match else None
        if url:
            assert "offset" not in url and "after=" in url
    assert pages == 3
    assert seen == [f"{n:02d}" for n in range(1, 61)]  # every account once, in order
    assert "Accounts 51 to 60 of 60" in page and "First page" in page


def test_dashboard_search_by_name_number_or_operating_name(app, many_accounts):
    client = signed_in(app, "rep@example.com")
    page = body(client.get("/?q=client+1"))
    assert re.findall(r"Client (\d\d) Ltd\.<span", page) == [f"{n}" for n in range(10, 20)]
    assert "10 accounts matching “client 1”" in page
    number = make_number("41", 7)
    page = body(client.get("/?q=" + format_number(number).replace(" ", "+")))
    assert re.findall(r"Client (\d\d) Ltd\.<span", page) == ["07"]
    page = body(client.get("/?q=widgets"))
    assert re.findall(r"Client (\d\d) Ltd\.<span", page) == ["42"]
    page = body(client.get("/?q=99"))
    assert "Not Yours" not in page
    page = body(client.get("/?q=%25"))  # a LIKE wildcard is only a character
    assert "None of your accounts match" in page
    # A page token that is not one of the person's accounts gives the first page.
    page = body(client.get(f"/?after={make_number('41', 99)}"))
    assert "Accounts 1 to 25 of 60" in page
    assert client.get("/?after=nonsense").status_code == 200


def test_dashboard_search_over_htmx_returns_only_the_results(app, many_accounts):
    client = signed_in(app, "rep@example.com")
    response = client.get("/?q=client+2", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = body(response)
    assert fragment.lstrip().startswith('<div id="accounts-results"')
    assert "<html" not in fragment and "<form" not in fragment and "Welcome" not in fragment
    assert len(re.findall(r"Client 2\d Ltd\.", fragment)) == 10


# --- Account summary -------------------------------------------------------------------


def test_summary_shows_details_balance_and_every_filing_period(app, world):
    client = signed_in(app, OWNER)
    response = client.get(f"/accounts/{world['inn']}/")
    assert response.status_code == 200
    page = body(response)
    assert '<h1 class="heading-l">Prairie Inn Ltd.</h1>' in page
    for text_ in (
        "Tourism Levy",
        format_number(world["inn"]),
        "Prairie Inn",
        "Active",
        "PO Box 100",
        "10020 100 Street NW",
        "Robin Example",
        "780 555 0100",
        "robin@example.com",
    ):
        assert text_ in page
    assert "$1,296.29 owing" in page
    assert "Next return due: <strong>30 November 2026</strong>, for the period ending 31 October 2026" in page
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td>\s*<td>(.*?)</td><td class=\"num\">(.*?)</td></tr>", as_written(page)
    )
    assert len(rows) == 10  # January to October 2026
    assert rows[0] == (
        "31 October 2026",
        "30 November 2026",
        '<strong class="tag tag--grey">Not filed yet</strong>',
        "$0.00",
    )
    assert rows[1] == (
        "30 September 2026",
        "31 October 2026",
        '<strong class="tag tag--red">Not filed: overdue</strong>',
        "$1,296.29",
    )
    assert rows[2] == ("31 August 2026", "30 September 2026", '<strong class="tag">Filed</strong>', "$0.00")
    assert rows[-1][0] == "31 January 2026"
    assert f'href="/accounts/{world["inn"]}/transactions"' in page
    if "accounts.returns" in app.view_functions:
        assert f"/accounts/{world['inn']}/returns" in page or "Assessment status" in page
    else:
        assert "Assessment status" not in page


def test_summary_with_view_returns_only_shows_periods_but_no_money(app, world):
    page = body(signed_in(app, OWNER).get(f"/accounts/{world['tobacco']}/"))
    assert "Leaf and Co." in page and "31 October 2026" in page and "25 November 2026" in page
    assert "$" not in page.split("<main", 1)[1]
    assert "Period balance" not in page and "Financial transactions" not in page


# --- Financial transactions -----------------------------------------------------------


@pytest.fixture
def busy(app, clock):
    """An account with 130 entries, three processed each day, in every kind, over
    four periods; the owner and its number."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=11, legal_name="Busy Hotel Inc.", operating_name=None)
        busy_history(db, account, odd_description_at=7)
        give(db, clock(), owner, account)
        db.commit()
        entries = [
            (e.id, e.processed_date, e.amount_cents, e.kind, e.period_end, e.reference)
            for e in db.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account.id))
        ]
    return dict(client=signed_in(app, OWNER), number=account.number, entries=entries)


# Rows leave out the end tags HTML lets them omit (the fragment is kept small).
ROW = re.compile(
    r"<tr><td>(.*?)<td>(.*?)<td>(.*?)<td>(.*?)<td>(.*?)"
    r"<td>(.*?)<td>([^<\n]*)"
)


def _rows(page: str):
    return ROW.findall(as_written(page))


def _next_url(page: str) -> str | None:
    match = re.search(r'<a href="([^"]+)" rel="next"', page)
    return html.unescape(match.group(1)) if match else None


def _expected_balances(entries):
    """Reference -> the account's balance after that entry (every entry counts)."""
    running, after = 0, {}
    for _entry_id, _processed, cents, _k, _p, reference in sorted(entries, key=lambda e: (e[1], e[0])):
        running += cents
        after[reference] = running
    return after


def test_transactions_first_page_is_the_newest_fifty_with_running_balance(busy):
    response = busy["client"].get(f"/accounts/{busy['number']}/transactions")
    assert response.status_code == 200
    page = body(response)
    rows = _rows(page)
    assert len(rows) == 50
    newest = sorted(busy["entries"], key=lambda e: (e[1], e[0]), reverse=True)[:50]
    assert [r[4] for r in rows] == [e[5] for e in newest]
    balances = _expected_balances(busy["entries"])
    for row in rows:
        assert row[6] == format_amount(balances[row[4]])
    assert "All transactions, newest first" in page
    assert 'id="transactions-results"' in page and 'id="transactions-filter"' in page
    assert 'data-hx-get="/accounts/' in page and 'data-hx-target="#transactions-results"' in page
    assert 'data-hx-push-url="true"' in page


def test_keyset_pages_cover_every_row_exactly_once(busy):
    client, url, seen, sizes = busy["client"], f"/accounts/{busy['number']}/transactions", [], []
    balances = _expected_balances(busy["entries"])
    while url:
        assert "offset" not in url.lower()
        page = body(client.get(url))
        rows = _rows(page)
        sizes.append(len(rows))
        seen += [r[4] for r in rows]
        for row in rows:  # the running balance is true on every page
            assert row[6] == format_amount(balances[row[4]])
        url = _next_url(page)
        if url:
            assert parse_qs(urlsplit(url).query)["after"][0].count(".") == 1
    assert sizes == [50, 50, 30]
    assert sorted(seen) == sorted(e[5] for e in busy["entries"]) and len(seen) == len(set(seen))
    assert "First page" in page


def test_running_balance_equals_the_sum_of_every_earlier_entry_in_the_database(app, busy):
    with sessionmaker_of(app)() as db:
        account_id = db.scalar(select(LedgerEntry.account_id).limit(1))
        rows, _cursor = ledger.transactions_page(db, account_id, ledger.TransactionFilter(kind="payment"), size=200)
        assert rows
        for row in rows:
            earlier = db.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                    LedgerEntry.account_id == account_id,
                    (LedgerEntry.processed_date < row.processed_date)
                    | ((LedgerEntry.processed_date == row.processed_date) & (LedgerEntry.id <= row.id)),
                )
            )
            assert int(row.balance_after) == int(earlier)


def test_filter_by_processed_date_range_and_type(busy):
    url = f"/accounts/{busy['number']}/transactions?mode=processed&from=2026-06-05&to=2026-06-20&type=payment"
    page = body(busy["client"].get(url))
    expected = sorted(
        (e for e in busy["entries"] if date(2026, 6, 5) <= e[1] <= date(2026, 6, 20) and e[3] == "payment"),
        key=lambda e: (e[1], e[0]),
        reverse=True,
    )
    assert expected and [r[4] for r in _rows(page)] == [e[5] for e in expected]
    assert {r[3] for r in _rows(page)} == {"Payment"}
    assert "Transactions processed from 5 June 2026 to 20 June 2026, payment only" in page
    # The form shows the filter it applied.
    assert re.search(r'id="filter-from_day" name="from_day" [^>]*value="5"', page)
    assert re.search(r'id="filter-to_month" name="to_month" [^>]*value="6"', page)
    assert '<option value="payment" selected>' in page


def test_filter_by_period_end(busy):
    url = f"/accounts/{busy['number']}/transactions?mode=period&period=2026-07-31"
    page = body(busy["client"].get(url))
    expected = [e for e in busy["entries"] if e[4] == date(2026, 7, 31)]
    rows = _rows(page)
    assert len(rows) == min(50, len(expected)) and {r[2] for r in rows} == {"31 Jul 2026"}
    assert '<option value="2026-07-31" selected>' in page
    assert "Transactions for the period ending 31 July 2026" in page
    # Every period end of the account is offered, newest first.
    assert re.findall(r'<option value="(2026-\d\d-\d\d)"', page) == [
        "2026-08-31",
        "2026-07-31",
        "2026-06-30",
        "2026-05-31",
    ]


def test_a_charge_or_correction_shows_its_reason_under_its_type_and_a_payment_does_not(app, busy):
    """Issue 20 item 3: "why was I charged?" is answered on the page, not only in the CSV."""
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == busy["number"]))
        post(db, account, "payment", -100, date(2026, 7, 20), reference="PAY-SAID", description="Payment by cheque")
        # A reason is staff's text: markup in it is shown as text, never run.
        evil = "<script>alert(1)</script> Interest on the unpaid balance"
        post(db, account, "interest", 250, date(2026, 7, 20), reference="INT-EVIL", description=evil)
        db.commit()
    page = body(busy["client"].get(f"/accounts/{busy['number']}/transactions?type=penalty"))
    kinds = {r[3] for r in _rows(page)}
    assert kinds == {"Penalty<br>Late filing penalty: the return arrived 9 days after the due date (5% of the tax)"}
    page = body(busy["client"].get(f"/accounts/{busy['number']}/transactions"))
    by_reference = {r[4]: r[3] for r in _rows(page)}
    assert by_reference["PAY-SAID"] == "Payment"  # a payment's description stays in the CSV
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; Interest on the unpaid balance"
    assert by_reference["INT-EVIL"] == f"Interest<br>{escaped}"
    assert "<script>alert" not in page
    assert by_reference["TX0126"].startswith("Adjustment<br>Adjustment: inventory reconciliation")
    assert by_reference["TX0127"].startswith("Reversal<br>Reverses penalty PEN-TL-")


@pytest.mark.parametrize(
    "query, field, link, message",
    [
        (
            "mode=processed&from_day=20&from_month=6&from_year=2026&to_day=5&to_month=6&to_year=2026",
            "filter-from",
            "filter-from_day",
            "The start date must be on or before the end date",
        ),
        (
            "mode=processed&from_day=30&from_month=2&from_year=2026",
            "filter-from",
            "filter-from_day",
            "The start date must be a real date",
        ),
        (
            "mode=processed&to_day=31&to_month=&to_year=2026",
            "filter-to",
            "filter-to_month",
            "The end date must include a month",
        ),
        ("mode=processed&from=2026-02-30", "filter-from", "filter-from_day", "The start date must be a real date"),
        ("mode=period&period=2026-01-31", "filter-period", "filter-period", "Choose a period this account has"),
        ("mode=period&period=yesterday", "filter-period", "filter-period", "Choose a period this account has"),
        ("mode=period", "filter-period", "filter-period", "Choose a period end"),
        ("type=bribe", "filter-type", "filter-type", "Choose a transaction type from the list"),
        ("mode=sideways", "filter-mode", "filter-mode", "Choose how to find transactions"),
    ],
    ids=[
        "reversed",
        "no-such-day",
        "no-month",
        "no-such-day-in-a-link",
        "unknown-period",
        "not-a-date",
        "no-period",
        "type",
        "mode",
    ],
)
def test_a_wrong_filter_gets_a_message_beside_the_field(busy, query, field, link, message):
    for path in ("transactions", "transactions.csv"):
        response = busy["client"].get(f"/accounts/{busy['number']}/{path}?{query}")
        assert response.status_code == 400, (path, response.status_code)
        page = body(response)
        assert (
            f'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> {message}</p>'
            in page
        )
        assert f'<a href="#{link}">{message}</a>' in page  # and in the error summary, to the first wrong box
        assert "<title>Error: " in page
        assert not _rows(page)


def test_a_bad_page_token_is_ignored(busy):
    first = _rows(body(busy["client"].get(f"/accounts/{busy['number']}/transactions")))
    for token in ("garbage", "2026-13-01.5", "2026-06-01.x", "2026-06-01.99999999999999999999999", "1.2.3", ""):
        response = busy["client"].get(f"/accounts/{busy['number']}/transactions?after={token}")
        assert response.status_code == 200, token
        assert _rows(body(response)) == first


def test_htmx_swaps_only_the_results_and_says_so_in_vary(busy):
    url = f"/accounts/{busy['number']}/transactions?mode=processed&from=2026-06-01&to=2026-12-31&type=all"
    response = busy["client"].get(url, headers={"HX-Request": "true", "HX-Current-URL": "http://localhost" + url})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = body(response)
    assert fragment.startswith('<div id="transactions-results"')
    assert "<html" not in fragment and "<form" not in fragment and "<h1" not in fragment
    assert len(_rows(fragment)) == 50
    assert 'id="transactions-status" data-hx-swap-oob="innerHTML">50 transactions shown.' in fragment
    assert "style=" not in fragment and "<script" not in fragment
    # The same URL without htmx is the whole page (the URL htmx pushed is bookmarkable).
    page = body(busy["client"].get(url))
    assert "<html" in page and 'id="transactions-filter"' in page and len(_rows(page)) == 50


def test_htmx_with_a_wrong_filter_swaps_the_form_with_its_errors(busy):
    url = f"/accounts/{busy['number']}/transactions?mode=processed&from=2026-07-01&to=2026-06-01"
    response = busy["client"].get(url, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#transactions-filter"
    assert response.headers["HX-Reswap"] == "outerHTML"
    fragment = body(response)
    assert fragment.lstrip().startswith('<form method="get"') and "<html" not in fragment
    assert "The start date must be on or before the end date" in fragment
    assert 'id="transactions-results" tabindex="-1" data-hx-swap-oob="true"' in fragment
    assert "hx-get" not in fragment.split("</form>")[0]  # the next try redraws the form


def test_fifty_rows_of_fragment_weigh_at_most_six_kilobytes_compressed(busy):
    response = busy["client"].get(f"/accounts/{busy['number']}/transactions", headers={"HX-Request": "true"})
    fragment = response.get_data()
    assert len(_rows(fragment.decode())) == 50
    size = len(gzip.compress(fragment, compresslevel=6))
    print(f"\n50-row transactions fragment: {len(fragment)} bytes, {size} bytes gzip")
    assert size <= 6 * 1024


# --- CSV export -----------------------------------------------------------------------


def _csv(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_has_exactly_the_filtered_rows_in_exact_decimals(busy):
    url = f"/accounts/{busy['number']}/transactions.csv?mode=processed&from=2026-06-02&to=2026-07-20&type=all"
    response = busy["client"].get(url)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="transactions-{busy["number"]}.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    rows = _csv(response)
    assert rows[0] == [
        "Processed date",
        "Effective date",
        "Period end",
        "Type",
        "Reference",
        "Description",
        "Amount",
        "Balance",
    ]
    expected = sorted(
        (e for e in busy["entries"] if date(2026, 6, 2) <= e[1] <= date(2026, 7, 20)),
        key=lambda e: (e[1], e[0]),
        reverse=True,
    )
    assert len(rows) - 1 == len(expected) > 50  # every page, not only the first
    balances = _expected_balances(busy["entries"])
    for row, entry in zip(rows[1:], expected, strict=False):
        assert row[0] == entry[1].isoformat() and row[4] == entry[5]
        assert row[6] == str((Decimal(entry[2]) / 100).quantize(Decimal("0.01"))) and Decimal(row[6]) * 100 == entry[2]
        assert re.fullmatch(r"-?\d+\.\d\d", row[6]) and re.fullmatch(r"-?\d+\.\d\d", row[7])
        assert Decimal(row[7]) == Decimal(balances[entry[5]]) / 100
    # Text a spreadsheet could run as a formula is defused.
    evil = [row for row in rows if row[4] == "TX0007"]
    assert len(evil) == 1 and evil[0][5] == '\'=HYPERLINK("evil")'


def test_csv_by_period_and_type(busy):
    url = f"/accounts/{busy['number']}/transactions.csv?mode=period&period=2026-06-30&type=transfer"
    rows = _csv(busy["client"].get(url))[1:]
    expected = [e for e in busy["entries"] if e[4] == date(2026, 6, 30) and e[3] == "transfer"]
    assert len(rows) == len(expected) > 0
    assert {r[2] for r in rows} == {"2026-06-30"} and {r[3] for r in rows} == {"Transfer"}


def test_the_results_offer_the_csv_of_the_same_filter(busy):
    page = body(
        busy["client"].get(f"/accounts/{busy['number']}/transactions?mode=period&period=2026-06-30&type=transfer")
    )
    link = re.search(r'<a href="([^"]+)" download data-hx-boost="false">Download these transactions \(CSV\)</a>', page)
    assert link
    query = parse_qs(urlsplit(html.unescape(link.group(1))).query)
    assert urlsplit(html.unescape(link.group(1))).path == f"/accounts/{busy['number']}/transactions.csv"
    assert query == {"mode": ["period"], "period": ["2026-06-30"], "type": ["transfer"]}


# --- The ledger is append-only in the database itself ---------------------------------------


@pytest.mark.parametrize("statement", ["UPDATE ledger_entries SET amount_cents = 0", "DELETE FROM ledger_entries"])
def test_the_database_refuses_to_change_or_remove_ledger_entries(app, world, statement):
    engine = app.extensions["portal.engine"]
    with pytest.raises(DBAPIError) as refused, engine.begin() as conn:
        conn.execute(text(statement))
    assert "append-only" in str(refused.value)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(LedgerEntry)) == 21
        entry = db.scalars(select(LedgerEntry)).first()
        entry.amount_cents += 1
        with pytest.raises(DBAPIError):
            db.commit()


# --- Who may see what ---------------------------------------------------------------

ACCOUNT_ROUTES = [
    "/accounts/{n}/",
    "/accounts/{n}/transactions",
    "/accounts/{n}/transactions.csv",
    "/accounts/{n}/transactions?mode=period&period=2026-09-30",
    "/accounts/{n}/transactions?after=2026-11-01.1",
]
WHO = ["anonymous", "owner", "view-only", "no-grant", "revoked"]


def _account_routes(app) -> list[str]:
    """Every accounts route there is (so one added later is in the matrix too)."""
    return sorted(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("accounts."))


@pytest.fixture
def matrix(app, clock):
    people = {who: make_user(app, email=f"{who}@example.com", name=who.title()) for who in WHO[1:]}
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=21, legal_name="Matrix Motel Ltd.")
        post(db, account, "assessment", 10000, date(2026, 10, 15), period_end=date(2026, 9, 30))
        give(db, clock(), people["owner"], account)
        give(db, clock(), people["view-only"], account, role="viewer", permissions=("view_returns",))
        revoked = give(db, clock(), people["revoked"], account)
        revoked.revoked_at = clock()
        db.commit()
        return account.number


def test_the_matrix_covers_every_account_route(app):
    assert set(_account_routes(app)) >= {
        "/accounts/<account:number>/",
        "/accounts/<account:number>/transactions",
        "/accounts/<account:number>/transactions.csv",
    }


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("route", ACCOUNT_ROUTES)
def test_access_matrix(app, matrix, who, route):
    url = route.format(n=matrix)
    if who == "anonymous":
        response = app.test_client().get(url)
        assert response.status_code == 303
        assert urlsplit(response.headers["Location"]).path == "/auth/sign-in"
        assert "Matrix Motel" not in body(response)
        return
    client = signed_in(app, f"{who}@example.com")
    response = client.get(url)
    needs_money = "/transactions" in route
    allowed = who == "owner" or (who == "view-only" and not needs_money)
    if allowed:
        assert response.status_code == 200
        if response.mimetype == "text/html":
            assert "Matrix Motel Ltd." in body(response)
        else:
            assert len(_csv(response)) == 2
        return
    assert response.status_code == 404
    page = body(response)
    assert "Matrix Motel" not in page
    if who == "revoked":  # told, on the same 404, that their access was removed
        assert "You no longer have access to this account" in page
        return
    assert "Page not found" in page
    # Identical to an account number that does not exist at all.
    unknown = client.get(route.format(n=make_number("41", 9999)))
    assert unknown.status_code == 404 and without_tokens(body(unknown)) == without_tokens(page)
    htmx = client.get(url, headers={"HX-Request": "true"})
    assert htmx.status_code == 404 and "<html" not in body(htmx) and "Matrix Motel" not in body(htmx)


def test_every_account_route_of_other_engineers_is_also_refused_to_strangers(app, matrix):
    """Routes added to the accounts blueprint later (assessment status, notices)
    must answer a stranger with the same 404 as an unknown account."""
    client = signed_in(app, "no-grant@example.com")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("accounts.") or "GET" not in rule.methods:
            continue
        values = {name: (matrix if name == "number" else 1) for name in rule.arguments}
        from flask import url_for

        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        assert client.get(url).status_code == 404, url


def test_viewing_records_last_use_but_changes_nothing_else(app, matrix, clock):
    client = signed_in(app, "owner@example.com")
    with sessionmaker_of(app)() as db:
        before = db.scalar(select(func.count()).select_from(LedgerEntry))
    for route in ACCOUNT_ROUTES:
        with client.get(route.format(n=matrix)) as response:
            assert response.status_code == 200 and response.get_data()
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(LedgerEntry)) == before
        grant = db.scalar(select(Grant).join(Grant.account).where(Grant.revoked_at.is_(None), Grant.role == "owner"))
        assert grant.last_used_at == clock()
