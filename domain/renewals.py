"""Renewing a program's licence (Fuel Tax, Tobacco Tax): when a licence can be
renewed, the program's renewal questions (as data), what a renewal request
holds, and the agency's decision. Plain functions, no Flask.

A licence can be renewed from `renewal_window_days` (a program setting) before
it expires, and after it has expired. One renewal at a time: while a request for
a licence waits for a decision, a new one is not started. Approval extends the
licence by one year from its expiry, or from the day of the decision when it has
already expired."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain import audit
from domain.db import rows_changed
from domain.programs import int_setting
from domain.sending import Refused
from models import Account, Licence, ServiceRequest

WAITING = ("received", "in_review")
SERVICE_ZONE = ZoneInfo("America/Edmonton")
_COUNT = re.compile(r"[0-9]{1,7}", re.ASCII)


# --- When a licence can be renewed --------------------------------------------------------


@dataclass(frozen=True)
class Window:
    state: str  # "not_yet" | "open" | "expired"
    opens_on: date
    expires_on: date

    @property
    def can_renew(self) -> bool:
        return self.state in ("open", "expired")


def window(licence: Licence, today: date, window_days: int) -> Window:
    opens_on = licence.expires_on - timedelta(days=window_days)
    if today > licence.expires_on:
        state = "expired"
    elif today >= opens_on:
        state = "open"
    else:
        state = "not_yet"
    return Window(state, opens_on, licence.expires_on)


def window_days(db: Session, program_code: str) -> int:
    return int_setting(db, program_code, "renewal_window_days")


def licences(db: Session, account_id: int) -> list[Licence]:
    return list(
        db.scalars(select(Licence).where(Licence.account_id == account_id).order_by(Licence.expires_on, Licence.id))
    )


def licence_of(db: Session, account_id: int, licence_id: int) -> Licence | None:
    """The account's own licence with this id; None for any other."""
    licence = db.get(Licence, licence_id)
    return licence if licence is not None and licence.account_id == account_id else None


def subject(licence: Licence) -> str:
    """The draft's subject: the licence and the expiry being renewed (a new year, a new draft)."""
    return f"licence:{licence.id}:{licence.expires_on.isoformat()}"


def _licence_id(request: ServiceRequest) -> int | None:
    try:
        data = json.loads(request.data or "{}")
    except ValueError:
        return None
    value = data.get("licence_id") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def _requested_expiry(request: ServiceRequest) -> str | None:
    try:
        data = json.loads(request.data or "{}")
    except ValueError:
        return None
    value = data.get("expires_on") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def waiting(db: Session, account_id: int) -> dict[int, ServiceRequest]:
    """licence id -> the renewal request for it that waits for a decision."""
    found: dict[int, ServiceRequest] = {}
    for request in db.scalars(
        select(ServiceRequest)
        .where(
            ServiceRequest.account_id == account_id,
            ServiceRequest.kind == "renewal",
            ServiceRequest.status.in_(WAITING),
        )
        .order_by(ServiceRequest.submitted_at)
    ):
        licence_id = _licence_id(request)
        if licence_id is not None:
            found.setdefault(licence_id, request)
    return found


# --- The program's renewal questions, as data -----------------------------------------------


@dataclass(frozen=True)
class Question:
    name: str
    kind: str  # "choices" (select all that apply) | "count" (a whole number) | "yes_no"
    label: str
    required: str  # the message when it is not answered
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()
    minimum: int = 0
    maximum: int = 9999
    short: str = ""  # its name on "check your answers" and in the request

    @property
    def title(self) -> str:
        return self.short or self.label


YES_NO = (("yes", "Yes"), ("no", "No"))

QUESTIONS: dict[str, tuple[Question, ...]] = {
    "FT": (
        Question(
            "fuel_kinds",
            "choices",
            "Which kinds of fuel do you sell?",
            "Select the kinds of fuel you sell",
            hint="Select all that apply",
            options=(
                ("gasoline", "Gasoline"),
                ("diesel", "Diesel"),
                ("propane", "Propane"),
                ("aviation", "Aviation fuel"),
                ("marked", "Marked (coloured) fuel"),
            ),
            short="Kinds of fuel sold",
        ),
        Question(
            "locations",
            "count",
            "How many locations do you sell fuel from?",
            "Enter the number of locations you sell fuel from",
            hint="Count each service station, bulk plant and cardlock site",
            minimum=1,
            short="Number of locations",
        ),
    ),
    "TT": (
        Question(
            "retail_locations",
            "count",
            "How many retail locations do you supply with tobacco?",
            "Enter the number of retail locations you supply",
            hint="Enter 0 if you supply none",
            minimum=0,
            maximum=99999,
            short="Retail locations supplied",
        ),
        Question(
            "imports",
            "yes_no",
            "Do you import tobacco products into Alberta?",
            "Select yes if you import tobacco products into Alberta",
            options=YES_NO,
            short="Imports tobacco products",
        ),
    ),
}
CONFIRMED = "details_correct"


