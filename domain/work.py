"""Work queues: one pattern for everything the agency acts on. Each submission
(a service request, a consent to review, a reply to a secure message) opens one
WorkItem in its queue. An officer takes it (in progress, with an assignee), a
supervisor may reassign it, and a decision closes it with an outcome and a
reason the taxpayer sees. Every step is in the audit log. Plain functions, no
Flask.

The decision on the thing itself (approving a consent, assessing a return,
approving an arrangement) belongs to its own domain module; that module's
caller then closes the item here with `decide`, in the same transaction."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import audit
from models import (
    MAX_ID,
    STAFF_ROLES,
    WORK_QUEUES,
    Consent,
    EnrolmentRequest,
    MessageThread,
    PersonRules,
    ServiceRequest,
    User,
    WorkItem,
)

QUEUE_LABELS = {
    "consents": "Consents for representatives",
    "returns": "Returns and claims",
    "objections": "Objections",
    "waivers": "Waivers of penalties and interest",
    "arrangements": "Payment arrangements",
    "direct_deposit": "Direct deposit changes",
    "renewals": "Licence renewals",
    "documents": "Document reviews",
    "messages": "Replies to messages",
    "enrolments": "Requests for an invitation letter",
}
# The queue each kind of service request reaches. Changes of account details take
# effect at once and need no one's decision, so they open no item.
QUEUE_OF_KIND = {
    "return": "returns",
    "claim": "returns",
    "amended_return": "returns",
    "amended_claim": "returns",
    "objection": "objections",
    "waiver": "waivers",
    "arrangement": "arrangements",
    "direct_deposit": "direct_deposit",
    "renewal": "renewals",
    "documents": "documents",
}
STATUS_WORDS = {"received": "Received", "in_progress": "In progress", "decided": "Decided"}
OUTCOME_WORDS = {
    "approved": "Approved",
    "declined": "Declined",
    "assessed": "Assessed",
    "reassessed": "Reassessed",
    "confirmed": "Confirmed",
    "reviewed": "Reviewed",
    "answered": "Answered",
    "closed": "Closed",
    "withdrawn": "Withdrawn",
    "letter_sent": "Letter sent",
}
OPEN = ("received", "in_progress")
if not (set(QUEUE_LABELS) == set(WORK_QUEUES) and set(QUEUE_OF_KIND.values()) <= set(WORK_QUEUES)):  # even under -O
    raise RuntimeError("every work queue needs its label, and every kind a known queue")

# Staff roles in order: each may do what the ones before it may.
_RANK = {role: rank for rank, role in enumerate(STAFF_ROLES)}


class WorkRefused(ValueError):
    """A step that cannot be taken now (already decided, not the assignee, no reason given)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def at_least(user: PersonRules | None, role: str) -> bool:
    """Whether this staff member holds `role` or a higher one (officer < supervisor < administrator)."""
    return bool(user is not None and user.staff_role in _RANK and _RANK[user.staff_role] >= _RANK[role])


# --- Opening items --------------------------------------------------------------------


def open_for_request(db: Session, now: datetime, request: ServiceRequest) -> WorkItem | None:
    """The item for a new service request (none for a kind no one decides). Called
    by requests.submit in the request's own transaction."""
    queue = QUEUE_OF_KIND.get(request.kind)
    if queue is None:
        return None
    existing = db.scalar(select(WorkItem).where(WorkItem.service_request_id == request.id))
    if existing is not None:
        return existing
    item = WorkItem(
        queue=queue,
        status="received",
        account_id=request.account_id,
        service_request_id=request.id,
        summary=request.summary[:300],
        received_at=now,
    )
    db.add(item)
    db.flush()
    return item


def open_for_consent(db: Session, now: datetime, consent: Consent) -> WorkItem:
    """The review of a consent a manager has signed."""
    existing = db.scalar(select(WorkItem).where(WorkItem.consent_id == consent.id, WorkItem.status.in_(OPEN)))
    if existing is not None:
        return existing
    item = WorkItem(
        queue="consents",
        status="received",
        account_id=consent.account_id,
        consent_id=consent.id,
        summary=f"Consent for {consent.representative_name}"[:300],
        received_at=now,
    )
    db.add(item)
    db.flush()
    return item


def open_for_thread(db: Session, now: datetime, thread: MessageThread, summary: str) -> WorkItem:
    """A reply from the account's side: one open item per thread, however many replies arrive before it is answered."""
    existing = db.scalar(select(WorkItem).where(WorkItem.thread_id == thread.id, WorkItem.status.in_(OPEN)))
    if existing is not None:
        return existing
    item = WorkItem(
        queue="messages",
        status="received",
        account_id=thread.account_id,
        thread_id=thread.id,
        summary=summary[:300],
        received_at=now,
    )
    db.add(item)
    db.flush()
    return item


def open_for_enrolment_request(db: Session, now: datetime, asked: EnrolmentRequest, summary: str) -> WorkItem:
    """A request for an invitation letter: about no account until an officer finds it."""
    item = WorkItem(
        queue="enrolments",
        status="received",
        enrolment_request_id=asked.id,
        summary=summary[:300],
        received_at=now,
    )
    db.add(item)
    db.flush()
    return item


