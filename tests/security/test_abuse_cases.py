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
from tests.test_identity import code_now, secret_from, text_of

FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_forwarded_https_headers_are_believed_only_from_a_proxy_the_settings_name(db_backend, request, tmp_path,
                                                                                    trusted_proxies):
    """Abuse case 9 (ASVS 5.0 3.4.1, 13.2.x): under gunicorn as `make run` starts it, a
    process on the same host (or a proxy that passes the header through) says
    "X-Forwarded-Proto: https" over plain HTTP. gunicorn believes such headers from
    127.0.0.1 by default, and the portal then sent HSTS for a connection that was not
    secure. They are believed only when TRUSTED_PROXY_COUNT says a proxy stands in front."""
    database_url = empty_database(db_backend, request, tmp_path / "db")
    with portal_server(database_url, workers=1, threads=2,
                       extra_env={"TRUSTED_PROXY_COUNT": str(trusted_proxies)}) as base_url:
        status, plain, _ = send(base_url, "GET", "/auth/sign-in")
        assert status == 200 and "strict-transport-security" not in plain
        status, forwarded, _ = send(base_url, "GET", "/auth/sign-in", headers=FORWARDED_HTTPS)
        assert status == 200
        assert ("strict-transport-security" in forwarded) == bool(trusted_proxies), forwarded


@pytest.mark.parametrize("password", [None, "", "not-the-password-at-all-1"])
def test_a_stolen_session_cannot_turn_on_two_step_sign_in_with_the_thiefs_authenticator(app, client, auth, clock,
                                                                                       password):
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
    response = _manager_posts(app, f"/access/{number}/add", {
        "name": "Mo Manager Again", "email": SECOND, "role": "delegate",
        "permissions": ["view_financial", "direct_deposit"]})
    assert response.status_code == 400
    assert "You cannot give: " in text_of(response)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(InvitationPin)) == 0
        refused = db.scalars(select(AuditEvent).where(AuditEvent.event == "access.refused")).all()
        assert len(refused) == 1
    allowed = _manager_posts(app, f"/access/{number}/add", {
        "name": "Mo Manager Again", "email": SECOND, "role": "viewer", "permissions": ["view_financial"]})
    assert allowed.status_code == 303


def test_a_manager_cannot_raise_anyone_above_what_they_hold(app, limited_manager):
    """Abuse case 5, the same rule on changing a person's access: the manager gives their
    other sign-in "direct deposit". Refused; the grant keeps what it had."""
    number, grant_id = limited_manager["number"], limited_manager["second_grant"]
    response = _manager_posts(app, f"/access/{number}/people/{grant_id}", {
        "role": "delegate", "permissions": ["view_financial", "direct_deposit"]})
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
        _row, representative_pin = enrolment.issue(db, clock(), account, role="representative",
                                                   permissions=["view_financial"], invitee_name="Rae Rep",
                                                   invitee_email=REPRESENTATIVE)
        _row, delegate_pin = enrolment.issue(db, clock(), account, role="viewer", permissions=["view_financial"],
                                             issued_by_user_id=owner, invitee_name="Dana Delegate",
                                             invitee_email="Dana@Example.com")
        db.commit()
        return {"number": account.number, "account_id": account.id,
                "representative": (representative_pin, REPRESENTATIVE), "delegate": (delegate_pin, "dana@example.com")}


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
        assert db.scalar(select(func.count()).select_from(Grant)
                         .where(Grant.account_id == named_pins["account_id"])) == 1  # the owner's only
        reasons = [json.loads(event.detail or "{}").get("reason") for event in db.scalars(
            select(AuditEvent).where(AuditEvent.event == "enrolment", AuditEvent.outcome == "failure"))]
        assert "not-the-named-person" in reasons
    linked = _enrol(app, named, number, pin)
    assert linked.status_code == 303, text_of(linked)


# --- Abuse case 1: a form planted through a timed-out session -------------------------------

ATTACKER_EMAIL = "mallory@attacker.example"
PLANTED = {
    "access": ("/access/{number}/add", {"name": "Mallory Helper", "email": ATTACKER_EMAIL, "send_email": "y",
                                        "role": "owner", "permissions": ["view_financial", "view_returns", "file",
                                                                         "direct_deposit", "manage_access"]}),
    "consent": ("/consents/{number}/new", {"representative_name": "Mallory Helper",
                                           "representative_email": ATTACKER_EMAIL, "firm_name": "Mallory Tax",
                                           "permissions": ["view_financial", "direct_deposit"],
                                           "starts_on": "2026-11-23", "declaration": "y"}),
    "details": ("/details/{number}/edit", {"mailing_line1": "PO Box 666 Mallory", "mailing_city": "Calgary",
                                           "mailing_province": "AB", "mailing_postal": "T2P 1J9",
                                           "contact_email": ATTACKER_EMAIL, "contact_name": "Mallory Helper"}),
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
    sent = {"missing": None, "attackers own": _attackers_token(app),
            "garbled": idle_owner["own_token"][:-4] + "AAAA"}[token]
    response = client.post(path, data=fields | ({} if sent is None else {"csrf_token": sent}),
                           headers={"Origin": "http://evil.localhost:8080"})
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
        typed["ends_on"] = "2027-03-31"
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
    "access": ('value="Mallory Helper"', [re.escape(ATTACKER_EMAIL), r'value="owner"[^>]*checked',
                                          r'value="direct_deposit"[^>]*checked', r'id="send-email"[^>]*checked']),
    "consent": ('value="2027-03-31"', [re.escape(ATTACKER_EMAIL), "Mallory", r'value="direct_deposit"[^>]*checked']),
    "details": ('value="780 555 0177"', [re.escape(ATTACKER_EMAIL), "PO Box 666", 'value="Calgary"']),
}
