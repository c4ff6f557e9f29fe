"""Requests to waive (cancel) penalties and interest. Plain functions, no Flask.

A person picks penalty and interest charges from the account's ledger: entries
of kind "penalty" or "interest" with a positive amount that no later reversal
names (`reverses_id`). They say why (one of three grounds) and explain; the
request is a ServiceRequest of kind "waiver" whose data lists the entries as
they were when it was sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import format_money
from domain.returns import account_period_starts, period_text, start_of
from models import Account, LedgerEntry, ServiceRequest

KIND = "waiver"
MAX_TEXT = 5000
CHARGE_KINDS = ("penalty", "interest")
REASONS = {
    "circumstances": "Circumstances beyond your control",
    "agency_error": "Our error or delay",
    "inability": "Inability to pay",
}
REASON_HINTS = {
    "circumstances": "Such as a serious illness or accident, a natural disaster, a death in the family, or a "
    "disruption of services that kept you from filing or paying on time",
    "agency_error": "Such as wrong information we gave you, our delay in processing, or our mistake on your account",
    "inability": "Paying the penalties and interest would cause you real financial hardship",
}
# The longest id a ledger entry can have (BIGINT): anything longer is not an entry.
_MAX_ID_DIGITS = 19


@dataclass(frozen=True)
class Charge:
    """One penalty or interest entry that can be waived."""

    id: int
    kind: str
    processed_date: date
    period_end: date | None
    period: str
    description: str
    reference: str
    amount_cents: int
    asked_in: tuple[str, ...] = ()  # references of waiver requests that already include it

    @property
    def kind_text(self) -> str:
        return self.kind.capitalize()

    @property
    def label(self) -> str:
        return self.description or self.kind_text

    def as_data(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "processed_date": self.processed_date.isoformat(),
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "period": self.period,
            "description": self.label,
            "reference": self.reference,
            "amount_cents": self.amount_cents,
            "amount": format_money(self.amount_cents),
        }


def _asked(db: Session, account_id: int) -> dict[int, list[str]]:
    """Entry id -> references of the waiver requests already sent for it."""
    found: dict[int, list[str]] = {}
    for reference, data in db.execute(
        select(ServiceRequest.reference, ServiceRequest.data)
        .where(ServiceRequest.account_id == account_id, ServiceRequest.kind == KIND)
        .order_by(ServiceRequest.submitted_at, ServiceRequest.id)
    ):
        try:
            entries = json.loads(data or "{}").get("entries", [])
        except (ValueError, AttributeError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), int):
                found.setdefault(entry["id"], []).append(reference)
    return found


def charges(db: Session, account: Account) -> list[Charge]:
    """The account's penalties and interest that can be waived, newest first."""
    e = LedgerEntry
    reversed_ids = select(e.reverses_id).where(
        e.account_id == account.id, e.kind == "reversal", e.reverses_id.is_not(None)
    )
    rows = db.scalars(
        select(e)
        .where(e.account_id == account.id, e.kind.in_(CHARGE_KINDS), e.amount_cents > 0, e.id.not_in(reversed_ids))
        .order_by(e.processed_date.desc(), e.id.desc())
    )
    known = account_period_starts(db, account)
    asked = _asked(db, account.id)
    return [
        Charge(
            id=r.id,
            kind=r.kind,
            processed_date=r.processed_date,
            period_end=r.period_end,
            period=period_text(start_of(account, r.period_end, known), r.period_end) if r.period_end else "",
            description=r.description or "",
            reference=r.reference,
            amount_cents=int(r.amount_cents),
            asked_in=tuple(asked.get(r.id, ())),
        )
        for r in rows
    ]


def parse_ids(values) -> list[int] | None:
    """Posted entry ids as integers, in order and without repeats; None when any is not an id."""
    ids: list[int] = []
    for value in values or []:
        text = value.strip() if isinstance(value, str) else ""
        if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
            return None
        number = int(text)
        if number not in ids:
            ids.append(number)
    return ids


def pick(available: list[Charge], values) -> tuple[list[Charge], str | None]:
    """The chosen charges, or the message when none is chosen or any is not one of `available`."""
    ids = parse_ids(values)
    if ids is None:
        return [], "Select penalties and interest from this account's list"
    if not ids:
        return [], "Select at least one penalty or interest charge"
    by_id = {charge.id: charge for charge in available}
    if any(number not in by_id for number in ids):
        return [], "Select penalties and interest from this account's list"
    chosen = set(ids)
    return [charge for charge in available if charge.id in chosen], None


def kept_ids(available: list[Charge], values) -> list[str]:
    """What an autosave keeps of the ticked boxes: only this account's charges."""
    ticked = {v.strip() for v in values or [] if isinstance(v, str)}
    return [str(charge.id) for charge in available if str(charge.id) in ticked]


def total(chosen: list[Charge]) -> int:
    return sum(charge.amount_cents for charge in chosen)


def problems(answers: dict) -> dict[str, str]:
    """What is missing or wrong in the saved reason and explanation, by field."""
    found: dict[str, str] = {}
    if answers.get("reason") not in REASONS:
        found["reason"] = "Select why we should waive the penalties and interest"
    value = answers.get("explanation")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        found["explanation"] = "Explain why we should waive the penalties and interest"
    elif len(text) > MAX_TEXT:
        found["explanation"] = "The explanation must be 5,000 characters or fewer"
    return found


def summary(chosen: list[Charge]) -> str:
    count = len(chosen)
    return (
        f"Waiver of penalties and interest: {count} {'charge' if count == 1 else 'charges'} "
        f"totalling {format_money(total(chosen))}"
    )


def request_data(chosen: list[Charge], answers: dict, document_names: list[str]) -> dict:
    reason = answers.get("reason")
    return {
        "entries": [charge.as_data() for charge in chosen],
        "total_cents": total(chosen),
        "total": format_money(total(chosen)),
        "reason": reason,
        "reason_text": REASONS.get(reason, "") if isinstance(reason, str) else "",
        "explanation": (answers.get("explanation") or "").strip(),
        "documents": document_names,
    }
