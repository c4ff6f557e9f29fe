"""Abuse cases (issue 17, docs/security.md "Abuse cases"): a rule turned against the
person it protects, each written as the attacker acts."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from bench.server import portal_server
from bench.server import request as send
from domain import enrolment
from models import AuditEvent, AuthSession, Grant, InvitationPin, RecoveryCode, User
from tests.accounts_factory import give, open_account, sessionmaker_of, signed_in
from tests.conftest import PASSWORD, Auth, csrf_from, empty_database, make_user, outbox
from tests.db_snapshot import changes, snapshot
from tests.test_identity import code_now, secret_from, text_of

FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_forwarded_https_headers_are_believed_only_from_a_proxy_the_settings_name(
    db_backend, request, tmp_path, trusted_proxies
):
    """Abuse case 9 (ASVS 5.0 3.4.1, 13.2.x): under gunicorn as `make run` starts it, a
    process on the same host (or a proxy that passes the header through) says
    "X-Forwarded-Proto: https" over plain HTTP. gunicorn believes such headers from
    127.0.0.1 by default, and the portal then sent HSTS for a connection that was not
    secure. They are believed only when TRUSTED_PROXY_COUNT says a proxy stands in front."""
    database_url = empty_database(db_backend, request, tmp_path / "db")
    with portal_server(
        database_url, workers=1, threads=2, extra_env={"TRUSTED_PROXY_COUNT": str(trusted_proxies)}
    ) as base_url:
        status, plain, _ = send(base_url, "GET", "/auth/sign-in")
        assert status == 200 and "strict-transport-security" not in plain
        status, forwarded, _ = send(base_url, "GET", "/auth/sign-in", headers=FORWARDED_HTTPS)
        assert status == 200
        assert ("strict-transport-security" in forwarded) == bool(trusted_proxies), forwarded


@pytest.mark.parametrize("password", [None, "", "not-the-password-at-all-1"])
def test_a_stolen_session_cannot_turn_on_two_step_sign_in_with_the_thiefs_authenticator(
    app, client, auth, clock, password
):
    """Abuse case 4 (ASVS 5.0 6.4.3, 7.5.1): with only the owner's session cookie, the thief
    opens the set-up page, adds its key to their own authenticator and sends a good code.
    Without the owner's password nothing changes: two-step stays off, no recovery codes are
    shown, no email says it is on, and the owner signs in with the password alone as before."""
    user_id = make_user(app)
    auth.sign_in()
    secret = secret_from(text_of(client.get("/profile/two-factor")))
    form = {"code": code_now(secret, clock)} | ({} if password is None else {"password": password})
    response = auth.post("/profile/two-factor", form)
    assert response.status_code == 400
    page = text_of(response)
    assert 'id="recovery-codes"' not in page
    assert "Enter your password" in page or "Your password is not correct" in page
    with sessionmaker_of(app)() as db:
        owner = db.get(User, user_id)
        assert owner.totp_secret is None and owner.totp_enabled_at is None
        assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert [mail.subject for mail in outbox(app)] == []
    # The owner, with the password, can still turn it on (the same key, held in the session).
    clock.advance(seconds=30)
    response = auth.post("/profile/two-factor", {"password": PASSWORD, "code": code_now(secret, clock)})
    assert response.status_code == 200 and "Two-step sign-in is on" in text_of(response)


MANAGER = "manager@example.com"
SECOND = "second.self@example.com"
LIMITED = ("view_financial", "manage_access")


@pytest.fixture
def limited_manager(app, clock):
    """A person who may only view balances and manage access, on an account with an owner
    and a viewer; the manager also has a second sign-in of their own."""
    owner, manager = make_user(app, email="owner@example.com"), make_user(app, email=MANAGER, name="Mo Manager")
    viewer = make_user(app, email=SECOND, name="Mo Manager Again")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=51, legal_name="Tight Ship Ltd.")
        give(db, clock(), owner, account)
        give(db, clock(), manager, account, role="delegate", permissions=LIMITED)
        second = give(db, clock(), viewer, account, role="viewer", permissions=("view_financial",))
        db.commit()
        return {"number": account.number, "account_id": account.id, "second_grant": second.id}


def _manager_posts(app, path: str, data: dict):
    client = signed_in(app, MANAGER)
    token = csrf_from(text_of(client.get("/profile/")))
    return client.post(path, data={**data, "csrf_token": token})


def test_a_manager_cannot_issue_a_pin_carrying_more_than_they_hold(app, limited_manager):
    """Abuse case 5 (ASVS 5.0 8.2.1, 8.1.2): holding only "view" and "manage who can use
    this account", the manager issues a PIN carrying "direct deposit" to a second sign-in
    of their own, to change the bank details through it. Refused beside the field, audited,
    no PIN made; a PIN within the manager's own permissions is still issued."""
    number = limited_manager["number"]
    response = _manager_posts(
        app,
        f"/access/{number}/add",
        {
            "name": "Mo Manager Again",
            "email": SECOND,
            "role": "delegate",
            "permissions": ["view_financial", "direct_deposit"],
        },
    )
    assert response.status_code == 400
    assert "You cannot give: " in text_of(response)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(InvitationPin)) == 0
        refused = db.scalars(select(AuditEvent).where(AuditEvent.event == "access.refused")).all()
        assert len(refused) == 1
    allowed = _manager_posts(
        app,
        f"/access/{number}/add",
        {"name": "Mo Manager Again", "email": SECOND, "role": "viewer", "permissions": ["view_financial"]},
    )
    assert allowed.status_code == 303