def questions(program_code: str) -> tuple[Question, ...]:
    return QUESTIONS.get(program_code, ())


def _count(text) -> int | None:
    text = text.replace(",", "").strip() if isinstance(text, str) else ""
    return int(text) if _COUNT.fullmatch(text) else None


def problems(program_code: str, answers: dict) -> dict[str, str]:
    """question name -> what is wrong with its answer (nothing: every answer is fine)."""
    found = {}
    for question in questions(program_code):
        value = answers.get(question.name)
        if question.kind == "choices":
            chosen = value if isinstance(value, list) else ([value] if isinstance(value, str) and value else [])
            allowed = {key for key, _label in question.options}
            if not chosen:
                found[question.name] = question.required
            elif any(item not in allowed for item in chosen):
                found[question.name] = f"{question.required} from the list"
        elif question.kind == "yes_no":
            if value not in ("yes", "no"):
                found[question.name] = question.required
        else:
            if not isinstance(value, str) or not value.strip():
                found[question.name] = question.required
                continue
            number = _count(value)
            if number is None:
                found[question.name] = f"{question.title} must be a whole number, like {max(question.minimum, 3)}"
            elif not question.minimum <= number <= question.maximum:
                found[question.name] = f"{question.title} must be between {question.minimum} and {question.maximum:,}"
    return found


def confirmation_problem(answers: dict) -> str | None:
    if answers.get(CONFIRMED) not in ("yes", "no"):
        return "Select yes if these details are correct"
    return None


def ready(program_code: str, answers: dict) -> bool:
    """Everything answered, and the details confirmed as correct."""
    return answers.get(CONFIRMED) == "yes" and not problems(program_code, answers)


def cleaned(program_code: str, answers: dict) -> dict:
    """The answers as plain values (numbers as numbers), for the request."""
    clean: dict[str, Any] = {}
    for question in questions(program_code):
        value = answers.get(question.name)
        if question.kind == "choices":
            labels = dict(question.options)
            chosen = value if isinstance(value, list) else [value]
            clean[question.name] = [key for key in labels if key in chosen]
        elif question.kind == "count":
            clean[question.name] = _count(value)
        else:
            clean[question.name] = value
    return clean


def readable(program_code: str, answers: dict) -> list[tuple[str, str, str]]:
    """(question name, title, answer in words) for "check your answers"."""
    rows = []
    for question in questions(program_code):
        value = answers.get(question.name)
        if question.kind == "choices":
            labels = dict(question.options)
            chosen = value if isinstance(value, list) else [value]
            text = "\n".join(labels[key] for key in labels if key in chosen)
        elif question.kind == "yes_no":
            text = dict(question.options).get(value, "") if isinstance(value, str) else ""
        else:
            number = _count(value)
            text = f"{number:,}" if number is not None else ""
        rows.append((question.name, question.title, text))
    return rows


# --- The request --------------------------------------------------------------------------------


def long_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def summary(licence: Licence) -> str:
    return f"Renewal of {licence.kind} {licence.licence_number} (expires {long_day(licence.expires_on)})"


def contact_text(account: Account) -> str:
    return "\n".join(part for part in (account.contact_name, account.contact_phone, account.contact_email) if part)


def request_data(account: Account, licence: Licence, answers: dict) -> dict:
    """What the agency receives: the licence, the details the person confirmed, and the answers."""
    data = {
        "licence": f"{licence.kind} {licence.licence_number}",
        "licence_id": licence.id,
        "expires_on": licence.expires_on.isoformat(),
        "details_confirmed": True,
        "legal_name": account.legal_name,
        "operating_name": account.operating_name or "",
        "mailing_address": account.mailing_address,
        "physical_address": account.physical_address,
        "contact": contact_text(account),
    }
    for _name, title, text in readable(account.program_code, answers):
        data[title.lower().replace(" ", "_")] = text
    return data


