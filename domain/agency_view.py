"""Accounts and people as the agency sees them. An account on one page: its
details and balance, who has access (and had), consents, PINs, submissions,
returns, documents, message threads, mail and the audit history, gathered with
a fixed number of queries (names looked up together). A person: the accounts
they have or had access to. Plain functions, no Flask."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from domain import consents, documents, ledger, mail, people, pins, requests, returns, words
from domain.access import AGENCY, PERMISSION_LABELS, ROLE_LABELS, people_with_access
from models import Account, AuditEvent, Consent, Grant, MailItem, MessageThread, ServiceRequest, WorkItem

AUDIT_SHOWN = 50


class _GrantWords:
    """A grant's role and permissions in words."""

    grant: Grant

    @property
    def role_text(self) -> str:
        return ROLE_LABELS.get(self.grant.role, self.grant.role.capitalize())

    @property
    def permission_texts(self) -> list[str]:
        return [PERMISSION_LABELS.get(p, p) for p in self.grant.permissions.split(",") if p]


@dataclass(frozen=True)
class Access(_GrantWords):
    grant: Grant
    name: str
    email: str
    granted_by: str
    removed_by: str | None


@dataclass(frozen=True)
class ConsentLine:
    consent: Consent
    status: str
    item: WorkItem | None


@dataclass(frozen=True)
class Submission:
    request: ServiceRequest
    submitted_by: str
    item: WorkItem | None

    @property
    def kind_text(self) -> str:
        return requests.KIND_LABELS.get(self.request.kind, self.request.kind)

    @property
    def status_text(self) -> str:
        return requests.STATUS_WORDS.get(self.request.status, self.request.status)


@dataclass(frozen=True)
class Thread:
    thread: MessageThread
    to: str
    started_by: str


@dataclass(frozen=True)
class Event:
    event: AuditEvent
    actor: str
    subject: str | None

    @property
    def detail_text(self) -> str:
        """The detail as "name: value" pairs (the audit log never holds personal data)."""
        try:
            detail = json.loads(self.event.detail or "{}")
        except ValueError:
            return ""
        return "; ".join(
            f"{words.humanise(name)}: {words.answer_text(value, name)}" for name, value in sorted(detail.items())
        )


@dataclass(frozen=True)
class AccountFile:
    account: Account
    balance_cents: int
    paper_mail: bool
    paper_chosen_by: str | None
    access: list[Access]
    removed: list[Access]
    consents: list[ConsentLine]
    pins: list[pins.Row]
    letter_pins_waiting: int  # owner PINs from invitation letters not used or cancelled: a reissue replaces them
    submissions: list[Submission]
    returns: list[returns.ReturnLine]
    documents: list[documents.Row]
    threads: list[Thread]
    mail: list[MailItem]
    events: list[Event]


def _work_items(db: Session, account_id: int) -> tuple[dict[int, WorkItem], dict[int, WorkItem]]:
    """The account's items by request, and each consent's latest item."""
    by_request, by_consent = {}, {}
    for item in db.scalars(select(WorkItem).where(WorkItem.account_id == account_id).order_by(WorkItem.id)):
        if item.service_request_id is not None:
            by_request[item.service_request_id] = item
        if item.consent_id is not None:
            by_consent[item.consent_id] = item  # ascending ids: the latest wins
    return by_request, by_consent


