"""Direct deposit: the Canadian bank account an account's refunds are paid into.

The details are an institution number (3 digits), a transit (branch) number
(5 digits) and an account number (7 to 12 digits). Institution and transit are
printed on every cheque and are shown in full; the account number is shown only
as its last three digits, everywhere after the form it is typed into (pages,
the service request, messages, email, the audit log). The full number is kept
in two places only: the person's draft while they check it (scrubbed when they
submit) and the DirectDeposit row refunds are paid from.

A change ends the current row and adds a new one, so the history is kept. Every
person with access to the account is told, in Messages. Plain
functions, no Flask."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, drafts, messages, requests, sending
from domain.accounts import format_number
from models import Account, DirectDeposit, Draft, User

KIND = "direct_deposit"
MASK = "\u2022" * 7  # the same seven dots whatever the length, so the mask does not tell the length

# (draft key, what the field is called in messages, how many digits, example)
_FIELDS = {
    "institution": ("Institution number", (3, 3), "004"),
    "transit": ("Transit number", (5, 5), "12345"),
    "bank_account": ("Account number", (7, 12), "1234567"),
}
FIELDS = tuple(_FIELDS)
# Digits 0 to 9 only (str.isdigit would take Arabic-Indic and other digits), with
# spaces and hyphens allowed between them as people copy them from a cheque.
_ALLOWED = re.compile(r"[0-9 \-]*")
_SEPARATORS = re.compile(r"[ \-]+")
MAX_TYPED = 40  # longer than any number typed with separators: not worth reading further


def clean(field: str, raw) -> tuple[str | None, str | None]:
    """(the digits, None) or (None, the message to show beside the field)."""
    name, (shortest, longest), example = _FIELDS[field]
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None, f"Enter the {name[0].lower() + name[1:]}"
    if len(text) > MAX_TYPED:
        return None, _length_message(name, shortest, longest)
    if not _ALLOWED.fullmatch(text):
        return None, f"{name} must only include numbers 0 to 9, like {example}"
    digits = _SEPARATORS.sub("", text)
    if not digits:
        return None, f"{name} must only include numbers 0 to 9, like {example}"
    if not shortest <= len(digits) <= longest:
        return None, _length_message(name, shortest, longest)
    return digits, None


def _length_message(name: str, shortest: int, longest: int) -> str:
    if shortest == longest:
        return f"{name} must be {shortest} digits"
    return f"{name} must be between {shortest} and {longest} digits"


@dataclass(frozen=True)
class Details:
    institution: str
    transit: str
    bank_account: str

    @property
    def masked_account(self) -> str:
        return mask(self.bank_account)

    def shown(self) -> dict:
        """What may be shown or stored anywhere: never the full account number."""
        return {
            "institution": self.institution,
            "transit": self.transit,
            "account_ending": self.bank_account[-3:],
            "account_masked": self.masked_account,
        }

    def as_draft(self) -> dict:
        return {"institution": self.institution, "transit": self.transit, "bank_account": self.bank_account}


def validate(answers: dict) -> tuple[Details | None, dict[str, str]]:
    """(the details, {}) when every field is right, else (None, {field: message})."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        value, problem = clean(field, answers.get(field))
        if problem is not None:
            errors[field] = problem
        elif value is not None:
            cleaned[field] = value
    if errors:
        return None, errors
    return Details(**cleaned), {}


def mask(bank_account: str | None) -> str:
    """ "•••••••789": the last three digits only."""
    if not bank_account:
        return ""
    return MASK + bank_account[-3:]


def summary_line(details: Details) -> str:
    return (
        f"New direct deposit details: institution {details.institution}, transit {details.transit}, "
        f"account ending {details.bank_account[-3:]}"
    )


# --- Reading ---------------------------------------------------------------------


def current(db: Session, account_id: int) -> DirectDeposit | None:
    return db.scalar(
        select(DirectDeposit)
        .where(DirectDeposit.account_id == account_id, DirectDeposit.ended_at.is_(None))
        .order_by(DirectDeposit.set_at.desc(), DirectDeposit.id.desc())
        .limit(1)
    )