def test_a_manager_cannot_raise_anyone_above_what_they_hold(app, limited_manager):
    """Abuse case 5, the same rule on changing a person's access: the manager gives their
    other sign-in "direct deposit". Refused; the grant keeps what it had."""
    number, grant_id = limited_manager["number"], limited_manager["second_grant"]
    response = _manager_posts(
        app,
        f"/access/{number}/people/{grant_id}",
        {"role": "delegate", "permissions": ["view_financial", "direct_deposit"]},
    )
    assert response.status_code == 400 and "You cannot give: " in text_of(response)
    with sessionmaker_of(app)() as db:
        assert db.get(Grant, grant_id).permissions == "view_financial"


REPRESENTATIVE = "rep@firm.example"
STRANGER = "someone.else@example.com"


@pytest.fixture
def named_pins(app, clock):
    """An account with two PINs for named people: a representative's (from an approved
    consent, emailed to the representative) and a delegate's that names an email."""
    for email in (REPRESENTATIVE, STRANGER, "dana@example.com"):
        make_user(app, email=email, name=email.split("@")[0].title())
    owner = make_user(app, email="owner.named@example.com", name="Owen Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Named Pins Ltd.")
        give(db, clock(), owner, account)
        _row, representative_pin = enrolment.issue(
            db,
            clock(),
            account,
            role="representative",
            permissions=["view_financial"],
            invitee_name="Rae Rep",
            invitee_email=REPRESENTATIVE,
        )
        _row, delegate_pin = enrolment.issue(
            db,
            clock(),
            account,
            role="viewer",
            permissions=["view_financial"],
            issued_by_user_id=owner,
            invitee_name="Dana Delegate",
            invitee_email="Dana@Example.com",
        )
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "representative": (representative_pin, REPRESENTATIVE),
            "delegate": (delegate_pin, "dana@example.com"),
        }


def _enrol(app, email: str, number: str, pin: str):
    client = signed_in(app, email)
    token = csrf_from(text_of(client.get("/enrol/")))
    return client.post("/enrol/", data={"number": number, "pin_code": pin, "csrf_token": token})


def _answer(response) -> tuple[int, list[str]]:
    """The status and the words of every message beside a field."""
    errors = re.findall(r'<p class="field-error"[^>]*>(.*?)</p>', text_of(response), re.S)
    return response.status_code, [" ".join(re.sub(r"<[^>]+>", " ", error).split()) for error in errors]


@pytest.mark.parametrize("kind", ["representative", "delegate"])
def test_a_pin_issued_for_a_named_person_refuses_everyone_else(app, named_pins, kind):
    """Abuse case 2 (ASVS 5.0 6.4.1, 8.2.2): the PIN's email says it works "for you alone",
    but anyone signed in who held it (a forwarded email, a shared inbox) was linked. Now
    another person gets exactly the answer a wrong PIN gets, the try is audited, no access
    is given, and the named person can still use the PIN."""
    pin, named = named_pins[kind]
    number = named_pins["number"]
    wrong = _enrol(app, STRANGER, number, "ABCDEFGH" if pin != "ABCDEFGH" else "HGFEDCBA")
    stolen = _enrol(app, STRANGER, number, pin)
    assert _answer(stolen) == _answer(wrong) and stolen.status_code == 400
    assert any("account number" in error for error in _answer(stolen)[1]), _answer(stolen)
    with sessionmaker_of(app)() as db:
        assert (
            db.scalar(select(func.count()).select_from(Grant).where(Grant.account_id == named_pins["account_id"])) == 1
        )  # the owner's only
        reasons = [
            json.loads(event.detail or "{}").get("reason")
            for event in db.scalars(
                select(AuditEvent).where(AuditEvent.event == "enrolment", AuditEvent.outcome == "failure")
            )
        ]
        assert "not-the-named-person" in reasons
    linked = _enrol(app, named, number, pin)
    assert linked.status_code == 303, text_of(linked)


# --- Abuse case 1: a form planted through a timed-out session -------------------------------

ATTACKER_EMAIL = "mallory@attacker.example"
PLANTED = {
    "access": (
        "/access/{number}/add",
        {
            "name": "Mallory Helper",
            "email": ATTACKER_EMAIL,
            "send_email": "y",
            "role": "owner",
            "permissions": ["view_financial", "view_returns", "file", "direct_deposit", "manage_access"],
        },
    ),
    "consent": (
        "/consents/{number}/new",
        {
            "representative_name": "Mallory Helper",
            "representative_email": ATTACKER_EMAIL,
            "firm_name": "Mallory Tax",
            "permissions": ["view_financial", "direct_deposit"],
            "starts_on": "2026-11-23",
            "declaration": "y",
        },
    ),
    "details": (
        "/details/{number}/edit",
        {
            "mailing_line1": "PO Box 666 Mallory",
            "mailing_city": "Calgary",
            "mailing_province": "AB",
            "mailing_postal": "T2P 1J9",
            "contact_email": ATTACKER_EMAIL,
            "contact_name": "Mallory Helper",
        },
    ),
}
MARKERS = ("Mallory", ATTACKER_EMAIL)


