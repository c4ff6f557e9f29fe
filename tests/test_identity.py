"""Identity: registration, email verification, sign-in limits, the second factor,
and the audit trail they leave. Every test drives the real forms (CSRF on) against
real SQLite and PostgreSQL; time moves only through the FrozenClock."""

from __future__ import annotations

import json
import re

import pyotp
import pytest
from sqlalchemy import func, select

from app import create_app
from models import AuditEvent, AuthSession, RecoveryCode, ThrottleEvent, UsedToken, User
from tests.conftest import PASSWORD, Auth, csrf_from, link_in, make_user, outbox
from web.access import safe_next

NEW_EMAIL = "river.stone@example.com"
NEW_NAME = "River Stone"


# --- helpers -----------------------------------------------------------------


def query(app, statement):
    with app.extensions["portal.sessionmaker"]() as db:
        return list(db.scalars(statement))


def user_row(app, email) -> User | None:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(User).where(User.email == email))


def count(app, model, *where) -> int:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def events(app) -> list[tuple[str, str]]:
    return [(e.event, e.outcome) for e in query(app, select(AuditEvent).order_by(AuditEvent.id))]


def text_of(response) -> str:
    return response.get_data(as_text=True)


def normalised(html: str, *replace: str) -> str:
    """A page with its CSRF token and the given strings blanked, for comparing two answers."""
    tokens = re.findall(r'name="csrf_token" value="([^"]+)"', html) + re.findall(r'"X-CSRFToken": "([^"]+)"', html)
    for token in set(tokens):
        html = html.replace(token, "TOKEN")
    for value in replace:
        html = html.replace(value, "VALUE")
    return html


def register(auth, name=NEW_NAME, email=NEW_EMAIL, password=PASSWORD, confirm=None):
    return auth.post(
        "/auth/register",
        {
            "name": name,
            "email": email,
            "password": password,
            "password_confirm": password if confirm is None else confirm,
        },
    )


def verify_link(app, to=NEW_EMAIL) -> str:
    mails = [m for m in outbox(app) if m.to_address == to and m.subject == "Confirm your email address"]
    assert mails, f"no verification email to {to}"
    return link_in(mails[-1].body_text)


def redirected_to(response, path: str) -> bool:
    return response.status_code == 303 and response.headers["Location"].split("?")[0] == path


def secret_from(html: str) -> str:
    match = re.search(r'id="totp-secret">([^<]+)<', html)
    assert match, "setup page shows no key"
    return match.group(1).replace(" ", "")


def code_now(secret: str, clock) -> str:
    return pyotp.TOTP(secret).at(clock())


def wrong_code(secret: str, clock) -> str:
    totp = pyotp.TOTP(secret)
    near = {totp.at(clock(), counter_offset=offset) for offset in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in near)


def enable_two_factor(client, auth, clock, password=PASSWORD):
    """Set up the second factor through /profile/two-factor as a person would."""
    secret = secret_from(text_of(client.get("/profile/two-factor")))
    response = auth.post("/profile/two-factor", {"password": password, "code": code_now(secret, clock)})
    assert response.status_code == 200, text_of(response)
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", text_of(response))
    return secret, codes


def staff_sign_in(auth, email, password=PASSWORD, code=""):
    return auth.post("/staff/sign-in", {"email": email, "password": password, "code": code})


def signed_in(client) -> bool:
    response = client.get("/profile/")
    return response.status_code == 200


# --- registration ------------------------------------------------------------


def test_registration_creates_unverified_user_and_sends_verify_link(app, client, auth):
    response = register(auth, email="River.Stone@Example.COM")  # stored in lower case
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/check-email"

    user = user_row(app, NEW_EMAIL)
    assert user is not None and user.name == NEW_NAME
    assert user.email_verified_at is None
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash

    mails = outbox(app)
    assert [(m.to_address, m.subject, m.status) for m in mails] == [
        (NEW_EMAIL, "Confirm your email address", "pending")
    ]
    assert link_in(mails[0].body_text).startswith("/auth/verify/")
    assert ("account.registered", "success") in events(app)

    page = client.get("/auth/check-email")
    assert page.status_code == 200 and NEW_EMAIL in text_of(page)


