"""The account's request history (issue 5): every submission with its reference
and status, and only the kinds a person's grant lets them make."""

from __future__ import annotations

from datetime import date

from domain import requests
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user

OWNER, CLERK, BOOKKEEPER = "owner@example.com", "clerk@example.com", "books@example.com"


def _setup(app, clock):
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    books = make_user(app, email=BOOKKEEPER, name="Bo Books")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="History Hotel Ltd.", opened_on=date(2026, 6, 1))
        give(db, clock(), owner, account)
        give(db, clock(), clerk, account, role="delegate", permissions=("view_returns",))
        give(db, clock(), books, account, role="delegate", permissions=("file",))
        first = requests.submit(
            db,
            clock(),
            account=account,
            user_id=owner,
            kind="return",
            key="k-return",
            summary="Tourism Levy return, October 2026",
            data={"accommodation_revenue": "1000.00", "levy": "40.00", "lines": ["a", "b"]},
        )
        requests.submit(
            db,
            clock(),
            account=account,
            user_id=owner,
            kind="direct_deposit",
            key="k-bank",
            summary="Direct deposit details changed",
            data={"account_number": "•••••789"},
        )
        db.commit()
        return account.number, first.request.reference


def test_the_same_key_is_the_same_request(app, clock):
    number, reference = _setup(app, clock)
    with sessionmaker_of(app)() as db:
        from sqlalchemy import select

        from models import Account

        account = db.scalar(select(Account).where(Account.number == number))
        again = requests.submit(
            db, clock(), account=account, user_id=1, kind="return", key="k-return", summary="other", data={}
        )
        assert not again.created and again.request.reference == reference
        assert len(requests.of_account(db, account.id)) == 2


def test_the_history_lists_requests_and_a_request_shows_its_answers(app, clock):
    number, reference = _setup(app, clock)
    client = signed_in(app, OWNER)
    page = body(client.get(f"/requests/{number}/"))
    assert reference in page and "Direct deposit details" in page and "Received" in page
    shown = body(client.get(f"/requests/{number}/{reference}"))
    assert "Accommodation revenue" in shown and "1000.00" in shown and "Olive Owner" in shown
    assert f'href="/requests/{number}/"' in body(client.get(f"/accounts/{number}/"))


def test_a_person_sees_only_the_kinds_their_grant_lets_them_make(app, clock):
    number, reference = _setup(app, clock)
    books = signed_in(app, BOOKKEEPER)
    page = body(books.get(f"/requests/{number}/"))
    assert reference in page and "Direct deposit" not in page
    clerk = signed_in(app, CLERK)  # may view returns but make no request
    assert clerk.get(f"/requests/{number}/").status_code == 404
    assert clerk.get(f"/requests/{number}/{reference}").status_code == 404


def test_an_unknown_or_hostile_reference_is_404(app, clock):
    number, _reference = _setup(app, clock)
    client = signed_in(app, OWNER)
    for reference in ("SR-NOPE-NOPE", "x" * 500, "%00", "SR-' OR 1=1"):
        response = client.get(f"/requests/{number}/{reference}")
        response.get_data()
        assert response.status_code == 404


def test_the_agency_lists_and_decides_requests_from_the_command_line(app, clock, runner):
    number, return_reference = _setup(app, clock)
    with sessionmaker_of(app)() as db:
        from sqlalchemy import select

        from models import Account, WorkItem

        account = db.scalar(select(Account).where(Account.number == number))
        objection = requests.submit(
            db,
            clock(),
            account=account,
            user_id=1,
            kind="objection",
            key="k-objection",
            summary="Objection to the notice of 30 September 2026",
            data={},
        )
        reference = objection.request.reference
        db.commit()
    listed = runner.invoke(args=["requests", "list"]).output
    assert reference in listed and "History Hotel Ltd." in listed
    assessed_elsewhere = runner.invoke(args=["requests", "approve", return_reference])
    assert assessed_elsewhere.exit_code != 0 and "assessing it" in assessed_elsewhere.output
    refused = runner.invoke(args=["requests", "decline", reference, "--reason", " "])
    assert refused.exit_code != 0 and "reason" in refused.output
    assert runner.invoke(args=["requests", "decline", reference, "--reason", "Figures do not match"]).exit_code == 0
    again = runner.invoke(args=["requests", "approve", reference])
    assert again.exit_code != 0 and "already been decided" in again.output
    assert runner.invoke(args=["requests", "approve", "SR-NONE-NONE"]).exit_code != 0
    client = signed_in(app, OWNER)
    shown = body(client.get(f"/requests/{number}/{reference}"))
    assert "Declined" in shown and "Figures do not match" in shown
    with sessionmaker_of(app)() as db:
        item = db.scalar(select(WorkItem).where(WorkItem.service_request_id == objection.request.id))
        assert (item.status, item.outcome, item.decided_by_user_id) == ("decided", "declined", None), (
            "the back office's item is decided with it"
        )


def test_purge_keeps_recent_drafts_and_removes_abandoned_ones(app, clock, runner):
    from datetime import timedelta

    from sqlalchemy import func, select

    from domain import drafts
    from models import Account, Draft

    number, _reference = _setup(app, clock)
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == number))
        old = drafts.start(db, clock() - timedelta(days=91), account_id=account.id, user_id=1, kind="objection")
        kept = drafts.start(db, clock() - timedelta(days=89), account_id=account.id, user_id=1, kind="waiver")
        db.commit()
        old_id, kept_id = old.id, kept.id
    assert runner.invoke(args=["purge"]).exit_code == 0
    with sessionmaker_of(app)() as db:
        assert db.get(Draft, old_id) is None and db.get(Draft, kept_id) is not None
        assert db.scalar(select(func.count(Draft.id))) == 1