@pytest.fixture
def idle_owner(app, clock):
    """An owner who opened the portal and then left it: their session timed out, and
    the dead cookie is still in the browser."""
    make_user(app, email="owner@example.com", name="Olive Owner")
    make_user(app, email="mallory@example.com", name="Mallory Attacker")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=71, legal_name="Idle Owner Ltd.")
        give(db, clock(), db.scalar(select(User.id).where(User.email == "owner@example.com")), account)
        db.commit()
        number = account.number
    client = signed_in(app, "owner@example.com")
    own_token = csrf_from(text_of(client.get(f"/access/{number}/add")))
    clock.advance(minutes=16)
    return {"client": client, "number": number, "own_token": own_token}


def _attackers_token(app) -> str:
    """A well-signed token of the attacker's own session (they have an account too)."""
    attacker = signed_in(app, "mallory@example.com")
    return csrf_from(text_of(attacker.get("/profile/")))


def _nothing_planted_anywhere(app) -> None:
    with sessionmaker_of(app)() as db:
        for data in db.scalars(select(AuthSession.data)):
            assert not any(marker in (data or "") for marker in MARKERS), data


@pytest.mark.parametrize("token", ["missing", "attackers own", "garbled"])
@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_page_on_a_sibling_site_cannot_plant_a_form_in_a_timed_out_session(app, idle_owner, planted, token):
    """Abuse case 1 (ASVS 5.0 3.5.1, 3.5.3): SameSite=Strict does not stop a page on another
    port or a sibling subdomain, which is the same site. It auto-posts "add a person as
    owner, email the PIN to me" (or a consent for the attacker, or new mailing details)
    with the owner's dead session cookie and no token of that session. Before, the form
    was kept and handed back filled in when the owner signed in again; one press sent the
    PIN to the attacker. Now nothing of it is kept or shown."""
    path, fields = PLANTED[planted]
    path = path.format(number=idle_owner["number"])
    client = idle_owner["client"]
    sent = {"missing": None, "attackers own": _attackers_token(app), "garbled": idle_owner["own_token"][:-4] + "AAAA"}[
        token
    ]
    response = client.post(
        path,
        data=fields | ({} if sent is None else {"csrf_token": sent}),
        headers={"Origin": "http://evil.localhost:8080"},
    )
    assert response.status_code == 303 and "/auth/sign-in" in response.headers["Location"]
    _nothing_planted_anywhere(app)
    assert Auth(client, app).sign_in(email="owner@example.com", next_url=path).status_code == 303
    page = text_of(client.get(path))
    assert "We kept" not in page
    assert not any(marker in page for marker in MARKERS), planted
    _nothing_planted_anywhere(app)


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_restored_form_asks_again_for_who_gets_access_and_where_things_go(app, idle_owner, planted):
    """Abuse case 1, its second half: even with the session's own token (the owner really
    typed it, then timed out), fields that grant access, name a representative, or change
    where mail, PINs or money go are never filled in again: the owner chooses them afresh."""
    path, fields = PLANTED[planted]
    path = path.format(number=idle_owner["number"])
    client = idle_owner["client"]
    typed = fields | {"csrf_token": idle_owner["own_token"]}
    if planted == "details":
        typed["contact_phone"] = "780 555 0177"
    elif planted == "consent":
        typed.update(ends_on_day="31", ends_on_month="3", ends_on_year="2027")
    response = client.post(path, data=typed)
    assert response.status_code == 303 and "/auth/sign-in" in response.headers["Location"]
    assert Auth(client, app).sign_in(email="owner@example.com", next_url=path).status_code == 303
    page = text_of(client.get(path))
    assert "We kept" in page and "again" in page
    kept, asked_again = RESTORED[planted]
    assert kept in page
    for pattern in asked_again:
        assert re.search(pattern, page) is None, pattern


# What each restored form shows again, and what it asks for afresh.
RESTORED = {
    "access": (
        'value="Mallory Helper"',
        [
            re.escape(ATTACKER_EMAIL),
            r'value="owner"[^>]*checked',
            r'value="direct_deposit"[^>]*checked',
            r'id="send-email"[^>]*checked',
        ],
    ),
    "consent": ('value="2027"', [re.escape(ATTACKER_EMAIL), "Mallory", r'value="direct_deposit"[^>]*checked']),
    "details": ('value="780 555 0177"', [re.escape(ATTACKER_EMAIL), "PO Box 666", 'value="Calgary"']),
}


# --- Abuse cases 3 and 6: PINs locked by strangers, numbers probed, timing ------------------

HOLDER = "holder@example.com"