def test_an_empty_password_is_asked_for_in_words_that_say_what_to_do(app, auth):
    """The label "Create a password" was also the error message: an error says what to do."""
    response = register(auth, password="", confirm="")
    assert response.status_code == 400
    html = text_of(response)
    assert '<li><a href="#password">Enter a password</a></li>' in html
    assert "Error:</span> Enter a password</p>" in html and "Error:</span> Create a password" not in html
    assert count(app, User) == 0


def test_registration_validation_errors_show_beside_field_and_in_summary(app, auth):
    response = register(auth, name="", email="not-an-email", password="x", confirm="y")
    assert response.status_code == 400
    html = text_of(response)
    assert '<h2 class="error-summary__title" id="error-summary-title">There is a problem</h2>' in html
    for field, message in [
        ("name", "Enter your full name"),
        ("email", "Enter an email address in the correct format, like name@example.com"),
        ("password_confirm", "The passwords do not match"),
    ]:
        assert f'<li><a href="#{field}">{message}</a></li>' in html, field
        assert re.search(
            rf'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> '
            rf"{re.escape(message)}</p>",
            html,
        ), field
        assert f'id="{field}" name="{field}"' in html
    assert 'aria-invalid="true"' in html
    assert count(app, User) == 0
    assert outbox(app) == []


def test_registration_refuses_a_password_breaking_the_rules_beside_the_field(app, auth):
    response = register(auth, password="short-password")  # 14 characters
    assert response.status_code == 400
    html = text_of(response)
    assert (
        '<p class="field-error" id="password-error"><span class="visually-hidden">Error:</span> '
        "Enter a password of at least 15 characters</p>" in html
    )
    assert '<a href="#password">Enter a password of at least 15 characters</a>' in html
    # What was typed into the other fields is kept; the password is never echoed.
    assert f'value="{NEW_EMAIL}"' in html and "short-password" not in html
    assert count(app, User) == 0 and outbox(app) == []


def test_registration_with_existing_email_answers_exactly_as_for_a_new_one(app, auth, client):
    owner_id = make_user(app, email="taken@example.com")
    fresh = register(auth, email=NEW_EMAIL)
    fresh_page = text_of(client.get(fresh.headers["Location"]))

    other = app.test_client()
    duplicate = register(Auth(other, app), email="Taken@example.com", password="some-other-long-passphrase")
    duplicate_page = text_of(other.get(duplicate.headers["Location"]))

    assert (duplicate.status_code, duplicate.headers["Location"]) == (fresh.status_code, fresh.headers["Location"])
    assert normalised(duplicate_page, "taken@example.com") == normalised(fresh_page, NEW_EMAIL)

    # No second account; the owner hears of the attempt, and nothing is sent to verify.
    assert count(app, User, User.email == "taken@example.com") == 1
    to_owner = [m for m in outbox(app) if m.to_address == "taken@example.com"]
    assert [m.subject for m in to_owner] == ["You already have an account"]
    assert "/auth/forgot-password" in to_owner[0].body_text
    assert "some-other-long-passphrase" not in to_owner[0].body_text
    refused = query(app, select(AuditEvent).where(AuditEvent.event == "account.register_existing"))
    assert [(e.outcome, e.subject_user_id) for e in refused] == [("refused", owner_id)]


# --- email verification -----------------------------------------------------


