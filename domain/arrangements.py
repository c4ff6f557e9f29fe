"""Payment arrangements: a schedule of instalments the person proposes for a
balance owing, checked against the program's rules (domain.programs settings),
then approved or declined by the agency. Plain functions, no Flask.

The rules ("enter your own" arrangement):
- the last instalment falls no later than `arrangement_max_months` months after today;
- every instalment is at least `arrangement_min_instalment_cents`, except the last,
  which is what remains of the balance;
- the first payment is today or later, and within `arrangement_first_payment_days` days;
- the schedule covers the whole balance.
Monthly instalments fall on the same day each month, clamped to the month's last
day (31 January, 28 or 29 February, 31 March), always counted from the first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, dates, ledger
from domain.accounts import add_months, format_money
from domain.programs import int_setting
from domain.sending import Refused
from models import Account, Instalment, LedgerEntry, PaymentArrangement, ServiceRequest

FREQUENCIES = {"weekly": "Weekly", "biweekly": "Every two weeks", "monthly": "Monthly"}
# How the rules' messages name each frequency ("With monthly payments over ...").
_PAYMENTS = {"weekly": "weekly payments", "biweekly": "payments every two weeks", "monthly": "monthly payments"}
_STEP_DAYS = {"weekly": 7, "biweekly": 14}
STATUS_WORDS = {
    "proposed": "Waiting for our decision",
    "approved": "Approved",
    "declined": "Declined",
    "withdrawn": "Withdrawn",
}
# The largest amount anyone may type (the house limit), and a bound on the rows a schedule may have.
MAX_CENTS = 999_999_999_999
MAX_INSTALMENTS = 1000
# The answers of the proposal form, as the draft keeps them.
FIELDS = ("frequency", "instalment", "first_day", "first_month", "first_year")
_MAX_TEXT = 1000


def long_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


# --- Rules ---------------------------------------------------------------------


EDMONTON = ZoneInfo("America/Edmonton")


@dataclass(frozen=True)
class Rules:
    max_months: int
    min_instalment_cents: int
    first_payment_days: int

    def latest_first_day(self, today: date) -> date:
        return today + timedelta(days=self.first_payment_days)

    def latest_last_day(self, today: date) -> date:
        return add_months(today, self.max_months)


def rules_for(db: Session, program_code: str) -> Rules:
    return Rules(
        max_months=int_setting(db, program_code, "arrangement_max_months"),
        min_instalment_cents=int_setting(db, program_code, "arrangement_min_instalment_cents"),
        first_payment_days=int_setting(db, program_code, "arrangement_first_payment_days"),
    )


# --- The schedule ------------------------------------------------------------------


def due_on(first_due_on: date, frequency: str, index: int) -> date:
    """The date of instalment `index` (0 is the first)."""
    if frequency == "monthly":
        return add_months(first_due_on, index)
    if frequency in _STEP_DAYS:
        return first_due_on + timedelta(days=_STEP_DAYS[frequency] * index)
    raise ValueError(f"unknown frequency {frequency!r}")


def count(balance_cents: int, instalment_cents: int) -> int:
    """How many instalments pay the balance (exact integer arithmetic)."""
    if instalment_cents <= 0:
        raise ValueError("an instalment must be more than zero")
    return max(0, -(-balance_cents // instalment_cents))


def schedule(balance_cents: int, instalment_cents: int, frequency: str, first_due_on: date) -> list[tuple[date, int]]:
    """(due date, cents) of each instalment: equal instalments, the last one the
    remainder, together exactly the balance. Nothing for no balance."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {frequency!r}")
    if balance_cents <= 0:
        return []
    n = count(balance_cents, instalment_cents)
    if n > MAX_INSTALMENTS:
        raise ValueError(f"a schedule of {n} instalments is too long")
    last = balance_cents - (n - 1) * instalment_cents
    return [(due_on(first_due_on, frequency, i), instalment_cents if i < n - 1 else last) for i in range(n)]


def payments_possible(frequency: str, first_due_on: date, latest: date) -> int:
    """How many instalments fit between the first date and the latest allowed last date."""
    if first_due_on > latest:
        return 0
    if frequency in _STEP_DAYS:
        return (latest - first_due_on).days // _STEP_DAYS[frequency] + 1
    months = (latest.year - first_due_on.year) * 12 + latest.month - first_due_on.month + 1
    while months > 0 and add_months(first_due_on, months - 1) > latest:
        months -= 1
    return months