@pytest.fixture
def pin_for_holder(app, clock):
    """An account whose invitation letter (the agency's owner PIN) is in its holder's hands,
    with two more outstanding PINs, and a stranger who guesses."""
    make_user(app, email=HOLDER, name="Hana Holder")
    make_user(app, email=STRANGER, name="Sid Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=81, legal_name="Guarded Gate Ltd.")
        pin = enrolment.issue_pin(db, clock(), account, role="owner")
        for _ in range(2):
            enrolment.issue_pin(db, clock(), account, role="viewer")
        db.commit()
        return {"number": account.number, "pin": pin}


def _wrong(pin: str) -> str:
    return "ABCDEFGHJK" if pin != "ABCDEFGHJK" else "KJHGFEDCBA"


def test_a_stranger_guessing_cannot_lock_the_holders_pin(app, pin_for_holder):
    """Abuse case 3 (ASVS 5.0 6.3.1, 6.1.1): a stranger makes five, then twenty, wrong tries
    at the account's number. Before, five wrong tries from anyone locked every outstanding
    PIN of the account, so the holder's correct PIN got 429. Now the stranger is the one
    held back (429, saying when to try again) and the holder's PIN still links them."""
    number, pin = pin_for_holder["number"], pin_for_holder["pin"]
    answers = [_enrol(app, STRANGER, number, _wrong(pin)).status_code for _ in range(6)]
    assert answers == [400] * 5 + [429]
    held_back = _enrol(app, STRANGER, number, pin)  # even the right PIN, from the guesser
    assert held_back.status_code == 429 and "Try again after" in text_of(held_back)
    linked = _enrol(app, HOLDER, number, pin)
    assert linked.status_code == 303, text_of(linked)


def test_one_person_cannot_probe_account_numbers_without_end(app, clock, pin_for_holder):
    """Abuse case 3, the second half (ASVS 5.0 6.3.1): one person tries account after
    account. After ENROL_NUMBERS_PER_DAY distinct numbers in a day, the next new number is
    refused with 429 and when to try again, without looking it up; a day later they may
    try again. The holder, who has tried nothing, is untouched."""
    from domain.accounts import make_number

    cap = app.config["ENROL_NUMBERS_PER_DAY"]
    assert 3 <= cap <= 20
    numbers = [make_number("41", 9000 + serial) for serial in range(cap)]
    for number in numbers:
        assert _enrol(app, STRANGER, number, "ABCDEFGHJK").status_code == 400
    refused = _enrol(app, STRANGER, pin_for_holder["number"], pin_for_holder["pin"])
    assert refused.status_code == 429
    assert "too many account numbers" in text_of(refused) and "Try again after" in text_of(refused)
    # A number already tried today may still be tried (up to its own limit).
    assert _enrol(app, STRANGER, numbers[0], "ABCDEFGHJK").status_code == 400
    assert _enrol(app, HOLDER, pin_for_holder["number"], pin_for_holder["pin"]).status_code == 303
    clock.advance(hours=24, seconds=1)
    assert _enrol(app, STRANGER, make_number("41", 9999), "ABCDEFGHJK").status_code == 400


class _Counting:
    """Counts what one enrolment costs: argon2 verifications and SQL statements. The real
    hasher and database do the work; this only counts."""

    def __init__(self, app, monkeypatch):
        import argon2
        from sqlalchemy import event

        self.hashes, self.statements = 0, 0
        real_verify = argon2.PasswordHasher.verify

        def verify(hasher, *args, **kwargs):
            self.hashes += 1
            return real_verify(hasher, *args, **kwargs)

        monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
        self.engine = app.extensions["portal.engine"]
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, *_args, **_kwargs):
        self.statements += 1

    def of(self, send) -> tuple[int, int]:
        self.hashes = self.statements = 0
        send()
        return self.hashes, self.statements

    def close(self):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._count)


def test_a_wrong_pin_costs_the_same_whatever_the_number_has(app, clock, monkeypatch):
    """Abuse case 6 (ASVS 5.0 6.3.x, 16.x timing): with several outstanding PINs a wrong
    PIN was checked against each hash in turn, so it answered about three times slower
    than an unknown number, telling which numbers exist. Now the PIN is found by a keyed
    HMAC and one hash is verified, always: the same argon2 work and the same SQL
    statements for an unknown number, a number with no PIN, with one and with three."""
    from domain.accounts import make_number

    numbers = {"unknown": make_number("41", 8888)}
    with sessionmaker_of(app)() as db:
        for serial, (label, pins) in enumerate((("no PIN", 0), ("one PIN", 1), ("three PINs", 3)), start=91):
            account = open_account(db, serial=serial, legal_name=f"{label} Ltd.")
            for _ in range(pins):
                enrolment.issue_pin(db, clock(), account, role="viewer")
            numbers[label] = account.number
        db.commit()
    people = {label: f"prober{index}@example.com" for index, label in enumerate(numbers)}
    clients = {}
    for label, email in people.items():
        make_user(app, email=email, name="Pat Prober")
        clients[label] = signed_in(app, email)
    tokens = {label: csrf_from(text_of(client.get("/enrol/"))) for label, client in clients.items()}
    counter = _Counting(app, monkeypatch)
    try:
        costs = {
            label: counter.of(
                lambda label=label: clients[label].post(
                    "/enrol/", data={"number": numbers[label], "pin_code": "ABCDEFGHJK", "csrf_token": tokens[label]}
                )
            )
            for label in numbers
        }
    finally:
        counter.close()
    assert len(set(costs.values())) == 1, costs
    assert costs["three PINs"][0] == 1, costs  # one argon2 verification