def test_verify_link_get_changes_nothing_and_post_verifies(app, client, auth):
    register(auth)
    link = verify_link(app)

    page = client.get(link)
    assert page.status_code == 200
    html = text_of(page)
    assert "Confirm my email address" in html and '<form method="post"' in html and NEW_EMAIL in html
    client.get(link)  # a mail scanner opening it twice still changes nothing
    assert user_row(app, NEW_EMAIL).email_verified_at is None
    assert count(app, UsedToken) == 0
    assert ("email.verified", "success") not in events(app)
    assert client.post(link, data={}).status_code == 400  # no CSRF token: refused
    assert user_row(app, NEW_EMAIL).email_verified_at is None

    response = client.post(link, data={"csrf_token": csrf_from(html)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/sign-in?reason=verified"
    user = user_row(app, NEW_EMAIL)
    assert user.email_verified_at is not None
    assert count(app, UsedToken, UsedToken.purpose == "verify-email") == 1
    verified = query(app, select(AuditEvent).where(AuditEvent.event == "email.verified"))
    assert [e.actor_user_id for e in verified] == [user.id]
    # The link does not sign anyone in.
    assert not signed_in(client)


def test_verify_link_cannot_be_used_twice(app, client, auth):
    register(auth)
    link = verify_link(app)
    token = csrf_from(text_of(client.get(link)))
    assert client.post(link, data={"csrf_token": token}).status_code == 303

    again = client.post(link, data={"csrf_token": auth.token()})
    assert again.status_code == 400
    assert "This link has already been used" in text_of(again)
    assert client.get(link).status_code == 400
    assert len(query(app, select(AuditEvent).where(AuditEvent.event == "email.verified"))) == 1


def test_verify_link_expires(app, client, auth, clock):
    register(auth)
    link = verify_link(app)
    clock.advance(seconds=app.config["EMAIL_LINK_MAX_AGE_SECONDS"] - 60)
    assert client.get(link).status_code == 200  # a minute left: still good
    clock.advance(seconds=61)
    page = client.get(link)
    assert page.status_code == 400
    assert "This link has expired" in text_of(page)
    response = client.post(link, data={"csrf_token": auth.token()})
    assert response.status_code == 400
    assert user_row(app, NEW_EMAIL).email_verified_at is None


def test_tampered_verify_link_is_refused(app, client, auth, clock):
    from domain import tokens

    register(auth)
    token = verify_link(app).rsplit("/", 1)[1]
    user = user_row(app, NEW_EMAIL)
    i = len(token) // 2
    tampered = {
        "one character changed": token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :],
        "signed for another purpose": tokens.make_token(
            app.secret_key, "reset-password", {"uid": user.id, "email": user.email}, clock()
        ),
        "signed with another key": tokens.make_token(
            "some-other-secret-key-of-enough-length", "verify-email", {"uid": user.id, "email": user.email}, clock()
        ),
        "for another address": tokens.make_token(
            app.secret_key, "verify-email", {"uid": user.id, "email": "attacker@example.com"}, clock()
        ),
        "not a token at all": "not-a-token",
    }
    for why, bad in tampered.items():
        page = client.get(f"/auth/verify/{bad}")
        assert page.status_code == 400, why
        assert "This link is not valid" in text_of(page), why
        response = client.post(f"/auth/verify/{bad}", data={"csrf_token": auth.token()})
        assert response.status_code == 400, why
    assert user_row(app, NEW_EMAIL).email_verified_at is None
    assert count(app, UsedToken) == 0


def test_unverified_person_is_sent_to_verify_email_page(app, client, auth):
    make_user(app, verified=False)
    assert redirected_to(auth.sign_in(), "/")
    for path in ("/profile/", "/profile/details", "/profile/password", "/profile/sessions"):
        response = client.get(path)
        assert redirected_to(response, "/auth/verify-email"), path
    htmx = client.get("/profile/details", headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx.headers["HX-Redirect"] == "/auth/verify-email"
    page = client.get("/auth/verify-email")
    assert page.status_code == 200 and "taxpayer@example.com" in text_of(page)


def test_verifying_while_signed_in_opens_the_service(app, client, auth):
    user_id = make_user(app, verified=False)
    auth.sign_in()
    assert client.post("/auth/verify-email", data={"csrf_token": auth.token("/auth/verify-email")}).status_code == 200
    link = verify_link(app, "taxpayer@example.com")
    response = client.post(link, data={"csrf_token": csrf_from(text_of(client.get(link)))})
    assert redirected_to(response, "/")
    assert client.get("/profile/details").status_code == 200
    with app.extensions["portal.sessionmaker"]() as db:
        assert db.get(User, user_id).email_verified_at is not None


def test_resending_the_verify_link_is_limited_to_three_an_hour(app, client, auth, clock):
    make_user(app, verified=False)
    auth.sign_in()
    for _ in range(3):
        response = auth.post("/auth/verify-email")
        assert response.status_code == 200
        assert "We have sent a new link to taxpayer@example.com" in text_of(response)
    limited = auth.post("/auth/verify-email")
    assert limited.status_code == 429
    assert "Wait an hour" in text_of(limited)
    assert len(outbox(app)) == 3
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "verify-resend") == 3

    clock.advance(minutes=61)
    # Past the hour the person may ask again (the session would have idled out, so sign in).
    auth.sign_in()
    assert auth.post("/auth/verify-email").status_code == 200
    assert len(outbox(app)) == 4


# --- sign-in -------------------------------------------------------------------


def test_wrong_password_and_unknown_email_answer_identically(app, client, auth):
    make_user(app, email="known@example.com")
    wrong = auth.sign_in("known@example.com", "not-the-right-password-at-all")
    unknown = auth.sign_in("nobody@example.com", "not-the-right-password-at-all")
    assert wrong.status_code == unknown.status_code == 400
    assert "Enter a correct email address and password" in text_of(wrong)
    assert normalised(text_of(wrong), "known@example.com") == normalised(text_of(unknown), "nobody@example.com")
    assert sorted(dict(wrong.headers)) == sorted(dict(unknown.headers))
    failures = query(app, select(AuditEvent).where(AuditEvent.event == "signin.password"))
    assert [e.outcome for e in failures] == ["failure", "failure"]
    assert not signed_in(client)


def test_successful_sign_in_records_the_event_and_rotates_session(app, client, auth):
    user_id = make_user(app)
    client.get("/auth/sign-in")
    assert client.get_cookie("portal_session") is None  # a visitor: the token's secret is in portal_visitor
    forged = client.post("/auth/sign-in", data={"email": "taxpayer@example.com", "password": PASSWORD})
    assert forged.status_code == 400  # no CSRF token: refused before the password is looked at
    assert not signed_in(client)
    assert ("csrf.refused", "failure") in events(app)

    response = auth.sign_in()
    assert redirected_to(response, "/")
    assert client.get_cookie("portal_session") is not None
    signins = query(app, select(AuditEvent).where(AuditEvent.event == "signin"))
    assert [(e.actor_user_id, e.outcome) for e in signins] == [(user_id, "success")]
    assert '"factor": "password"' in signins[0].detail
    rows = query(app, select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None)))
    assert len(rows) == 1
    assert redirected_to(client.get("/auth/register"), "/")  # nothing to register while signed in