# --- Reading the answers ----------------------------------------------------------

_MONEY = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+")


def parse_money(text: str) -> tuple[int | None, str | None]:
    """(cents, None) or (None, message) for a typed amount: "1,234.50", "$1234.5"."""
    raw = (text or "").strip()
    if not raw:
        return None, "Enter the amount of each payment"
    if len(raw) > 1000:  # not an amount anyone typed; the regex below is linear, but no need to run it
        return None, "Amount must be a number, like 1250.00"
    body, negative = raw.replace(" ", ""), False
    if body.startswith("-"):
        negative, body = True, body[1:]
    body = body.removeprefix("$")
    if body.startswith("-"):
        negative, body = True, body[1:]
    if not _MONEY.fullmatch(body):
        return None, "Amount must be a number, like 1250.00"
    try:
        value = Decimal(body.replace(",", ""))
    except InvalidOperation:
        return None, "Amount must be a number, like 1250.00"
    exponent = value.as_tuple().exponent  # a whole number: _MONEY lets only digits through
    if isinstance(exponent, int) and exponent < -2:
        return None, "Amount must be in dollars and cents, with no more than 2 numbers after the decimal point"
    if negative or value <= 0:
        return None, "Amount must be more than $0.00"
    if value > Decimal(MAX_CENTS) / 100:
        return None, f"Amount must be {format_money(MAX_CENTS)} or less"
    cents = int(value * 100)
    if cents > MAX_CENTS:
        return None, f"Amount must be {format_money(MAX_CENTS)} or less"
    return cents, None


_WHAT = "The date of your first payment"


def parse_first_day(day_text: str, month_text: str, year_text: str) -> tuple[date | None, str | None, str]:
    """(date, None, part) or (None, message, part), where part is the input the
    message is about: "day", "month", "year", or "date" for the whole date.
    GOV.UK date input messages (domain.dates)."""
    first, message, part = dates.parse_parts(day_text, month_text, year_text, _WHAT)
    if first is None and message is None:
        return None, "Enter the date of your first payment", "date"
    return first, message, part


@dataclass(frozen=True)
class Proposal:
    frequency: str
    instalment_cents: int
    first_due_on: date

    def schedule(self, balance_cents: int) -> list[tuple[date, int]]:
        return schedule(balance_cents, self.instalment_cents, self.frequency, self.first_due_on)


def clean_answers(posted) -> dict[str, str]:
    """The form's answers as text, whatever was posted (a missing one is "")."""
    answers = {}
    for name in FIELDS:
        value = posted.get(name) if hasattr(posted, "get") else None
        answers[name] = value if isinstance(value, str) else ""
    return answers


def typed_so_far(posted) -> dict[str, str]:
    """What an autosave keeps: the answers posted, as typed; one too long to be an
    answer is left out (never cut short, which could turn it into another answer)."""
    return {name: value for name, value in clean_answers(posted).items() if name in posted and len(value) <= _MAX_TEXT}


def check(answers: dict, *, balance_cents: int, today: date, rules: Rules) -> tuple[Proposal | None, dict[str, str]]:
    """The proposal, or the problems: field name -> a message saying what would work.
    Field names are FIELDS, or "first_date" for a problem with the whole date."""
    found: dict[str, str] = {}
    frequency = str(answers.get("frequency") or "")
    if frequency not in FREQUENCIES:
        found["frequency"] = "Select how often you will pay"
    instalment, message = parse_money(str(answers.get("instalment") or ""))
    if message:
        found["instalment"] = message
    first, message, part = parse_first_day(
        str(answers.get("first_day") or ""), str(answers.get("first_month") or ""), str(answers.get("first_year") or "")
    )
    latest_first = rules.latest_first_day(today)
    if first is not None:
        if first < today:
            message, first = f"{_WHAT} must be today or in the future", None
        elif first > latest_first:
            message, first = f"Enter a first payment date on or before {long_day(latest_first)}", None
    if message:
        found[f"first_{part}"] = message

    if instalment is not None and balance_cents > 0:
        word = _instalment_problem(instalment, frequency, first, balance_cents, today, rules)
        if word:
            found["instalment"] = word
    if found or balance_cents <= 0:
        return None, found
    assert instalment is not None and first is not None  # each parser gives a message when it gives None
    return Proposal(frequency, instalment, first), found


