"""The agency registers programs and accounts. A program's rules are data (its
number prefix, filing frequency, due rule, self-service functions); an account
gets the next number of its program and its filing periods from the day it
opened. Plain functions, no Flask; the caller commits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import audit, once
from domain.accounts import due_date, make_number, periods_between
from domain.db import savepoint
from models import FUNCTIONS, Account, FilingPeriod, Program

FREQUENCIES = ("monthly", "quarterly", "annual")
FREQUENCY_WORDS = {"monthly": "Monthly", "quarterly": "Quarterly", "annual": "Annual"}
FUNCTION_WORDS = {
    "file": "File returns or claims",
    "renewal": "Renew a licence",
    "direct_deposit": "Direct deposit",
    "payment_arrangement": "Payment arrangements",
    "objection": "Notices of objection",
    "waiver": "Waivers of penalties and interest",
    "upload": "Upload documents",
    "messages": "Messages",
}
if set(FUNCTION_WORDS) != set(FUNCTIONS):  # checked at import, even under -O
    raise RuntimeError("every program function needs its words")
CODE_PATTERN = re.compile(r"[A-Z]{2,10}")
PREFIX_PATTERN = re.compile(r"[1-9][0-9]")
# "M+1:last": the last day of the month after the period ends; "M+1:25": the 25th of it.
DUE_RULE_PATTERN = re.compile(r"M\+(?P<months>[0-9]{1,2}):(?P<day>last|[0-9]{1,2})")
MOST_DUE_MONTHS = 60
MOST_SERIAL = 9_999_999
# Numbers taken by another registration at the same moment are tried again this often.
NUMBER_TRIES = 5
EARLIEST_OPENING = date(1900, 1, 1)


class Refused(ValueError):
    """What cannot be saved, with the words to show beside `field`."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


# --- Programs -----------------------------------------------------------------------------


def due_rule_problem(rule: str) -> str | None:
    match = DUE_RULE_PATTERN.fullmatch(rule or "")
    if match is None:
        return "Enter the due rule like M+1:last or M+1:25"
    if int(match["months"]) > MOST_DUE_MONTHS:
        return f"A return can be due at most {MOST_DUE_MONTHS} months after its period"
    if match["day"] != "last" and not 1 <= int(match["day"]) <= 31:
        return "The day of the month is from 1 to 31, or last"
    return None


def describe_due_rule(rule: str) -> str:
    """ "The last day of the month after the period ends", for a rule that is sound."""
    match = DUE_RULE_PATTERN.fullmatch(rule)
    if match is None:
        raise ValueError(f"not a due rule: {rule!r}")
    months = int(match["months"])
    month = {0: "the month the period ends", 1: "the month after the period ends"}.get(
        months, f"the month {months} months after the period ends"
    )
    day = "the last day" if match["day"] == "last" else f"day {int(match['day'])}"
    return f"{day.capitalize()} of {month}"


@dataclass(frozen=True)
class ProgramFields:
    name: str
    number_prefix: str
    filing_frequency: str
    due_rule: str
    is_claim: bool
    functions: tuple[str, ...]
    objection_days: int
    description: str
    # How to pay (the "Make a payment" page): blank leaves a way out.
    pay_online_payee: str = ""
    pay_wire: str = ""
    pay_cheque_payable_to: str = ""
    pay_cheque_address: str = ""


PAYMENT_FIELDS = ("pay_online_payee", "pay_wire", "pay_cheque_payable_to", "pay_cheque_address")


def programs(db: Session, *, by_name: bool = False) -> list[Program]:
    """Every program, by number prefix (or by name, to choose one from a list)."""
    return list(db.scalars(select(Program).order_by(Program.name if by_name else Program.number_prefix)))


def find_program(db: Session, code: str) -> Program | None:
    return db.get(Program, code) if CODE_PATTERN.fullmatch(code or "") else None


def account_counts(db: Session) -> dict[str, int]:
    """How many accounts each program has (programs with none are left out)."""
    return dict(db.execute(select(Account.program_code, func.count(Account.id)).group_by(Account.program_code)).all())