def test_five_failures_lock_sign_in_and_the_lock_lifts_after_the_window(app, client, auth, clock):
    make_user(app)
    for _ in range(5):
        assert auth.sign_in(password="wrong-password-number-x").status_code == 400
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "signin-email") == 5

    locked = auth.sign_in()  # even the right password is refused while locked
    assert locked.status_code == 429
    assert "You have tried too many times" in text_of(locked)
    assert not signed_in(client)
    assert ("signin.refused", "locked") in events(app)

    clock.advance(minutes=14)
    assert auth.sign_in().status_code == 429
    clock.advance(minutes=2)
    assert redirected_to(auth.sign_in(), "/")
    # Success clears the person's failures.
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "signin-email") == 0


def test_lock_is_counted_in_the_database_across_two_workers(app, app_config, client, auth):
    make_user(app)
    second = create_app(app_config)  # another worker process: its own engine, same database
    try:
        other = Auth(second.test_client(), second)
        for _ in range(3):
            assert auth.sign_in(password="wrong-password-number-x").status_code == 400
        for _ in range(2):
            assert other.sign_in(password="wrong-password-number-x").status_code == 400
        assert count(app, ThrottleEvent, ThrottleEvent.scope == "signin-email") == 5
        assert other.sign_in().status_code == 429
        assert auth.sign_in().status_code == 429
        assert not signed_in(other.client)
    finally:
        second.extensions["portal.engine"].dispose()


def test_disabled_person_cannot_sign_in(app, client, auth, clock):
    user_id = make_user(app)
    with app.extensions["portal.sessionmaker"]() as db:
        db.get(User, user_id).disabled_at = clock()
        db.commit()
    response = auth.sign_in()
    assert response.status_code == 400
    assert "Enter a correct email address and password" in text_of(response)
    assert not signed_in(client)
    assert ("signin", "success") not in events(app)


