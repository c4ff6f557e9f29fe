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
from models import AuditEvent, Grant, InvitationPin, RecoveryCode, User
from tests.accounts_factory import give, open_account, sessionmaker_of, signed_in
from tests.conftest import PASSWORD, csrf_from, empty_database, make_user, outbox
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