# --- Abuse case 8: anyone could lock anyone out of password sign-in -------------------------


def _guess_from_many_addresses(app, email: str, path: str = "/auth/sign-in", tries: int = 8) -> list[int]:
    """Wrong passwords for `email`, each from another client address, as a botnet sends them."""
    answers = []
    for index in range(tries):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"203.0.113.{index + 1}"
        token = csrf_from(text_of(guesser.get(path)))
        data = {"email": email, "password": f"not-the-password-{index}", "csrf_token": token}
        if path.startswith("/staff"):
            data["code"] = "000000"
        answers.append(guesser.post(path, data=data).status_code)
    return answers


def test_guessing_a_persons_password_does_not_lock_them_out_of_their_own_browser(app, client, auth):
    """Abuse case 8 (ASVS 5.0 6.3.1, 6.1.1; OWASP device cookies): the person has signed in
    on this browser before. Someone then sends wrong passwords for their email from many
    addresses, which used to lock them out of password sign-in for the window. Their own
    browser keeps its own allowance and signs in; a browser that has never signed in as
    them is still held back, so the limit on guessing is as strong as before."""
    make_user(app, email="owner@example.com", name="Olive Owner")
    assert auth.sign_in(email="owner@example.com").status_code == 303
    assert auth.sign_out().status_code == 303
    answers = _guess_from_many_addresses(app, "owner@example.com")
    assert answers[:5] == [400] * 5 and set(answers[5:]) == {429}, answers
    assert auth.sign_in(email="owner@example.com").status_code == 303  # their own browser
    stranger_browser = Auth(app.test_client(), app)
    assert stranger_browser.sign_in(email="owner@example.com").status_code == 429  # with the right password


def test_a_browsers_own_allowance_is_limited_too(app, client, auth):
    """Abuse case 8, the other side: a browser trusted for a person gets five wrong tries of
    its own, then it too is held back, the right password included."""
    make_user(app, email="owner@example.com", name="Olive Owner")
    assert auth.sign_in(email="owner@example.com").status_code == 303
    assert auth.sign_out().status_code == 303
    answers = [auth.sign_in(email="owner@example.com", password=f"wrong-{index}").status_code for index in range(6)]
    assert answers == [400] * 5 + [429], answers
    assert auth.sign_in(email="owner@example.com").status_code == 429


def test_guessing_a_staff_members_password_does_not_lock_them_out(app, clock, staff_member):
    """Abuse case 8 for staff: the officer signed in on their browser; wrong passwords from
    many addresses lock only browsers that have never signed in as them."""
    officer = staff_member("officer")
    officer.client.post("/auth/sign-out", data={"csrf_token": csrf_from(text_of(officer.client.get("/staff/")))})
    answers = _guess_from_many_addresses(app, officer.email, path="/staff/sign-in")
    assert set(answers[5:]) == {429}, answers
    clock.advance(seconds=30)
    token = csrf_from(text_of(officer.client.get("/staff/sign-in")))
    response = officer.client.post(
        "/staff/sign-in",
        data={
            "email": officer.email,
            "password": PASSWORD,
            "code": code_now(officer.secret, clock),
            "csrf_token": token,
        },
    )
    assert response.status_code == 303 and "/staff" in response.headers["Location"], text_of(response)


# --- Abuse case 7: email and hashing without limits ------------------------------------------

NEW_PASSWORD_FOR_ABUSE = "a-long-enough-passphrase-for-abuse-77"


def _register(client, email: str):
    token = csrf_from(text_of(client.get("/auth/register")))
    return client.post(
        "/auth/register",
        data={
            "name": "Rita Register",
            "email": email,
            "password": NEW_PASSWORD_FOR_ABUSE,
            "password_confirm": NEW_PASSWORD_FOR_ABUSE,
            "csrf_token": token,
        },
    )


@pytest.mark.parametrize("known", [True, False])
def test_registering_again_and_again_cannot_fill_someones_inbox(app, known):
    """Abuse case 7 (ASVS 5.0 2.4.1, 6.3.x): twelve registrations with one address within a
    minute, each from another client address, sent twelve "you already have an account"
    emails. Now the address gets EMAILS_PER_ADDRESS_PER_HOUR at most, and every answer is
    the one a new registration gets, whether or not the address has an account."""
    email = "victim@example.com"
    if known:
        make_user(app, email=email, name="Vic Victim")
    answers = []
    for index in range(12):
        sender = app.test_client()
        sender.environ_base["REMOTE_ADDR"] = f"198.51.100.{index + 1}"
        response = _register(sender, email)
        answers.append((response.status_code, response.headers.get("Location")))
    assert set(answers) == {(303, "/auth/check-email")}, answers
    sent = [mail for mail in outbox(app) if mail.to_address == email]
    assert 1 <= len(sent) <= app.config["EMAILS_PER_ADDRESS_PER_HOUR"] == 3, [mail.subject for mail in sent]


