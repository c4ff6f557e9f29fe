"""Assessing and reassessing returns and claims. Plain functions, no Flask.

Assessing a return posts its period's assessment to the ledger, with any
penalty and interest as entries of their own (each with the reason the
taxpayer reads), dates the notice of assessment, posts its PDF to the account's
Mail, completes the request the return came with, closes its queue item
and tells the account's people in Messages. Reassessing posts an
adjustment for the difference between the new total and the period's current
assessed total (the ledger is never edited) and issues a notice of
reassessment. An amended return is assessed by reassessing: it changes the
period of the return it amends.

The period's assessed total is what its assessments and adjustments (less their
reversals) come to; penalties, interest and payments are not part of it. An
assessment posts what the new total adds to any total the period already has
(a paper return's self-assessment posted when it arrived), so nothing is
charged twice.

Each step runs once: the form's one-time key is claimed first
(domain.once.claim), the period's returns are locked (PostgreSQL; SQLite
has one writer at a time) and the return moves to assessed only from a state
that is not, in one conditional UPDATE. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased

from domain import audit, ledger, mail, messages, notices, once, work
from domain.accounts import describe_balance, format_money
from domain.db import rows_changed
from domain.postings import MAX_CENTS, MAX_REASON, AlreadyDone
from domain.returns import NOTICE_TITLES, account_period_starts, notice_of, period_text, start_of
from models import Account, FilingPeriod, LedgerEntry, MailItem, ServiceRequest, TaxReturn, User, WorkItem

CHARGE_KINDS = ("penalty", "interest")
ASSESSED = ("assessed", "reassessed")
# Assessed totals: what these kinds of entry (and their reversals) come to.
TOTAL_KINDS = ("assessment", "adjustment")
MAX_NOTE = 2000
SERVICE_ZONE = ZoneInfo("America/Edmonton")
_OPEN_REQUEST = ("received", "in_review")


class AssessmentRefused(ValueError):
    """A step that cannot be taken: `field` names the answer it is about (None: the
    request as a whole); `status` is the HTTP status a view answers with."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(frozen=True)
class Charge:
    kind: str  # penalty | interest
    cents: int
    reason: str


@dataclass(frozen=True)
class Outcome:
    entries: list[LedgerEntry]
    mail_item: MailItem
    total_cents: int  # the period's assessed total now, as the return states it (a claim's refund is positive)


# --- Reading a return's state -------------------------------------------------------------


def sign_of(tax_return: TaxReturn) -> int:
    """A return's tax is owed to the agency (a debit); a claim's refund is a credit."""
    return -1 if tax_return.kind == "claim" else 1


def assessed_total(db: Session, account_id: int, period_end: date) -> int:
    """The period's assessments and adjustments, with their reversals, in ledger signs."""
    e = LedgerEntry
    original = aliased(LedgerEntry)
    direct = select(func.coalesce(func.sum(e.amount_cents), 0)).where(
        e.account_id == account_id, e.period_end == period_end, e.kind.in_(TOTAL_KINDS)
    )
    undone = (
        select(func.coalesce(func.sum(e.amount_cents), 0))
        .join(original, original.id == e.reverses_id)
        .where(
            e.account_id == account_id,
            e.kind == "reversal",
            original.kind.in_(TOTAL_KINDS),
            original.period_end == period_end,
        )
    )
    return int(db.scalar(direct) or 0) + int(db.scalar(undone) or 0)


def stated_total(db: Session, tax_return: TaxReturn) -> int:
    """The period's assessed total as the return states it (a claim's allowed refund positive)."""
    return sign_of(tax_return) * assessed_total(db, tax_return.account_id, tax_return.period_end)


def amended_original(db: Session, tax_return: TaxReturn) -> TaxReturn | None:
    if not tax_return.amended or tax_return.amends_return_id is None:
        return None
    original = db.get(TaxReturn, tax_return.amends_return_id)
    return original if original is not None and original.account_id == tax_return.account_id else None


def period_assessed(db: Session, tax_return: TaxReturn) -> bool:
    """Whether any return of the period has been assessed."""
    return (
        db.scalar(
            select(TaxReturn.id)
            .where(
                TaxReturn.account_id == tax_return.account_id,
                TaxReturn.period_end == tax_return.period_end,
                or_(TaxReturn.status.in_(ASSESSED), TaxReturn.notice_kind.is_not(None)),
            )
            .limit(1)
        )
        is not None
    )


