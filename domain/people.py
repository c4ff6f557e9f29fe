"""The person's identity: registration, sign-in checks, email verification,
password changes and resets, the second factor. Views call these; they commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, passwords, sessions, throttle, totp
from models import PersonRules, User


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(User.email == normalise_email(email)))


def names_of(db: Session, user_ids: Iterable[int | None]) -> dict[int | None, str]:
    """Each of these people's names by id, in one query (None ids are skipped). Keyed by
    int | None, as the ids looked up may be None (nobody): those find no name."""
    ids = {i for i in user_ids if i is not None}
    return dict(db.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}


def register(db: Session, now: datetime, *, name: str, email: str, password: str) -> User:
    user = User(
        name=name.strip(),
        email=normalise_email(email),
        password_hash=passwords.hash_password(password),
        created_at=now,
        password_changed_at=now,
    )
    db.add(user)
    db.flush()
    audit.record(db, now, "account.registered", actor_user_id=user.id)
    return user


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    locked: bool = False


def check_password_sign_in(
    db: Session,
    now: datetime,
    secret: str,
    *,
    email: str,
    password: str,
    client: str,
    max_failures: int,
    client_max_failures: int,
    window: timedelta,
    staff_only: bool = False,
    device: str | None = None,
) -> SignInResult:
    """Check an email and password under the failure limits. The same answer and
    the same work whether or not the email is known.

    `device` is the id of a browser that has signed in as this email before (OWASP's
    device cookies, web.credentials): it has an allowance of its own, so guesses from
    elsewhere, which lock the email for browsers it has never used, never lock the
    person out of their own browser. Its failures count against it alone."""
    limits = (
        [("signin-device", throttle.key_for(secret, f"device:{device}"), max_failures)]
        if device
        else [
            ("signin-email", throttle.key_for(secret, email), max_failures),
            ("signin-client", throttle.key_for(secret, client), client_max_failures),
        ]
    )
    if any(throttle.failures(db, scope, key, now, window) >= limit for scope, key, limit in limits):
        audit.record(db, now, "signin.refused", "locked")
        db.commit()
        return SignInResult(None, locked=True)
    user = find_by_email(db, email)
    good = passwords.verify_password(user.password_hash if user else None, password)
    if good and user is not None and not user.is_disabled and (user.is_staff or not staff_only):
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
        scope, key, _limit = limits[0]
        throttle.clear(db, scope, key)
        return SignInResult(user)
    for scope, key, _limit in limits:
        throttle.record_failure(db, scope, key, now)
    audit.record(db, now, "signin.password", "failure", subject_user_id=user.id if user else None)
    db.commit()
    return SignInResult(None)


def check_second_factor(
    db: Session, now: datetime, secret: str, user: User, code: str, max_failures: int, window: timedelta
) -> tuple[str | None, bool]:
    """(factor used or None, locked)."""
    key = throttle.key_for(secret, f"user:{user.id}")
    if throttle.failures(db, "second-factor", key, now, window) >= max_failures:
        audit.record(db, now, "signin.second_factor", "locked", subject_user_id=user.id)
        db.commit()
        return None, True
    # Read the person again under the lock failures() took: a code another worker
    # accepted a moment ago (its time step, a used recovery code) is seen, not replayed.
    db.refresh(user)
    factor = totp.verify_second_factor(user, code, now)
    if factor is None:
        throttle.record_failure(db, "second-factor", key, now)
        audit.record(db, now, "signin.second_factor", "failure", subject_user_id=user.id)
        db.commit()
        return None, False
    throttle.clear(db, "second-factor", key)
    if factor == "recovery":
        audit.record(db, now, "recovery_code.used", actor_user_id=user.id, remaining=totp.unused_recovery_codes(user))
    return factor, False


def mark_email_verified(db: Session, now: datetime, user: User) -> None:
    if user.email_verified_at is None:
        user.email_verified_at = now
        audit.record(db, now, "email.verified", actor_user_id=user.id)


def set_password(
    db: Session, now: datetime, user: User, new_password: str, *, event: str, keep_session_id: str | None = None
) -> int:
    """Change the password and end every other session (a stolen cookie dies with it)."""
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = now
    ended = sessions.end_all_for_user(db, user.id, now, "password-changed", except_id=keep_session_id)
    audit.record(db, now, event, actor_user_id=user.id, sessions_ended=ended)
    return ended


def password_fingerprint(user: User) -> str:
    """Part of a reset link's payload: once the password changes, old links die."""
    return throttle.key_for(user.password_hash, "reset")[:16]


def two_factor_required(user: PersonRules, require_for_all: bool) -> bool:
    return user.is_staff or require_for_all