def test_one_client_cannot_make_password_hashes_without_end(app, monkeypatch):
    """Abuse case 7, hashing (ASVS 5.0 6.3.x, 15.x resource use): one signed-out client sends
    registration after registration (each a fresh address, each an argon2 hash). After
    CLIENT_REQUESTS_PER_HOUR it is refused with 429 and when to try again, before any hash;
    forgotten-password requests count against the same allowance. Another client is not
    held back."""
    import argon2

    hashes = []
    real_hash = argon2.PasswordHasher.hash
    monkeypatch.setattr(
        argon2.PasswordHasher, "hash", lambda hasher, *a, **k: hashes.append(1) or real_hash(hasher, *a, **k)
    )
    limit = app.config["CLIENT_REQUESTS_PER_HOUR"]
    client = app.test_client()
    answers = [_register(client, f"new{index}@example.com").status_code for index in range(limit + 3)]
    assert answers == [303] * limit + [429] * 3, answers
    assert len(hashes) == limit
    page = text_of(_register(client, "one.more@example.com"))
    assert "Try again after" in page
    token = csrf_from(text_of(client.get("/auth/forgot-password")))
    forgot = client.post("/auth/forgot-password", data={"email": "new1@example.com", "csrf_token": token})
    assert forgot.status_code == 429 and "Try again after" in text_of(forgot)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.55"
    assert _register(elsewhere, "another@example.com").status_code == 303


def test_password_reset_requests_cannot_fill_someones_inbox(app):
    """Abuse case 7, resets: from many client addresses, a reset for one address is sent
    at most EMAILS_PER_ADDRESS_PER_HOUR times; every answer is the same."""
    make_user(app, email="victim@example.com", name="Vic Victim")
    answers = set()
    for index in range(8):
        sender = app.test_client()
        sender.environ_base["REMOTE_ADDR"] = f"198.51.100.{index + 1}"
        token = csrf_from(text_of(sender.get("/auth/forgot-password")))
        response = sender.post("/auth/forgot-password", data={"email": "victim@example.com", "csrf_token": token})
        answers.add((response.status_code, response.headers.get("Location")))
    assert answers == {(303, "/auth/reset-sent")}
    assert len([mail for mail in outbox(app) if mail.to_address == "victim@example.com"]) == 3


def test_a_representative_cannot_send_requests_without_end(app, clock):
    """Abuse case 7, representative requests (ASVS 5.0 2.4.1): each request for a client's
    consent lands in that account's managers' work; one person may send
    CONSENT_REQUESTS_PER_DAY in a day, then 429 with when to try again."""
    from domain.accounts import make_number

    make_user(app, email=REPRESENTATIVE, name="Rae Rep")
    client = signed_in(app, REPRESENTATIVE)
    limit = app.config["CONSENT_REQUESTS_PER_DAY"]
    answers = []
    for index in range(limit + 1):
        token = csrf_from(text_of(client.get("/consents/ask")))
        answers.append(
            client.post(
                "/consents/ask",
                data={"number": make_number("41", 7000 + index), "legal_name": "Some Ltd.", "csrf_token": token},
            )
        )
    assert [answer.status_code for answer in answers[:limit]] == [303] * limit
    assert answers[-1].status_code == 429 and "Try again after" in text_of(answers[-1])


# --- The sweep: every PIN or emailed link issued for a named person works for that person alone


def _link_for(app, clock, kind: str, user_id: int) -> str:
    from domain import people, tokens

    with sessionmaker_of(app)() as db:
        person = db.get(User, user_id)
        if kind == "verify-email":
            token = tokens.make_token(
                app.secret_key, "verify-email", {"uid": person.id, "email": person.email}, clock()
            )
            return f"/auth/verify/{token}"
        token = tokens.make_token(
            app.secret_key, "reset-password", {"uid": person.id, "fp": people.password_fingerprint(person)}, clock()
        )
        return f"/auth/reset-password/{token}"


LINK_FORMS = {
    "verify-email": {},
    "reset-password": {
        "new_password": "an-entirely-new-passphrase-31",
        "new_password_confirm": "an-entirely-new-passphrase-31",
    },
}


