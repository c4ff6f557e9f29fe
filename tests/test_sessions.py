"""Server-side sessions: the cookie, rotation, revocation, idle and re-confirmation limits.

Seed rule: signed out after 15 minutes without activity; the password is asked
for again after 60 minutes of continuous activity. Time only moves through the
injected FrozenClock.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import FrozenInstanceError
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask_login import current_user
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from domain import sessions as store
from models import AuditEvent, AuthSession, SignedInPerson, User
from tests.conftest import PASSWORD, Auth, csrf_from, make_user
from web.sessions import signed_in_user

COOKIE = "portal_session"
NEW_PASSWORD = "a-completely-different-passphrase-42"
STAFF_EMAIL = "admin@tra.example"


# --- helpers -----------------------------------------------------------------


def cookie_value(client, name=COOKIE) -> str | None:
    cookie = client.get_cookie(name)
    return cookie.value if cookie is not None else None


def sid_of(app, value: str) -> str:
    return TimestampSigner(app.secret_key, salt="portal.session-cookie.v1").unsign(value).decode()


def row_for(app, value: str) -> AuthSession | None:
    with app.extensions["portal.sessionmaker"]() as s:
        return s.get(AuthSession, store.sid_hash(sid_of(app, value)))


def location(response) -> tuple[str, dict]:
    parts = urlsplit(response.headers["Location"])
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def assert_sign_in_redirect(response, reason: str | None = None, next_url: str | None = None):
    assert response.status_code == 303, response.status_code
    path, query = location(response)
    assert path == "/auth/sign-in"
    if reason is not None:
        assert query.get("reason") == reason
    if next_url is not None:
        assert query.get("next") == next_url


def replay(app, value: str, path: str = "/profile/"):
    """The old cookie on a fresh browser."""
    fresh = app.test_client()
    fresh.set_cookie(COOKIE, value)
    return fresh.get(path)


def signed_in(client) -> bool:
    return client.get("/profile/").status_code == 200


def staff_client(app, clock, secret: str, email: str = STAFF_EMAIL):
    staff = app.test_client()
    token = csrf_from(staff.get("/staff/sign-in").get_data(as_text=True))
    response = staff.post(
        "/staff/sign-in",
        data={"email": email, "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock()), "csrf_token": token},
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/staff/"), response.status_code
    return staff


def user_row(app, user_id: int) -> User:
    with app.extensions["portal.sessionmaker"]() as s:
        return s.get(User, user_id)


def session_json(client, background=True) -> dict:
    headers = {"X-Background-Request": "1"} if background else {}
    response = client.get("/auth/session", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def stay_active(client, clock, minutes: int, step: int = 14):
    """Continuous activity: a real request at least every `step` minutes."""
    done = 0
    while done + step < minutes:
        clock.advance(minutes=step)
        done += step
        assert client.get("/profile/").status_code == 200
    clock.advance(minutes=minutes - done)


# --- the cookie ----------------------------------------------------------------


def test_cookie_holds_only_a_signed_opaque_id_and_timestamp(app, client, auth):
    user_id = make_user(app)
    assert auth.sign_in().status_code == 303
    value = cookie_value(client)
    assert value
    parts = value.split(".")
    assert len(parts) == 3, "id, timestamp, signature"
    sid, stamp, _signature = parts
    # The id is 32 random bytes, nothing else; the timestamp is a bare integer.
    assert len(base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))) == 32
    stamp_bytes = base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4))
    assert int.from_bytes(stamp_bytes, "big") > 0
    assert sid_of(app, value) == sid
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", value)
    decoded = b"".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)
    for secret in (b"taxpayer", b"example.com", b"Jordan", b"user_id", b'"id"'):
        assert secret not in decoded and secret.decode() not in value
    assert value != str(user_id) and f'"{user_id}"' not in value
    # The id maps to a server row (stored only as its hash) that knows who it is.
    row = row_for(app, value)
    assert row is not None and row.user_id == user_id and row.id != sid
    assert sid not in row.data
    # A tampered signature is refused like no cookie at all.
    fresh = app.test_client()
    fresh.set_cookie(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert_sign_in_redirect(fresh.get("/profile/"))


def test_cookie_attributes_over_http(app, client, auth):
    make_user(app)
    response = auth.sign_in()
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}=")]
    assert len(set_cookie) == 1
    attributes = [a.strip().lower() for a in set_cookie[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes
    assert not any(a.startswith("domain=") for a in attributes)
    cookie = client.get_cookie(COOKIE)
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"


def test_cookie_over_https_is_host_prefixed_and_secure(app_with):
    app = app_with(SESSION_COOKIE_SECURE=True)
    make_user(app)
    client = app.test_client()
    base = "https://localhost"
    page = client.get("/auth/sign-in", base_url=base)
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    # WTF_CSRF_SSL_STRICT: over https a same-origin Referer is required.
    response = client.post(
        "/auth/sign-in",
        base_url=base,
        headers={"Referer": f"{base}/auth/sign-in"},
        data={"email": "taxpayer@example.com", "password": PASSWORD, "next": "", "csrf_token": token},
    )
    assert response.status_code == 303
    headers = response.headers.getlist("Set-Cookie")
    # The session, and the note that this browser has signed in as the person (abuse case 8).
    assert headers and all(h.startswith(("__Host-session=", "__Host-device=")) for h in headers)
    assert any(h.startswith("__Host-session=") for h in headers)
    for header in headers:
        attributes = [a.strip().lower() for a in header.split(";")]
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(attributes)
        assert not any(a.startswith("domain=") for a in attributes)
    assert client.get_cookie(COOKIE) is None
    assert client.get("/profile/", base_url=base).status_code == 200


# --- a new id at sign-in and at re-confirmation --------------------------------


def test_sign_in_makes_a_new_session_and_a_visitor_has_no_row(app, client, auth):
    """A visitor's CSRF secret travels in a signed cookie of its own, so the sign-in page
    writes no row (issue 18); signing in makes the session, with a new id, and the
    visitor's token is replaced by the session's."""
    make_user(app)
    client.get("/auth/sign-in")
    assert cookie_value(client) is None, "a visitor has no session cookie"
    assert client.get_cookie("portal_visitor") is not None
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.scalar(select(func.count()).select_from(AuthSession)) == 0
    assert auth.sign_in().status_code == 303
    after = cookie_value(client)
    assert after and row_for(app, after).user_id is not None
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.scalar(select(func.count()).select_from(AuthSession)) == 1


def test_each_request_signs_in_with_a_light_copy_that_holds_no_secret(app, client, auth):
    """The person read with the session row (models.SignedInPerson, one Core query) says
    who they are, and carries neither their password hash nor their authenticator
    secret; it cannot be changed by mistake. A view that changes the person asks for
    their database row (web.sessions.signed_in_user), the same object each time."""
    user_id = make_user(app)
    assert auth.sign_in().status_code == 303
    with app.test_request_context("/profile/", headers={"Cookie": f"{COOKIE}={cookie_value(client)}"}):
        assert app.preprocess_request() is None  # through the gate, signed in
        person = current_user._get_current_object()
        assert isinstance(person, SignedInPerson)
        assert (person.id, person.email, person.is_authenticated) == (user_id, "taxpayer@example.com", True)
        assert not hasattr(person, "password_hash") and not hasattr(person, "totp_secret")
        with pytest.raises(FrozenInstanceError):
            person.email = "someone-else@example.com"
        row = signed_in_user()
        assert isinstance(row, User) and row.id == user_id and row.password_hash
        assert signed_in_user() is row


def test_reconfirmation_rotates_the_session_id(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 60)
    before = cookie_value(client)
    response = client.get("/profile/details")
    assert response.status_code == 303
    response = auth.post(
        "/auth/confirm", {"password": PASSWORD, "next": "/profile/details"}, token_from="/auth/confirm"
    )
    assert response.status_code == 303
    after = cookie_value(client)
    assert after != before
    assert row_for(app, before).end_reason == "rotated"
    assert client.get("/profile/details").status_code == 200
    assert_sign_in_redirect(replay(app, before))


# --- an old cookie is refused once the session is ended ------------------------


def test_old_cookie_refused_after_sign_out(app, client, auth):
    make_user(app)
    auth.sign_in()
    value = cookie_value(client)
    assert replay(app, value).status_code == 200, "the cookie works before sign-out"
    response = auth.sign_out()
    assert response.status_code == 303 and response.headers["Location"].endswith("/auth/signed-out")
    assert row_for(app, value).end_reason == "signed-out"
    assert_sign_in_redirect(replay(app, value))
    assert_sign_in_redirect(client.get("/profile/"))


def test_old_cookie_refused_after_password_change(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    value = cookie_value(client)
    other = app.test_client()
    Auth(other, app).sign_in()
    other_value = cookie_value(other)
    response = auth.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    # This browser carries on under a new id; the old id and every other session are dead.
    assert cookie_value(client) != value
    assert signed_in(client)
    assert_sign_in_redirect(replay(app, value))
    assert_sign_in_redirect(replay(app, other_value), reason="ended")
    assert row_for(app, other_value).end_reason == "password-changed"
    assert_sign_in_redirect(other.get("/profile/"))
    assert user_row(app, user_id).password_changed_at == clock()


def test_old_cookie_refused_after_signing_out_other_sessions(app, client, auth):
    make_user(app)
    auth.sign_in()
    keep = cookie_value(client)
    others = []
    for _ in range(2):
        other = app.test_client()
        Auth(other, app).sign_in()
        others.append(cookie_value(other))
    response = auth.post("/profile/sessions/sign-out-others", {"password": PASSWORD}, token_from="/profile/sessions")
    assert response.status_code == 303
    for value in others:
        assert row_for(app, value).end_reason == "other-session"
        assert_sign_in_redirect(replay(app, value), reason="ended")
    assert cookie_value(client) == keep
    assert "Signed out of 2 other sessions." in client.get("/profile/sessions").get_data(as_text=True)
    assert replay(app, keep).status_code == 200


def test_signing_out_other_sessions_asks_for_the_password_again(app, client, auth):
    """ASVS 5.0 7.5.2: ending sessions needs the password again, so a session left
    open on a shared computer cannot sign its owner out everywhere else."""
    make_user(app)
    auth.sign_in()
    other = app.test_client()
    Auth(other, app).sign_in()
    theirs = cookie_value(other)
    page = client.get("/profile/sessions").get_data(as_text=True)
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    for data in ({}, {"password": "not-my-password-at-all"}):
        response = auth.post("/profile/sessions/sign-out-others", data, token_from="/profile/sessions")
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert 'href="#password"' in page and 'id="password-error"' in page
        assert row_for(app, theirs).ended_at is None
    assert replay(app, theirs).status_code == 200


def signed_in_taxpayer_and_staff(app, client, auth, clock):
    """A signed-in taxpayer (their id and cookie) and an administrator on their staff page (client, token)."""
    user_id = make_user(app)
    secret = pyotp.random_base32()
    make_user(app, email=STAFF_EMAIL, name="Avery Admin", staff_role="administrator", totp_secret=secret)
    auth.sign_in()
    value = cookie_value(client)
    staff = staff_client(app, clock, secret)
    token = csrf_from(staff.get(f"/staff/people/{user_id}").get_data(as_text=True))
    return user_id, value, staff, token


def test_old_cookie_refused_after_staff_end_sessions(app, client, auth, clock):
    user_id, value, staff, token = signed_in_taxpayer_and_staff(app, client, auth, clock)
    response = staff.post(f"/staff/people/{user_id}/end-sessions", data={"csrf_token": token})
    assert response.status_code == 303
    assert row_for(app, value).end_reason == "staff"
    assert_sign_in_redirect(replay(app, value), reason="ended")
    assert_sign_in_redirect(client.get("/profile/"))
    # The staff member's own session is untouched.
    assert staff.get("/staff/").status_code == 200
    with app.extensions["portal.sessionmaker"]() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "sessions.ended_by_staff"))
        assert event.subject_user_id == user_id and json.loads(event.detail)["count"] == 1


def test_old_cookie_refused_after_staff_disable(app, client, auth, clock):
    user_id, value, staff, token = signed_in_taxpayer_and_staff(app, client, auth, clock)
    response = staff.post(f"/staff/people/{user_id}/access", data={"csrf_token": token, "action": "disable"})
    assert response.status_code == 303
    assert user_row(app, user_id).disabled_at is not None
    assert row_for(app, value).end_reason == "staff"
    assert_sign_in_redirect(replay(app, value))
    # And the password no longer opens a new session.
    again = app.test_client()
    assert Auth(again, app).sign_in().status_code == 400
    assert_sign_in_redirect(again.get("/profile/"))


# --- idle time-out ------------------------------------------------------------


def test_request_at_14_59_is_signed_in_and_counts_as_activity(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    for _ in range(3):  # 44 min 57 s in all, never 15 minutes idle
        clock.advance(minutes=14, seconds=59)
        assert client.get("/profile/").status_code == 200
    assert session_json(client)["idle_remaining"] == 15 * 60


@pytest.mark.parametrize(
    "idle", [timedelta(minutes=15), timedelta(minutes=15, seconds=1), timedelta(minutes=15, seconds=59)], ids=str
)
def test_request_in_the_16th_minute_is_signed_out(app, client, auth, clock, idle):
    make_user(app)
    auth.sign_in()
    value = cookie_value(client)
    clock.advance(minutes=5)
    assert client.get("/profile/").status_code == 200  # the last activity
    clock.advance(seconds=idle.total_seconds())
    response = client.get("/profile/details")
    assert_sign_in_redirect(response, reason="idle", next_url="/profile/details")
    assert row_for(app, value).end_reason == "idle"
    # The dead cookie may stay (so a form sent with it is kept for the same
    # person), but it never revives the session: signing in is needed again.
    assert_sign_in_redirect(client.get("/profile/"))
    assert_sign_in_redirect(replay(app, value))
    assert row_for(app, value).end_reason == "idle"


def test_background_requests_do_not_count_as_activity(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    clock.advance(minutes=10)
    state = session_json(client)
    assert state["signed_in"] is True and state["idle_remaining"] == 5 * 60
    clock.advance(minutes=4)
    assert session_json(client)["idle_remaining"] == 60
    clock.advance(minutes=1, seconds=1)  # 15 min 1 s after the last real activity
    assert_sign_in_redirect(client.get("/profile/"), reason="idle")


def test_background_header_on_a_page_does_not_count_either(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    clock.advance(minutes=10)
    assert client.get("/profile/", headers={"X-Background-Request": "1"}).status_code == 200
    clock.advance(minutes=5, seconds=1)
    assert_sign_in_redirect(client.get("/profile/"), reason="idle")


def test_a_normal_session_status_request_is_activity(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    clock.advance(minutes=10)
    assert session_json(client, background=False)["idle_remaining"] == 15 * 60
    clock.advance(minutes=14)
    assert signed_in(client)


def test_extend_counts_as_activity(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/").get_data(as_text=True))
    clock.advance(minutes=10)
    # The page's "Stay signed in" button; sent with the background header like the
    # poll, it still counts, because asking to stay is what it is for.
    response = client.post("/auth/session/extend", headers={"X-CSRFToken": token, "X-Background-Request": "1"})
    assert response.status_code == 200
    state = response.get_json()
    assert state["signed_in"] is True and state["idle_remaining"] == 15 * 60
    clock.advance(minutes=14, seconds=59)
    assert signed_in(client)


def test_extend_after_expiry_does_not_revive(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/").get_data(as_text=True))
    clock.advance(minutes=16)
    response = client.post(
        "/auth/session/extend",
        headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Current-URL": "http://localhost/profile/"},
    )
    assert response.status_code == 401
    assert_sign_in_redirect(client.get("/profile/"))


# --- the session clock ----------------------------------------------------------


def test_session_status_json_against_the_clock(app, client, auth, clock):
    assert session_json(client) == {"signed_in": False}
    make_user(app)
    auth.sign_in()
    state = session_json(client)
    assert state["signed_in"] is True
    assert state["idle_remaining"] == 15 * 60
    assert state["reauth_remaining"] == 60 * 60
    assert state["warning_seconds"] == app.config["SESSION_WARNING_SECONDS"]
    clock.advance(minutes=4, seconds=30)
    state = session_json(client)
    assert state["idle_remaining"] == 10 * 60 + 30
    assert state["reauth_remaining"] == 55 * 60 + 30
    assert client.get("/profile/").status_code == 200
    clock.advance(minutes=3)
    state = session_json(client)
    assert state["idle_remaining"] == 12 * 60
    assert state["reauth_remaining"] == 52 * 60 + 30
    clock.advance(minutes=12)
    assert session_json(client) == {"signed_in": False}


def test_session_status_reports_reauth_due(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 61)
    state = session_json(client)
    assert state["signed_in"] is True and state["reauth_remaining"] == 0


# --- htmx after expiry ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_htmx_request_after_expiry_gets_401_and_hx_redirect(app, client, auth, clock, method):
    make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/details").get_data(as_text=True))
    clock.advance(minutes=16)
    headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/profile/details?tab=2", "X-CSRFToken": token}
    response = client.open(
        "/profile/details",
        method=method,
        headers=headers,
        data={"name": "Typed", "phone": ""} if method == "POST" else None,
    )
    assert response.status_code == 401
    assert "Location" not in response.headers
    path, query = (
        urlsplit(response.headers["HX-Redirect"]).path,
        parse_qs(urlsplit(response.headers["HX-Redirect"]).query),
    )
    assert path == "/auth/sign-in"
    assert query["next"] == ["/profile/details?tab=2"]
    assert query["reason"] == ["idle"]
    assert response.get_data() == b""


def test_htmx_current_url_to_another_host_is_not_used_as_next(app, client):
    response = client.get("/profile/", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example//x"})
    assert response.status_code == 401
    assert parse_qs(urlsplit(response.headers["HX-Redirect"]).query)["next"] == ["/"]


# --- re-confirmation after an hour -------------------------------------------------


def test_page_redirects_to_confirm_after_an_hour_of_activity(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 59, step=14)
    assert client.get("/profile/details").status_code == 200
    clock.advance(minutes=1)
    response = client.get("/profile/details")
    assert response.status_code == 303
    path, query = location(response)
    assert path == "/auth/confirm" and query == {"next": "/profile/details"}
    # The confirm page itself, sign-out and the poll stay reachable.
    assert client.get("/auth/confirm?next=/profile/details").status_code == 200
    assert session_json(client)["signed_in"] is True


def test_half_filled_form_survives_reconfirmation(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    stay_active(client, clock, 56)
    token = csrf_from(client.get("/profile/details").get_data(as_text=True))
    clock.advance(minutes=4)  # the hour is up while the person types
    response = client.post(
        "/profile/details", data={"name": "Jordan Q. Example", "phone": "780 555 0199", "csrf_token": token}
    )
    assert response.status_code == 303
    path, query = location(response)
    assert path == "/auth/confirm" and query["next"] == "/profile/details"
    user = user_row(app, user_id)
    assert user.name == "Jordan Example" and user.phone is None, "nothing saved before re-confirmation"
    # The kept fields are in the server-side row, never in the cookie.
    assert "780 555 0199" not in cookie_value(client)
    kept = json.loads(row_for(app, cookie_value(client)).data)["kept_form"]
    assert kept["path"] == "/profile/details" and kept["user_id"] == user_id
    assert kept["fields"] == [["name", "Jordan Q. Example"], ["phone", "780 555 0199"]]

    confirm_page = client.get(response.headers["Location"])
    assert confirm_page.status_code == 200
    response = client.post(
        "/auth/confirm",
        data={
            "password": PASSWORD,
            "next": "/profile/details",
            "csrf_token": csrf_from(confirm_page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 303
    assert location(response)[0] == "/profile/details"
    page = client.get("/profile/details").get_data(as_text=True)
    assert 'value="Jordan Q. Example"' in page
    assert 'value="780 555 0199"' in page
    assert "We kept what you had typed" in page
    assert user_row(app, user_id).name == "Jordan Example"
    # Handed back once only.
    again = client.get("/profile/details").get_data(as_text=True)
    assert 'value="Jordan Example"' in again and "780 555 0199" not in again


def test_htmx_reconfirmation_in_place(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 60)
    token = csrf_from(client.get("/auth/confirm").get_data(as_text=True))
    response = client.post(
        "/auth/confirm",
        data={"password": PASSWORD, "stay": "y"},
        headers={"HX-Request": "true", "X-CSRFToken": token, "HX-Current-URL": "http://localhost/profile/details"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Trigger"] == "session-reconfirmed"
    assert response.get_data() == b""
    assert session_json(client)["reauth_remaining"] == 60 * 60
    assert client.get("/profile/details").status_code == 200


def test_wrong_password_at_confirm_is_refused_and_still_due(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 60)
    before = cookie_value(client)
    response = auth.post("/auth/confirm", {"password": "not-my-password-at-all", "next": "/profile/details"})
    assert response.status_code == 400
    assert "Your password is not correct" in response.get_data(as_text=True)
    assert cookie_value(client) == before, "no new id for a failed confirmation"
    assert location(client.get("/profile/details"))[0] == "/auth/confirm"
    assert session_json(client)["reauth_remaining"] == 0


def test_form_kept_after_idle_timeout_restored_for_the_same_person(app, client, auth, clock):
    user_id = make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/details").get_data(as_text=True))
    clock.advance(minutes=16)
    response = client.post(
        "/profile/details", data={"name": "Jordan Typed", "phone": "403 555 0100", "csrf_token": token}
    )
    assert_sign_in_redirect(response, reason="idle", next_url="/profile/details")
    assert user_row(app, user_id).name == "Jordan Example"
    response = auth.sign_in(next_url="/profile/details")
    assert response.status_code == 303 and location(response)[0] == "/profile/details"
    page = client.get("/profile/details").get_data(as_text=True)
    assert 'value="Jordan Typed"' in page and 'value="403 555 0100"' in page
    assert user_row(app, user_id).name == "Jordan Example"
    # Saving it is then an ordinary post.
    page_token = csrf_from(page)
    response = client.post(
        "/profile/details", data={"name": "Jordan Typed", "phone": "403 555 0100", "csrf_token": page_token}
    )
    assert response.status_code == 303
    assert user_row(app, user_id).name == "Jordan Typed"


def test_form_kept_after_idle_timeout_not_given_to_another_person(app, client, auth, clock):
    make_user(app)
    make_user(app, email="someone.else@example.com", name="Sam Other")
    auth.sign_in()
    token = csrf_from(client.get("/profile/details").get_data(as_text=True))
    clock.advance(minutes=16)
    response = client.post(
        "/profile/details", data={"name": "Jordan Typed", "phone": "403 555 0100", "csrf_token": token}
    )
    assert_sign_in_redirect(response, reason="idle")
    assert auth.sign_in(email="someone.else@example.com", next_url="/profile/details").status_code == 303
    page = client.get("/profile/details").get_data(as_text=True)
    assert 'value="Sam Other"' in page
    assert "Jordan Typed" not in page and "403 555 0100" not in page
    assert "We kept what you had typed" not in page
    # Nor is it carried into the other person's session at all.
    assert "403 555 0100" not in row_for(app, cookie_value(client)).data


def test_kept_form_never_holds_passwords(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    stay_active(client, clock, 56)
    token = csrf_from(client.get("/profile/password").get_data(as_text=True))
    clock.advance(minutes=4)
    response = client.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": token,
        },
    )
    assert location(response)[0] == "/auth/confirm"
    data = row_for(app, cookie_value(client)).data
    assert PASSWORD not in data and NEW_PASSWORD not in data


# --- absolute limit -------------------------------------------------------------


def test_session_max_seconds_ends_an_active_session(app_with, clock):
    app = app_with(SESSION_MAX_SECONDS=30 * 60)
    make_user(app)
    client = app.test_client()
    Auth(client, app).sign_in()
    value = cookie_value(client)
    for _ in range(2):
        clock.advance(minutes=14)
        assert signed_in(client)
    clock.advance(minutes=2)  # 30 minutes since sign-in, 2 since the last request
    response = client.get("/profile/")
    assert_sign_in_redirect(response)
    assert row_for(app, value).end_reason == "maximum"
    assert_sign_in_redirect(replay(app, value))


def test_default_absolute_limit_is_twelve_hours(app):
    assert app.config["SESSION_MAX_SECONDS"] == 12 * 60 * 60
    assert app.config["SESSION_IDLE_SECONDS"] == 15 * 60
    assert app.config["SESSION_REAUTH_SECONDS"] == 60 * 60


def test_re_confirming_does_not_restart_the_absolute_limit(app_with, clock):
    # Re-confirmation gives a new session id but keeps the start: the absolute
    # limit counts from sign-in, not from the last re-confirmation.
    app = app_with(SESSION_MAX_SECONDS=90 * 60)
    make_user(app)
    client = app.test_client()
    auth = Auth(client, app)
    auth.sign_in()
    started = row_for(app, cookie_value(client)).created_at
    stay_active(client, clock, 61)
    response = auth.post("/auth/confirm", {"password": PASSWORD, "next": "/profile/"})
    assert location(response)[0] == "/profile/"
    assert row_for(app, cookie_value(client)).created_at == started
    stay_active(client, clock, 28)
    assert signed_in(client)
    clock.advance(minutes=2)  # 91 minutes since sign-in
    assert_sign_in_redirect(client.get("/profile/"))


# --- signing out of a session that is already over --------------------------------


def test_sign_out_after_an_idle_time_out_just_says_signed_out(app, client, auth, clock):
    make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/").get_data(as_text=True))
    clock.advance(minutes=16)
    response = client.post("/auth/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/auth/signed-out"


def test_sign_out_while_signed_in_still_needs_the_token(app, client, auth):
    make_user(app)
    auth.sign_in()
    assert client.post("/auth/sign-out", data={}).status_code == 400
    assert signed_in(client)


# --- the start page passes the whole gate for a signed-in person ---------------------


def test_home_sends_an_unverified_person_to_verify_first(app, client, auth):
    make_user(app, verified=False)
    auth.sign_in()
    response = client.get("/")
    assert response.status_code == 303 and response.headers["Location"] == "/auth/verify-email"


def test_home_is_the_start_page_when_signed_out(client):
    response = client.get("/")
    assert response.status_code == 200 and "Sign in" in response.get_data(as_text=True)


@pytest.mark.parametrize("role, status", [("officer", 403), ("supervisor", 403), ("administrator", 303)])
def test_only_an_administrator_ends_a_colleagues_sessions(app, staff_member, role, status):
    """ASVS 5.0 8.2.1, 8.3.1: an officer ends a taxpayer's sessions, but signing a
    colleague out (a supervisor, here) is for administrators, as revoking access is."""
    colleague = staff_member("supervisor")
    actor = staff_member(role)
    response = actor.post(f"/staff/people/{colleague.id}/end-sessions", token_from=f"/staff/people/{colleague.id}")
    assert response.status_code == status
    assert (colleague.get("/staff/").status_code == 200) is (status == 403)
    with app.extensions["portal.sessionmaker"]() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.event == "access.refused")).all()
        assert len(refused) == (1 if status == 403 else 0)


def test_a_hundred_anonymous_page_views_write_no_row(app):
    """Issue 18: every cookieless page view used to write an auth_sessions row (40 GETs,
    40 rows). A visitor's CSRF secret now travels in a signed cookie of its own, so 100
    views write nothing, and the visitor's forms still work with it."""
    make_user(app)
    paths = ["/", "/auth/sign-in", "/auth/register", "/auth/forgot-password", "/pages/service-hours"]
    statuses = set()
    for index in range(100):
        statuses.add(app.test_client().get(paths[index % len(paths)]).status_code)
    assert statuses <= {200, 303, 404}, statuses
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.scalar(select(func.count()).select_from(AuthSession)) == 0
    visitor = app.test_client()
    token = csrf_from(visitor.get("/auth/sign-in").get_data(as_text=True))
    assert (
        visitor.post(
            "/auth/sign-in", data={"email": "taxpayer@example.com", "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 303
    )


def test_a_visitor_token_works_only_with_its_own_cookie(app):
    """Another visitor's token, or this visitor's token after their cookie was altered, is
    refused like any foreign token."""
    make_user(app)
    one, other = app.test_client(), app.test_client()
    token = csrf_from(one.get("/auth/sign-in").get_data(as_text=True))
    other.get("/auth/sign-in")
    data = {"email": "taxpayer@example.com", "password": PASSWORD, "csrf_token": token}
    assert other.post("/auth/sign-in", data=data).status_code == 400
    cookie = one.get_cookie("portal_visitor").value
    one.set_cookie("portal_visitor", cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"))
    assert one.post("/auth/sign-in", data=data).status_code == 400
