"""The agency's decision on a work item, queue by queue. Plain functions, no Flask.

Each queue's rule decides the thing itself through its feature's own domain
function (a consent, an arrangement, a renewal, a request), then `decide` closes
the item with `work.decide`, in the same transaction: the caller commits once,
or rolls back on a refusal and nothing has changed. After a decision on a
request or a consent, everyone with access to the account is told by secure
message, with the outcome and the reason.

Returns and claims are not decided here: assessing the return closes its item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain import arrangements, audit, consents, ledger, messages, renewals, requests, work
from domain.access import AccessRefused
from domain.accounts import format_money
from domain.db import rows_changed
from domain.waivers import CHARGE_KINDS
from models import Account, Consent, DirectDeposit, LedgerEntry, ServiceRequest, User, WorkItem

MAX_REASON = 2000
DECLINE_NEEDS_REASON = "Give the reason for declining: the account's people will read it"
CLOSE_NEEDS_REASON = "Give the reason for closing it without a reply"

# The choices each queue's decision offers: (value, label). Returns have none.
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "consents": (("approve", "Approve: email the representative a PIN"), ("decline", "Decline")),
    "objections": (("approve", "Allow the objection"), ("decline", "Decline")),
    "waivers": (("approve", "Approve: credit the penalties and interest"), ("decline", "Decline")),
    "arrangements": (("approve", "Approve: the schedule takes effect"), ("decline", "Decline")),
    "direct_deposit": (
        ("confirm", "Confirm the change"),
        ("decline", "Decline: stop using these details (refunds go by cheque)"),
    ),
    "renewals": (("approve", "Approve: the licence runs one more year"), ("decline", "Decline")),
    "documents": (("approve", "Reviewed"), ("decline", "Decline")),
    "messages": (("close", "Close without a reply"),),
    # The letter itself is sent from the item's page with the account found (enrolment_requests.send_letter).
    "enrolments": (("close", "Close without a letter (no account matches, or one was posted recently)"),),
}
NEEDS_REASON = {"decline": DECLINE_NEEDS_REASON, "close": CLOSE_NEEDS_REASON}
OUTCOMES = {"approve": "approved", "decline": "declined", "confirm": "confirmed", "close": "closed"}
# Who the automatic message is "about" in the email that announces it (no details in email).
_ABOUT = "a decision on one of your accounts"


class AlreadyDecided(work.WorkRefused):
    """The item has its decision (perhaps made a moment ago in another tab)."""


def choices_for(queue: str) -> tuple[tuple[str, str], ...]:
    """The decisions the item's page offers (none for returns: they are assessed)."""
    return CHOICES.get(queue, ())


def clean_reason(reason: str | None) -> str:
    return (reason or "").strip()


@dataclass(frozen=True)
class Context:
    db: Session
    now: datetime
    today: date
    item: WorkItem
    staff: User
    choice: str
    reason: str

    @property
    def approve(self) -> bool:
        return self.choice in ("approve", "confirm")


def decide(
    db: Session, now: datetime, today: date, item: WorkItem, staff: User, choice: str, reason: str | None
) -> str:
    """Decide the item as `choice` ("approve", "decline", "confirm", "close") with
    the reason (or note) the taxpayer sees, and answer the outcome. Raises
    work.WorkRefused (AlreadyDecided when it has its decision; `field` set for a
    problem with the form's answers). The caller commits, or rolls back on a refusal."""
    if item.status == "decided":
        raise AlreadyDecided("This item has already been decided")
    rule = _RULES.get(item.queue)
    if rule is None:
        raise work.WorkRefused("A return or claim is decided by assessing it")
    work.check_can_decide(item, staff)
    if choice not in dict(choices_for(item.queue)):
        raise work.WorkRefused("Choose a decision", "decision")
    reason = clean_reason(reason)
    if choice in NEEDS_REASON and not reason:
        raise work.WorkRefused(NEEDS_REASON[choice], "reason")
    if len(reason) > MAX_REASON:
        raise work.WorkRefused(f"The reason must be {MAX_REASON:,} characters or fewer", "reason")
    _hold(db, item)
    outcome = rule(Context(db, now, today, item, staff, choice, reason))
    work.decide(db, now, item, staff, outcome, reason)
    return outcome