@pytest.mark.parametrize("kind", ["verify-email", "reset-password", "staff set-up"])
def test_every_emailed_link_refuses_someone_else_signed_in(app, clock, kind):
    """The sweep for emailed links (ASVS 5.0 6.4.1, 7.2.x): a link emailed to one person (a
    verification link, a password reset, a staff member's set-up link) opened by someone
    else who is signed in (a forwarded email, a shared computer) is refused and changes
    nothing; the person it was sent to can still use it."""
    holder = make_user(
        app,
        email="holder.link@example.com",
        name="Hal Holder",
        verified=kind != "verify-email",
        staff_role="officer" if kind == "staff set-up" else None,
    )
    make_user(app, email="someone.else.link@example.com", name="Sam Else")
    path = _link_for(app, clock, "reset-password" if kind == "staff set-up" else kind, holder)
    form = LINK_FORMS["reset-password" if kind == "staff set-up" else kind]
    other = signed_in(app, "someone.else.link@example.com")
    page = other.get(path)
    assert page.status_code == 400 and "This link is for someone else" in text_of(page)
    refused = other.post(path, data={**form, "csrf_token": csrf_from(text_of(other.get("/profile/")))})
    assert refused.status_code == 400
    with sessionmaker_of(app)() as db:
        person = db.get(User, holder)
        assert (person.email_verified_at is None) == (kind == "verify-email")
        from domain import passwords

        assert passwords.verify_password(person.password_hash, PASSWORD)
    owner = app.test_client()
    token = csrf_from(text_of(owner.get(path)))
    assert owner.post(path, data={**form, "csrf_token": token}).status_code == 303


# --- The sweep: no limit lets one person's failures refuse another person's correct secret ---


@pytest.mark.parametrize(
    "secret", ["password at sign-in", "password to change a setting", "staff password", "invitation PIN"]
)
def test_no_limit_lets_a_guesser_refuse_the_holders_correct_secret(app, clock, staff_member, secret):
    """The sweep (ASVS 5.0 6.3.1): for every secret the portal limits guesses at, a guesser
    from elsewhere uses up every allowance they can reach; the holder, from their own
    browser, then gives the correct secret and is let through."""
    if secret == "invitation PIN":
        make_user(app, email=HOLDER, name="Hana Holder")
        make_user(app, email=STRANGER, name="Sid Stranger")
        with sessionmaker_of(app)() as db:
            account = open_account(db, serial=87, legal_name="Sweep Ltd.")
            pin = enrolment.issue_pin(db, clock(), account, role="owner")
            db.commit()
            number = account.number
        for _ in range(8):
            _enrol(app, STRANGER, number, _wrong(pin))
        assert _enrol(app, HOLDER, number, pin).status_code == 303
        return
    if secret == "staff password":
        officer = staff_member("officer")
        _guess_from_many_addresses(app, officer.email, path="/staff/sign-in", tries=10)
        _guess_from_many_addresses(app, officer.email, tries=10)
        clock.advance(seconds=30)
        officer.client.post("/auth/sign-out", data={"csrf_token": csrf_from(text_of(officer.client.get("/staff/")))})
        token = csrf_from(text_of(officer.client.get("/staff/sign-in")))
        response = officer.client.post(
            "/staff/sign-in",
            data={
                "email": officer.email,
                "password": PASSWORD,
                "code": code_now(officer.secret, clock),
                "csrf_token": token,
            },
        )
        assert response.status_code == 303, text_of(response)
        return
    make_user(app, email="owner@example.com", name="Olive Owner")
    holder = signed_in(app, "owner@example.com")
    if secret == "password at sign-in":
        holder.post("/auth/sign-out", data={"csrf_token": csrf_from(text_of(holder.get("/profile/")))})
    _guess_from_many_addresses(app, "owner@example.com", tries=10)
    if secret == "password at sign-in":
        assert Auth(holder, app).sign_in(email="owner@example.com").status_code == 303
    else:
        token = csrf_from(text_of(holder.get("/profile/sessions")))
        response = holder.post("/profile/sessions/sign-out-others", data={"password": PASSWORD, "csrf_token": token})
        assert response.status_code == 303, text_of(response)


# --- The sweep: every change to how a person signs in needs the current password -------------

# Every state-changing route of the profile, and whether it changes how the person signs in.
SIGN_IN_CHANGES = {
    "profile.password": "current_password",
    "profile.two_factor": "password",
    "profile.two_factor_off": "password",
    "profile.recovery_codes": "password",
    "profile.sign_out_others": "password",
}
NOT_SIGN_IN_CHANGES = {"profile.details": "name and phone only"}


