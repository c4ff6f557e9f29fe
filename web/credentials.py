"""Checking a password and a second-factor code under the database-held limits,
with the messages a form shows. Sign-in, staff sign-in, re-confirmation and every
profile change that asks for the password again go through here."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from flask import after_this_request, current_app, request, session, url_for
from itsdangerous import BadData, URLSafeTimedSerializer

from domain import audit, people, throttle
from models import User
from web.access import safe_next
from web.database import get_db, now
from web.htmx import see_other
from web.observability import SIGN_IN_FAILURES, SIGN_IN_LOCKS
from web.secret_key import secret_key
from web.sessions import server_session

TOO_MANY_PASSWORDS = "You have tried too many times. Wait 15 minutes and try again, or reset your password"
TOO_MANY_CODES = "You have entered too many wrong codes. Wait 15 minutes and try again"


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])


# OWASP's device cookies: a browser that has signed in as a person keeps a signed
# note of it, and with it an allowance of its own (domain.people). The note names
# nobody: a keyed hash of the email and a random id, for the last few people.
DEVICE_SALT = "portal.device-cookie.v1"
DEVICE_DAYS = 180
PEOPLE_PER_DEVICE = 5


def _device_cookie_name() -> str:
    return "__Host-device" if current_app.config["SESSION_COOKIE_SECURE"] else "portal_device"


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=DEVICE_SALT)


def _login_of(email: str) -> str:
    return throttle.key_for(secret_key(), f"device-login:{people.normalise_email(email)}")[:32]


def _device_entries() -> list[list[str]]:
    raw = request.cookies.get(_device_cookie_name())
    if not raw:
        return []
    try:
        entries = _device_signer().loads(raw, max_age=DEVICE_DAYS * 24 * 3600)
    except BadData:
        return []
    if not isinstance(entries, list):
        return []
    return [
        entry
        for entry in entries
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)
    ]


def device_for(email: str) -> str | None:
    """This browser's id for the person with this email, when it has signed in as them."""
    login = _login_of(email)
    return next((device for known, device in _device_entries() if hmac.compare_digest(known, login)), None)


def remember_device(user: User) -> None:
    """After a full sign-in: this browser is one the person uses (a new id each time)."""
    login = _login_of(user.email)
    others = [entry for entry in _device_entries() if entry[0] != login][-(PEOPLE_PER_DEVICE - 1) :]
    value = _device_signer().dumps([*others, [login, secrets.token_urlsafe(18)]])
    secure = current_app.config["SESSION_COOKIE_SECURE"]

    @after_this_request
    def set_device_cookie(response):
        response.set_cookie(
            _device_cookie_name(),
            value,
            max_age=DEVICE_DAYS * 24 * 3600,
            path="/",
            secure=secure,
            httponly=True,
            samesite="Strict",
        )
        return response


def check_password(email: str, password: str, *, staff_only: bool = False) -> people.SignInResult:
    config = current_app.config
    result = people.check_password_sign_in(
        get_db(),
        now(),
        secret_key(),
        email=email,
        password=password,
        client=request.remote_addr or "unknown",
        max_failures=config["SIGNIN_MAX_FAILURES"],
        client_max_failures=config["SIGNIN_CLIENT_MAX_FAILURES"],
        window=_window(),
        staff_only=staff_only,
        device=device_for(email),
    )
    if result.locked:
        SIGN_IN_LOCKS.inc()
    elif result.user is None:
        SIGN_IN_FAILURES.inc()
    return result


def check_code(user: User, code: str) -> tuple[str | None, bool]:
    """(the factor that matched, or None; whether the person is locked out)."""
    factor, locked = people.check_second_factor(
        get_db(), now(), secret_key(), user, code or "", current_app.config["SIGNIN_MAX_FAILURES"], _window()
    )
    if locked:
        SIGN_IN_LOCKS.inc()
    elif factor is None:
        SIGN_IN_FAILURES.inc()
    return factor, locked


def check_password_and_code(user: User, password_field, code_field) -> tuple[int, str | None]:
    """The signed-in person's own password (and code, when they have a second
    factor): (HTTP status for the form, factor used). Errors go on the fields."""
    result = check_password(user.email, password_field.data or "")
    if result.locked:
        password_field.errors.append(TOO_MANY_PASSWORDS)
        return 429, None
    if result.user is None or result.user.id != user.id:
        password_field.errors.append("Your password is not correct")
        return 400, None
    if not user.has_two_factor:
        return 200, "password"
    factor, locked = check_code(user, code_field.data)
    if factor is None:
        code_field.errors.append(TOO_MANY_CODES if locked else "Enter a correct security code")
        return (429 if locked else 400), None
    return 200, factor


def complete_sign_in(user: User, next_url: str | None, factor: str):
    """Both factors passed: a new session id and CSRF token, then on to `next`."""
    db, moment = get_db(), now()
    session.pop("pending_sign_in", None)
    if session.get("kept_form", {}).get("user_id") != user.id:
        session.pop("kept_form", None)  # someone else's form, from before a time-out on this browser
    server_session().begin_authenticated(user.id, moment, new_csrf_token=True)
    remember_device(user)
    audit.record(db, moment, "signin", actor_user_id=user.id, factor=factor)
    db.commit()
    return see_other(safe_next(next_url, url_for("home")))
