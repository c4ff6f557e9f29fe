"""Ledger entries by hand: what agency staff post to an account (payments,
refunds, transfers, adjustments, interest, penalties) and their corrections,
which are reversals, never edits. Plain functions, no Flask.

Signs follow the ledger (positive is owed to the agency): a payment is a credit,
a refund takes money back out of a credit balance (a debit), interest and
penalties are debits, an adjustment is either. A transfer moves an amount to
another account: a debit here and a credit there, one reference on both.

Separation of duties: an officer posts payments only; everything else, and
every reversal, needs a supervisor or an administrator.

A form that posts carries a one-time key. `once.claim` records it under its
primary key (the `used_tokens` table), in the posting's own transaction, so the
same form sent twice (a double click, a retry) posts once on SQLite and
PostgreSQL alike, and a failed posting leaves the key unused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, ledger, once, work
from domain.accounts import format_money, normalise_number
from domain.requests import new_reference
from models import Account, FilingPeriod, LedgerEntry, User

# The largest amount anyone may type (the house limit).
MAX_CENTS = 999_999_999_999
# A reason is the entry's description, which holds 200 characters.
MAX_REASON = 200
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class EntryKind:
    label: str
    ledger_kind: str
    sign: int  # +1 a debit (owed to the agency), -1 a credit
    role: str  # the least staff role that may post it
    prefix: str  # of the generated reference


KINDS = {
    "payment": EntryKind("Payment received", "payment", -1, "officer", "PAY"),
    "refund": EntryKind("Refund of a credit", "refund", +1, "supervisor", "RFD"),
    "transfer": EntryKind("Transfer to another account", "transfer", +1, "supervisor", "TRF"),
    "adjustment_credit": EntryKind("Adjustment: credit (lowers what is owed)", "adjustment", -1, "supervisor", "ADJ"),
    "adjustment_debit": EntryKind("Adjustment: debit (raises what is owed)", "adjustment", +1, "supervisor", "ADJ"),
    "interest": EntryKind("Interest", "interest", +1, "supervisor", "INT"),
    "penalty": EntryKind("Penalty", "penalty", +1, "supervisor", "PEN"),
}


class PostingRefused(ValueError):
    """A posting that cannot be made: `field` names the answer it is about (None:
    the request as a whole), `status` is the HTTP status a view answers with."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


class AlreadyDone(Exception):
    """This form's one-time key has been used: what it asked for was done then."""


def reference_for(kind: str) -> str:
    """ "PAY-7KQ4-M2XD": random, so it says nothing about how many entries there are."""
    return f"{KINDS[kind].prefix}-{new_reference().removeprefix('SR-')}"


# --- Reading what staff typed ----------------------------------------------------------

_MONEY = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
NOT_A_NUMBER = "Amount must be a number, like 1250.00"
NO_SIGN = "Enter the amount without a minus sign: the type of entry says whether it is a debit or a credit"


def parse_amount(text, *, allow_zero: bool = False, negative: str = NO_SIGN) -> tuple[int | None, str | None]:
    """(cents, None) or (None, message) for a typed amount: "1,234.50", "$1234.5".
    Never a float: the text is read as a Decimal and must be whole cents."""
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        return None, "Enter the amount"
    if len(raw) > 40:  # not an amount anyone typed
        return None, NOT_A_NUMBER
    body = raw.replace(" ", "")
    if body.startswith(("-", "\u2212", "$-", "$\u2212")):
        return None, negative
    body = body.removeprefix("$")
    if not _MONEY.fullmatch(body):
        return None, NOT_A_NUMBER
    try:
        value = Decimal(body.replace(",", ""))
    except InvalidOperation:
        return None, NOT_A_NUMBER
    exponent = value.as_tuple().exponent  # a whole number: _MONEY lets only digits through
    if isinstance(exponent, int) and exponent < -2:
        return None, "Amount must be in dollars and cents, with no more than 2 numbers after the decimal point"
    if value == 0 and not allow_zero:
        return None, "Amount must be more than $0.00"
    if value > Decimal(MAX_CENTS).scaleb(-2):
        return None, f"Amount must be {format_money(MAX_CENTS)} or less"
    return int(value * 100), None


