"""Passwords: the NIST SP 800-63B rules, the forgotten-password reset and the
signed-in change, each with what it does to sessions and the audit log."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from domain import passwords
from models import AuditEvent, AuthSession, ThrottleEvent, UsedToken, User
from tests.conftest import PASSWORD, Auth, link_in, make_user, outbox

NEW_PASSWORD = "violet-harbour-lantern-quartz"
HUNDRED = "a slow river winds past seven quiet hills where herons wait for morning light and the ferry bell ran"


def text_of(response) -> str:
    return response.get_data(as_text=True)


def redirected_to(response, path: str) -> bool:
    return response.status_code == 303 and response.headers["Location"].split("?")[0] == path


def query(app, statement):
    with app.extensions["portal.sessionmaker"]() as db:
        return list(db.scalars(statement))


def count(app, model, *where) -> int:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def get_user(app, user_id) -> User:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.get(User, user_id)


def event_names(app) -> list[str]:
    return [e.event for e in query(app, select(AuditEvent).order_by(AuditEvent.id))]


def signed_in(client) -> bool:
    return client.get("/profile/").status_code == 200


def register(auth, password, name="Jordan Example", email="new.person@example.com"):
    return auth.post(
        "/auth/register", {"name": name, "email": email, "password": password, "password_confirm": password}
    )


def reset_links(app) -> list[str]:
    return [link_in(m.body_text) for m in outbox(app) if m.subject == "Reset your password"]


def ask_for_reset(auth, email="taxpayer@example.com"):
    return auth.post("/auth/forgot-password", {"email": email})


def choose(auth, link, password, confirm=None):
    return auth.post(link, {"new_password": password, "new_password_confirm": password if confirm is None else confirm})


def change(auth, current, new, confirm=None):
    return auth.post(
        "/profile/password",
        {"current_password": current, "new_password": new, "new_password_confirm": new if confirm is None else confirm},
    )


# --- the rules (NIST SP 800-63B) ----------------------------------------------


@pytest.mark.parametrize(
    "password, second_factor, problem",
    [
        ("fourteen-chars", False, "at least 15 characters"),
        ("seven77", True, "at least 8 characters"),
        ("passwordpassword123", False, "too common"),  # a common password repeated, digits added
        ("password123password123", False, "too common"),
        ("dragondragondragon", False, "too common"),
        ("iloveyou12345678", False, "too common"),
        ("qwertyuiop12345", False, "too common"),
        ("abcdefghijklmnopq", False, "simple sequence"),
        ("aaaaaaaaaaaaaaaaaaaa", False, "repeats too few characters"),
        ("jordan walks the long road home", False, "must not contain your name"),
        ("ExAmPlE-is-my-family-name", False, "must not contain your name"),
        ("the skywalker rides again at dawn", False, "must not contain your name"),
        ("x" * 60 + "yz" * 40, False, "128 characters or fewer"),
    ],
)
def test_password_rules_refuse(password, second_factor, problem):
    found = passwords.password_problem(
        password, name="Jordan Example", email="skywalker@example.com", second_factor=second_factor
    )
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "password, second_factor",
    [
        ("purple elephants dance quietly", False),  # all lower case, no digits or symbols: fine
        (HUNDRED, False),  # well past 64 characters
        ("Vx9!mQ2r", True),  # eight characters are enough with a second factor
        ("correct horse battery staple", False),
    ],
)
def test_password_rules_accept(password, second_factor):
    assert (
        passwords.password_problem(
            password, name="Jordan Example", email="skywalker@example.com", second_factor=second_factor
        )
        is None
    )


def test_hundred_character_phrase_is_what_we_think():
    assert len(HUNDRED) == 100


def test_registration_applies_the_rules(app, auth):
    for password, message in [
        ("short-password", "Enter a password of at least 15 characters"),
        ("passwordpassword123", "This password is too common. Choose one that is harder to guess"),
        ("jordan-rides-the-night-bus", "Your password must not contain your name or email address"),
        ("new.person is my handle", "Your password must not contain your name or email address"),
    ]:
        response = register(auth, password)
        assert response.status_code == 400, password
        html = text_of(response)
        assert (
            f'<p class="field-error" id="password-error"><span class="visually-hidden">Error:</span> {message}</p>'
        ) in html, password
        assert f'<a href="#password">{message}</a>' in html, password
        assert password not in html  # never echoed back
    assert count(app, User) == 0 and outbox(app) == []


def test_registration_accepts_long_and_all_lowercase_passphrases(app, auth):
    for n, password in enumerate([HUNDRED, "purple elephants dance quietly"]):
        email = f"person{n}@example.com"
        response = register(auth, password, email=email)
        assert redirected_to(response, "/auth/check-email"), password
        user = query(app, select(User).where(User.email == email))[0]
        assert passwords.verify_password(user.password_hash, password)
        assert not passwords.verify_password(user.password_hash, password[:-1])


def test_registration_has_no_composition_rules_in_its_hint(app, client):
    html = text_of(client.get("/auth/register"))
    assert "At least 15 characters" in html
    assert not re.search(r"uppercase|upper-case|capital|special character|symbol", html, re.I)


# --- forgotten password --------------------------------------------------------


def test_reset_request_answers_the_same_for_known_and_unknown_email(app, client, auth):
    user_id = make_user(app)
    known = ask_for_reset(auth, "taxpayer@example.com")
    unknown = ask_for_reset(Auth(app.test_client(), app), "nobody@example.com")
    assert (known.status_code, known.headers["Location"]) == (unknown.status_code, unknown.headers["Location"])
    assert known.headers["Location"] == "/auth/reset-sent"
    assert text_of(client.get("/auth/reset-sent")).count("If the address belongs to a sign-in") == 1

    mails = outbox(app)
    assert [(m.to_address, m.subject) for m in mails] == [("taxpayer@example.com", "Reset your password")]
    requested = query(app, select(AuditEvent).where(AuditEvent.event == "password.reset_requested"))
    assert [e.subject_user_id for e in requested] == [user_id]
    # Both requests count against the limit alike, so the count reveals nothing either.
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "email-to") == 2


def test_reset_link_get_changes_nothing_and_works_once(app, client, auth):
    user_id = make_user(app)
    ask_for_reset(auth)
    (link,) = reset_links(app)
    assert link.startswith("/auth/reset-password/")

    page = client.get(link)
    assert page.status_code == 200 and "Choose a new password" in text_of(page)
    assert count(app, UsedToken) == 0

    response = choose(auth, link, NEW_PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/sign-in?reason=password-reset"
    user = get_user(app, user_id)
    assert passwords.verify_password(user.password_hash, NEW_PASSWORD)
    assert not passwords.verify_password(user.password_hash, PASSWORD)
    assert count(app, UsedToken, UsedToken.purpose == "reset-password") == 1
    assert "password.reset" in event_names(app)
    assert outbox(app)[-1].subject == "Your password has been changed"

    again = client.get(link)
    assert again.status_code == 400 and "This link has already been used" in text_of(again)
    second_try = client.post(
        link,
        data={
            "new_password": "another-fine-passphrase",
            "new_password_confirm": "another-fine-passphrase",
            "csrf_token": auth.token("/auth/forgot-password"),
        },
    )
    assert second_try.status_code == 400
    assert passwords.verify_password(get_user(app, user_id).password_hash, NEW_PASSWORD)


def test_reset_link_dies_when_the_password_changes_another_way(app, client, auth, clock):
    make_user(app)
    ask_for_reset(auth)
    clock.advance(minutes=1)
    ask_for_reset(auth)
    first, second = reset_links(app)
    assert first != second

    assert choose(auth, second, NEW_PASSWORD).status_code == 303
    stale = client.get(first)
    assert stale.status_code == 400 and "This link has already been used" in text_of(stale)


def test_reset_link_dies_when_the_password_is_changed_signed_in(app, client, auth):
    make_user(app)
    ask_for_reset(Auth(app.test_client(), app))
    (link,) = reset_links(app)
    auth.sign_in()
    assert redirected_to(change(auth, PASSWORD, NEW_PASSWORD), "/profile/")
    assert client.get(link).status_code == 400


def test_reset_link_tampered_or_expired_is_refused(app, client, auth, clock):
    user_id = make_user(app)
    ask_for_reset(auth)
    (link,) = reset_links(app)
    tampered = link[:-3] + ("xyz" if not link.endswith("xyz") else "abc")
    page = client.get(tampered)
    assert page.status_code == 400 and "This link is not valid" in text_of(page)

    clock.advance(seconds=app.config["RESET_LINK_MAX_AGE_SECONDS"] - 60)
    assert client.get(link).status_code == 200  # a minute left: still good
    clock.advance(seconds=61)
    page = client.get(link)
    assert page.status_code == 400 and "This link has expired" in text_of(page)
    response = client.post(
        link,
        data={
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": auth.token("/auth/forgot-password"),
        },
    )
    assert response.status_code == 400
    assert passwords.verify_password(get_user(app, user_id).password_hash, PASSWORD)


def test_reset_ends_every_existing_session(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    assert signed_in(client)
    old_cookie = client.get_cookie("portal_session").value

    other = Auth(app.test_client(), app)
    ask_for_reset(other)
    (link,) = reset_links(app)
    assert choose(other, link, NEW_PASSWORD).status_code == 303

    response = client.get("/profile/")
    assert redirected_to(response, "/auth/sign-in")
    assert "reason=ended" in response.headers["Location"]
    fresh = app.test_client()
    fresh.set_cookie("portal_session", old_cookie)
    assert not signed_in(fresh)
    rows = query(app, select(AuthSession).where(AuthSession.user_id == user_id))
    assert rows and all(r.ended_at is not None for r in rows)
    assert "password-changed" in {r.end_reason for r in rows}
    reset = query(app, select(AuditEvent).where(AuditEvent.event == "password.reset"))
    assert [e.detail for e in reset] == ['{"sessions_ended": 1}']


def test_reset_new_password_must_meet_the_rules(app, client, auth):
    user_id = make_user(app)
    ask_for_reset(auth)
    (link,) = reset_links(app)
    for bad, message in [
        ("too-short", "Enter a password of at least 15 characters"),
        ("passwordpassword123", "This password is too common"),
        ("jordan-example-forever", "must not contain your name"),
    ]:
        response = choose(auth, link, bad)
        assert response.status_code == 400, bad
        assert message in text_of(response)
    mismatch = choose(auth, link, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert mismatch.status_code == 400 and "The passwords do not match" in text_of(mismatch)
    assert passwords.verify_password(get_user(app, user_id).password_hash, PASSWORD)
    # A refused attempt does not use up the link.
    assert count(app, UsedToken) == 0
    assert choose(auth, link, NEW_PASSWORD).status_code == 303


def test_reset_with_second_factor_allows_eight_characters(app, auth):
    user_id = make_user(app, totp_secret=pyotp.random_base32())
    ask_for_reset(auth)
    (link,) = reset_links(app)
    assert choose(auth, link, "Vx9!mQ2r").status_code == 303
    assert passwords.verify_password(get_user(app, user_id).password_hash, "Vx9!mQ2r")


def test_reset_requests_are_rate_limited(app, client, auth, clock):
    make_user(app)
    for _ in range(4):
        response = ask_for_reset(auth)
        assert redirected_to(response, "/auth/reset-sent")  # the same answer, limited or not
    assert len(reset_links(app)) == 3
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "email-to") == 3
    clock.advance(minutes=61)
    ask_for_reset(auth)
    assert len(reset_links(app)) == 4


def test_reset_is_not_sent_to_a_disabled_person(app, auth, clock):
    user_id = make_user(app)
    with app.extensions["portal.sessionmaker"]() as db:
        db.get(User, user_id).disabled_at = clock()
        db.commit()
    assert redirected_to(ask_for_reset(auth), "/auth/reset-sent")
    assert reset_links(app) == []


# --- change password (signed in) ---------------------------------------------


def test_change_password_refuses_a_wrong_current_password(app, client, auth):
    user_id = make_user(app)
    anonymous = client.get("/profile/password")
    assert anonymous.headers["Location"] == "/auth/sign-in?next=/profile/password"
    auth.sign_in()
    before = get_user(app, user_id).password_hash
    response = change(auth, "not-my-current-password", NEW_PASSWORD)
    assert response.status_code == 400
    assert "Your current password is not correct" in text_of(response)
    assert "not-my-current-password" not in text_of(response) and NEW_PASSWORD not in text_of(response)
    assert get_user(app, user_id).password_hash == before
    # Counted like a failed sign-in, so a stolen session cannot go on guessing.
    failures = query(app, select(AuditEvent).where(AuditEvent.event == "signin.password"))
    assert [(e.outcome, e.subject_user_id) for e in failures] == [("failure", user_id)]
    assert "password.changed" not in event_names(app)
    assert signed_in(client)


def test_change_password_locks_after_five_wrong_current_passwords(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    for _ in range(5):
        assert change(auth, "not-my-current-password", NEW_PASSWORD).status_code == 400
    locked = change(auth, PASSWORD, NEW_PASSWORD)
    assert locked.status_code == 429
    assert "You have tried too many times" in text_of(locked)
    assert "password.changed" not in event_names(app)
    assert get_user(app, user_id).password_hash and signed_in(client)


def test_change_password_ends_other_sessions_keeps_this_one_and_rotates_it(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    other = Auth(app.test_client(), app)
    other.sign_in()
    assert signed_in(client) and signed_in(other.client)
    before = client.get_cookie("portal_session").value

    response = change(auth, PASSWORD, NEW_PASSWORD)
    assert redirected_to(response, "/profile/")
    after = client.get_cookie("portal_session").value
    assert after != before  # a new session id

    page = client.get("/profile/")
    assert page.status_code == 200 and "Your password has been changed" in text_of(page)
    other_response = other.client.get("/profile/")
    assert redirected_to(other_response, "/auth/sign-in") and "reason=ended" in other_response.headers["Location"]
    stale = app.test_client()
    stale.set_cookie("portal_session", before)
    assert not signed_in(stale)

    live = query(app, select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None)))
    assert len(live) == 1
    ended = query(app, select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_not(None)))
    assert sorted(r.end_reason for r in ended) == ["password-changed", "rotated"]
    changed = query(app, select(AuditEvent).where(AuditEvent.event == "password.changed"))
    assert [(e.actor_user_id, e.detail) for e in changed] == [(user_id, '{"sessions_ended": 1}')]
    assert passwords.verify_password(get_user(app, user_id).password_hash, NEW_PASSWORD)
    mail = outbox(app)[-1]
    assert mail.subject == "Your password has been changed"
    assert NEW_PASSWORD not in mail.body_text and PASSWORD not in mail.body_text


def test_change_password_applies_the_rules(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    for new, confirm, message in [
        ("Vx9!mQ2r", None, "Enter a password of at least 15 characters"),  # 8 is not enough without 2FA
        ("passwordpassword123", None, "This password is too common"),
        ("jordan-example-forever", None, "must not contain your name"),
        ("taxpayer-of-the-year-award", None, "must not contain your name or email address"),
        (NEW_PASSWORD, "something-else-entirely", "The passwords do not match"),
    ]:
        response = change(auth, PASSWORD, new, confirm)
        assert response.status_code == 400, new
        assert message in text_of(response), new
        assert new not in text_of(response)
    forged = client.post(
        "/profile/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert forged.status_code == 400  # no CSRF token
    assert passwords.verify_password(get_user(app, user_id).password_hash, PASSWORD)
    assert "password.changed" not in event_names(app)


def test_change_password_allows_eight_characters_with_two_factor(app, client, auth, clock):
    secret = pyotp.random_base32()
    user_id = make_user(app, totp_secret=secret)
    assert redirected_to(auth.sign_in(code=pyotp.TOTP(secret).at(clock())), "/")
    assert "at least 8 characters" in text_of(client.get("/profile/password"))
    response = change(auth, PASSWORD, "Vx9!mQ2r")
    assert redirected_to(response, "/profile/")
    assert passwords.verify_password(get_user(app, user_id).password_hash, "Vx9!mQ2r")


def test_the_sign_in_cost_bench_measures_the_portals_own_parameters(monkeypatch):
    """bench/signin_cost.py (issue 21): the parameters it times are the ones the portal
    hashes with when ARGON2_* are unset, and they meet OWASP's minimum on every axis."""
    from argon2 import extract_parameters

    from bench.signin_cost import OWASP_MINIMUM, measure, portal_parameters

    monkeypatch.setattr(passwords, "_hasher", passwords._hasher)  # put back after the test
    monkeypatch.setattr(passwords, "_DUMMY_HASH", passwords._DUMMY_HASH)
    passwords.configure(None, None)  # what config gives when ARGON2_* are unset
    portal = portal_parameters()
    used = extract_parameters(passwords.hash_password("x"))
    assert (portal.memory_kib, portal.time_cost, portal.parallelism) == (
        used.memory_cost,
        used.time_cost,
        used.parallelism,
    )
    assert portal.memory_kib >= OWASP_MINIMUM.memory_kib and portal.time_cost >= OWASP_MINIMUM.time_cost
    cost = measure(OWASP_MINIMUM, checks=2)
    assert cost.cpu_ms_median > 0 and abs(cost.checks_per_core_second * cost.cpu_ms_median - 1000) < 10
