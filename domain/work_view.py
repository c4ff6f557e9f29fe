"""Work queues and their items as staff see them: a list's rows (each item with
its account, its request's reference and its assignee's name, read together),
and one item with what it is about and its trail of steps. Plain functions, no
Flask; domain.work holds the rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, documents, people
from models import (
    Account,
    AuditEvent,
    Consent,
    Document,
    EnrolmentRequest,
    MessageThread,
    ServiceRequest,
    WorkItem,
)

AUTOMATIC = "Automatic"  # who did a step no one signed in did (the agency's commands, the clock)


@dataclass(frozen=True)
class Row:
    item: WorkItem
    account: Account | None
    reference: str | None
    assignee: str | None


def rows(db: Session, found: list[WorkItem]) -> list[Row]:
    """The items as a list shows them, with three queries whatever their number."""
    account_ids = {i.account_id for i in found if i.account_id is not None}
    request_ids = {i.service_request_id for i in found if i.service_request_id is not None}
    # Keyed by int | None, as looked up: an item about no account (or request) finds none.
    accounts: dict[int | None, Account] = (
        {a.id: a for a in db.scalars(select(Account).where(Account.id.in_(account_ids)))} if account_ids else {}
    )
    references: dict[int | None, str] = (
        dict(
            db.execute(
                select(ServiceRequest.id, ServiceRequest.reference).where(ServiceRequest.id.in_(request_ids))
            ).all()
        )
        if request_ids
        else {}
    )
    names = people.names_of(db, (i.assignee_user_id for i in found))
    return [
        Row(i, accounts.get(i.account_id), references.get(i.service_request_id), names.get(i.assignee_user_id))
        for i in found
    ]


@dataclass(frozen=True)
class ItemView:
    """One item and what it is about: the account, the request, the consent or the
    conversation (whichever it has), and the names of the people they mention."""

    item: WorkItem
    account: Account | None
    submission: ServiceRequest | None
    consent: Consent | None
    thread: MessageThread | None
    names: dict[int | None, str] = field(default_factory=dict)  # as people.names_of gives them
    asked: EnrolmentRequest | None = None  # a request for an invitation letter


def _get(db: Session, model, key: int | None):
    return db.get(model, key) if key is not None else None


def item_view(db: Session, item: WorkItem) -> ItemView:
    submission = _get(db, ServiceRequest, item.service_request_id)
    consent = _get(db, Consent, item.consent_id)
    names = people.names_of(
        db,
        (
            item.assignee_user_id,
            item.decided_by_user_id,
            submission.submitted_by_user_id if submission else None,
            consent.declared_by_user_id if consent else None,
        ),
    )
    return ItemView(
        item,
        _get(db, Account, item.account_id),
        submission,
        consent,
        _get(db, MessageThread, item.thread_id),
        names,
        _get(db, EnrolmentRequest, item.enrolment_request_id),
    )


def trail(db: Session, view: ItemView) -> list[tuple[AuditEvent, str]]:
    """The item's steps and its submission's, oldest first, each with who took it:
    the events naming the item, the request's reference, the consent or the
    conversation (indexed columns of the audit log)."""
    events = audit.events_about(
        db,
        work_item_id=view.item.id,
        request_reference=view.submission.reference if view.submission else None,
        consent_id=view.item.consent_id,
        thread_id=view.item.thread_id,
    )
    names = people.names_of(db, (e.actor_user_id for e in events))
    return [(e, names.get(e.actor_user_id, AUTOMATIC) if e.actor_user_id else AUTOMATIC) for e in events]


def submitted_documents(db: Session, submission: ServiceRequest) -> list[Document]:
    """The documents sent with the request; for an upload of documents about
    another request, those it carried too (they are tied to that one)."""
    tied = documents.of_request(db, submission.id)
    if submission.kind == "documents":
        listed = {d.id for d in tied}
        tied += [d for d in documents.documents_of_upload(db, submission) if d.id not in listed]
    return tied