def is_assessed(tax_return: TaxReturn) -> bool:
    return tax_return.status in ASSESSED or tax_return.notice_kind is not None


def step_for(db: Session, tax_return: TaxReturn) -> str | None:
    """What staff can do with the return now: "assess", "reassess", or None (an
    amended return whose period has not been assessed yet)."""
    if tax_return.amended:
        return "reassess" if period_assessed(db, tax_return) else None
    return "reassess" if is_assessed(tax_return) else "assess"


def request_of(db: Session, tax_return: TaxReturn) -> ServiceRequest | None:
    if tax_return.service_request_id is None:
        return None
    request = db.get(ServiceRequest, tax_return.service_request_id)
    return request if request is not None and request.account_id == tax_return.account_id else None


def _request_reference(db: Session, tax_return: TaxReturn) -> str | None:
    """The reference of the request the return came with (None for a paper return):
    its entries link to it, each under a reference of its own."""
    request = request_of(db, tax_return)
    return request.reference if request is not None else None


def mail_of(db: Session, tax_return: TaxReturn) -> list[MailItem]:
    """The notices posted for this return, newest first."""
    return list(
        db.scalars(
            select(MailItem)
            .where(MailItem.tax_return_id == tax_return.id, MailItem.account_id == tax_return.account_id)
            .order_by(MailItem.posted_at.desc(), MailItem.id.desc())
        )
    )


def period_entries(db: Session, account_id: int, period_end: date) -> list[LedgerEntry]:
    """Every entry of the period, oldest first."""
    return list(
        db.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id, LedgerEntry.period_end == period_end)
            .order_by(LedgerEntry.processed_date, LedgerEntry.id)
        )
    )


def _period_balance(db: Session, tax_return: TaxReturn) -> int:
    return ledger.period_balances(db, tax_return.account_id).get(tax_return.period_end, 0)


def period_of(db: Session, account: Account, tax_return: TaxReturn) -> str:
    return period_text(
        start_of(account, tax_return.period_end, account_period_starts(db, account)), tax_return.period_end
    )


# --- Checks ----------------------------------------------------------------------------------


def _check_amount(cents: int, field: str, what: str) -> None:
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError("amounts are integer cents")
    if cents < 0:
        raise AssessmentRefused(f"The {what} cannot be negative", field)
    if cents > MAX_CENTS:
        raise AssessmentRefused(f"The {what} must be {format_money(MAX_CENTS)} or less", field)


def charge_problems(charges) -> dict[tuple[int, str], str]:
    """(position in `charges`, "kind" | "amount" | "reason") -> message for each
    charge that cannot be posted: penalty or interest, more than nothing, and a
    reason. An amount of None (not read) is left to the caller to report."""
    found: dict[tuple[int, str], str] = {}
    for position, (kind, cents, reason) in enumerate(charges):
        reason = (reason or "").strip()
        if kind not in CHARGE_KINDS:
            found[position, "kind"] = "Choose penalty or interest"
        if cents is not None:
            if not isinstance(cents, int) or isinstance(cents, bool):
                raise TypeError("amounts are integer cents")
            if cents <= 0:
                found[position, "amount"] = "A charge must be more than $0.00"
            elif cents > MAX_CENTS:
                found[position, "amount"] = f"A charge must be {format_money(MAX_CENTS)} or less"
        what = kind if kind in CHARGE_KINDS else "charge"
        if not reason:
            found[position, "reason"] = f"Enter the reason for this {what}: the account's people will read it"
        elif len(reason) > MAX_REASON:
            found[position, "reason"] = f"The reason must be {MAX_REASON} characters or fewer"
    return found


def _check_charges(charges) -> list[Charge]:
    """The charges, or AssessmentRefused about the first problem (its field is
    charge<n>_<part>, n counting from 1 in the order given)."""
    charges = list(charges)
    problems = charge_problems(charges)
    problems.update(
        {
            (position, "amount"): "Enter the amount of this charge"
            for position, (_kind, cents, _reason) in enumerate(charges)
            if cents is None
        }
    )
    for (position, part), message in sorted(problems.items()):
        raise AssessmentRefused(message, f"charge{position + 1}_{part}")
    return [Charge(kind, cents, reason.strip()) for kind, cents, reason in charges]


def _check_note(note: str, field: str = "note") -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise AssessmentRefused(f"The note must be {MAX_NOTE:,} characters or fewer", field)
    return note


