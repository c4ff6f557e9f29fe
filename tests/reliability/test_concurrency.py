"""Concurrency through a real gunicorn (four workers of two threads), on SQLite and
PostgreSQL (issue 8): the same return sent ten times at once is one return; two
people saving the account's details from the same form version give one save and
one refusal, nothing lost or half-written; and many people writing at once (drafts,
details, messages) get no 5xx and no "database is locked", and every write is kept.

Every request goes on its own TCP connection, so the workers share them out; the
simultaneous ones wait at a barrier and leave together."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from domain import messages
from models import (
    Account,
    AuditEvent,
    Draft,
    FilingPeriod,
    LedgerEntry,
    MessagePost,
    ServiceRequest,
    TaxReturn,
    WorkItem,
)
from tests.accounts_factory import give, open_account, sessionmaker_of
from tests.conftest import make_user
from tests.security.test_brute_force_workers import Browser, Served, at_once, serving, statuses

WORKERS, THREADS = 4, 2
SERVER_ENV = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "SIGNIN_CLIENT_MAX_FAILURES": "100000"}
TIMES = 10
FIGURES = {"accommodation_price": "12,345.67", "exempt_price": "100"}
ALREADY_FILED = "You have already filed a return"
CONFLICT = "Your change was not saved"
_serials = itertools.count(81)


@pytest.fixture(scope="module")
def served(db_backend, request, tmp_path_factory):
    with serving(
        db_backend,
        request,
        tmp_path_factory.mktemp("concurrency"),
        workers=WORKERS,
        threads=THREADS,
        extra_env=SERVER_ENV,
    ) as server:
        yield server


def real_today():
    """The server runs on the real clock; its "today" is Edmonton's."""
    return datetime.now(ZoneInfo("America/Edmonton")).date()


def _account_with(served: Served, people: dict[str, tuple]) -> dict:
    """A Tourism Levy account with a year of monthly periods; `people` maps an email
    to (role, permissions) for the grants. Its number and ended periods, newest first."""
    now = datetime.now(ZoneInfo("UTC"))
    ids = {email: make_user(served.app, email=email, name=email.split("@")[0].title()) for email in people}
    with sessionmaker_of(served.app)() as db:
        account = open_account(
            db,
            serial=next(_serials),
            legal_name="Harbour Hotel Ltd.",
            opened_on=real_today() - timedelta(days=400),
            periods_until=real_today(),
        )
        for email, (role, permissions) in people.items():
            give(db, now, ids[email], account, role=role, permissions=permissions)
        db.commit()
        ended = db.scalars(
            select(FilingPeriod.period_end)
            .where(FilingPeriod.account_id == account.id, FilingPeriod.period_end < real_today() - timedelta(days=1))
            .order_by(FilingPeriod.period_end.desc())
        ).all()
        return {"number": account.number, "id": account.id, "periods": [p.isoformat() for p in ended], "ids": ids}


def _signed_in(served: Served, email: str) -> Browser:
    browser = Browser(served.url)
    status, location = browser.sign_in(email)
    assert status == 303 and "/auth/" not in location, (status, location)
    return browser


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _to_check(browser: Browser, number: str, period: str, figures: dict) -> None:
    """Begin the period's return and enter its figures, as the person would."""
    status, _, page = browser.send("GET", f"/filing/{number}/")
    assert status == 200
    base = f"/filing/{number}/{period}"
    assert browser.send("POST", f"{base}/begin", {"csrf_token": _csrf(page)})[0] == 303
    status, _, page = browser.send("GET", f"{base}/figures")
    assert status == 200
    status, headers, _ = browser.send(
        "POST", f"{base}/figures", {**figures, "action": "continue", "csrf_token": _csrf(page)}
    )
    assert status == 303 and headers["location"].endswith(f"{base}/check"), status


def _check_form(browser: Browser, number: str, period: str) -> dict:
    """The check page's form, loaded: what pressing "Submit" sends."""
    status, _, page = browser.send("GET", f"/filing/{number}/{period}/check")
    assert status == 200, status
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return {"declaration": "y", "token": token, "csrf_token": _csrf(page)}


def _submit(browser: Browser, number: str, period: str, form: dict):
    return lambda: browser.send("POST", f"/filing/{number}/{period}/check", form)


def _filed(served: Served, account: dict, period: str) -> dict:
    """What filing left in the database (each test files one period of its own account)."""
    end = datetime.fromisoformat(period).date()
    with sessionmaker_of(served.app)() as db:
        returns = db.scalars(select(TaxReturn).where(TaxReturn.account_id == account["id"])).all()
        assert all(r.period_end == end for r in returns)
        requests = db.scalars(
            select(ServiceRequest).where(ServiceRequest.account_id == account["id"], ServiceRequest.kind == "return")
        ).all()
        items = db.scalars(select(WorkItem).where(WorkItem.account_id == account["id"])).all()
        audited = db.scalars(
            select(AuditEvent).where(AuditEvent.event == "request.return", AuditEvent.account_id == account["id"])
        ).all()
        ledger = db.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account["id"])).all()
        return {"returns": returns, "requests": requests, "work_items": items, "audited": audited, "ledger": ledger}