def _instalment_problem(
    instalment: int, frequency: str, first: date | None, balance_cents: int, today: date, rules: Rules
) -> str | None:
    """The amount against the balance, the smallest instalment and the longest term.
    Without a usable first date, the term is broken only when no allowed date
    would do (a first payment today fits the most payments), and the amount it
    asks for works with any allowed date (the latest first date fits the fewest)."""
    if instalment > balance_cents:
        return f"Each payment cannot be more than your balance of {format_money(balance_cents)}"
    smallest = rules.min_instalment_cents
    if instalment < balance_cents and instalment < smallest:
        if balance_cents <= smallest:
            return (
                f"Your balance is {format_money(balance_cents)}, less than the smallest payment we accept, "
                f"so pay it in one payment of {format_money(balance_cents)}"
            )
        return f"Each payment must be at least {format_money(smallest)}. Only the last payment can be less"
    if frequency not in FREQUENCIES:
        return None
    latest = rules.latest_last_day(today)
    possible = payments_possible(frequency, first or today, latest)
    fewest = possible if first else payments_possible(frequency, rules.latest_first_day(today), latest)
    if possible <= 0 or fewest <= 0:
        return None  # the first date is the problem, and it says so
    if count(balance_cents, instalment) > possible:
        needed = max(-(-balance_cents // fewest), smallest)
        months = rules.max_months
        term = f"{months} month{'s' if months != 1 else ''}"
        return (
            f"With {_PAYMENTS[frequency]} over at most {term}, each payment must be at least "
            f"{format_money(min(needed, balance_cents))}"
        )
    return None


def problems(answers: dict, *, balance_cents: int, today: date, rules: Rules) -> dict[str, str]:
    """Field name -> message for each rule the answers break (empty: a valid proposal)."""
    return check(answers, balance_cents=balance_cents, today=today, rules=rules)[1]


def summary(balance_cents: int, rows: list[tuple[date, int]], frequency: str) -> str:
    """A one-line description for the request history."""
    if not rows:
        return "Payment arrangement"
    how = FREQUENCIES[frequency].lower()
    return (
        f"Payment arrangement for {format_money(balance_cents)}: {len(rows)} {how} payment"
        f"{'s' if len(rows) != 1 else ''} from {long_day(rows[0][0])} to {long_day(rows[-1][0])}"
    )


def request_data(balance_cents: int, proposal: Proposal, rows: list[tuple[date, int]]) -> dict:
    return {
        "balance_cents": balance_cents,
        "instalment_cents": proposal.instalment_cents,
        "frequency": proposal.frequency,
        "first_due_on": proposal.first_due_on.isoformat(),
        "payments": len(rows),
        "last_due_on": rows[-1][0].isoformat() if rows else None,
    }


class AlreadyProposed(Refused):
    """Another arrangement of the account was proposed a moment before (and waits, or was approved)."""


def builder(account_id: int, now: datetime, balance_cents: int, proposal: Proposal):
    """The `build` of the proposal's request (domain.sending.Outgoing): the
    arrangement, status proposed, and its instalments. Raises AlreadyProposed when
    the account has one proposed or approved already."""
    rows = proposal.schedule(balance_cents)

    def build(db: Session, request: ServiceRequest) -> None:
        # Two proposals at the same moment (two people, two drafts): the account's row
        # is locked (FOR UPDATE on PostgreSQL; on SQLite the request's insert already
        # holds the one write lock), so the second finds the first's arrangement here.
        db.execute(select(Account.id).where(Account.id == account_id).with_for_update())
        if blocking(db, account_id) is not None:
            raise AlreadyProposed(account_id)
        arrangement = PaymentArrangement(
            account_id=account_id,
            service_request_id=request.id,
            balance_cents=balance_cents,
            instalment_cents=proposal.instalment_cents,
            frequency=proposal.frequency,
            first_due_on=proposal.first_due_on,
            status="proposed",
            created_at=now,
        )
        db.add(arrangement)
        db.flush()
        for sequence, (day, cents) in enumerate(rows, start=1):
            db.add(Instalment(arrangement_id=arrangement.id, sequence=sequence, due_on=day, amount_cents=cents))

    return build


# --- Reading arrangements back ---------------------------------------------------


def owing(db: Session, account_id: int) -> int:
    """The account's balance in integer cents (a SUM is a Decimal on PostgreSQL)."""
    return int(ledger.balance(db, account_id))


def latest(db: Session, account_id: int) -> PaymentArrangement | None:
    return db.scalar(
        select(PaymentArrangement)
        .where(PaymentArrangement.account_id == account_id)
        .order_by(PaymentArrangement.created_at.desc(), PaymentArrangement.id.desc())
        .limit(1)
    )


def blocking(db: Session, account_id: int) -> PaymentArrangement | None:
    """A proposed or approved arrangement: while there is one, no other can be proposed."""
    return db.scalar(
        select(PaymentArrangement)
        .where(PaymentArrangement.account_id == account_id, PaymentArrangement.status.in_(("proposed", "approved")))
        .order_by(PaymentArrangement.created_at.desc(), PaymentArrangement.id.desc())
        .limit(1)
    )


def instalments(db: Session, arrangement: PaymentArrangement) -> list[Instalment]:
    return list(
        db.scalars(select(Instalment).where(Instalment.arrangement_id == arrangement.id).order_by(Instalment.sequence))
    )


def request_of(db: Session, arrangement: PaymentArrangement) -> ServiceRequest | None:
    return db.get(ServiceRequest, arrangement.service_request_id)


def for_request(db: Session, request: ServiceRequest) -> PaymentArrangement | None:
    return db.scalar(
        select(PaymentArrangement).where(
            PaymentArrangement.service_request_id == request.id, PaymentArrangement.account_id == request.account_id
        )
    )


@dataclass(frozen=True)
class InstalmentState:
    sequence: int
    due_on: date
    amount_cents: int
    paid_cents: int
    state: str  # Paid | Part paid | Missed | Due


def instalment_states(
    db: Session, arrangement: PaymentArrangement, today: date, zone: ZoneInfo = EDMONTON
) -> list[InstalmentState]:
    """Each instalment and how far it is paid. Payments in the ledger (kind
    "payment", negative amounts) processed on or after the day the arrangement
    was made are applied to the instalments in order. Paid: covered; Missed: its
    date has passed and it is not covered; Part paid: partly covered and not yet
    past; Due: otherwise."""
    made_on = arrangement.created_at.astimezone(zone).date()
    amounts = db.scalars(
        select(LedgerEntry.amount_cents).where(
            LedgerEntry.account_id == arrangement.account_id,
            LedgerEntry.kind == "payment",
            LedgerEntry.amount_cents < 0,
            LedgerEntry.processed_date >= made_on,
        )
    )
    paid = -sum(int(amount) for amount in amounts)
    states = []
    for row in instalments(db, arrangement):
        covered = min(paid, row.amount_cents)
        paid -= covered
        if covered >= row.amount_cents:
            state = "Paid"
        elif row.due_on < today:
            state = "Missed"
        elif covered > 0:
            state = "Part paid"
        else:
            state = "Due"
        states.append(InstalmentState(row.sequence, row.due_on, row.amount_cents, covered, state))
    return states


# --- The agency's decision ------------------------------------------------------------


class AlreadyDecided(ValueError):
    """A decision has been made on this arrangement; it is not made twice."""


def decide(
    db: Session, now: datetime, request: ServiceRequest, approve: bool, reason: str | None, staff_user_id: int
) -> PaymentArrangement:
    """Approve or decline a proposed arrangement. A decline needs a reason (the
    person sees it). The caller commits."""
    if request.kind != "arrangement":
        raise ValueError("that request is not a payment arrangement")
    arrangement = for_request(db, request)
    if arrangement is None:
        raise ValueError("that request has no arrangement")
    if request.decided_at is not None or arrangement.status != "proposed" or request.status in ("approved", "declined"):
        raise AlreadyDecided(f"{request.reference} has already been decided ({request.status})")
    reason = (reason or "").strip() or None
    if not approve and reason is None:
        raise ValueError("a reason is needed to decline an arrangement")
    status = "approved" if approve else "declined"
    request.status, request.decided_at, request.decided_by_user_id = status, now, staff_user_id
    request.decision_reason = reason
    arrangement.status, arrangement.decided_at = status, now
    audit.record(
        db,
        now,
        f"arrangement.{status}",
        actor_user_id=staff_user_id,
        account_id=request.account_id,
        reference=request.reference,
    )
    return arrangement