def _account_count(db: Session, program_code: str) -> int:
    return db.scalar(select(func.count(Account.id)).where(Account.program_code == program_code)) or 0


def _check_program(db: Session, fields: ProgramFields, program: Program | None) -> None:
    if not PREFIX_PATTERN.fullmatch(fields.number_prefix):
        raise Refused("Enter two digits, not starting with 0", "number_prefix")
    taken = db.scalar(select(Program.code).where(Program.number_prefix == fields.number_prefix))
    if taken is not None and (program is None or taken != program.code):
        raise Refused(f"Another program ({taken}) already uses the prefix {fields.number_prefix}", "number_prefix")
    if fields.filing_frequency not in FREQUENCIES:
        raise Refused("Choose how often returns are filed", "filing_frequency")
    problem = due_rule_problem(fields.due_rule)
    if problem:
        raise Refused(problem, "due_rule")
    if set(fields.functions) - set(FUNCTIONS):
        raise Refused("Choose self-service functions from the list", "functions")
    if program is not None and _account_count(db, program.code):
        # Account numbers carry the prefix, and filing periods follow the frequency.
        if fields.number_prefix != program.number_prefix:
            raise Refused(
                f"The prefix cannot change: the program has accounts whose numbers start with {program.number_prefix}",
                "number_prefix",
            )
        if fields.filing_frequency != program.filing_frequency:
            raise Refused(
                "The filing frequency cannot change: the program has accounts with filing periods", "filing_frequency"
            )


def _apply(program: Program, fields: ProgramFields) -> list[str]:
    """Set the fields; the names of those that changed."""
    values = dict(
        name=fields.name,
        number_prefix=fields.number_prefix,
        filing_frequency=fields.filing_frequency,
        due_rule=fields.due_rule,
        is_claim=fields.is_claim,
        functions=",".join(f for f in FUNCTIONS if f in fields.functions),
        objection_days=fields.objection_days,
        description=fields.description,
        **{name: getattr(fields, name) for name in PAYMENT_FIELDS},
    )
    changed = [name for name, value in values.items() if getattr(program, name) != value]
    for name in changed:
        setattr(program, name, values[name])
    return changed


def register_program(
    db: Session, now: datetime, *, code: str, fields: ProgramFields, actor_user_id: int, key: str
) -> tuple[Program, bool]:
    """A new program, and True; or, when the form's key made one before (a second
    press of the button), that program and False."""
    earlier = once.made_with(db, key, ("program.registered",))
    if earlier is not None:
        return db.get_one(Program, earlier["program"]), False
    if not CODE_PATTERN.fullmatch(code or ""):
        raise Refused("Enter a code of 2 to 10 capital letters, like TL", "code")
    if db.get(Program, code) is not None:
        raise Refused(f"There is already a program with the code {code}", "code")
    _check_program(db, fields, None)
    if not once.claim(db, now, key):
        earlier = once.made_with(db, key, ("program.registered",))
        if earlier is None:
            raise once.AlreadySent()
        return db.get_one(Program, earlier["program"]), False
    program = Program(code=code, name="", number_prefix="", filing_frequency="", due_rule="", functions="")
    _apply(program, fields)
    try:
        with savepoint(db):
            db.add(program)
            db.flush()
    except IntegrityError as error:  # another administrator took the code or the prefix just now
        raise Refused(
            f"There is already a program with the code {code} or the prefix {fields.number_prefix}", "code"
        ) from error
    audit.record(
        db,
        now,
        "program.registered",
        actor_user_id=actor_user_id,
        program=code,
        prefix=fields.number_prefix,
        submission=once.marker(key),  # once.MARKER_FIELD
    )
    return program, True


