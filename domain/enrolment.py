"""Enrolment: an account number and the PIN from an invitation letter link a
person to an account, with the permissions the PIN carries.

The PIN is stored hashed and works once, and expires. The answer never says
whether an account number exists: a wrong PIN and an unknown number read the
same and cost the same (the PIN is found by a keyed HMAC, and one hash is
verified, however many PINs the number has).

Wrong tries hold back the guesser, never the PIN's holder: they are counted per
person and number (five a day), per person across numbers (ENROL_NUMBERS_PER_DAY
distinct numbers a day) and per client address (which holds back only people who
have got one wrong themselves). A PIN itself is never locked by anyone's guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
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
# The keys PINs are found by: the secret key, then earlier ones after a rotation.
_lookup_keys: tuple[bytes, ...] = ()


def configure(secret_key: str, fallbacks=()) -> None:
    """Called by the app factory: PINs are found by an HMAC under the secret key."""
    global _lookup_keys
    _lookup_keys = tuple(hashlib.sha256(f"pin-lookup:{key}".encode()).digest() for key in (secret_key, *fallbacks))


def lookup_value(key: bytes, number: str, pin: str) -> str:
    return hmac.new(key, f"{normalise_number(number)}:{normalise_pin(pin)}".encode(), hashlib.sha256).hexdigest()


def _lookup_values(number: str, pin: str) -> list[str]:
    if not _lookup_keys:
        raise RuntimeError("domain.enrolment.configure() has not been called")
    return [lookup_value(key, number, pin) for key in _lookup_keys]


def new_pin() -> str:
    return "".join(secrets.choice(_PIN_ALPHABET) for _ in range(PIN_LENGTH))


def normalise_pin(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


def issue_pin(
    db: Session,
    now: datetime,
    account: Account,
    *,
    role: str = "owner",
    permissions=None,
    valid_days: int = DEFAULT_VALID_DAYS,
    issued_by_user_id: int | None = None,
    pin: str | None = None,
    invitee_name: str | None = None,
    invitee_email: str | None = None,
) -> str:
    """A new PIN for the account; the plain PIN is returned once and never stored.
    `pin` fixes the PIN instead of drawing one (the demo data only: its PINs are public)."""
    return issue(
        db,
        now,
        account,
        role=role,
        permissions=permissions,
        valid_days=valid_days,
        issued_by_user_id=issued_by_user_id,
        pin=pin,
        invitee_name=invitee_name,
        invitee_email=invitee_email,
    )[1]


def issue(
    db: Session,
    now: datetime,
    account: Account,
    *,
    role: str,
    permissions=None,
    valid_days: int = DEFAULT_VALID_DAYS,
    issued_by_user_id: int | None = None,
    pin: str | None = None,
    invitee_name: str | None = None,
    invitee_email: str | None = None,
    consent_id: int | None = None,
) -> tuple[InvitationPin, str]:
    """The new PIN's row (flushed, so it has an id) and the plain PIN."""
    if pin is None:
        pin = new_pin()
    elif len(pin) != PIN_LENGTH or set(pin) - set(_PIN_ALPHABET):
        raise ValueError(f"a PIN is {PIN_LENGTH} characters from {_PIN_ALPHABET}")
    row = InvitationPin(
        account_id=account.id,
        pin_hash=passwords.hash_password(pin),
        role=role,
        pin_lookup=_lookup_values(account.number, pin)[0],
        permissions=grants.permissions_text(permissions if permissions is not None else grants.ROLE_PRESETS[role]),
        issued_at=now,
        expires_at=now + timedelta(days=valid_days),
        issued_by_user_id=issued_by_user_id,
        invitee_name=invitee_name,
        invitee_email=invitee_email,
        consent_id=consent_id,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        now,
        "pin.issued",
        actor_user_id=issued_by_user_id,
        account=account.number,
        role=role,
        account_id=account.id,
        invitation_id=row.id,
    )
    return row, pin