def _sign_in_state(app, user_id: int) -> tuple:
    with sessionmaker_of(app)() as db:
        person = db.get(User, user_id)
        codes = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user_id)).all()
        live = db.scalar(
            select(func.count())
            .select_from(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
        )
        return person.password_hash, person.totp_secret, person.totp_enabled_at, sorted(codes), live


@pytest.mark.parametrize("two_step", [False, True])
def test_every_change_to_how_a_person_signs_in_needs_the_current_password(app, clock, two_step):
    """The sweep (ASVS 5.0 6.4.3, 7.5.1): every profile route that changes how the person
    signs in (password, two-step on, off, new recovery codes, other sessions) refuses a
    request from the live session, CSRF token and all, that lacks the current password
    or carries a wrong one, and changes nothing; the list is the URL map's, so a new
    route must be classed here first."""
    posting = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("profile.") and "POST" in rule.methods
    }
    assert posting == set(SIGN_IN_CHANGES) | set(NOT_SIGN_IN_CHANGES), posting
    import pyotp

    secret = pyotp.random_base32() if two_step else None
    user_id = make_user(app, email="owner@example.com", name="Olive Owner", totp_secret=secret)
    client = app.test_client()
    auth = Auth(client, app)
    assert auth.sign_in(email="owner@example.com", code=code_now(secret, clock) if secret else None).status_code == 303
    signed_in(app, "owner@example.com") if not secret else None  # another session to end
    before = _sign_in_state(app, user_id)
    with app.test_request_context():
        from flask import url_for

        paths = {endpoint: url_for(endpoint) for endpoint in SIGN_IN_CHANGES}
    refused = []
    for endpoint, field in SIGN_IN_CHANGES.items():
        for password in (None, "", "not-the-password-at-all-9"):
            clock.advance(seconds=30)
            form = {
                "new_password": "a-fresh-passphrase-for-this-42",
                "new_password_confirm": "a-fresh-passphrase-for-this-42",
                "code": code_now(secret, clock) if secret else "123456",
            }
            if password is not None:
                form[field] = password
            token = csrf_from(text_of(client.get("/profile/two-factor")))
            response = client.post(paths[endpoint], data={**form, "csrf_token": token})
            already_on = endpoint == "profile.two_factor" and two_step  # the page only shows it is on
            if response.status_code not in (400, 429) and not (already_on and response.status_code == 200):
                refused.append((endpoint, password, response.status_code))
    assert refused == []
    assert _sign_in_state(app, user_id) == before


# --- The sweep: no grant exceeds its granter's --------------------------------------------


def test_no_grant_a_manager_makes_exceeds_what_they_hold(app, clock, limited_manager):
    """The sweep for abuse case 5 (ASVS 5.0 8.2.1, 8.1.2), through the web: a manager holding
    only "view balances" and "manage who can use this account" cannot reach "direct deposit"
    by any door: reissuing a PIN the owner made with it, signing a consent that carries it,
    or accepting a representative's request with it. Each is refused and changes nothing;
    inviting and changing a person's access are the two tests above."""
    number, account_id = limited_manager["number"], limited_manager["account_id"]
    with sessionmaker_of(app)() as db:
        from models import Account, Consent

        account = db.get(Account, account_id)
        owner_id = db.scalar(select(User.id).where(User.email == "owner@example.com"))
        rich_pin, _plain = enrolment.issue(
            db,
            clock(),
            account,
            role="delegate",
            permissions=["view_financial", "direct_deposit"],
            issued_by_user_id=owner_id,
            invitee_name="Rich Pin",
        )
        asked = Consent(
            account_id=account_id,
            representative_name="Asa Asker",
            representative_email="asa@example.com",
            permissions="",
            starts_on=clock().date(),
            status="requested",
            requested_at=clock(),
        )
        db.add(asked)
        db.commit()
        rich_pin_id, asked_id = rich_pin.id, asked.id
    before = snapshot(app)
    attempts = {
        "reissue": (f"/access/{number}/pins/{rich_pin_id}/reissue", {}),
        "consent": (
            f"/consents/{number}/new",
            {
                "representative_name": "Rae Rep",
                "representative_email": "rae@example.com",
                "permissions": ["view_financial", "direct_deposit"],
                "starts_on": "2026-11-23",
                "declaration": "y",
            },
        ),
        "accept": (
            f"/consents/{number}/{asked_id}/accept",
            {"permissions": ["view_financial", "direct_deposit"], "starts_on": "2026-11-23", "declaration": "y"},
        ),
    }
    for name, (path, form) in attempts.items():
        response = _manager_posts(app, path, form)
        assert response.status_code in (303, 400), (name, response.status_code)
        if response.status_code == 303:  # a one-button form answers with the page and its message
            assert "/pins/" not in response.headers["Location"], name
    changed = changes(before, snapshot(app))
    changed.pop("auth_sessions", None)
    assert set(changed) <= {"throttle_events"}, changed
    with sessionmaker_of(app)() as db:
        refused = db.scalars(select(AuditEvent).where(AuditEvent.event == "access.refused")).all()
        assert len(refused) == 3, [event.detail for event in refused]


def test_the_person_hears_of_every_factor_added_replaced_or_removed(app, clock):
    """ASVS 5.0 6.3.7: new recovery codes (a new way in) and two-step turned off each send
    the person an email, as turning it on does (the test above)."""
    import pyotp

    secret = pyotp.random_base32()
    make_user(app, email="owner@example.com", name="Olive Owner", totp_secret=secret)
    client = app.test_client()
    assert Auth(client, app).sign_in(email="owner@example.com", code=code_now(secret, clock)).status_code == 303
    for path in ("/profile/two-factor/recovery-codes", "/profile/two-factor/turn-off"):
        clock.advance(seconds=30)
        token = csrf_from(text_of(client.get("/profile/two-factor")))
        response = client.post(path, data={"password": PASSWORD, "code": code_now(secret, clock), "csrf_token": token})
        assert response.status_code in (200, 303), (path, response.status_code)
    assert [mail.subject for mail in outbox(app)] == ["You have new recovery codes", "Two-step sign-in is off"]