def _hold(db: Session, item: WorkItem) -> None:
    """Write-lock the open item for this decision. A second decision at the same
    moment (another tab, another officer, another server) waits here for the
    first to commit, then finds the item decided and is refused."""
    held = rows_changed(
        db,
        update(WorkItem)
        .where(WorkItem.id == item.id, WorkItem.status.in_(work.OPEN))
        .values(status=WorkItem.status)
        .execution_options(synchronize_session=False),
    )
    if held != 1:
        raise AlreadyDecided("This item has already been decided")


def _refused(error: Exception) -> work.WorkRefused:
    """A feature's own refusal, in the words of the queue."""
    message = getattr(error, "message", None) or str(error)
    return work.WorkRefused(message[:1].upper() + message[1:])


# --- Telling the account's people --------------------------------------------------------


def _tell(ctx: Context, account: Account, subject: str, outcome_text: str, reference: str | None = None) -> None:
    """The automatic secure message about a decision: the outcome and the reason,
    never bank numbers."""
    lines = [outcome_text]
    if ctx.reason:
        lines.append(f"{'Our note' if ctx.approve else 'Our reason'}: {ctx.reason}")
    if reference:
        lines.append(f"Reference number: {reference}")
        lines.append("You can see this decision with the request in your account's request history.")
    messages.to_everyone_with_access(ctx.db, ctx.now, account, subject, "\n\n".join(lines), ctx.today, about=_ABOUT)


def _request(ctx: Context) -> tuple[ServiceRequest, Account]:
    request = ctx.db.get(ServiceRequest, ctx.item.service_request_id) if ctx.item.service_request_id else None
    if request is None:
        raise work.WorkRefused("This item's request is no longer on record")
    return request, ctx.db.get_one(Account, request.account_id)


def _request_subject(request: ServiceRequest) -> str:
    return f"Decision on your {requests.KIND_LABELS[request.kind].lower()} {request.reference}"


# --- Each queue ------------------------------------------------------------------------


def _consent(ctx: Context) -> str:
    consent = ctx.db.get(Consent, ctx.item.consent_id) if ctx.item.consent_id else None
    if consent is None:
        raise work.WorkRefused("This item's consent is no longer on record")
    try:
        if ctx.approve:
            consents.approve_and_send_pin(ctx.db, ctx.now, consent=consent, staff_user_id=ctx.staff.id)
        else:
            consents.reject(ctx.db, ctx.now, consent=consent, staff_user_id=ctx.staff.id, reason=ctx.reason)
    except AccessRefused as error:
        raise _refused(error) from None
    if not ctx.approve:  # an approval tells the account's managers itself (consents.approve)
        account = ctx.db.get_one(Account, consent.account_id)
        who = consent.representative_name
        _tell(
            ctx,
            account,
            f"Decision on the consent for {who}"[:200],
            f"We could not approve the consent for {who} to act as a representative on {account.legal_name}.",
        )
    return OUTCOMES[ctx.choice]


def _arrangement(ctx: Context) -> str:
    request, account = _request(ctx)
    try:
        arrangements.decide(ctx.db, ctx.now, request, ctx.approve, ctx.reason, ctx.staff.id)
    except arrangements.AlreadyDecided as error:
        raise AlreadyDecided(str(error)) from None
    except ValueError as error:
        raise _refused(error) from None
    text = (
        "We approved your payment arrangement. Its schedule is now in force: make each payment by its date."
        if ctx.approve
        else "We could not approve your payment arrangement."
    )
    _tell(ctx, account, _request_subject(request), text, request.reference)
    return OUTCOMES[ctx.choice]