def _one_return(served: Served, account: dict, period: str, results, *, refused_ok: bool = False) -> str:
    """Exactly one return, request, work item and audit event for the period, no
    ledger entry (a return is assessed later, by the agency), no 5xx; the answers
    all go to that return's confirmation (or, with `refused_ok`, say 409 "already
    filed"). The confirmation's path."""
    answered = statuses(results)
    assert set(answered) <= ({303, 409} if refused_ok else {303}), answered
    found = _filed(served, account, period)
    assert len(found["returns"]) == 1, found["returns"]
    assert len(found["requests"]) == 1 and len(found["work_items"]) == 1 and len(found["audited"]) == 1, found
    assert found["ledger"] == []
    done = f"/filing/{account['number']}/done/{found['returns'][0].reference}"
    for result in results:
        status, headers, page = result
        if status == 303:
            assert headers["location"].endswith(done), headers["location"]
        else:
            assert ALREADY_FILED in page
    return done


def test_the_same_return_sent_ten_times_at_once_is_one_return(served):
    """ASVS 5.0 2.3.3, 2.3.4, 15.4.2: a double click ten times over (the same loaded form,
    same CSRF token and submission key, sent at the same moment): one return, one
    request, one work item; all ten answers go to its confirmation."""
    owner = "double-clicker@example.com"
    account = _account_with(served, {owner: ("owner", None)})
    period = account["periods"][0]
    browser = _signed_in(served, owner)
    _to_check(browser, account["number"], period, FIGURES)
    form = _check_form(browser, account["number"], period)
    results = at_once([_submit(browser, account["number"], period, form) for _ in range(TIMES)])
    done = _one_return(served, account, period, results)
    assert browser.send("GET", done)[0] == 200


def test_the_same_return_from_ten_separately_loaded_forms_is_one_return(served):
    """ASVS 5.0 2.3.3, 2.3.4, 15.4.2: ten tabs and devices of the same person, each having
    loaded the check page itself (its own CSRF token), press Submit at the same
    moment: one return, and every answer is its confirmation."""
    owner = "many-tabs@example.com"
    account = _account_with(served, {owner: ("owner", None)})
    period = account["periods"][1]
    browsers = [_signed_in(served, owner) for _ in range(TIMES)]
    _to_check(browsers[0], account["number"], period, FIGURES)
    forms = [_check_form(b, account["number"], period) for b in browsers]
    assert len({f["csrf_token"] for f in forms}) == TIMES and len({f["token"] for f in forms}) == 1
    results = at_once([_submit(b, account["number"], period, f) for b, f in zip(browsers, forms, strict=False)])
    _one_return(served, account, period, results)


