"""Limits on requests that cost something: an email sent to an address because
someone asked, or a password hash made for a signed-out visitor. Counted in the
database (domain.throttle), so they hold across workers and servers; the answer
a page gives is the same whether or not an address has an account."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, request

from domain import people, throttle
from web.database import get_db, now
from web.secret_key import secret_key
from web.templating import local_time

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def may_email(address: str) -> bool:
    """One more email to this address this hour, counted. Beyond the limit the email is
    not sent, and the page says what it would have said: a stranger cannot fill
    someone's inbox, and the answer tells nobody whether the address is known."""
    key = throttle.key_for(secret_key(), f"email-to:{people.normalise_email(address)}")
    return (
        throttle.use(get_db(), "email-to", key, now(), HOUR, current_app.config["EMAILS_PER_ADDRESS_PER_HOUR"]) is None
    )


def client_held_back() -> datetime | None:
    """A signed-out form that hashes a password or sends an email, counted for this
    client address: None when it may go on, else when it may again."""
    key = throttle.key_for(secret_key(), f"client:{request.remote_addr or 'unknown'}")
    return throttle.use(get_db(), "client-requests", key, now(), HOUR, current_app.config["CLIENT_REQUESTS_PER_HOUR"])


def person_held_back(scope: str, user_id: int, limit: int, window: timedelta = DAY) -> datetime | None:
    """An action one signed-in person may take `limit` times in the window, counted."""
    key = throttle.key_for(secret_key(), f"{scope}:{user_id}")
    return throttle.use(get_db(), scope, key, now(), window, limit)


FROM_THIS_CONNECTION = "This form has been sent too many times from your internet connection"
BY_YOU_TODAY = "You have sent too many of these requests today"


def try_again_after(when: datetime, why: str = FROM_THIS_CONNECTION) -> str:
    return f"{why}. Try again after {local_time(when)}"
