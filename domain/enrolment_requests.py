"""Asking for an invitation letter online (TRACS's "Enrolment Request"). Plain
functions, no Flask; the caller commits.

Anyone, signed in or not, names an account (by its number, or by the business's
legal name with its registration number or address) and says who they are. The
request lands in the "enrolments" work queue; an officer finds the account and
`send_letter` posts an invitation letter to the mailing address on file
(domain.letters), never to an address given in the request.

What protects the account's people:
- The answer, the email and the work done are the same whether or not the
  details match an account: nothing is looked up when the request arrives, so
  neither the words nor the timing say whether an account exists.
- The email to the requester carries none of what they typed, so the form cannot
  send chosen words to a stranger's inbox.
- Requests are limited per connection and per requester's email address (keyed
  hashes, domain.throttle): the limit holds back whoever keeps asking, never the
  account's people, who can still ask from their own address and connection.
- A letter is not posted again while one posted in the last LETTER_INTERVAL may
  still be on its way, however many requests name the account.
- Nothing the requester typed goes into the logs or the audit log.
- The requester's name, email, phone and any business number or address they gave
  are erased DETAILS_KEPT after the request is closed (`erase_closed`, run by
  `flask purge` with domain.retention's other rules); the account number and
  legal name stay, so the queue's record still says what was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain import audit, letters, outbox, throttle, work
from domain.accounts import format_number
from domain.db import rows_changed
from models import ENROLMENT_ROLES, Account, EnrolmentRequest, InvitationPin, User, WorkItem

ROLE_LABELS = {
    "owner": "Owner or partner",
    "director": "Director or officer of the corporation",
    "employee": "Employee",
    "bookkeeper": "Bookkeeper or accountant",
    "representative": "Representative (for example a lawyer or tax preparer)",
    "other": "Something else",
}
if tuple(ROLE_LABELS) != ENROLMENT_ROLES:  # checked at import, even under -O
    raise RuntimeError("every enrolment role needs its label")

BUSINESS_DAYS_TO_WAIT = 10
LETTER_INTERVAL = timedelta(days=30)
WINDOW = timedelta(days=1)
EMAIL_SUBJECT = "Your request for an invitation letter"
# Long enough to answer a complaint about how a request was handled; no longer.
DETAILS_KEPT = timedelta(days=90)


@dataclass(frozen=True)
class Limits:
    """Requests a day (config.py's LETTER_REQUESTS_PER_CLIENT_PER_DAY and _PER_EMAIL_PER_DAY)."""

    per_client_per_day: int
    per_email_per_day: int


@dataclass(frozen=True)
class Asked:
    """What the form says. Either `account_number`, or `legal_name` with a
    `business_number` or a `business_address` (the form checks which)."""

    account_number: str | None
    legal_name: str | None
    business_number: str | None
    business_address: str | None
    name: str
    email: str
    phone: str
    role: str


def answer_email(enrol_url: str) -> str:
    """The one email every request gets, matched or not: no word of what was typed."""
    return (
        "We have your request for an invitation letter to TRA Client Self-Service.\n\n"
        "If the details you gave match an account, we will post an invitation letter to the mailing "
        "address we have on file for that account. We never send it to an address given in a request. "
        f"Allow {BUSINESS_DAYS_TO_WAIT} business days for it to arrive.\n\n"
        f"The letter has the account number and a PIN. Enter them at {enrol_url} after you sign in.\n\n"
        "If you did not ask for this, you need do nothing.\n"
    )


def held_back(db: Session, now: datetime, secret: str, *, client: str, email: str, limits: Limits) -> datetime | None:
    """Count this request against the connection's and the email address's
    allowance: None when it may go on, else when it may again."""
    checks = (
        ("letter-ask-client", throttle.key_for(secret, f"client:{client}"), limits.per_client_per_day),
        ("letter-ask-email", throttle.key_for(secret, f"email:{email}"), limits.per_email_per_day),
    )
    for scope, key, limit in checks:
        when = throttle.use(db, scope, key, now, WINDOW, limit)
        if when is not None:
            return when
    return None


def submit(db: Session, now: datetime, asked: Asked, *, enrol_url: str) -> EnrolmentRequest:
    """Keep the request, open its work item and queue the answer email: the same
    rows and the same email whatever the details (no account is looked up)."""
    if asked.role not in ENROLMENT_ROLES:
        raise ValueError(f"unknown role {asked.role!r}")
    row = EnrolmentRequest(
        received_at=now,
        account_number=asked.account_number or None,
        legal_name=asked.legal_name or None,
        business_number=asked.business_number or None,
        business_address=asked.business_address or None,
        requester_name=asked.name,
        requester_email=asked.email,
        requester_phone=asked.phone,
        requester_role=asked.role,
    )
    db.add(row)
    db.flush()
    item = work.open_for_enrolment_request(db, now, row, summary_of(row))
    outbox.enqueue(db, now, asked.email, EMAIL_SUBJECT, answer_email(enrol_url))
    audit.record(db, now, "enrolment.letter_requested", item=item.id)
    return row


def summary_of(row: EnrolmentRequest) -> str:
    """How the queue names the request: the account it names, never the requester."""
    if row.account_number:
        return f"Letter for account {format_number(row.account_number)}"
    return f"Letter for {row.legal_name or 'a business'}"


def find(db: Session, request_id: int | None) -> EnrolmentRequest | None:
    return db.get(EnrolmentRequest, request_id) if request_id else None


def last_letter_at(db: Session, account_id: int) -> datetime | None:
    """When the agency last issued an invitation letter's PIN for the account."""
    return db.scalar(
        select(InvitationPin.issued_at)
        .where(
            InvitationPin.account_id == account_id,
            InvitationPin.role == "owner",
            InvitationPin.issued_by_user_id.is_(None),
            InvitationPin.consent_id.is_(None),
        )
        .order_by(InvitationPin.issued_at.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class LetterPlace:
    """What the letter says about where to go, and when it is dated."""

    today: date
    register_url: str
    enrol_url: str
    agency_phone: str
    zone: str


def send_letter(
    db: Session, now: datetime, item: WorkItem, staff: User, account: Account, *, key: str, place: LetterPlace
) -> None:
    """Post an invitation letter for the account to its address on file and close
    the item. Refused (work.WorkRefused) when the item is not this staff member's
    to decide, or a letter went to the account within LETTER_INTERVAL: then the
    officer closes the request without one. A reissue cancels the account's
    letter PINs still waiting, so only the newest letter works."""
    if item.queue != "enrolments":
        raise work.WorkRefused("Only a request for an invitation letter is answered with one")
    work.check_can_decide(item, staff)
    last = last_letter_at(db, account.id)
    if last is not None and now - last < LETTER_INTERVAL:
        raise work.WorkRefused(
            "An invitation letter went to this account in the last 30 days: close this request without a letter",
            "number",
        )
    letters.issue_invitation(
        db,
        now,
        place.today,
        account=account,
        staff_user_id=staff.id,
        key=key,
        reissue=True,
        register_url=place.register_url,
        enrol_url=place.enrol_url,
        agency_phone=place.agency_phone,
        zone=place.zone,
    )
    item.account_id = account.id
    work.close(db, now, item, "letter_sent", "Invitation letter posted to the address on file", by_user_id=staff.id)


def erase_closed(db: Session, now: datetime) -> int:
    """Erase what the requester told us about themselves from requests closed more
    than DETAILS_KEPT ago (an erased field is empty); how many requests."""
    closed = select(WorkItem.enrolment_request_id).where(
        WorkItem.queue == "enrolments",
        WorkItem.decided_at < now - DETAILS_KEPT,
        WorkItem.enrolment_request_id.is_not(None),
    )
    query = (
        update(EnrolmentRequest)
        .where(EnrolmentRequest.id.in_(closed), EnrolmentRequest.requester_email != "")
        .values(requester_name="", requester_email="", requester_phone="", business_number=None, business_address=None)
    )
    return rows_changed(db, query)