def _renewal(ctx: Context) -> str:
    request, account = _request(ctx)
    try:
        decision = renewals.decide(ctx.db, ctx.now, request, ctx.approve, ctx.reason, ctx.staff.id, today=ctx.today)
    except renewals.DecisionRefused as error:
        raise _refused(error) from None
    if decision.new_expiry is not None:  # approved
        text = (
            f"We renewed your licence {decision.licence.licence_number}. It now expires on "
            f"{decision.new_expiry.day} {decision.new_expiry:%B %Y}."
        )
    else:
        text = f"We could not renew your licence {decision.licence.licence_number}."
    _tell(ctx, account, _request_subject(request), text, request.reference)
    return OUTCOMES[ctx.choice]


def _plain_request(ctx: Context, approved_text: str, declined_text: str, approved_outcome: str = "approved") -> str:
    request, account = _request(ctx)
    try:
        requests.decide(ctx.db, ctx.now, request, ctx.approve, ctx.reason, ctx.staff.id)
    except requests.DecisionRefused as error:
        raise _refused(error) from None
    _tell(ctx, account, _request_subject(request), approved_text if ctx.approve else declined_text, request.reference)
    return approved_outcome if ctx.approve else "declined"


def _objection(ctx: Context) -> str:
    return _plain_request(ctx, "We allowed your notice of objection.", "We could not allow your notice of objection.")


def _documents(ctx: Context) -> str:
    return _plain_request(
        ctx,
        "We have reviewed the supporting documents you sent.",
        "We could not accept the supporting documents you sent.",
        approved_outcome="reviewed",
    )


def _waiver(ctx: Context) -> str:
    request, account = _request(ctx)
    try:
        requests.decide(ctx.db, ctx.now, request, ctx.approve, ctx.reason, ctx.staff.id)
    except requests.DecisionRefused as error:
        raise _refused(error) from None
    if ctx.approve:
        credited = credit_waived_charges(ctx.db, ctx.now, ctx.today, request, ctx.staff.id)
        text = (
            f"We approved your request to waive penalties and interest: {format_money(credited)} has been "
            "credited to your account."
        )
    else:
        text = "We could not approve your request to waive penalties and interest."
    _tell(ctx, account, _request_subject(request), text, request.reference)
    return OUTCOMES[ctx.choice]


def waived_charges(db: Session, request: ServiceRequest) -> list[LedgerEntry]:
    """The penalty and interest entries a waiver request names that are still the
    account's and still charged (one the agency has since reversed is not)."""
    try:
        named = json.loads(request.data or "{}").get("entries", [])
    except (ValueError, AttributeError):
        return []
    ids = [entry["id"] for entry in named if isinstance(entry, dict) and isinstance(entry.get("id"), int)]
    if not ids:
        return []
    e = LedgerEntry
    reversed_ids = select(e.reverses_id).where(e.account_id == request.account_id, e.reverses_id.is_not(None))
    return list(
        db.scalars(
            select(e)
            .where(
                e.id.in_(ids),
                e.account_id == request.account_id,
                e.kind.in_(CHARGE_KINDS),
                e.amount_cents > 0,
                e.id.not_in(reversed_ids),
            )
            .order_by(e.id)
        )
    )


def credit_waived_charges(db: Session, now: datetime, today: date, request: ServiceRequest, staff_user_id: int) -> int:
    """An approved waiver: one credit adjustment per charge it names, in the
    charge's period and as of its date, each under its own reference and linked to
    the request (request_reference). Once: a request whose credits are already in
    the ledger posts nothing more. Answers
    the cents credited."""
    already = db.scalar(
        select(LedgerEntry.id)
        .where(
            LedgerEntry.account_id == request.account_id,
            LedgerEntry.kind == "adjustment",
            LedgerEntry.request_reference == request.reference,
        )
        .limit(1)
    )
    if already is not None:
        return 0
    credited = 0
    for charge in waived_charges(db, request):
        ledger.post(
            db,
            account_id=request.account_id,
            kind="adjustment",
            amount_cents=-int(charge.amount_cents),
            effective_date=charge.effective_date,
            processed_date=today,
            reference=ledger.new_reference("adjustment"),
            request_reference=request.reference,
            period_end=charge.period_end,
            description=f"Waiver approved ({request.reference})",
        )
        credited += int(charge.amount_cents)
    db.flush()
    audit.record(
        db,
        now,
        "waiver.credited",
        actor_user_id=staff_user_id,
        account_id=request.account_id,
        reference=request.reference,
        cents=credited,
    )
    return credited