# --- Finding items ----------------------------------------------------------------------


def find(db: Session, item_id: int) -> WorkItem | None:
    if not isinstance(item_id, int) or not 0 < item_id <= MAX_ID:
        return None
    return db.get(WorkItem, item_id)


def for_request(db: Session, request_id: int) -> WorkItem | None:
    return db.scalar(select(WorkItem).where(WorkItem.service_request_id == request_id))


def for_enrolment_request(db: Session, request_id: int) -> WorkItem | None:
    return db.scalar(select(WorkItem).where(WorkItem.enrolment_request_id == request_id))


def for_consent(db: Session, consent_id: int) -> WorkItem | None:
    """The consent's latest item."""
    return db.scalar(select(WorkItem).where(WorkItem.consent_id == consent_id).order_by(WorkItem.id.desc()).limit(1))


def open_for_thread_id(db: Session, thread_id: int) -> WorkItem | None:
    return db.scalar(select(WorkItem).where(WorkItem.thread_id == thread_id, WorkItem.status.in_(OPEN)))


def items(
    db: Session,
    *,
    queue: str | None = None,
    statuses=OPEN,
    assignee_user_id: int | None = None,
    unassigned: bool = False,
    account_id: int | None = None,
    limit: int = 200,
) -> list[WorkItem]:
    """Items oldest first (the order they should be worked in); `unassigned`: only those no one has."""
    query = select(WorkItem)
    if queue is not None:
        query = query.where(WorkItem.queue == queue)
    if statuses:
        query = query.where(WorkItem.status.in_(list(statuses)))
    if assignee_user_id is not None:
        query = query.where(WorkItem.assignee_user_id == assignee_user_id)
    if unassigned:
        query = query.where(WorkItem.assignee_user_id.is_(None))
    if account_id is not None:
        query = query.where(WorkItem.account_id == account_id)
    return list(db.scalars(query.order_by(WorkItem.received_at, WorkItem.id).limit(limit)))


@dataclass(frozen=True)
class QueueCounts:
    queue: str
    received: int
    in_progress: int
    oldest: timedelta | None  # age of the oldest open item
    median: timedelta | None  # median age of the open items

    @property
    def label(self) -> str:
        return QUEUE_LABELS[self.queue]

    @property
    def open(self) -> int:
        return self.received + self.in_progress


def counts(db: Session, now: datetime) -> list[QueueCounts]:
    """Per queue: how many items wait and how old they are (every queue, in order, even when empty)."""
    rows = db.execute(
        select(WorkItem.queue, WorkItem.status, WorkItem.received_at).where(WorkItem.status.in_(OPEN))
    ).all()
    ages: dict[str, list[timedelta]] = {queue: [] for queue in WORK_QUEUES}
    by_status: dict[tuple[str, str], int] = {}
    for queue, status, received_at in rows:
        ages.setdefault(queue, []).append(now - received_at)
        by_status[(queue, status)] = by_status.get((queue, status), 0) + 1
    result = []
    for queue in WORK_QUEUES:
        waiting = sorted(ages[queue])
        result.append(
            QueueCounts(
                queue,
                by_status.get((queue, "received"), 0),
                by_status.get((queue, "in_progress"), 0),
                waiting[-1] if waiting else None,
                statistics.median_low(waiting) if waiting else None,
            )
        )
    return result


def open_count_for(db: Session, user_id: int) -> int:
    return (
        db.scalar(
            select(func.count(WorkItem.id)).where(WorkItem.assignee_user_id == user_id, WorkItem.status.in_(OPEN))
        )
        or 0
    )


def open_by_assignee(db: Session) -> dict[int | None, int]:
    """How many open items each staff member holds (None: no one yet)."""
    return {
        user_id: int(count)
        for user_id, count in db.execute(
            select(WorkItem.assignee_user_id, func.count(WorkItem.id))
            .where(WorkItem.status.in_(OPEN))
            .group_by(WorkItem.assignee_user_id)
        )
    }


def staff_members(db: Session) -> list[User]:
    """Who an item can be assigned to: staff whose sign-in works."""
    return list(
        db.scalars(select(User).where(User.staff_role.in_(STAFF_ROLES), User.disabled_at.is_(None)).order_by(User.name))
    )


# --- Working items ----------------------------------------------------------------------


def _request_of(db: Session, item: WorkItem) -> ServiceRequest | None:
    return db.get(ServiceRequest, item.service_request_id) if item.service_request_id else None