@dataclass(frozen=True)
class Limits:
    numbers_per_day: int = 10
    client_failures_per_day: int = 100


@dataclass(frozen=True)
class Outcome:
    """`result` is "linked", "already", "no-match", "locked" (a PIN locked before
    PINs stopped locking), "expired", "too-many" (this number, or this client) or
    "too-many-numbers"; `retry_at` says when a held-back person may try again."""

    result: str
    account: Account | None = None
    issued_by_agency: bool = True
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Keys:
    number: str  # this person and this number
    person: str  # this person, one event per distinct number got wrong
    client: str  # this client address


def _keys(secret: str, user_id: int, number: str, client: str) -> _Keys:
    return _Keys(
        throttle.key_for(secret, f"enrol:{user_id}:{number}"),
        throttle.key_for(secret, f"enrol-person:{user_id}"),
        throttle.key_for(secret, f"enrol-client:{client}"),
    )


def _held_back(db: Session, now: datetime, keys: _Keys, limits: Limits) -> Outcome | None:
    """Refused before any look-up when the person (or their client) has guessed too much."""
    tried_this_number = throttle.failures(db, "enrol", keys.number, now, TRY_WINDOW)
    if tried_this_number >= MAX_TRIES:
        return Outcome("too-many", retry_at=throttle.free_at(db, "enrol", keys.number, now, TRY_WINDOW, MAX_TRIES))
    numbers_tried = throttle.failures(db, "enrol-numbers", keys.person, now, TRY_WINDOW)
    if tried_this_number == 0 and numbers_tried >= limits.numbers_per_day:
        return Outcome(
            "too-many-numbers",
            retry_at=throttle.free_at(db, "enrol-numbers", keys.person, now, TRY_WINDOW, limits.numbers_per_day),
        )
    # Many people guessing from one address: it holds back those of them who have got
    # one wrong, so someone who shares the address and types their own PIN still links.
    if (tried_this_number or numbers_tried) and throttle.failures(
        db, "enrol-client", keys.client, now, TRY_WINDOW
    ) >= limits.client_failures_per_day:
        return Outcome(
            "too-many",
            retry_at=throttle.free_at(db, "enrol-client", keys.client, now, TRY_WINDOW, limits.client_failures_per_day),
        )
    return None


def _count_wrong_try(db: Session, now: datetime, keys: _Keys) -> None:
    if not throttle.failures(db, "enrol", keys.number, now, TRY_WINDOW):
        throttle.record_failure(db, "enrol-numbers", keys.person, now)  # a number not got wrong before today
    throttle.record_failure(db, "enrol", keys.number, now)
    throttle.record_failure(db, "enrol-client", keys.client, now)


def _find(db: Session, number: str, typed: str) -> InvitationPin | None:
    """The outstanding PIN the typed one is, by one query and one hash check, whatever
    the number has. A PIN issued before lookups existed (pin_lookup None) is checked
    against its hash, until it is used or expires."""
    rows = list(
        db.scalars(
            select(InvitationPin)
            .join(Account, Account.id == InvitationPin.account_id)
            .where(
                Account.number == number,
                InvitationPin.used_at.is_(None),
                InvitationPin.cancelled_at.is_(None),
                or_(InvitationPin.pin_lookup.in_(_lookup_values(number, typed)), InvitationPin.pin_lookup.is_(None)),
            )
            .order_by(InvitationPin.id)
            # Locked for this try (FOR UPDATE on PostgreSQL; on SQLite the throttle's
            # check already holds the one write lock): a PIN is used once.
            .with_for_update(of=InvitationPin)
            .execution_options(populate_existing=True)
        )
    )
    found = next((row for row in rows if row.pin_lookup is not None), None)
    if passwords.verify_password(found.pin_hash if found else None, typed):
        return found
    return next(
        (row for row in rows if row.pin_lookup is None and passwords.verify_password(row.pin_hash, typed)), None
    )


