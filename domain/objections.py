"""Notices of objection against a notice of assessment or reassessment. Plain
functions, no Flask.

A notice can be objected to within the program's `objection_days` (90 unless
the program says otherwise) of the notice's date: the deadline is the notice
date plus those days, and objecting is still open on the deadline itself. After
it, the agency may still allow an objection if the person asks in writing for an
extension of time within one year after the deadline. A reassessment is a new
notice with its own date and its own deadline.

The objection's answers live in a draft (kind "objection", subject
"return:<id>:<notice date>") until it is submitted as a ServiceRequest of kind
"objection" whose data holds the notice, the period and the answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import format_money
from domain.returns import (
    NOTICE_TITLES,
    account_period_starts,
    long_day,
    notice_of,
    period_text,
    return_of,
    start_of,
)
from models import Account, Document, ServiceRequest, TaxReturn

KIND = "objection"
MAX_TEXT = 5000
MAX_CENTS = 999_999_999_999
TEXT_FIELDS = ("reasons", "facts", "relief")
FIELDS = (*TEXT_FIELDS, "amount")
QUESTIONS = {
    "reasons": "Why you disagree",
    "facts": "The facts",
    "relief": "What you want us to change",
    "amount": "Amount you want changed",
}
REQUIRED_MESSAGES = {
    "reasons": "Enter why you disagree with the notice",
    "facts": "Enter the facts that support your objection",
    "relief": "Enter what you want us to change",
}
TOO_LONG = {
    "reasons": "Why you disagree must be 5,000 characters or fewer",
    "facts": "The facts must be 5,000 characters or fewer",
    "relief": "What you want us to change must be 5,000 characters or fewer",
}


# --- The deadline ------------------------------------------------------------------------


def deadline(notice_date: date, days: int) -> date:
    """The last day an objection can be filed."""
    return notice_date + timedelta(days=days)


def is_open(notice_date: date, days: int, today: date) -> bool:
    return today <= deadline(notice_date, days)


def one_year_after(day: date) -> date:
    """The same date a year on (28 February when the day is 29 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


# --- Notices of an account -----------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    reference: str
    notice_date: str
    submitted_on: date
    status: str


@dataclass(frozen=True)
class NoticeRow:
    return_id: int
    period: str
    kind: str  # assessment | reassessment
    notice_date: date
    deadline: date
    open: bool
    amended: bool
    paper: str  # return | claim
    objections: tuple[Filed, ...] = field(default_factory=tuple)

    @property
    def title(self) -> str:
        return NOTICE_TITLES[self.kind]


def _has_notice(tax_return: TaxReturn | None) -> bool:
    return tax_return is not None and tax_return.notice_kind in NOTICE_TITLES and tax_return.notice_date is not None


def notice_return(db: Session, account_id: int, return_id: int) -> TaxReturn | None:
    """The account's return with this id when it has a notice; None otherwise
    (another account's, no notice yet, or an id no row can have)."""
    tax_return = return_of(db, account_id, return_id)
    return tax_return if _has_notice(tax_return) else None


def period_of(db: Session, account: Account, tax_return: TaxReturn) -> str:
    return period_text(
        start_of(account, tax_return.period_end, account_period_starts(db, account)), tax_return.period_end
    )


def subject(tax_return: TaxReturn) -> str:
    """The draft's subject: a new notice on the same return is a new objection."""
    return f"return:{tax_return.id}:{notice_of(tax_return)[1].isoformat()}"


def filed_against(db: Session, account_id: int) -> dict[int, list[Filed]]:
    """The objections already submitted, by the return they are against, newest first."""
    rows = db.scalars(
        select(ServiceRequest)
        .where(ServiceRequest.account_id == account_id, ServiceRequest.kind == KIND)
        .order_by(ServiceRequest.submitted_at.desc(), ServiceRequest.id.desc())
    )
    found: dict[int, list[Filed]] = {}
    for request in rows:
        if request.tax_return_id is None:
            continue
        try:
            data = json.loads(request.data or "{}")
        except ValueError:
            data = {}
        found.setdefault(request.tax_return_id, []).append(
            Filed(
                reference=request.reference,
                notice_date=str(data.get("notice_date", "")),
                submitted_on=request.submitted_at.date(),
                status=request.status,
            )
        )
    return found


def notices_of(db: Session, account: Account, today: date) -> list[NoticeRow]:
    """Every return of the account that has a notice, newest notice first."""
    days = account.program.objection_days
    known = account_period_starts(db, account)
    filed = filed_against(db, account.id)
    rows = db.scalars(
        select(TaxReturn)
        .where(
            TaxReturn.account_id == account.id,
            TaxReturn.notice_kind.in_(list(NOTICE_TITLES)),
            TaxReturn.notice_date.is_not(None),
        )
        .order_by(TaxReturn.notice_date.desc(), TaxReturn.id.desc())
    )
    found = []
    for r in rows:
        kind, notice_date = notice_of(r)
        found.append(
            NoticeRow(
                return_id=r.id,
                period=period_text(start_of(account, r.period_end, known), r.period_end),
                kind=kind,
                notice_date=notice_date,
                deadline=deadline(notice_date, days),
                open=is_open(notice_date, days, today),
                amended=r.amended,
                paper=r.kind,
                objections=tuple(filed.get(r.id, ())),
            )
        )
    return found


# --- Answers -------------------------------------------------------------------------------


def parse_amount(text: str | None) -> tuple[int | None, str | None]:
    """Typed dollars ("1,234.50", "$1234.5") as cents, or the message saying what is wrong.
    Empty is allowed (None, None): the amount is optional."""
    raw = (text or "").strip()
    if not raw:
        return None, None
    cleaned = raw.replace(",", "").replace(" ", "")
    if cleaned.startswith("$"):
        cleaned = cleaned[1:]
    elif cleaned.startswith("-$"):
        cleaned = "-" + cleaned[2:]
    if len(cleaned) > 40 or not cleaned or any(c not in "0123456789.-+" for c in cleaned):
        return None, "Amount must be a number, like 1250.00"
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None, "Amount must be a number, like 1250.00"
    if not value.is_finite():
        return None, "Amount must be a number, like 1250.00"
    exponent = value.as_tuple().exponent  # a whole number for a finite value
    if isinstance(exponent, int) and exponent < -2:
        return None, "Amount must not have more than 2 decimal places, like 1250.00"
    if value <= 0:
        return None, "Amount must be more than $0.00, or leave it empty"
    cents = int(value * 100)
    if cents > MAX_CENTS:
        return None, "Amount must be $9,999,999,999.99 or less"
    return cents, None


def problems(answers: dict) -> dict[str, str]:
    """What is missing or wrong in saved answers, by field (empty when they can be sent)."""
    found: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = answers.get(name)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            found[name] = REQUIRED_MESSAGES[name]
        elif len(text) > MAX_TEXT:
            found[name] = TOO_LONG[name]
    amount = answers.get("amount")
    _cents, message = parse_amount(amount if isinstance(amount, str) else "")
    if message:
        found["amount"] = message
    return found


def clean_for_draft(posted: dict) -> dict:
    """What an autosave keeps: the known fields as text, each no longer than the limit
    (a longer one is left as it was, and the form will say so when it is sent)."""
    kept = {}
    for name in FIELDS:
        value = posted.get(name)
        if isinstance(value, str) and len(value) <= (MAX_TEXT if name in TEXT_FIELDS else 40):
            kept[name] = value
    return kept


def documents_of(db: Session, draft_id: int) -> list[Document]:
    return list(
        db.scalars(select(Document).where(Document.draft_id == draft_id).order_by(Document.uploaded_at, Document.id))
    )


def summary(tax_return: TaxReturn, period: str) -> str:
    kind, notice_date = notice_of(tax_return)
    return f"Notice of objection to the {NOTICE_TITLES[kind].lower()} dated {long_day(notice_date)}, period {period}"


def request_data(tax_return: TaxReturn, period: str, answers: dict, document_names: list[str], days: int) -> dict:
    cents, _message = parse_amount(answers.get("amount") if isinstance(answers.get("amount"), str) else "")
    kind, notice_date = notice_of(tax_return)
    return {
        "notice_kind": kind,
        "notice_date": notice_date.isoformat(),
        "deadline": deadline(notice_date, days).isoformat(),
        "period_end": tax_return.period_end.isoformat(),
        "period": period,
        "return_reference": tax_return.reference,
        "reasons": answers.get("reasons", "").strip(),
        "facts": answers.get("facts", "").strip(),
        "relief": answers.get("relief", "").strip(),
        "amount_cents": cents,
        "amount": format_money(cents) if cents is not None else "",
        "documents": document_names,
    }