def change_program(
    db: Session, now: datetime, *, program: Program, fields: ProgramFields, actor_user_id: int
) -> list[str]:
    """Change a program's rules; the names of the fields that changed (none: nothing recorded)."""
    _check_program(db, fields, program)
    changed = _apply(program, fields)
    if changed:
        db.flush()
        audit.record(db, now, "program.changed", actor_user_id=actor_user_id, program=program.code, fields=changed)
    return changed


# --- Accounts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountFields:
    program_code: str
    legal_name: str
    operating_name: str | None
    mailing_address: str
    physical_address: str
    contact_name: str
    contact_phone: str
    contact_email: str | None
    opened_on: date


@dataclass(frozen=True)
class Registered:
    account: Account
    created: bool  # False: the form's key had made this account before
    periods: list[FilingPeriod] = field(default_factory=list)


def next_serial(db: Session, prefix: str) -> int:
    """One more than the highest serial in use under the prefix (digits 3 to 9 of the number)."""
    highest = db.scalar(select(func.max(func.substr(Account.number, 3, 7))).where(Account.number.like(f"{prefix}%")))
    return int(highest) + 1 if highest else 1


def first_period_start(program: Program, opened_on: date) -> date:
    """The first day of the period the account opened in: the month, or the
    calendar quarter or year, as the demo's periods are aligned."""
    if program.filing_frequency == "quarterly":
        return date(opened_on.year, (opened_on.month - 1) // 3 * 3 + 1, 1)
    if program.filing_frequency == "annual":
        return date(opened_on.year, 1, 1)
    return date(opened_on.year, opened_on.month, 1)


def register_account(
    db: Session, now: datetime, today: date, *, fields: AccountFields, actor_user_id: int, key: str
) -> Registered:
    """A new account with the next number of its program and its filing periods
    up to today. The same form key again answers the account it made."""
    earlier = once.made_with(db, key, ("account.registered",))
    if earlier is not None:
        return Registered(db.get_one(Account, earlier["account_id"]), False)
    program = db.get(Program, fields.program_code)
    if program is None:
        raise Refused("Choose a program", "program_code")
    if not EARLIEST_OPENING <= fields.opened_on <= today:
        raise Refused("The date the account opened must be today or in the past", "opened_on")
    if not once.claim(db, now, key):
        earlier = once.made_with(db, key, ("account.registered",))
        if earlier is None:
            raise once.AlreadySent()
        return Registered(db.get_one(Account, earlier["account_id"]), False)
    account = _add_with_the_next_number(db, program, fields)
    periods = [
        FilingPeriod(account_id=account.id, period_start=start, period_end=end, due_date=due_date(program, end))
        for start, end in periods_between(program, first_period_start(program, fields.opened_on), today)
    ]
    db.add_all(periods)
    db.flush()
    audit.record(
        db,
        now,
        "account.registered",
        actor_user_id=actor_user_id,
        account_id=account.id,
        number=account.number,
        program=program.code,
        periods=len(periods),
        submission=once.marker(key),  # once.MARKER_FIELD
    )
    return Registered(account, True, periods)


def _add_with_the_next_number(db: Session, program: Program, fields: AccountFields) -> Account:
    """The account, added with the program's next number; when another registration
    takes that number at the same moment, the one after (NUMBER_TRIES times)."""
    for _attempt in range(NUMBER_TRIES):
        serial = next_serial(db, program.number_prefix)
        if serial > MOST_SERIAL:
            raise Refused(f"Every account number of {program.name} is taken", "program_code")
        candidate = Account(
            number=make_number(program.number_prefix, serial),
            program_code=program.code,
            legal_name=fields.legal_name,
            operating_name=fields.operating_name or None,
            status="active",
            mailing_address=fields.mailing_address,
            physical_address=fields.physical_address,
            contact_name=fields.contact_name,
            contact_phone=fields.contact_phone,
            contact_email=fields.contact_email or None,
            opened_on=fields.opened_on,
        )
        try:
            with savepoint(db):
                db.add(candidate)
                db.flush()
        except IntegrityError:
            continue  # another registration took the number just now: take the next one
        return candidate
    raise RuntimeError("no account number could be taken")