def _open_item(db: Session, request: ServiceRequest | None, staff: User) -> WorkItem | None:
    """The request's queue item while it is open, after checking this staff member may decide it."""
    item = work.for_request(db, request.id) if request is not None else None
    if item is None or item.status == "decided":
        return None
    try:
        work.check_can_decide(item, staff)
    except work.WorkRefused as refused:
        raise AssessmentRefused(str(refused), None, 409) from refused
    return item


def _lock_period(db: Session, tax_return: TaxReturn) -> None:
    """Hold the period's returns until the commit, so two people assessing the
    same period at once act one after the other (SQLite has one writer anyway)."""
    db.execute(
        select(TaxReturn.id)
        .where(TaxReturn.account_id == tax_return.account_id, TaxReturn.period_end == tax_return.period_end)
        .with_for_update()
    )


def _effective_dates(db: Session, tax_return: TaxReturn, today: date) -> tuple[date, date]:
    """(an assessment's, a charge's) effective dates: the period's end, as the
    demo's assessments have it, and its due date, when a penalty or interest
    arises (today, when a charge is assessed before the due date)."""
    due = db.scalar(
        select(FilingPeriod.due_date).where(
            FilingPeriod.account_id == tax_return.account_id, FilingPeriod.period_end == tax_return.period_end
        )
    )
    return tax_return.period_end, min(due or tax_return.period_end, today)


# --- The notice, the request, the message -------------------------------------------------------


def _post_notice(
    db: Session, now: datetime, today: date, account: Account, tax_return: TaxReturn, staff: User, zone: ZoneInfo
) -> MailItem:
    notice = notices.notice_for(db, account, tax_return)
    if notice is None:  # the return was given its notice just before
        raise ValueError(f"return {tax_return.id} has no notice to post")
    pdf = notices.render_pdf(notice, generated_at=now.astimezone(zone))
    kind = "notice_of_assessment" if tax_return.notice_kind == "assessment" else "notice_of_reassessment"
    return mail.post(
        db,
        now,
        today,
        account=account,
        kind=kind,
        title=f"{notice.title}, period {notice.period}",
        pdf=pdf,
        posted_by_user_id=staff.id,
        tax_return_id=tax_return.id,
        service_request_id=tax_return.service_request_id,
    )


def _complete(
    db: Session,
    now: datetime,
    request: ServiceRequest | None,
    item: WorkItem | None,
    staff: User,
    outcome: str,
    note: str,
) -> None:
    if request is not None and request.status in _OPEN_REQUEST:
        request.status, request.decided_at, request.decided_by_user_id = "completed", now, staff.id
        request.decision_reason = note or None
        audit.record(
            db,
            now,
            "request.completed",
            actor_user_id=staff.id,
            account_id=request.account_id,
            reference=request.reference,
        )
    if item is not None:
        work.decide(db, now, item, staff, outcome, note)


def _tell(
    db: Session,
    now: datetime,
    today: date,
    account: Account,
    tax_return: TaxReturn,
    verb: str,
    lines: list[str],
    mail_item: MailItem,
) -> None:
    program = account.program.name
    paper = f"amended {tax_return.kind}" if tax_return.amended else tax_return.kind
    period = period_of(db, account, tax_return)
    title = NOTICE_TITLES[notice_of(tax_return)[0]].lower()
    where = (
        f"We are sending the {title} by post to the account's mailing address."
        if mail_item.delivery == "paper"
        else f"The {title} is under the account's Mail in TRA Client Self-Service. It shows the period's "
        f"transactions and says how to object if you disagree."
    )
    body = "\n\n".join(
        [f"We have {verb} your {program} {paper} for {period} (reference {tax_return.reference}).", *lines, where]
    )
    messages.to_everyone_with_access(
        db, now, account, f"Your {program} {paper} for {period} has been {verb}", body, today, about=f"a {title}"
    )


# --- Assessing ---------------------------------------------------------------------------------