def _direct_deposit(ctx: Context) -> str:
    """The change took effect when it was sent. Confirming leaves it so; declining
    stops paying refunds into those details (by cheque instead), unless newer
    details have replaced them already."""
    request, account = _request(ctx)
    if request.decided_at is not None or request.status != "completed":
        raise AlreadyDecided(f"{request.reference} has already been decided ({request.status})")
    request.decided_at, request.decided_by_user_id = ctx.now, ctx.staff.id
    request.decision_reason = ctx.reason or None
    if ctx.approve:
        audit.record(
            ctx.db,
            ctx.now,
            "direct_deposit.confirmed",
            actor_user_id=ctx.staff.id,
            account_id=account.id,
            reference=request.reference,
        )
        _tell(
            ctx,
            account,
            _request_subject(request),
            "We have checked the change to your direct deposit details and confirmed it.",
            request.reference,
        )
        return "confirmed"
    request.status = "declined"
    ended = 0
    for row in ctx.db.scalars(
        select(DirectDeposit)
        .where(
            DirectDeposit.service_request_id == request.id,
            DirectDeposit.account_id == account.id,
            DirectDeposit.ended_at.is_(None),
        )
        .with_for_update()
    ):
        row.ended_at = ctx.now
        ended += 1
    audit.record(
        ctx.db,
        ctx.now,
        "direct_deposit.declined",
        actor_user_id=ctx.staff.id,
        account_id=account.id,
        reference=request.reference,
        details_ended=ended,
    )
    text = "We could not accept the change to your direct deposit details."
    if ended:
        text += " We have stopped using those details: refunds will be paid by cheque until you give us new details."
    _tell(ctx, account, _request_subject(request), text, request.reference)
    return "declined"


def _message(ctx: Context) -> str:
    return "closed"


def _enrolment(ctx: Context) -> str:
    """No letter: the requester is not told (the answer they had said a letter comes
    only if the details match), so the outcome reveals nothing to them."""
    return "closed"


_RULES = {
    "consents": _consent,
    "objections": _objection,
    "waivers": _waiver,
    "arrangements": _arrangement,
    "direct_deposit": _direct_deposit,
    "renewals": _renewal,
    "documents": _documents,
    "messages": _message,
    "enrolments": _enrolment,
}
if not set(_RULES) == set(CHOICES) == set(work.QUEUE_LABELS) - {"returns"}:  # checked at import, even under -O
    raise RuntimeError("every queue but returns needs its decision rule and choices")


# --- Decided by the agency itself: the command line, no staff member -----------------------

RETURNS_ARE_ASSESSED = "A return or claim is decided by assessing it, in the back office (/staff/returns/)"


def approve_consent_by_agency(db: Session, now: datetime, consent: Consent) -> str:
    """Approve the consent (the representative's PIN goes to the outbox) and close
    its item; the address the PIN goes to. AccessRefused when it is not waiting."""
    consents.approve_and_send_pin(db, now, consent=consent, staff_user_id=None)
    work.close_open(db, now, outcome="approved", reason=None, by_user_id=None, consent_id=consent.id)
    return consent.representative_email


def reject_consent_by_agency(db: Session, now: datetime, consent: Consent, reason: str) -> None:
    consents.reject(db, now, consent=consent, staff_user_id=None, reason=reason)
    work.close_open(db, now, outcome="declined", reason=reason, by_user_id=None, consent_id=consent.id)


def decide_request_by_agency(
    db: Session, now: datetime, request: ServiceRequest, approve: bool, reason: str | None
) -> None:
    """Decide the request by its kind's rules and close its item. ValueError (with
    the reason in words) when it cannot be: a return, or already decided."""
    if work.QUEUE_OF_KIND.get(request.kind) == "returns":
        raise requests.DecisionRefused(RETURNS_ARE_ASSESSED)
    requests.decider_for(request.kind)(db, now, request, approve, reason, None)
    work.close_open(
        db, now, outcome="approved" if approve else "declined", reason=reason, by_user_id=None, request_id=request.id
    )
