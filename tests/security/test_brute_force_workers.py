"""Brute force against a real gunicorn with several workers (issue 8): every
guessable secret (the password at the sign-in and staff sign-in, the
authenticator code, an invitation PIN) keeps its limit when the guesses arrive
all at once, each on its own TCP connection, so the workers share them out.

"Evaluated" below means the secret was really checked and found wrong: the
answer is the wrong-secret message (400) and an audit event says "failure".
A refusal without a check is the too-many-tries answer (429). With a limit of
five, however many guesses arrive at the same moment, at most five are
evaluated, and the right secret is refused afterwards.

The workers share nothing but the database: the limits are counted there
(domain.throttle), and a check takes the key's lock until its failure is
recorded, so no worker can read "4 of 5" while another is still checking."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import func, select

from app import create_app
from bench.server import BENCH_SECRET, _cookie_header, _cookies, portal_server, request
from domain import enrolment, throttle
from domain.clock import system_now
from models import AuditEvent, Grant, InvitationPin, OutboxEmail, ThrottleEvent, User
from tests.accounts_factory import open_account, sessionmaker_of
from tests.conftest import PASSWORD, empty_database, make_user

WORKERS = 4
LIMIT = 5  # SIGNIN_MAX_FAILURES and enrolment.MAX_TRIES
CLIENT_LIMIT = 30  # SIGNIN_CLIENT_MAX_FAILURES
GUESSES = 40
# Cheap argon2id, as in the rest of the suite. One proxy is trusted, so each test
# comes from its own client address (X-Forwarded-For) and the per-client limit of
# one test never reaches the next.
SERVER_ENV = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "TRUSTED_PROXY_COUNT": "1"}
PIN = "ABCDEFGHJK"
_addresses = itertools.count(1)


class Browser:
    """One browser: its own cookies; every request on a new connection, so the
    workers share the requests out. `client` is the address the proxy reports."""

    def __init__(self, base_url: str, client: str = "198.51.100.1"):
        self.base_url, self.client, self.cookies = base_url, client, {}

    def send(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict, str]:
        headers = {"X-Forwarded-For": self.client}
        if self.cookies:
            headers["Cookie"] = _cookie_header(self.cookies)
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, answer_headers, content = request(self.base_url, method, path, body=body, headers=headers)
        self.cookies.update(_cookies(answer_headers))
        return status, answer_headers, content.decode("utf-8", "replace")

    def token(self, path: str) -> str:
        status, _, page = self.send("GET", path)
        assert status == 200, (path, status)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def sign_in(self, email: str, password: str = PASSWORD) -> tuple[int, str]:
        token = self.token("/auth/sign-in")
        status, headers, _ = self.send(
            "POST", "/auth/sign-in", {"email": email, "password": password, "next": "", "csrf_token": token}
        )
        return status, headers.get("location", "")


def at_once(calls) -> list:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as error:  # a dropped connection is a result too, and fails the test below
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def statuses(results) -> dict:
    found: dict = {}
    for result in results:
        key = result[0] if isinstance(result, tuple) else repr(result)
        found[key] = found.get(key, 0) + 1
    return found


def shared_database(db_backend: str, request, folder) -> str:
    """A clean database for one module's server (the server keeps the real clock,
    so what is set up for it uses the real clock too): a copy of the migrated SQLite
    template, or the session's PostgreSQL database emptied."""
    return empty_database(db_backend, request, folder)


@dataclass
class Served:
    url: str  # the server's base URL
    app: object  # an app on the same database, to set up people and read the outcome
    log: Path

    def count(self, model, *where) -> int:
        with sessionmaker_of(self.app)() as db:
            return db.scalar(select(func.count()).select_from(model).where(*where))

    def audits(self, event: str, outcome: str, *where) -> int:
        return self.count(AuditEvent, AuditEvent.event == event, AuditEvent.outcome == outcome, *where)

    def throttled(self, scope: str, value: str) -> int:
        """Failures recorded for an email or client address (keyed as the server keys them)."""
        return self.count(
            ThrottleEvent, ThrottleEvent.scope == scope, ThrottleEvent.key_hash == throttle.key_for(BENCH_SECRET, value)
        )