def take(db: Session, now: datetime, item: WorkItem, staff: User) -> None:
    """The staff member takes the item: in progress, assigned to them. The request
    shows "In review" to the taxpayer from now on."""
    if item.status == "decided":
        raise WorkRefused("This item has already been decided")
    if item.assignee_user_id == staff.id and item.status == "in_progress":
        return
    if item.assignee_user_id not in (None, staff.id) and not at_least(staff, "supervisor"):
        raise WorkRefused("Someone else is working on this item; a supervisor can reassign it")
    previous = item.assignee_user_id
    item.status, item.assignee_user_id, item.assigned_at = "in_progress", staff.id, now
    request = _request_of(db, item)
    if request is not None and request.status == "received":
        request.status = "in_review"
    audit.record(
        db,
        now,
        "work.taken",
        actor_user_id=staff.id,
        account_id=item.account_id,
        item=item.id,
        queue=item.queue,
        previous_assignee=previous,
    )


def assign(db: Session, now: datetime, item: WorkItem, *, to: User, by: User) -> None:
    """A supervisor gives the item to another staff member."""
    if not at_least(by, "supervisor"):
        raise WorkRefused("Only a supervisor can reassign work")
    if item.status == "decided":
        raise WorkRefused("This item has already been decided")
    if not to.is_staff or to.is_disabled:
        raise WorkRefused("Choose a staff member whose sign-in works", "assignee")
    previous = item.assignee_user_id
    item.assignee_user_id, item.assigned_at = to.id, now
    if item.status == "received":
        item.status = "in_progress"
        request = _request_of(db, item)
        if request is not None and request.status == "received":
            request.status = "in_review"
    audit.record(
        db,
        now,
        "work.assigned",
        actor_user_id=by.id,
        subject_user_id=to.id,
        account_id=item.account_id,
        item=item.id,
        queue=item.queue,
        previous_assignee=previous,
    )


def release(db: Session, now: datetime, item: WorkItem, staff: User) -> None:
    """Put an item back in the queue unassigned (its assignee, or a supervisor)."""
    if item.status == "decided":
        raise WorkRefused("This item has already been decided")
    if item.assignee_user_id != staff.id and not at_least(staff, "supervisor"):
        raise WorkRefused("Only its assignee or a supervisor can put it back")
    previous = item.assignee_user_id
    item.status, item.assignee_user_id, item.assigned_at = "received", None, None
    audit.record(
        db,
        now,
        "work.released",
        actor_user_id=staff.id,
        account_id=item.account_id,
        item=item.id,
        queue=item.queue,
        previous_assignee=previous,
    )


def check_can_decide(item: WorkItem, staff: User) -> None:
    """Raise unless this staff member may decide the item now: it is open, and it
    is theirs (or unassigned: deciding takes it), or they are a supervisor."""
    if item.status == "decided":
        raise WorkRefused("This item has already been decided")
    if item.assignee_user_id not in (None, staff.id) and not at_least(staff, "supervisor"):
        raise WorkRefused("Someone else is working on this item; a supervisor can reassign it")


def decide(db: Session, now: datetime, item: WorkItem, staff: User, outcome: str, reason: str | None) -> None:
    """Close the item with its outcome and the reason the taxpayer sees. The thing
    itself has been decided by its own module first, in this transaction."""
    check_can_decide(item, staff)
    close(db, now, item, outcome, reason, by_user_id=staff.id)


def close(
    db: Session, now: datetime, item: WorkItem, outcome: str, reason: str | None, *, by_user_id: int | None
) -> None:
    """Close an open item with no staff check: `decide` after its check, the
    command line (`by_user_id` None: the agency), or the thing ending on the
    taxpayer's side (a consent revoked while it waited: "withdrawn")."""
    if item.status == "decided":
        raise WorkRefused("This item has already been decided")
    if outcome not in OUTCOME_WORDS:
        raise ValueError(f"unknown outcome {outcome!r}")
    item.status, item.outcome = "decided", outcome
    item.decided_at, item.decided_by_user_id = now, by_user_id
    item.decision_reason = (reason or "").strip() or None
    if item.assignee_user_id is None and by_user_id is not None:
        item.assignee_user_id, item.assigned_at = by_user_id, now
    audit.record(
        db,
        now,
        "work.decided",
        actor_user_id=by_user_id,
        account_id=item.account_id,
        item=item.id,
        queue=item.queue,
        decision=outcome,
    )


def close_open(
    db: Session,
    now: datetime,
    *,
    outcome: str,
    reason: str | None,
    by_user_id: int | None,
    request_id: int | None = None,
    consent_id: int | None = None,
) -> WorkItem | None:
    """Close the open item of a request or a consent, if it has one (see `close`)."""
    query = select(WorkItem).where(WorkItem.status.in_(OPEN))
    if request_id is not None:
        query = query.where(WorkItem.service_request_id == request_id)
    elif consent_id is not None:
        query = query.where(WorkItem.consent_id == consent_id)
    else:
        raise ValueError("name a request or a consent")
    item = db.scalar(query)
    if item is not None:
        close(db, now, item, outcome, reason, by_user_id=by_user_id)
    return item


def age_text(age: timedelta | None) -> str:
    """ "3 days", "5 hours", "under an hour"."""
    if age is None:
        return "None waiting"
    if age >= timedelta(days=1):
        days = age.days
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(age.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return "Under an hour"