class AlreadyAsked(Refused):
    """A renewal of the licence was sent a moment before, and waits for a decision."""


def builder(account_id: int, licence_id: int):
    """The `build` of a renewal's request (domain.sending.Outgoing): raises
    AlreadyAsked when another renewal of the licence waits for a decision."""

    def build(db: Session, request: ServiceRequest) -> None:
        # Two renewals of one licence at the same moment (two people): the licence's
        # row is locked (FOR UPDATE on PostgreSQL; on SQLite the request's insert
        # already holds the one write lock), so the second finds the first here.
        db.execute(select(Licence.id).where(Licence.id == licence_id).with_for_update())
        others = db.scalars(
            select(ServiceRequest).where(
                ServiceRequest.account_id == account_id,
                ServiceRequest.kind == "renewal",
                ServiceRequest.status.in_(WAITING),
                ServiceRequest.id != request.id,
            )
        )
        if any(_licence_id(other) == licence_id for other in others):
            raise AlreadyAsked(licence_id)

    return build


# --- The agency's decision ----------------------------------------------------------------------


class DecisionRefused(ValueError):
    """Not a renewal waiting for a decision, or a decline without a reason."""


def one_year_on(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


@dataclass
class Decision:
    request: ServiceRequest
    licence: Licence
    new_expiry: date | None = None  # set when approved
    notes: list[str] = field(default_factory=list)


def decide(
    db: Session,
    now: datetime,
    request: ServiceRequest,
    approve: bool,
    reason: str | None,
    staff_user_id: int,
    *,
    today: date | None = None,
) -> Decision:
    """Approve (the licence runs one more year from its expiry, or from today when
    it has expired) or decline (with a reason) a renewal. A request is decided
    once: a second decision, even at the same moment elsewhere, is refused.
    The caller commits; on DecisionRefused it rolls back."""
    if request.kind != "renewal":
        raise DecisionRefused("only a renewal request is decided here")
    reason = (reason or "").strip()
    if not approve and not reason:
        raise DecisionRefused("give the reason for declining")
    today = today or now.astimezone(SERVICE_ZONE).date()
    licence = _licence_to_decide(db, request)
    # The decision itself: only a request still waiting takes one.
    decided = rows_changed(
        db,
        update(ServiceRequest)
        .where(ServiceRequest.id == request.id, ServiceRequest.status.in_(WAITING))
        .values(
            status="approved" if approve else "declined",
            decided_at=now,
            decided_by_user_id=staff_user_id,
            decision_reason=reason or None,
        )
        .execution_options(synchronize_session=False),
    )
    if decided != 1:
        raise DecisionRefused("this renewal has already been decided")
    result = Decision(request, licence)
    if approve:
        result.new_expiry = _renew(db, licence, today)
    db.refresh(request)
    db.refresh(licence)
    audit.record(
        db,
        now,
        "renewal.approved" if approve else "renewal.declined",
        actor_user_id=staff_user_id,
        account_id=request.account_id,
        reference=request.reference,
        licence_id=licence.id,
        new_expiry=result.new_expiry.isoformat() if result.new_expiry else None,
    )
    return result


def _licence_to_decide(db: Session, request: ServiceRequest) -> Licence:
    """The account's licence the renewal is for, as it was when the request was sent."""
    licence_id = _licence_id(request)
    licence = db.get(Licence, licence_id) if licence_id is not None else None
    if licence is None or licence.account_id != request.account_id:
        raise DecisionRefused("the licence of this renewal is no longer on record")
    if request.status in WAITING and _requested_expiry(request) not in (None, licence.expires_on.isoformat()):
        raise DecisionRefused("the licence has been renewed since this request was sent")
    return licence


def _renew(db: Session, licence: Licence, today: date) -> date:
    """The licence runs one more year from its expiry (from today when it has
    expired), moved only from the expiry read: a change meanwhile is refused."""
    old = licence.expires_on
    new = one_year_on(old if old >= today else today)
    moved = rows_changed(
        db,
        update(Licence)
        .where(Licence.id == licence.id, Licence.expires_on == old)
        .values(expires_on=new)
        .execution_options(synchronize_session=False),
    )
    if moved != 1:
        raise DecisionRefused("the licence changed while this was being decided")
    return new