def _for_this_person(db: Session, pin: InvitationPin, user_id: int) -> bool:
    """Whether the signed-in person may use this PIN: anyone, for a PIN that names no
    email (an invitation letter, a delegate's PIN given by hand); else only the person
    whose verified email is the one it names."""
    if not pin.invitee_email:
        return True
    user = db.get(User, user_id)
    return (
        user is not None
        and user.email_verified_at is not None
        and user.email.strip().casefold() == pin.invitee_email.strip().casefold()
    )


def enrol(
    db: Session,
    now: datetime,
    secret: str,
    *,
    user_id: int,
    number: str,
    pin: str,
    client: str = "unknown",
    limits: Limits = Limits(),
) -> Outcome:
    number = normalise_number(number)
    keys = _keys(secret, user_id, number, client)
    held_back = _held_back(db, now, keys, limits)
    if held_back is not None:
        audit.record(db, now, "enrolment", "locked", actor_user_id=user_id, reason=held_back.result)
        db.commit()
        return held_back
    match = _find(db, number, normalise_pin(pin))
    if match is None:
        _count_wrong_try(db, now, keys)
        audit.record(db, now, "enrolment", "failure", actor_user_id=user_id)
        db.commit()
        return Outcome("no-match")
    account = db.get_one(Account, match.account_id)
    if not _for_this_person(db, match, user_id):
        return _refused_to_another_person(db, now, keys, match, account, user_id)
    if match.locked_at is not None:
        db.commit()
        return Outcome("locked", issued_by_agency=match.issued_by_user_id is None)
    if match.expires_at <= now:
        audit.record(
            db, now, "enrolment", "expired", actor_user_id=user_id, account=account.number, account_id=account.id
        )
        db.commit()
        return Outcome("expired", account, issued_by_agency=match.issued_by_user_id is None)
    existing = db.scalar(
        select(Grant).where(Grant.user_id == user_id, Grant.account_id == account.id, Grant.revoked_at.is_(None))
    )
    match.used_at, match.used_by_user_id = now, user_id
    if existing is not None:
        audit.record(
            db, now, "enrolment", "already", actor_user_id=user_id, account=account.number, account_id=account.id
        )
        db.commit()
        return Outcome("already", account)
    _give_access(db, now, match, account, user_id)
    throttle.clear(db, "enrol", keys.number)
    audit.record(
        db, now, "enrolment", actor_user_id=user_id, account=account.number, role=match.role, account_id=account.id
    )
    db.commit()
    return Outcome("linked", account, issued_by_agency=match.issued_by_user_id is None)


def _refused_to_another_person(
    db: Session, now: datetime, keys: _Keys, match: InvitationPin, account: Account, user_id: int
) -> Outcome:
    """A PIN issued for a named person (a representative's, or a delegate's that
    names an email) works for that person alone: anyone else who holds it gets
    the answer a wrong PIN gets, learns nothing of its state, and is recorded."""
    _count_wrong_try(db, now, keys)
    audit.record(
        db,
        now,
        "enrolment",
        "failure",
        actor_user_id=user_id,
        reason="not-the-named-person",
        account_id=account.id,
        invitation_id=match.id,
    )
    db.commit()
    return Outcome("no-match")


def _give_access(db: Session, now: datetime, match: InvitationPin, account: Account, user_id: int) -> None:
    """The grant the PIN carries (for the dates of the consent it came with, if any), and the message saying so."""
    consent = db.get(Consent, match.consent_id) if match.consent_id else None
    grants.give(
        db,
        now,
        user_id=user_id,
        account=account,
        role=match.role,
        permissions=match.permissions.split(","),
        granted_by_user_id=match.issued_by_user_id,
        consent_id=consent.id if consent else None,
        valid_from=consent.starts_on if consent else None,
        valid_until=consent.ends_on if consent else None,
    )
    messages.access_granted(db, now, account=account, user_id=user_id)