def test_disabling_a_signed_in_person_shuts_them_out(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    assert signed_in(client)
    with app.extensions["portal.sessionmaker"]() as db:
        db.get(User, user_id).disabled_at = clock()
        db.commit()
    assert redirected_to(client.get("/profile/"), "/auth/sign-in")


def test_next_parameter_is_followed_only_to_same_site_paths(app, client, auth):
    make_user(app)
    cases = [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
        ("/profile/details", "/profile/details"),
    ]
    for target, _expected in cases:
        form = text_of(client.get("/auth/sign-in", query_string={"next": target}))
        assert "evil" not in form, target
    for target, expected in cases:
        response = auth.sign_in(next_url=target)
        assert response.status_code == 303, target
        assert response.headers["Location"] == expected, target
        if target != cases[-1][0]:
            auth.sign_out()
    for target, expected in cases:
        # Already signed in, the sign-in page forwards to `next` under the same rule.
        again = client.get("/auth/sign-in", query_string={"next": target})
        assert again.headers["Location"] == expected, target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil",
        "\\\\evil.example",
        "http:evil.example",
        "/\t/evil.example",
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_safe_next_refuses_other_sites(target):
    assert safe_next(target) == "/"


def test_safe_next_keeps_paths_and_queries():
    assert safe_next("/profile/details?tab=2") == "/profile/details?tab=2"


def test_sign_out_ends_the_session(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    cookie = client.get_cookie("portal_session").value
    assert redirected_to(auth.sign_out(), "/auth/signed-out")
    rows = query(app, select(AuthSession).where(AuthSession.user_id == user_id))
    assert rows and all(r.ended_at is not None for r in rows)
    assert ("signout", "success") in events(app)
    client.set_cookie("portal_session", cookie)
    assert not signed_in(client)


# --- second factor -----------------------------------------------------------


def test_two_factor_setup_refuses_wrong_code_then_shows_ten_recovery_codes(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    page = client.get("/profile/two-factor")
    assert page.status_code == 200 and 'src="data:image/svg+xml' in text_of(page)
    secret = secret_from(text_of(page))
    assert secret_from(text_of(client.get("/profile/two-factor"))) == secret  # held in the session

    wrong = auth.post("/profile/two-factor", {"password": PASSWORD, "code": wrong_code(secret, clock)})
    assert wrong.status_code == 400
    assert "The code is not correct" in text_of(wrong)
    with app.extensions["portal.sessionmaker"]() as db:
        user = db.get(User, user_id)
        assert user.totp_secret is None and user.totp_enabled_at is None

    response = auth.post("/profile/two-factor", {"password": PASSWORD, "code": code_now(secret, clock)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", text_of(response))
    assert len(codes) == len(set(codes)) == 10
    with app.extensions["portal.sessionmaker"]() as db:
        user = db.get(User, user_id)
        assert user.totp_secret == secret and user.totp_enabled_at == clock()
        stored = db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)).all()
        assert len(stored) == 10
        assert not any(c.replace("-", "") in r.code_hash or c in r.code_hash for c in codes for r in stored)
    assert ("two_factor.enabled", "success") in events(app)
    assert [m.subject for m in outbox(app)] == ["Two-step sign-in is on"]
    # Once on, the page shows the "on" state rather than a new key.
    assert "Two-step sign-in is on" in text_of(client.get("/profile/two-factor"))


def test_sign_in_with_two_factor_needs_the_code_step(app, client, auth, clock):
    secret = pyotp.random_base32()
    user_id = make_user(app, totp_secret=secret)
    response = auth.sign_in()
    assert redirected_to(response, "/auth/code")
    assert not signed_in(client)  # the password alone signs no one in
    assert client.get("/auth/code").status_code == 200

    response = client.post("/auth/code", data={"code": code_now(secret, clock), "csrf_token": auth.token("/auth/code")})
    assert redirected_to(response, "/")
    assert signed_in(client)
    signin = query(app, select(AuditEvent).where(AuditEvent.event == "signin"))
    assert [e.actor_user_id for e in signin] == [user_id] and '"factor": "totp"' in signin[0].detail

    # The code step waits five minutes for the code, no longer.
    auth.sign_out()
    assert redirected_to(auth.sign_in(), "/auth/code")
    clock.advance(minutes=6)
    assert redirected_to(client.get("/auth/code"), "/auth/sign-in")
    assert not signed_in(client)


def test_replayed_totp_code_is_refused(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    secret, _codes = enable_two_factor(client, auth, clock)
    used = code_now(secret, clock)
    auth.sign_out()

    response = auth.sign_in(code=used)  # the same code that turned it on, still inside its window
    assert response.status_code == 400
    assert "Enter a correct security code" in text_of(response)
    assert not signed_in(client)
    assert ("signin.second_factor", "failure") in events(app)

    clock.advance(seconds=30)
    fresh = client.post("/auth/code", data={"code": code_now(secret, clock), "csrf_token": auth.token("/auth/code")})
    assert redirected_to(fresh, "/")
    assert signed_in(client)


def test_recovery_code_works_once(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    _secret, codes = enable_two_factor(client, auth, clock)
    auth.sign_out()

    response = auth.sign_in(code=codes[3].upper())  # typed in capitals: still accepted
    assert redirected_to(response, "/")
    used = query(app, select(AuditEvent).where(AuditEvent.event == "recovery_code.used"))
    assert [(e.actor_user_id, e.detail) for e in used] == [(user_id, '{"remaining": 9}')]
    assert count(app, RecoveryCode, RecoveryCode.used_at.is_not(None)) == 1
    auth.sign_out()

    again = auth.sign_in(code=codes[3])
    assert again.status_code == 400
    assert not signed_in(client)
    assert count(app, RecoveryCode, RecoveryCode.used_at.is_not(None)) == 1


def test_five_wrong_codes_lock_the_second_factor(app, client, auth, clock):
    secret = pyotp.random_base32()
    make_user(app, totp_secret=secret)
    assert redirected_to(auth.sign_in(), "/auth/code")
    bad = wrong_code(secret, clock)
    for _ in range(5):
        response = client.post("/auth/code", data={"code": bad, "csrf_token": auth.token("/auth/code")})
        assert response.status_code == 400
    assert count(app, ThrottleEvent, ThrottleEvent.scope == "second-factor") == 5

    locked = client.post("/auth/code", data={"code": code_now(secret, clock), "csrf_token": auth.token("/auth/code")})
    assert locked.status_code == 429
    assert "too many wrong codes" in text_of(locked)
    assert not signed_in(client)
    outcomes = [o for e, o in events(app) if e == "signin.second_factor"]
    assert outcomes == ["failure"] * 5 + ["locked"]


def test_turning_two_factor_off_needs_password_and_code(app, client, auth, clock):
    secret = pyotp.random_base32()
    user_id = make_user(app, totp_secret=secret)
    assert redirected_to(auth.sign_in(code=code_now(secret, clock)), "/")
    clock.advance(seconds=30)
    code = code_now(secret, clock)

    def turn_off(password, code):
        return auth.post(
            "/profile/two-factor/turn-off", {"password": password, "code": code}, token_from="/profile/two-factor"
        )

    def still_on():
        with app.extensions["portal.sessionmaker"]() as db:
            return db.get(User, user_id).totp_enabled_at is not None

    response = turn_off("not-my-password-at-all", code)
    assert response.status_code == 400 and "Your password is not correct" in text_of(response)
    assert still_on()
    response = turn_off(PASSWORD, wrong_code(secret, clock))
    assert response.status_code == 400 and "Enter a correct security code" in text_of(response)
    assert still_on()
    response = turn_off(PASSWORD, "")
    assert response.status_code == 400 and still_on()

    response = turn_off(PASSWORD, code)
    assert redirected_to(response, "/profile/")
    assert not still_on()
    with app.extensions["portal.sessionmaker"]() as db:
        user = db.get(User, user_id)
        assert user.totp_secret is None and user.recovery_codes == []
    assert ("two_factor.disabled", "success") in events(app)


def test_staff_cannot_turn_two_factor_off(app, client, auth, clock):
    secret = pyotp.random_base32()
    user_id = make_user(app, email="officer@tra.example", staff_role="officer", totp_secret=secret)
    assert redirected_to(staff_sign_in(auth, "officer@tra.example", code=code_now(secret, clock)), "/staff/")
    clock.advance(seconds=30)
    page = text_of(client.get("/profile/two-factor"))
    assert "cannot be turned off" in page and "Turn off two-step sign-in" not in page

    response = auth.post(
        "/profile/two-factor/turn-off",
        {"password": PASSWORD, "code": code_now(secret, clock)},
        token_from="/profile/two-factor",
    )
    assert response.status_code == 400
    with app.extensions["portal.sessionmaker"]() as db:
        assert db.get(User, user_id).totp_enabled_at is not None
    assert ("two_factor.disabled", "success") not in events(app)


def test_staff_without_two_factor_is_sent_to_set_it_up_everywhere(app, client, auth, clock):
    make_user(app, email="officer@tra.example", staff_role="officer")
    response = staff_sign_in(auth, "officer@tra.example", code="000000")
    assert redirected_to(response, "/profile/two-factor")
    for path in ("/staff/", "/profile/details", "/staff/people/1"):
        assert redirected_to(client.get(path), "/profile/two-factor"), path
    htmx = client.get("/staff/", headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx.headers["HX-Redirect"] == "/profile/two-factor"
    page = client.get("/profile/two-factor")
    assert page.status_code == 200 and "needs two-step sign-in" in text_of(page)

    # Signing in on the taxpayer page instead leads to the same place.
    elsewhere = Auth(app.test_client(), app)
    assert redirected_to(elsewhere.sign_in("officer@tra.example"), "/")
    assert redirected_to(elsewhere.client.get("/staff/"), "/profile/two-factor")

    enable_two_factor(client, auth, clock)
    assert client.get("/staff/").status_code == 200


def test_require_two_factor_for_all_applies_to_taxpayers(app_config, clock):
    strict = create_app({**app_config, "REQUIRE_TWO_FACTOR_FOR_ALL": True})
    try:
        make_user(strict)
        client = strict.test_client()
        auth = Auth(client, strict)
        auth.sign_in()
        assert redirected_to(client.get("/profile/details"), "/profile/two-factor")
        assert client.get("/profile/").status_code == 200  # the overview stays reachable during set-up
        page = text_of(client.get("/profile/two-factor"))
        assert "needs two-step sign-in" in page
        secret, _codes = enable_two_factor(client, auth, clock)
        assert client.get("/profile/details").status_code == 200
        # Required, so it cannot be turned off.
        clock.advance(seconds=30)
        response = auth.post(
            "/profile/two-factor/turn-off",
            {"password": PASSWORD, "code": code_now(secret, clock)},
            token_from="/profile/two-factor",
        )
        assert response.status_code == 400
        assert user_row(strict, "taxpayer@example.com").totp_enabled_at is not None
    finally:
        strict.extensions["portal.engine"].dispose()


def test_staff_sign_in_requires_the_code(app, client, auth, clock):
    secret = pyotp.random_base32()
    make_user(app, email="officer@tra.example", staff_role="officer", totp_secret=secret)

    missing = staff_sign_in(auth, "officer@tra.example", code="")
    assert missing.status_code == 400 and "Enter the security code" in text_of(missing)
    wrong = staff_sign_in(auth, "officer@tra.example", code=wrong_code(secret, clock))
    assert wrong.status_code == 400 and "Enter a correct security code" in text_of(wrong)
    assert not signed_in(client)
    assert client.get("/staff/").status_code == 303

    right = staff_sign_in(auth, "officer@tra.example", code=code_now(secret, clock))
    assert redirected_to(right, "/staff/")
    assert client.get("/staff/").status_code == 200
    assert [o for e, o in events(app) if e == "signin.second_factor"] == ["failure"]


def test_new_staff_without_a_second_factor_signs_in_without_a_code_and_must_set_one_up(app, client, auth):
    make_user(app, email="new.officer@tra.example", staff_role="officer")
    response = staff_sign_in(auth, "new.officer@tra.example", code="")
    assert redirected_to(response, "/profile/two-factor")
    assert signed_in(client)
    # Every staff page sends them back to the set-up until it is done.
    assert client.get("/staff/").headers["Location"].endswith("/profile/two-factor")


def test_staff_sign_in_refuses_a_taxpayer(app, client, auth, clock):
    secret = pyotp.random_base32()
    make_user(app, totp_secret=secret)
    response = staff_sign_in(auth, "taxpayer@example.com", code=code_now(secret, clock))
    assert response.status_code == 400
    assert "Enter a correct email address, password and code" in text_of(response)
    assert not signed_in(client)


def test_taxpayer_is_refused_staff_pages_but_not_forced_to_two_factor(app, client, auth):
    make_user(app)
    auth.sign_in()
    assert client.get("/profile/details").status_code == 200  # by default a taxpayer may go without
    assert client.get("/staff/").status_code == 403
    assert ("access.refused", "failure") in events(app)


# --- audit ---------------------------------------------------------------------


def test_security_events_are_audited_and_hold_no_secrets(app, client, auth, clock):
    email = "audit.person@example.com"
    changed = "violet-harbour-lantern-quartz"
    after_reset = "amber-meadow-falcon-copper"
    wrong_password = "wrong-password-number-x"

    register(auth, name="Audit Person", email=email)
    verify = verify_link(app, email)
    client.post(verify, data={"csrf_token": csrf_from(text_of(client.get(verify)))})
    assert auth.sign_in(email, wrong_password).status_code == 400
    assert redirected_to(auth.sign_in(email, PASSWORD), "/")
    response = auth.post(
        "/profile/password", {"current_password": PASSWORD, "new_password": changed, "new_password_confirm": changed}
    )
    assert redirected_to(response, "/profile/")
    secret, codes = enable_two_factor(client, auth, clock, password=changed)
    totp_codes = [code_now(secret, clock)]
    auth.sign_out()

    clock.advance(seconds=30)
    bad = wrong_code(secret, clock)
    assert auth.sign_in(email, changed, code=bad).status_code == 400
    assert redirected_to(
        client.post("/auth/code", data={"code": codes[0], "csrf_token": auth.token("/auth/code")}), "/"
    )
    auth.sign_out()

    assert auth.post("/auth/forgot-password", {"email": email}).status_code == 303
    reset = link_in([m for m in outbox(app) if m.subject == "Reset your password"][-1].body_text)
    response = auth.post(reset, {"new_password": after_reset, "new_password_confirm": after_reset})
    assert response.status_code == 303

    for _ in range(5):
        auth.sign_in(email, wrong_password)
    assert auth.sign_in(email, after_reset).status_code == 429

    recorded = query(app, select(AuditEvent).order_by(AuditEvent.id))
    pairs = {(e.event, e.outcome) for e in recorded}
    for expected in [
        ("account.registered", "success"),
        ("email.verified", "success"),
        ("signin", "success"),
        ("signin.password", "failure"),
        ("signin.refused", "locked"),
        ("signin.second_factor", "failure"),
        ("password.changed", "success"),
        ("password.reset", "success"),
        ("two_factor.enabled", "success"),
        ("recovery_code.used", "success"),
        ("signout", "success"),
    ]:
        assert expected in pairs, expected
    user = user_row(app, email)
    assert all(e.occurred_at is not None for e in recorded)
    assert {e.actor_user_id for e in recorded if e.event in ("signin", "password.changed", "signout")} == {user.id}

    secrets = [
        PASSWORD,
        changed,
        after_reset,
        wrong_password,
        secret,
        bad,
        *totp_codes,
        *codes,
        *(c.replace("-", "") for c in codes),
        verify.rsplit("/", 1)[1],
        reset.rsplit("/", 1)[1],
    ]
    for entry in recorded:
        stored = " ".join(str(v) for v in (entry.event, entry.outcome, entry.detail, entry.session_ref))
        for value in secrets:
            assert value not in stored, (entry.event, entry.detail)
        assert not [k for k in json.loads(entry.detail) if re.search(r"password|code|token|secret|totp", k, re.I)]


def test_audit_events_cannot_be_changed_or_deleted(app, auth):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DatabaseError

    register(auth)
    with app.extensions["portal.sessionmaker"]() as db:
        with pytest.raises(DatabaseError):
            db.execute(update(AuditEvent).values(outcome="tampered"))
            db.commit()
        db.rollback()
        with pytest.raises(DatabaseError):
            db.execute(delete(AuditEvent))
            db.commit()
        db.rollback()
    assert events(app) == [("account.registered", "success")]