def assess(
    db: Session,
    now: datetime,
    today: date,
    *,
    tax_return: TaxReturn,
    staff: User,
    assessed_cents: int,
    charges=(),
    note: str = "",
    key: str | None = None,
    zone: ZoneInfo = SERVICE_ZONE,
) -> Outcome:
    """Assess a return as `assessed_cents` (as the return states it: a claim's
    refund is positive) with penalty and interest `charges` ((kind, cents,
    reason) each). A difference from the amount as filed needs `note`, which is
    also the decision the account's people read. Raises AssessmentRefused, or
    AlreadyDone when `key` has been used."""
    if key is not None and not once.claim(db, now, key, "return.assess"):
        raise AlreadyDone()
    account = db.get_one(Account, tax_return.account_id)
    filed = tax_return.amount_cents
    checked, note = _checked_assessment(tax_return, assessed_cents, charges, note)
    request = request_of(db, tax_return)
    item = _open_item(db, request, staff)
    _mark_assessed(db, tax_return, today)
    entries = _post_assessment(db, account, tax_return, today, assessed_cents, filed, checked)

    mail_item = _post_notice(db, now, today, account, tax_return, staff, zone)
    _complete(db, now, request, item, staff, "assessed", note)
    lines = [f"Assessed amount: {format_money(assessed_cents)}."]
    lines += [f"{charge.kind.capitalize()}: {format_money(charge.cents)} ({charge.reason})." for charge in checked]
    lines.append(f"Balance for the period: {describe_balance(_period_balance(db, tax_return))}.")
    if note:
        lines.append(f"Our note: {note}")
    _tell(db, now, today, account, tax_return, "assessed", lines, mail_item)
    audit.record(
        db,
        now,
        "return.assessed",
        actor_user_id=staff.id,
        account_id=account.id,
        tax_return=tax_return.id,
        assessed_cents=assessed_cents,
        charges=len(checked),
        entries=[e.id for e in entries],
        mail=mail_item.id,
    )
    return Outcome(entries, mail_item, assessed_cents)


def _checked_assessment(tax_return: TaxReturn, assessed_cents: int, charges, note: str) -> tuple[list[Charge], str]:
    """The charges and the note, checked; AssessmentRefused when the return cannot be assessed so."""
    if tax_return.amended:
        raise AssessmentRefused("An amended return is assessed by reassessing the period: use Reassess", None, 409)
    if is_assessed(tax_return):
        raise AssessmentRefused("This return has already been assessed: reassess it to change the amount", None, 409)
    _check_amount(assessed_cents, "assessed", "assessed amount")
    checked = _check_charges(charges)
    note = _check_note(note)
    filed = tax_return.amount_cents
    if filed is not None and assessed_cents != filed and not note:
        raise AssessmentRefused(
            f"Say why the assessed amount differs from the {format_money(filed)} filed: "
            f"the account's people will read it",
            "note",
        )
    return checked, note


def _mark_assessed(db: Session, tax_return: TaxReturn, today: date) -> None:
    """The return moves to assessed, with today's notice, only from a state that is not
    (one conditional UPDATE, the period's returns locked): two clerks cannot both assess it."""
    _lock_period(db, tax_return)
    moved = rows_changed(
        db,
        update(TaxReturn)
        .where(TaxReturn.id == tax_return.id, TaxReturn.status.not_in(ASSESSED), TaxReturn.notice_kind.is_(None))
        .values(status="assessed", processed_on=today, notice_kind="assessment", notice_date=today)
        .execution_options(synchronize_session=False),
    )
    if moved != 1:
        raise AssessmentRefused("This return has just been assessed by someone else", None, 409)
    db.refresh(tax_return)


def _post_assessment(
    db: Session,
    account: Account,
    tax_return: TaxReturn,
    today: date,
    assessed_cents: int,
    filed: int | None,
    checked: list[Charge],
) -> list[LedgerEntry]:
    """The assessment's ledger entries: what it adds to the period's total, then each charge."""
    sign = sign_of(tax_return)
    effective, charged_from = _effective_dates(db, tax_return, today)
    period = period_of(db, account, tax_return)
    entries = []
    # What the new total adds to any total already posted for the period (a
    # paper return's self-assessment), so nothing is charged twice.
    due = sign * assessed_cents - assessed_total(db, account.id, tax_return.period_end)
    if due:
        description = f"Assessment of the {tax_return.kind} for {period}"
        if filed is not None and assessed_cents != filed:
            description += f", changed from the {format_money(filed)} filed"
        entries.append(
            ledger.post(
                db,
                account_id=account.id,
                kind="assessment",
                amount_cents=due,
                effective_date=effective,
                processed_date=today,
                reference=ledger.new_reference("assessment"),
                request_reference=_request_reference(db, tax_return),
                period_end=tax_return.period_end,
                description=description,
            )
        )
    for charge in checked:
        entries.append(
            ledger.post(
                db,
                account_id=account.id,
                kind=charge.kind,
                amount_cents=charge.cents,
                effective_date=charged_from,
                processed_date=today,
                reference=ledger.new_reference(charge.kind),
                request_reference=_request_reference(db, tax_return),
                period_end=tax_return.period_end,
                description=charge.reason,
            )
        )
    db.flush()
    return entries