@contextlib.contextmanager
def serving(db_backend: str, request, folder: Path, *, workers: int, threads: int, extra_env: dict):
    """gunicorn on a clean database of the backend, and an app beside it; yields a Served."""
    database_url = shared_database(db_backend, request, folder)
    # The server's own secret: PINs made here are found by an HMAC under it.
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": BENCH_SECRET,
            "DATABASE_URL": database_url,
            "OUTBOX_THREAD": False,
            "SERVICE_HOURS": "always",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
        }
    )
    log = folder / "gunicorn.log"
    try:
        with portal_server(database_url, workers=workers, threads=threads, extra_env=extra_env, log_path=log) as url:
            yield Served(url, app, log)
    finally:
        app.extensions["portal.engine"].dispose()
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def served(db_backend, request, tmp_path_factory):
    """gunicorn with four sync workers of one thread, started once per module and backend
    (starting four workers costs seconds); each test uses its own people and accounts."""
    with serving(
        db_backend, request, tmp_path_factory.mktemp("brute-force"), workers=WORKERS, threads=1, extra_env=SERVER_ENV
    ) as server:
        yield server


@pytest.fixture
def client_address() -> str:
    """This test's own client address."""
    return f"198.51.100.{next(_addresses)}"


@pytest.fixture
def browser(served, client_address):
    """`browser()`: a new browser from this test's client address."""
    return lambda: Browser(served.url, client_address)


def _sign_in_form(path: str, email: str, password: str, token: str) -> dict:
    form = {"email": email, "password": password, "csrf_token": token}
    form.update({"code": "123456"} if path.startswith("/staff") else {"next": ""})
    return form


def _user_id(served: Served, email: str) -> int:
    with sessionmaker_of(served.app)() as db:
        return db.scalar(select(User.id).where(User.email == email))


@pytest.mark.parametrize("path", ["/auth/sign-in", "/staff/sign-in"])
def test_forty_wrong_passwords_at_once_are_checked_at_most_five_times(served, browser, path):
    """ASVS 5.0 6.3.1, 2.3.2, 15.4.2: forty wrong passwords for one email, sent at the same
    moment on forty connections spread over four workers: exactly five are checked
    (400, audited as failures), the other 35 are refused unchecked (429); then the
    right password is refused too. The same at the staff sign-in."""
    email = f"victim-{path.split('/')[1]}@example.com"
    user_id = make_user(served.app, email=email, staff_role="officer" if path.startswith("/staff") else None)
    browsers = [browser() for _ in range(GUESSES)]
    tokens = [b.token(path) for b in browsers]
    results = at_once(
        [
            (lambda b=b, t=t, i=i: b.send("POST", path, _sign_in_form(path, email, f"wrong-guess-{i}", t)))
            for i, (b, t) in enumerate(zip(browsers, tokens, strict=False))
        ]
    )
    answered = statuses(results)
    assert answered == {400: LIMIT, 429: GUESSES - LIMIT}, answered
    assert served.audits("signin.password", "failure", AuditEvent.subject_user_id == user_id) == LIMIT
    assert served.throttled("signin-email", email) == LIMIT

    late = browser()
    status, _, page = late.send("POST", path, _sign_in_form(path, email, PASSWORD, late.token(path)))
    assert status == 429 and "tried too many times" in page
    assert served.audits("signin", "success", AuditEvent.actor_user_id == user_id) == 0


def test_the_per_client_limit_holds_for_many_emails_at_once(served, browser, client_address):
    """ASVS 5.0 6.3.1, 2.4.1: credential stuffing, forty different emails from one
    client at the same moment: exactly the client's limit (30) are checked, the
    rest refused unchecked."""
    emails = [f"stuffed{i}@example.com" for i in range(GUESSES)]
    browsers = [browser() for _ in emails]
    tokens = [b.token("/auth/sign-in") for b in browsers]
    results = at_once(
        [
            (lambda b=b, t=t, e=e: b.send("POST", "/auth/sign-in", _sign_in_form("/auth/sign-in", e, "wrong-guess", t)))
            for b, t, e in zip(browsers, tokens, emails, strict=False)
        ]
    )
    answered = statuses(results)
    assert answered == {400: CLIENT_LIMIT, 429: GUESSES - CLIENT_LIMIT}, answered
    assert served.throttled("signin-client", client_address) == CLIENT_LIMIT