def history(db: Session, account_id: int) -> list[DirectDeposit]:
    """Every row, newest first (the current one, then the ones it replaced)."""
    return list(
        db.scalars(
            select(DirectDeposit)
            .where(DirectDeposit.account_id == account_id)
            .order_by(DirectDeposit.set_at.desc(), DirectDeposit.id.desc())
        )
    )


def names_of(db: Session, user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(db.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def open_draft(db: Session, *, account_id: int, user_id: int) -> Draft | None:
    return drafts.current(db, account_id=account_id, user_id=user_id, kind=KIND)


# --- Changing -----------------------------------------------------------------------


def keep_in_draft(db: Session, now: datetime, *, account_id: int, user_id: int, details: Details) -> Draft:
    draft = drafts.current_or_start(db, now, account_id=account_id, user_id=user_id, kind=KIND)
    drafts.save(draft, now, details.as_draft(), replace=True)
    return draft


def _replace(
    db: Session, now: datetime, *, account: Account, user_id: int, details: Details, request_id: int
) -> DirectDeposit:
    # FOR UPDATE (PostgreSQL; SQLite writes one at a time anyway): two changes at
    # the same moment end the same row one after the other.
    for row in db.scalars(
        select(DirectDeposit)
        .where(DirectDeposit.account_id == account.id, DirectDeposit.ended_at.is_(None))
        .with_for_update()
    ):
        row.ended_at = now
    row = DirectDeposit(
        account_id=account.id,
        institution=details.institution,
        transit=details.transit,
        bank_account=details.bank_account,
        set_at=now,
        set_by_user_id=user_id,
        service_request_id=request_id,
    )
    db.add(row)
    return row


def notice(
    account: Account, *, actor_name: str, when: datetime, zone: str, details: Details, reference: str
) -> tuple[str, str]:
    """The message everyone with access receives: (subject, body)."""
    local = when.astimezone(ZoneInfo(zone))
    at = local.strftime("%-I:%M %p on %A %-d %B %Y").replace("AM", "am").replace("PM", "pm")
    subject = f"Direct deposit details changed for {account.legal_name}"[:200]
    body = (
        f"The direct deposit details for {account.legal_name} (account {format_number(account.number)}) "
        f"were changed by {actor_name} at {at}, Mountain time.\n\n"
        f"Refunds for this account will now be paid into:\n"
        f"Institution number: {details.institution}\n"
        f"Transit number: {details.transit}\n"
        f"Account number: {details.masked_account}\n\n"
        f"Reference number: {reference}\n\n"
        "If you expected this change, you need do nothing.\n\n"
        "If you did not expect it, contact Tax and Revenue Administration straight away so we can stop "
        "refunds being paid into this bank account, and tell the people who manage access to the account. "
        "Then change your password."
    )
    return subject, body


def outgoing(now: datetime, today, *, account: Account, user: User, details: Details, zone: str) -> sending.Outgoing:
    """What a change sends (domain.sending): a new request replaces the current
    details, tells everyone with access and records the change; the sent draft
    keeps only what may be shown (`flask purge` removes it after a day)."""

    def build(db: Session, request) -> None:
        _replace(db, now, account=account, user_id=user.id, details=details, request_id=request.id)
        # Applied at once: nothing is waiting for the agency.
        request.status = "completed"
        subject, body = notice(
            account, actor_name=user.name, when=now, zone=zone, details=details, reference=request.reference
        )
        sent = messages.to_everyone_with_access(
            db, now, account, subject, body, today, about="a change to one of your accounts"
        )
        audit.record(
            db,
            now,
            "direct_deposit.changed",
            actor_user_id=user.id,
            account_id=account.id,
            reference=request.reference,
            institution=details.institution,
            transit=details.transit,
            account_ending=details.bank_account[-3:],
            told=len(sent),
        )

    return sending.Outgoing(
        summary=summary_line(details), data=details.shown(), build=build, draft_keeps=details.shown()
    )


def submit(
    db: Session, now: datetime, today, *, account: Account, user: User, draft: Draft, details: Details, zone: str
) -> requests.Submitted:
    """Send the draft's details once (domain.sending.send). The caller commits."""
    changed = outgoing(now, today, account=account, user=user, details=details, zone=zone)
    return sending.send(db, now, draft, account=account, user_id=user.id, outgoing=changed)
