"""Enrolment: an account number and the PIN from an invitation letter link a
person to an account, with the permissions the PIN carries.

The PIN is stored hashed, works once, expires, and locks after five wrong tries.
The answer never says whether an account number exists: a wrong PIN and an
unknown number read the same, and the tries are counted per person and number
whether or not the account exists.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, grants, messages, passwords, throttle
from domain.accounts import normalise_number
from models import Account, Consent, Grant, InvitationPin, User

MAX_TRIES = 5
DEFAULT_VALID_DAYS = 90
TRY_WINDOW = timedelta(hours=24)
# No 0/O, 1/I/L: read from a letter, typed by hand.
_PIN_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PIN_LENGTH = 10


def new_pin() -> str:
    return "".join(secrets.choice(_PIN_ALPHABET) for _ in range(PIN_LENGTH))


def normalise_pin(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


def issue_pin(db: Session, now: datetime, account: Account, *, role: str = "owner", permissions=None,
              valid_days: int = DEFAULT_VALID_DAYS, issued_by_user_id: int | None = None,
              pin: str | None = None, invitee_name: str | None = None,
              invitee_email: str | None = None) -> str:
    """A new PIN for the account; the plain PIN is returned once and never stored.
    `pin` fixes the PIN instead of drawing one (the demo data only: its PINs are public)."""
    return issue(db, now, account, role=role, permissions=permissions, valid_days=valid_days,
                 issued_by_user_id=issued_by_user_id, pin=pin, invitee_name=invitee_name,
                 invitee_email=invitee_email)[1]


def issue(db: Session, now: datetime, account: Account, *, role: str, permissions=None,
          valid_days: int = DEFAULT_VALID_DAYS, issued_by_user_id: int | None = None, pin: str | None = None,
          invitee_name: str | None = None, invitee_email: str | None = None,
          consent_id: int | None = None) -> tuple[InvitationPin, str]:
    """The new PIN's row (flushed, so it has an id) and the plain PIN."""
    if pin is None:
        pin = new_pin()
    elif len(pin) != PIN_LENGTH or set(pin) - set(_PIN_ALPHABET):
        raise ValueError(f"a PIN is {PIN_LENGTH} characters from {_PIN_ALPHABET}")
    row = InvitationPin(
        account_id=account.id, pin_hash=passwords.hash_password(pin), role=role,
        permissions=grants.permissions_text(permissions if permissions is not None else grants.ROLE_PRESETS[role]),
        issued_at=now, expires_at=now + timedelta(days=valid_days), issued_by_user_id=issued_by_user_id,
        invitee_name=invitee_name, invitee_email=invitee_email, consent_id=consent_id)
    db.add(row)
    db.flush()
    audit.record(db, now, "pin.issued", actor_user_id=issued_by_user_id, account=account.number, role=role,
                 account_id=account.id, invitation_id=row.id)
    return row, pin


@dataclass(frozen=True)
class Outcome:
    """`result` is "linked", "already", "no-match", "locked" or "expired"."""

    result: str
    account: Account | None = None
    issued_by_agency: bool = True


def _for_this_person(db: Session, pin: InvitationPin, user_id: int) -> bool:
    """Whether the signed-in person may use this PIN: anyone, for a PIN that names no
    email (an invitation letter, a delegate's PIN given by hand); else only the person
    whose verified email is the one it names."""
    if not pin.invitee_email:
        return True
    user = db.get(User, user_id)
    return (user is not None and user.email_verified_at is not None
            and user.email.strip().casefold() == pin.invitee_email.strip().casefold())


def enrol(db: Session, now: datetime, secret: str, *, user_id: int, number: str, pin: str) -> Outcome:
    number = normalise_number(number)
    key = throttle.key_for(secret, f"enrol:{user_id}:{number}")
    if throttle.failures(db, "enrol", key, now, TRY_WINDOW) >= MAX_TRIES:
        audit.record(db, now, "enrolment", "locked", actor_user_id=user_id)
        db.commit()
        return Outcome("locked")
    account = db.scalar(select(Account).where(Account.number == number))
    # The account's PINs are locked for this try (FOR UPDATE on PostgreSQL; on
    # SQLite the throttle's check already holds the one write lock): people trying
    # the same account at once take turns, so no wrong try is lost from a PIN's
    # count and a PIN is used once.
    candidates = [] if account is None else list(db.scalars(
        select(InvitationPin).where(InvitationPin.account_id == account.id, InvitationPin.used_at.is_(None),
                                   InvitationPin.cancelled_at.is_(None))
        .order_by(InvitationPin.id).with_for_update().execution_options(populate_existing=True)))
    typed = normalise_pin(pin)
    match = next((c for c in candidates if passwords.verify_password(c.pin_hash, typed)), None)
    if match is None:
        if not candidates:
            passwords.verify_password(None, typed)  # the same work as a real check
        throttle.record_failure(db, "enrol", key, now)
        for candidate in candidates:
            # Every outstanding PIN of the account counts the wrong try, so five
            # guesses from anyone, anywhere, lock them.
            candidate.failed_attempts += 1
            if candidate.failed_attempts >= MAX_TRIES and candidate.locked_at is None:
                candidate.locked_at = now
        audit.record(db, now, "enrolment", "failure", actor_user_id=user_id)
        db.commit()
        return Outcome("no-match")
    if not _for_this_person(db, match, user_id):
        # A PIN issued for a named person (a representative's, or a delegate's that
        # names an email) works for that person alone: anyone else who holds it gets
        # the answer a wrong PIN gets, learns nothing of its state, and is recorded.
        # The PIN's own count is left alone, so the holder can still use it.
        throttle.record_failure(db, "enrol", key, now)
        audit.record(db, now, "enrolment", "failure", actor_user_id=user_id, reason="not-the-named-person",
                     account_id=account.id, invitation_id=match.id)
        db.commit()
        return Outcome("no-match")
    if match.locked_at is not None:
        db.commit()
        return Outcome("locked", issued_by_agency=match.issued_by_user_id is None)
    if match.expires_at <= now:
        audit.record(db, now, "enrolment", "expired", actor_user_id=user_id, account=account.number,
                     account_id=account.id)
        db.commit()
        return Outcome("expired", account, issued_by_agency=match.issued_by_user_id is None)
    existing = db.scalar(select(Grant).where(Grant.user_id == user_id, Grant.account_id == account.id,
                                             Grant.revoked_at.is_(None)))
    match.used_at, match.used_by_user_id = now, user_id
    if existing is not None:
        audit.record(db, now, "enrolment", "already", actor_user_id=user_id, account=account.number,
                     account_id=account.id)
        db.commit()
        return Outcome("already", account)
    consent = db.get(Consent, match.consent_id) if match.consent_id else None
    grants.give(db, now, user_id=user_id, account=account, role=match.role,
                permissions=match.permissions.split(","), granted_by_user_id=match.issued_by_user_id,
                consent_id=consent.id if consent else None, valid_from=consent.starts_on if consent else None,
                valid_until=consent.ends_on if consent else None)
    messages.access_granted(db, now, account=account, user_id=user_id)
    throttle.clear(db, "enrol", key)
    audit.record(db, now, "enrolment", actor_user_id=user_id, account=account.number, role=match.role,
                 account_id=account.id)
    db.commit()
    return Outcome("linked", account, issued_by_agency=match.issued_by_user_id is None)