def test_two_people_filing_the_same_period_at_once_file_one_return(served):
    """ASVS 5.0 2.3.4, 2.3.3, 15.4.2: two people with their own drafts of the same period
    (different figures), five devices each, all press Submit at the same moment:
    one return, whose figures are one person's; that person's answers are its
    confirmation, the other's say the period is filed already (409), and nothing of
    theirs is kept."""
    owner, clerk = "owner-files@example.com", "clerk-files@example.com"
    account = _account_with(served, {owner: ("owner", None), clerk: ("delegate", ("file",))})
    period = account["periods"][2]
    figures = {owner: FIGURES, clerk: {"accommodation_price": "999", "exempt_price": "0"}}
    sent = []
    for email in (owner, clerk):
        browsers = [_signed_in(served, email) for _ in range(TIMES // 2)]
        _to_check(browsers[0], account["number"], period, figures[email])
        sent += [(email, b, _check_form(b, account["number"], period)) for b in browsers]
    results = at_once([_submit(b, account["number"], period, f) for _, b, f in sent])
    _one_return(served, account, period, results, refused_ok=True)
    [tax_return] = _filed(served, account, period)["returns"]
    winner = next(email for email, ident in account["ids"].items() if ident == tax_return.filed_by_user_id)
    for (email, _, _), (status, _, _) in zip(sent, results, strict=False):
        assert status == (303 if email == winner else 409), (email, winner, status)
    with sessionmaker_of(served.app)() as db:
        open_drafts = db.scalars(
            select(Draft).where(Draft.account_id == account["id"], Draft.submitted_request_id.is_(None))
        ).all()
        assert [d.user_id for d in open_drafts] == [ident for email, ident in account["ids"].items() if email != winner]


# --- Two people saving the account's details at the same moment -------------------------------


def _details_form(page: str) -> dict:
    """Every input and select of the details form, as the browser would send it."""
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    return {k: v.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", '"') for k, v in fields.items()}


def _load_details(browser: Browser, number: str) -> dict:
    status, _, page = browser.send("GET", f"/details/{number}/edit")
    assert status == 200, status
    return _details_form(page)


def _stored(served: Served, account_id: int) -> Account:
    with sessionmaker_of(served.app)() as db:
        account = db.get(Account, account_id)
        db.expunge(account)
        return account


ROUNDS = 4


def test_two_simultaneous_details_saves_from_one_version_give_one_save_and_one_refusal(served):
    """ASVS 5.0 2.3.4, 2.3.3, 15.4.2: two people load the details form (the same
    profile_version) and save different changes at the same moment, four times:
    each time exactly one is saved (303) and the other is refused with the conflict
    page (409, their typing beside the saved values); the stored row is the winner's
    change whole, none of the loser's values, and the version went up by one."""
    owner, clerk = "owner-edits@example.com", "clerk-edits@example.com"
    account = _account_with(served, {owner: ("owner", None), clerk: ("delegate", ("update_profile",))})
    people = {owner: _signed_in(served, owner), clerk: _signed_in(served, clerk)}
    for round_number in range(ROUNDS):
        before = _stored(served, account["id"])
        typed = {}
        for n, (email, browser) in enumerate(people.items()):
            form = _load_details(browser, account["number"])
            assert form["profile_version"] == str(before.profile_version)
            form.update(
                contact_name=f"Contact {round_number}-{n}",
                contact_phone=f"780-555-0{round_number}{n}0",
                mailing_city=f"Town {round_number}-{n}",
            )
            typed[email] = form
        results = at_once(
            [
                (lambda b=b, f=typed[e]: b.send("POST", f"/details/{account['number']}/edit", f))
                for e, b in people.items()
            ]
        )
        answered = statuses(results)
        assert answered == {303: 1, 409: 1}, answered
        winner, loser = (owner, clerk) if results[0][0] == 303 else (clerk, owner)
        refusal = results[1 if winner == owner else 0][2]
        assert CONFLICT in refusal and typed[loser]["contact_name"] in refusal
        after = _stored(served, account["id"])
        assert after.profile_version == before.profile_version + 1
        assert after.contact_name == typed[winner]["contact_name"]
        assert after.contact_phone == typed[winner]["contact_phone"]
        assert f"Town {round_number}-" in after.mailing_address
        assert typed[winner]["mailing_city"] in after.mailing_address
        assert typed[loser]["mailing_city"] not in after.mailing_address
    with sessionmaker_of(served.app)() as db:
        saves = db.scalars(
            select(ServiceRequest).where(ServiceRequest.account_id == account["id"], ServiceRequest.kind == "profile")
        ).all()
        assert len(saves) == ROUNDS


# --- Many people writing at once ------------------------------------------------------------

CLIENTS = 20


def _writers(served: Served, how_many: int) -> list[dict]:
    """People each with their own account (owner), signed in, with a message thread to reply in."""
    made = []
    for _n in range(how_many):
        email = f"writer{next(_serials)}@example.com"
        account = _account_with(served, {email: ("owner", None)})
        with sessionmaker_of(served.app)() as db:
            [message] = messages.send(
                db,
                datetime.now(ZoneInfo("UTC")),
                user_ids=[account["ids"][email]],
                account_id=account["id"],
                subject="Your account",
                body="Welcome.",
                notify=False,
            )
            db.commit()
            thread_id = message.thread_id
        made.append(
            {
                "email": email,
                "account": account,
                "thread": thread_id,
                "browser": _signed_in(served, email),
                "draft": None,
                "contact": None,
                "replies": 0,
                "answers": {},
            }
        )
    return made


def _write_once(writer: dict, step: int) -> None:
    """One write of three kinds in turn: a draft's autosave, a details save, a message reply."""
    browser, number = writer["browser"], writer["account"]["number"]
    period = writer["account"]["periods"][0]
    kind = step % 3
    if kind == 0:
        _, _, page = browser.send("GET", f"/filing/{number}/{period}/figures")
        value = f"{step}.{writer['account']['id'] % 100:02d}"
        answer = browser.send(
            "POST", f"/filing/{number}/{period}/autosave", {"accommodation_price": value, "csrf_token": _csrf(page)}
        )
        if answer[0] == 200:
            writer["draft"] = value
    elif kind == 1:
        form = _load_details(browser, number)
        form["contact_name"] = f"Contact number {step}"
        answer = browser.send("POST", f"/details/{number}/edit", form)
        if answer[0] == 303:
            writer["contact"] = form["contact_name"]
    else:
        _status, _, page = browser.send("GET", f"/messages/{writer['thread']}")
        answer = browser.send(
            "POST",
            f"/messages/{writer['thread']}/reply",
            {"body": f"Reply number {step}", "token": secrets.token_urlsafe(24), "csrf_token": _csrf(page)},
        )
        if answer[0] == 303:
            writer["replies"] += 1
    writer["answers"][answer[0]] = writer["answers"].get(answer[0], 0) + 1


def _write_for(writers: list[dict], seconds: float) -> list:
    """Every writer writes, one request after another, for `seconds`; any exception is kept."""
    errors: list = []
    barrier = threading.Barrier(len(writers))

    def run(writer):
        barrier.wait()
        deadline, step = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            try:
                _write_once(writer, step)
            except Exception as error:
                errors.append(repr(error))
            step += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return errors


def _all_writes_kept(served: Served, writers: list[dict]) -> None:
    with sessionmaker_of(served.app)() as db:
        for writer in writers:
            account = writer["account"]
            if writer["draft"] is not None:
                draft = db.scalar(select(Draft).where(Draft.account_id == account["id"]))
                assert json.loads(draft.data)["accommodation_price"] == writer["draft"]
            if writer["contact"] is not None:
                assert db.get(Account, account["id"]).contact_name == writer["contact"]
            replies = db.scalars(
                select(MessagePost).where(MessagePost.thread_id == writer["thread"], MessagePost.from_agency.is_(False))
            ).all()
            assert len(replies) == writer["replies"]


def _soak(served: Served, seconds: float) -> dict:
    writers = _writers(served, CLIENTS)
    log_before = served.log.stat().st_size
    errors = _write_for(writers, seconds)
    assert errors == []
    answered: dict = {}
    for writer in writers:
        for status, n in writer["answers"].items():
            answered[status] = answered.get(status, 0) + n
    assert set(answered) <= {200, 303}, answered
    log = served.log.read_bytes()[log_before:].decode(errors="replace")
    assert "database is locked" not in log and "Traceback" not in log, log[-3000:]
    _all_writes_kept(served, writers)
    assert all(w["draft"] and w["contact"] and w["replies"] for w in writers)
    print(f"{CLIENTS} writers for {seconds} s: answers {answered}")
    return answered


def test_twenty_people_writing_at_once_for_seconds_get_no_error_and_lose_nothing(served):
    """ASVS 5.0 2.3.3, 15.4.3: twenty
    people, each writing over and over (a draft's autosave, a details save, a message
    reply) against four workers of two threads for six seconds: no 5xx, no "database
    is locked" in the server's log, and every write answered as saved is there."""
    answered = _soak(served, 6)
    assert sum(answered.values()) >= CLIENTS * 3


@pytest.mark.long
def test_twenty_people_writing_at_once_for_a_minute(served):
    """ASVS 5.0 2.3.3: the same for sixty seconds (the long run)."""
    _soak(served, 60)


# --- A submission commits as one ------------------------------------------------------------


def test_a_submission_that_fails_before_its_commit_leaves_nothing(app):
    """ASVS 5.0 2.3.3: a return's submission holds its draft first (domain.drafts.hold),
    so the request and its return, made inside a savepoint, are undone with
    everything else when the work fails before the commit. (On SQLite a SAVEPOINT
    that opens the transaction is committed by its own RELEASE: without the hold,
    the request and the return would stay, without their work item and audit.)"""
    from domain import drafts, filing
    from domain import requests as service_requests

    owner = make_user(app, email="atomic@example.com")
    with sessionmaker_of(app)() as db:
        now = datetime.now(ZoneInfo("UTC"))
        account = open_account(
            db, serial=next(_serials), opened_on=real_today() - timedelta(days=100), periods_until=real_today()
        )
        give(db, now, owner, account)
        draft = drafts.start(db, now, account_id=account.id, user_id=owner, kind="return", subject="x")
        db.commit()
        end = db.scalars(select(FilingPeriod.period_end).where(FilingPeriod.account_id == account.id)).first()
        spec = filing.form_for(account.program_code)
        values = filing.read(spec, {"accommodation_price": "100", "exempt_price": "0"}).values
        rates = filing.rates_for(db, spec, end.replace(day=1))
        worked = filing.compute(spec.program_code, values, rates)

        drafts.hold(db, draft)
        made = service_requests.submit(
            db,
            now,
            account=account,
            user_id=owner,
            kind="return",
            key=draft.token,
            summary="A return",
            data={},
            build=filing.builder(
                account=account,
                form=spec,
                period_end=end,
                amended=False,
                figures=values,
                worked=worked,
                user_id=owner,
                received_on=real_today(),
                amends=None,
            ),
        )
        assert made.created
        db.rollback()  # the worker fails here, before its commit
    with sessionmaker_of(app)() as db:
        assert db.scalars(select(ServiceRequest)).all() == []
        assert db.scalars(select(TaxReturn)).all() == []
        assert db.scalars(select(WorkItem)).all() == []