def file_of(db: Session, account: Account, now: datetime, today: date) -> AccountFile:
    """The account on one page, with everyone it names looked up in one query."""
    live = people_with_access(db, account.id, live=True)
    gone = people_with_access(db, account.id, live=False)
    submitted = requests.of_account(db, account.id)
    threads = _threads(db, account.id)
    events = list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id)
            .order_by(AuditEvent.id.desc())
            .limit(AUDIT_SHOWN)
        )
    )
    names = people.names_of(
        db,
        [g.grant.revoked_by_user_id for g in gone]
        + [r.submitted_by_user_id for r in submitted]
        + [t.to_user_id for t in threads]
        + [t.started_by_user_id for t in threads]
        + [e.actor_user_id for e in events]
        + [e.subject_user_id for e in events]
        + [account.paper_mail_chosen_by_user_id],
    )
    by_request, by_consent = _work_items(db, account.id)
    pin_rows = pins.of_account(db, now, account.id)
    return AccountFile(
        account=account,
        balance_cents=ledger.balance(db, account.id),
        paper_mail=mail.paper_in_force(account, today),
        paper_chosen_by=names.get(account.paper_mail_chosen_by_user_id),
        access=[_access(p, names) for p in live],
        # Removed access always has revoked_at; `now` only satisfies the type.
        removed=sorted((_access(p, names) for p in gone), key=lambda a: a.grant.revoked_at or now, reverse=True),
        consents=[
            ConsentLine(c, consents.shown_status(c, today), by_consent.get(c.id))
            for c in consents.for_account(db, account.id)
        ],
        pins=pin_rows,
        letter_pins_waiting=len(pins.agency_owner_pins_waiting(db, account.id)),
        submissions=[
            Submission(r, names.get(r.submitted_by_user_id, "Someone"), by_request.get(r.id)) for r in submitted
        ],
        returns=returns.lines_for(db, account),
        documents=documents.of_account(db, account.id),
        threads=[_thread(t, names) for t in threads],
        mail=list(
            db.scalars(
                select(MailItem)
                .options(defer(MailItem.content))
                .where(MailItem.account_id == account.id)
                .order_by(MailItem.posted_at.desc(), MailItem.id.desc())
            )
        ),
        events=[_event(e, names) for e in events],
    )


def _threads(db: Session, account_id: int) -> list[MessageThread]:
    """The account's message threads, the latest post first."""
    return list(
        db.scalars(
            select(MessageThread)
            .where(MessageThread.account_id == account_id)
            .order_by(MessageThread.last_post_at.desc(), MessageThread.id.desc())
        )
    )


def _access(person, names: dict[int | None, str]) -> Access:
    """A person's access, with who removed it (the agency when no one is recorded)."""
    removed_by = None
    if person.grant.revoked_at is not None:
        removed_by = (
            names.get(person.grant.revoked_by_user_id, "Someone")
            if person.grant.revoked_by_user_id is not None
            else AGENCY
        )
    return Access(person.grant, person.name, person.email, person.granted_by, removed_by)


def _thread(thread: MessageThread, names: dict[int | None, str]) -> Thread:
    """A thread with whom it is to and who started it, in words."""
    return Thread(
        thread,
        names.get(thread.to_user_id, "Someone")
        if thread.to_user_id is not None
        else "Everyone who receives the account's messages",
        names.get(thread.started_by_user_id, "Someone")
        if thread.started_by_user_id is not None
        else "Sent automatically",
    )


def _event(event: AuditEvent, names: dict[int | None, str]) -> Event:
    """An audit event with who did it (the agency when no one) and to whom, when someone else."""
    actor = (
        names.get(event.actor_user_id, f"Person {event.actor_user_id}") if event.actor_user_id is not None else AGENCY
    )
    subject = None
    if event.subject_user_id is not None and event.subject_user_id != event.actor_user_id:
        subject = names.get(event.subject_user_id, f"Person {event.subject_user_id}")
    return Event(event, actor, subject)


@dataclass(frozen=True)
class PersonGrant(_GrantWords):
    grant: Grant
    account: Account
    granted_by: str
    removed_by: str | None


def grants_of(db: Session, user_id: int) -> list[PersonGrant]:
    """Every grant the person has or had, live ones first, newest first."""
    rows = list(
        db.scalars(
            select(Grant)
            .where(Grant.user_id == user_id)  # each with its account (joined)
            .order_by(Grant.revoked_at.is_not(None), Grant.granted_at.desc(), Grant.id.desc())
        )
    )
    names = people.names_of(db, [g.granted_by_user_id for g in rows] + [g.revoked_by_user_id for g in rows])

    def by(someone: int | None) -> str:
        return AGENCY if someone is None else names.get(someone, "Someone")

    return [
        PersonGrant(
            grant,
            grant.account,
            by(grant.granted_by_user_id),
            by(grant.revoked_by_user_id) if grant.revoked_at is not None else None,
        )
        for grant in rows
    ]