def reassess(
    db: Session,
    now: datetime,
    today: date,
    *,
    tax_return: TaxReturn,
    staff: User,
    new_total_cents: int,
    reason: str,
    key: str | None = None,
    zone: ZoneInfo = SERVICE_ZONE,
) -> Outcome:
    """Change the period's assessed total to `new_total_cents` (as the return
    states it): an adjustment of the difference, described by `reason`, and a
    notice of reassessment on this return. An amended return reassesses the
    period of the return it amends, and its request and queue item are closed
    as reassessed. Raises AssessmentRefused, or AlreadyDone when `key` has been used."""
    if key is not None and not once.claim(db, now, key, "return.reassess"):
        raise AlreadyDone()
    account = db.get_one(Account, tax_return.account_id)
    reason = _checked_reassessment(db, tax_return, new_total_cents, reason)
    request = request_of(db, tax_return)
    item = _open_item(db, request, staff)

    _lock_period(db, tax_return)
    sign = sign_of(tax_return)
    before, difference = _change_of_total(db, account, tax_return, request, new_total_cents)
    entries = _post_adjustment(db, account, tax_return, today, difference, reason) if difference else []
    tax_return.status, tax_return.processed_on = "reassessed", today
    tax_return.notice_kind, tax_return.notice_date = "reassessment", today
    db.flush()

    mail_item = _post_notice(db, now, today, account, tax_return, staff, zone)
    _complete(db, now, request, item, staff, "reassessed", reason)
    lines = [
        f"Assessed amount: {format_money(new_total_cents)} (it was {format_money(sign * before)}).",
        f"Why: {reason}",
        f"Balance for the period: {describe_balance(_period_balance(db, tax_return))}.",
    ]
    _tell(db, now, today, account, tax_return, "reassessed", lines, mail_item)
    audit.record(
        db,
        now,
        "return.reassessed",
        actor_user_id=staff.id,
        account_id=account.id,
        tax_return=tax_return.id,
        new_total_cents=new_total_cents,
        difference_cents=difference,
        entries=[e.id for e in entries],
        mail=mail_item.id,
    )
    return Outcome(entries, mail_item, new_total_cents)


def _checked_reassessment(db: Session, tax_return: TaxReturn, new_total_cents: int, reason: str) -> str:
    """The reason, trimmed; AssessmentRefused when the period cannot be reassessed so."""
    if tax_return.amended:
        if not period_assessed(db, tax_return):
            raise AssessmentRefused(
                "The return this one amends has not been assessed yet: assess that one first", None, 409
            )
    elif not is_assessed(tax_return):
        raise AssessmentRefused("This return has not been assessed yet: assess it first", None, 409)
    _check_amount(new_total_cents, "new_total", "new total")
    reason = (reason or "").strip()
    if not reason:
        raise AssessmentRefused("Enter the reason for the reassessment: the account's people will read it", "reason")
    if len(reason) > MAX_REASON:
        raise AssessmentRefused(f"The reason must be {MAX_REASON} characters or fewer", "reason")
    return reason


def _change_of_total(
    db: Session, account: Account, tax_return: TaxReturn, request: ServiceRequest | None, new_total_cents: int
) -> tuple[int, int]:
    """The period's assessed total (as the ledger has it) and the difference the new
    total makes; AssessmentRefused when it makes none and no decision is waiting."""
    before = assessed_total(db, account.id, tax_return.period_end)
    difference = sign_of(tax_return) * new_total_cents - before
    deciding = request is not None and request.status in _OPEN_REQUEST
    # An amended return that changes nothing still needs its decision; anything
    # else that changes nothing is not a reassessment.
    if difference == 0 and not deciding:
        raise AssessmentRefused(
            f"The period is assessed at {format_money(new_total_cents)} already: enter the new total", "new_total"
        )
    return before, difference


def _post_adjustment(
    db: Session, account: Account, tax_return: TaxReturn, today: date, difference: int, reason: str
) -> list[LedgerEntry]:
    """The adjustment that brings the period's assessed total to the new one (the ledger is never edited)."""
    return [
        ledger.post(
            db,
            account_id=account.id,
            kind="adjustment",
            amount_cents=difference,
            effective_date=tax_return.period_end,
            processed_date=today,
            reference=ledger.new_reference("adjustment"),
            request_reference=_request_reference(db, tax_return),
            period_end=tax_return.period_end,
            description=reason,
        )
    ]