def _wrong_code(secret: str) -> str:
    """A six-digit code that is none of the codes accepted now (one step of drift either way)."""
    totp, now = pyotp.TOTP(secret), system_now()
    accepted = {totp.at(now + timedelta(seconds=30 * offset)) for offset in (-2, -1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1000000, 7919)) if c not in accepted)


def _at_code_step(browser, email: str, how_many: int) -> list[tuple[Browser, str]]:
    """Browsers past the password, at the authenticator-code step, with its CSRF token."""
    ready = []
    for _ in range(how_many):
        one = browser()
        status, location = one.sign_in(email)
        assert status == 303 and location.endswith("/auth/code"), (status, location)
        ready.append((one, one.token("/auth/code")))
    return ready


def test_twenty_wrong_authenticator_codes_at_once_are_checked_at_most_five_times(served, browser):
    """ASVS 5.0 6.3.1, 6.6.3, 15.4.2: twenty sessions past the password send wrong
    authenticator codes at the same moment: five are checked, fifteen refused
    unchecked, and then the right code is refused."""
    email, secret = "two-factor-guessed@example.com", pyotp.random_base32()
    user_id = make_user(served.app, email=email, totp_secret=secret)
    waiting = _at_code_step(browser, email, 21)
    last = waiting.pop()
    wrong = _wrong_code(secret)
    results = at_once(
        [(lambda b=b, t=t: b.send("POST", "/auth/code", {"code": wrong, "csrf_token": t})) for b, t in waiting]
    )
    answered = statuses(results)
    assert answered == {400: LIMIT, 429: len(waiting) - LIMIT}, answered
    assert served.audits("signin.second_factor", "failure", AuditEvent.subject_user_id == user_id) == LIMIT

    one, token = last
    status, _, page = one.send("POST", "/auth/code", {"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert status == 429 and "too many wrong codes" in page
    assert served.audits("signin", "success", AuditEvent.actor_user_id == user_id) == 0


def test_one_authenticator_code_sent_from_ten_sessions_at_once_signs_in_once(served, browser):
    """ASVS 5.0 6.5.1, 15.4.2: the same right code from ten sessions at the same moment
    (someone who watched it typed): one sign-in, the nine others refused (a code is
    accepted once, and the refusals count towards the limit)."""
    email, secret = "two-factor-replayed@example.com", pyotp.random_base32()
    user_id = make_user(served.app, email=email, totp_secret=secret)
    waiting = _at_code_step(browser, email, 10)
    code = pyotp.TOTP(secret).now()
    results = at_once(
        [(lambda b=b, t=t: b.send("POST", "/auth/code", {"code": code, "csrf_token": t})) for b, t in waiting]
    )
    answered = statuses(results)
    # The nine others are wrong codes now: checked (400) until the limit, then refused unchecked (429).
    assert answered.get(303) == 1 and set(answered) <= {303, 400, 429}, answered
    assert answered.get(400, 0) <= LIMIT, answered
    assert served.audits("signin", "success", AuditEvent.actor_user_id == user_id) == 1


_serials = itertools.count(71)


@pytest.fixture
def invited(served):
    """An account with an owner PIN from an invitation letter, and nine people (signed
    in, each with the enrolment form's CSRF token) who might try it."""
    serial = next(_serials)
    emails = [f"guess{serial}-{i}@example.com" for i in range(9)]
    for email in emails:
        make_user(served.app, email=email, name="Guessing Person")
    enrolment.configure(BENCH_SECRET)  # as the server does (another test's app may have run here since)
    with sessionmaker_of(served.app)() as db:
        account = open_account(db, serial=serial, legal_name="Lakeside Lodge Ltd.", opened_on=date(2026, 1, 1))
        enrolment.issue_pin(db, system_now(), account, pin=PIN)
        db.commit()
        return {"number": account.number, "account_id": account.id, "emails": emails}


def _people(browser, emails) -> list[tuple[Browser, str]]:
    ready = []
    for email in emails:
        one = browser()
        assert one.sign_in(email)[0] == 303
        ready.append((one, one.token("/enrol/")))
    return ready


def _enrol(one: Browser, token: str, number: str, pin: str):
    return one.send("POST", "/enrol/", {"number": number, "pin_code": pin, "csrf_token": token})


def _wrong_pins(n: int) -> list[str]:
    return [f"WRNG{i:06d}".replace("0", "2").replace("1", "3") for i in range(n)]


def _pin_row(served: Served, account_id: int) -> InvitationPin:
    with sessionmaker_of(served.app)() as db:
        row = db.scalar(select(InvitationPin).where(InvitationPin.account_id == account_id))
        db.expunge(row)
        return row


def test_twenty_wrong_pins_at_once_from_one_person_are_checked_at_most_five_times(served, browser, invited):
    """ASVS 5.0 6.3.1, 2.3.2, 15.4.2: one person sends twenty wrong invitation PINs for one
    account number at the same moment: five are checked, fifteen refused unchecked, the
    person's count holds exactly the five, and the person is held back (even with the right
    PIN) while the PIN itself stays usable by its holder (issue 17, abuse case 3)."""
    [(one, token)] = _people(browser, invited["emails"][:1])
    counted_before = served.count(ThrottleEvent, ThrottleEvent.scope == "enrol")
    results = at_once([(lambda p=p: _enrol(one, token, invited["number"], p)) for p in _wrong_pins(20)])
    answered = statuses(results)
    assert answered == {400: LIMIT, 429: 20 - LIMIT}, answered
    assert served.count(ThrottleEvent, ThrottleEvent.scope == "enrol") - counted_before == LIMIT
    row = _pin_row(served, invited["account_id"])
    assert row.failed_attempts == 0 and row.locked_at is None

    status, _, page = _enrol(one, token, invited["number"], PIN)
    assert status == 429 and "Try again after" in page
    assert served.count(Grant, Grant.account_id == invited["account_id"]) == 0


def test_wrong_pins_from_eight_people_at_once_all_count_and_never_lock_the_pin(served, browser, invited):
    """ASVS 5.0 6.3.1, 2.3.4: eight people each send one wrong PIN for the same account at
    the same moment: every try is counted against the person who made it (no try lost
    between workers), and the PIN is not locked: a ninth person with the right PIN links."""
    people = _people(browser, invited["emails"])
    ninth = people.pop()
    counted_before = {
        scope: served.count(ThrottleEvent, ThrottleEvent.scope == scope) for scope in ("enrol", "enrol-numbers")
    }
    results = at_once(
        [
            (lambda b=b, t=t, p=p: _enrol(b, t, invited["number"], p))
            for (b, t), p in zip(people, _wrong_pins(8), strict=False)
        ]
    )
    assert statuses(results) == {400: 8}
    for scope, before in counted_before.items():
        assert served.count(ThrottleEvent, ThrottleEvent.scope == scope) - before == 8, scope
    row = _pin_row(served, invited["account_id"])
    assert row.failed_attempts == 0 and row.locked_at is None

    status, _, _page = _enrol(*ninth, invited["number"], PIN)
    assert status == 303
    assert served.count(Grant, Grant.account_id == invited["account_id"]) == 1


def test_the_right_pin_sent_by_eight_people_at_once_links_one_of_them(served, browser, invited):
    """ASVS 5.0 6.4.1, 2.3.4: an invitation PIN works once: eight people send the
    right PIN at the same moment; one gets the account, the seven others are told
    it does not match, and there is exactly one grant."""
    people = _people(browser, invited["emails"][:8])
    results = at_once([(lambda b=b, t=t: _enrol(b, t, invited["number"], PIN)) for b, t in people])
    assert statuses(results) == {303: 1, 400: 7}
    assert served.count(Grant, Grant.account_id == invited["account_id"]) == 1


def test_twenty_reset_requests_at_once_send_at_most_three_emails(served, browser):
    """ASVS 5.0 2.4.1, 6.3.1: twenty password-reset requests for one email at the
    same moment: every answer is the same page, and exactly three emails (the
    hourly limit) are queued."""
    email = "reset-flooded@example.com"
    make_user(served.app, email=email)
    browsers = [browser() for _ in range(20)]
    tokens = [b.token("/auth/forgot-password") for b in browsers]
    results = at_once(
        [
            (lambda b=b, t=t: b.send("POST", "/auth/forgot-password", {"email": email, "csrf_token": t}))
            for b, t in zip(browsers, tokens, strict=False)
        ]
    )
    assert statuses(results) == {303: 20}
    assert served.count(OutboxEmail, OutboxEmail.to_address == email) == 3
    assert served.throttled("email-to", f"email-to:{email}") == 3