def parse_day(text) -> date | None:
    """A real date written YYYY-MM-DD, else None."""
    raw = text.strip() if isinstance(text, str) else ""
    if not _ISO_DAY.fullmatch(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def reason_problem(
    reason: str, missing: str = "Enter the reason: it is shown as the entry's description"
) -> str | None:
    if not reason:
        return missing
    if len(reason) > MAX_REASON:
        return f"The reason must be {MAX_REASON} characters or fewer"
    return None


def period_ends(db: Session, account_id: int) -> list[date]:
    """The account's filing periods, newest first."""
    return list(
        db.scalars(
            select(FilingPeriod.period_end)
            .where(FilingPeriod.account_id == account_id)
            .order_by(FilingPeriod.period_end.desc())
        )
    )


def has_filing_period(db: Session, account_id: int, period_end: date) -> bool:
    return (
        db.scalar(
            select(FilingPeriod.id).where(FilingPeriod.account_id == account_id, FilingPeriod.period_end == period_end)
        )
        is not None
    )


def find_account(db: Session, typed: str) -> Account | None:
    number = normalise_number(typed)
    if not re.fullmatch(r"[0-9]{10}", number):
        return None
    return db.scalar(select(Account).where(Account.number == number))


@dataclass(frozen=True)
class Posting:
    """An entry by hand, read and checked: `cents` is positive, the kind gives the sign."""

    kind: str
    cents: int
    effective_date: date
    period_end: date | None
    reason: str
    to_account: Account | None = None  # the account a transfer goes to; None for every other kind

    def __post_init__(self) -> None:
        if (self.kind == "transfer") != (self.to_account is not None):
            raise ValueError("a transfer, and only a transfer, names the account it goes to")

    @property
    def signed_cents(self) -> int:
        return KINDS[self.kind].sign * self.cents


FIELDS = ("kind", "amount", "effective_date", "period_end", "to_account", "reason")


def _answer(answers, name: str) -> str:
    value = answers.get(name)
    return value.strip() if isinstance(value, str) else ""


def chosen_kind(answers) -> str:
    """The kind of entry the answers name, read exactly as `read` reads it: a role check
    made on it judges the entry that would be posted ("refund " is a refund)."""
    return _answer(answers, "kind")


def read(db: Session, account: Account, today: date, answers: dict) -> tuple[Posting | None, dict[str, str]]:
    """The posting the answers describe, or the problems: field name -> message."""
    text = {name: _answer(answers, name) for name in FIELDS}
    problems: dict[str, str] = {}
    kind = chosen_kind(answers)
    if kind not in KINDS:
        problems["kind"] = "Choose the type of entry"
    cents, message = parse_amount(text["amount"])
    if message:
        problems["amount"] = message
    effective = parse_day(text["effective_date"])
    if not text["effective_date"]:
        problems["effective_date"] = "Enter the effective date"
    elif effective is None:
        problems["effective_date"] = "Enter the effective date as a real date, like 2026-11-23"
    elif effective > today:
        problems["effective_date"] = "The effective date must be today or in the past"
    period_end = None
    if text["period_end"]:
        period_end = parse_day(text["period_end"])
        if period_end is None or not has_filing_period(db, account.id, period_end):
            problems["period_end"] = "Choose a period this account has, or no period"
    to_account = None
    if kind == "transfer":
        if not text["to_account"]:
            problems["to_account"] = "Enter the number of the account the amount goes to"
        else:
            to_account = find_account(db, text["to_account"])
            if to_account is None:
                problems["to_account"] = "There is no account with that number"
            elif to_account.id == account.id:
                problems["to_account"] = "Enter another account: a transfer moves an amount between two accounts"
    message = reason_problem(text["reason"])
    if message:
        problems["reason"] = message
    if kind == "refund" and cents is not None and "amount" not in problems:
        credit = -ledger.balance(db, account.id)
        if credit <= 0:
            problems["amount"] = "The account has no credit to refund"
        elif cents > credit:
            problems["amount"] = f"A refund cannot be more than the account's credit of {format_money(credit)}"
    if problems:
        return None, problems
    assert cents is not None and effective is not None  # each was given a problem when it did not parse
    return Posting(kind, cents, effective, period_end, text["reason"], to_account), {}


# --- Posting -----------------------------------------------------------------------------


def may_post(staff: User, kind: str) -> bool:
    return work.at_least(staff, KINDS[kind].role)


def post(
    db: Session, now: datetime, today: date, *, account: Account, staff: User, posting: Posting, key: str
) -> list[LedgerEntry]:
    """Post the entry (two for a transfer: here and on the other account), once
    per key. Raises PostingRefused (403) for a kind the staff member's role may
    not post, AlreadyDone when the key has been used. The caller commits."""
    kind = KINDS[posting.kind]
    if not may_post(staff, posting.kind):
        raise PostingRefused(f"{kind.label} needs a supervisor", "kind", 403)
    if not once.claim(db, now, key, "ledger.post"):
        raise AlreadyDone()
    reference = reference_for(posting.kind)
    entry = ledger.post(
        db,
        account_id=account.id,
        kind=kind.ledger_kind,
        amount_cents=posting.signed_cents,
        effective_date=posting.effective_date,
        processed_date=today,
        reference=reference,
        period_end=posting.period_end,
        description=posting.reason,
    )
    if posting.kind == "transfer":
        return [entry, _transfer_in(db, now, today, account=account, staff=staff, posting=posting, out=entry)]
    db.flush()
    audit.record(
        db,
        now,
        "ledger.posted",
        actor_user_id=staff.id,
        account_id=account.id,
        entry=entry.id,
        kind=posting.kind,
        amount_cents=entry.amount_cents,
    )
    return [entry]


def _transfer_in(
    db: Session, now: datetime, today: date, *, account: Account, staff: User, posting: Posting, out: LedgerEntry
) -> LedgerEntry:
    """A transfer's other half, the amount coming in on the other account, and the
    audit of both halves (each on its own account)."""
    to_account = posting.to_account
    if to_account is None:  # Posting lets a transfer, and only a transfer, name one
        raise ValueError("a transfer names the account it goes to")
    entry = ledger.post(
        db,
        account_id=to_account.id,
        kind="transfer",
        amount_cents=-posting.cents,
        effective_date=posting.effective_date,
        processed_date=today,
        reference=out.reference,
        description=posting.reason,
    )
    db.flush()
    audit.record(
        db,
        now,
        "ledger.transfer_out",
        actor_user_id=staff.id,
        account_id=account.id,
        entry=out.id,
        amount_cents=out.amount_cents,
        to_account=to_account.id,
    )
    audit.record(
        db,
        now,
        "ledger.transfer_in",
        actor_user_id=staff.id,
        account_id=to_account.id,
        entry=entry.id,
        amount_cents=entry.amount_cents,
        from_account=account.id,
    )
    return entry


# --- Reversals -----------------------------------------------------------------------------


def entry_of(db: Session, account_id: int, entry_id: int) -> LedgerEntry | None:
    """The entry with this id if it is this account's, else None."""
    if not isinstance(entry_id, int) or not 0 < entry_id <= MAX_ID:
        return None
    entry = db.get(LedgerEntry, entry_id)
    return entry if entry is not None and entry.account_id == account_id else None


def reversal_of(db: Session, entry_id: int) -> LedgerEntry | None:
    """The entry that reverses this one, if any."""
    return db.scalar(
        select(LedgerEntry)
        .where(LedgerEntry.reverses_id == entry_id, LedgerEntry.kind == "reversal")
        .order_by(LedgerEntry.id)
        .limit(1)
    )


def counterpart_of(db: Session, entry: LedgerEntry) -> LedgerEntry | None:
    """The other half of a transfer: the opposite amount, on another account, under the same reference."""
    if entry.kind != "transfer":
        return None
    return db.scalar(
        select(LedgerEntry)
        .where(
            LedgerEntry.kind == "transfer",
            LedgerEntry.reference == entry.reference,
            LedgerEntry.account_id != entry.account_id,
            LedgerEntry.amount_cents == -entry.amount_cents,
        )
        .order_by(LedgerEntry.id)
        .limit(1)
    )


def why_not_reversible(db: Session, entry: LedgerEntry) -> str | None:
    if entry.kind == "reversal":
        return "A reversal cannot be reversed: post a new entry to correct it"
    done = reversal_of(db, entry.id)
    if done is not None:
        return f"This entry has already been reversed (by entry {done.id}, reference {done.reference})"
    return None


def reverse(
    db: Session, now: datetime, today: date, *, entry: LedgerEntry, staff: User, reason: str, key: str
) -> LedgerEntry:
    """The reversal of `entry`: the opposite amount, naming it (and of the other
    half of a transfer, on the other account, so the two stay a pair). Once per
    key, and once per entry however many people try at the same moment (a marker
    keyed by the entry's id). Raises PostingRefused (403 for an officer, 409 for
    an entry that cannot be reversed), AlreadyDone for a used key. The caller
    commits. Returns the reversal of `entry`."""
    if not work.at_least(staff, "supervisor"):
        raise PostingRefused("Reversing an entry needs a supervisor", None, 403)
    message = reason_problem(reason)
    if message:
        raise PostingRefused(message, "reason")
    if not once.claim(db, now, key, "ledger.reverse"):
        raise AlreadyDone()
    entries = [entry]
    counterpart = counterpart_of(db, entry)
    if counterpart is not None and reversal_of(db, counterpart.id) is None:
        entries.append(counterpart)
    message = why_not_reversible(db, entry)
    if message is None and not all(once.claim(db, now, f"entry-{e.id}", "ledger.reversed") for e in entries):
        message = "This entry has already been reversed"
    if message:
        raise PostingRefused(message, None, 409)
    reference = f"REV-{new_reference().removeprefix('SR-')}"
    reversals = [ledger.reverse(db, e, processed_date=today, reference=reference, reason=reason) for e in entries]
    db.flush()
    for original, reversal in zip(entries, reversals, strict=False):
        audit.record(
            db,
            now,
            "ledger.reversed",
            actor_user_id=staff.id,
            account_id=original.account_id,
            entry=reversal.id,
            reverses=original.id,
            amount_cents=reversal.amount_cents,
        )
    return reversals[0]


# --- The ledger as the agency sees it -------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """For the entries of a page: what each reversal reverses, and which are reversed."""

    reverses: dict[int, LedgerEntry]  # reversal id -> the entry it reverses
    reversed_by: dict[int, LedgerEntry]  # entry id -> its reversal


def links_for(db: Session, account_id: int, entry_ids: list[int]) -> Links:
    if not entry_ids:
        return Links({}, {})
    rows = db.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id, LedgerEntry.id.in_(entry_ids)))
    reversals = {row.id: row.reverses_id for row in rows if row.kind == "reversal" and row.reverses_id is not None}
    originals = (
        {row.id: row for row in db.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(list(reversals.values()))))}
        if reversals
        else {}
    )
    reversed_by = {
        row.reverses_id: row
        for row in db.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.kind == "reversal", LedgerEntry.reverses_id.in_(entry_ids))
            .order_by(LedgerEntry.id.desc())
        )
        if row.reverses_id is not None  # always, by the query: this tells the type checker
    }
    return Links({rid: originals[oid] for rid, oid in reversals.items() if oid in originals}, reversed_by)
