"""Service requests: everything a person submits through self-service (a return,
an objection, a waiver request, a payment arrangement, banking details, a
renewal, a change of address) becomes one ServiceRequest with a reference. It is
the confirmation's reference number, a line in the account's request history,
and the entry the agency acts on. Plain functions, no Flask.

Submitting is idempotent: the caller passes a key (a draft's token, or a form's
one-time token) and the same key always answers the same request, however many
times it arrives (a double click, a retry on a bad connection, a second tab)."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import audit, words, work
from domain.db import savepoint
from models import REQUEST_KINDS, Account, ServiceRequest

# What each kind is called, and the permission a person needs to see it in the
# account's request history (the one that lets them make it).
KIND_LABELS = {
    "return": "Return",
    "claim": "Claim",
    "amended_return": "Amended return",
    "amended_claim": "Amended claim",
    "objection": "Notice of objection",
    "waiver": "Waiver of penalties and interest",
    "arrangement": "Payment arrangement",
    "direct_deposit": "Direct deposit details",
    "renewal": "Licence renewal",
    "profile": "Account details change",
    "documents": "Supporting documents",
}
KIND_PERMISSIONS = {
    "return": "file",
    "claim": "file",
    "amended_return": "file",
    "amended_claim": "file",
    "objection": "objections_waivers",
    "waiver": "objections_waivers",
    "arrangement": "payment_arrangements",
    "direct_deposit": "direct_deposit",
    "renewal": "file",
    "profile": "update_profile",
    "documents": "upload",
}
STATUS_WORDS = {
    "received": "Received",
    "in_review": "In review",
    "approved": "Approved",
    "declined": "Declined",
    "completed": "Completed",
    "withdrawn": "Withdrawn",
}
# Letters and digits that cannot be mistaken for one another when read aloud or copied.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
if not set(KIND_LABELS) == set(REQUEST_KINDS) == set(KIND_PERMISSIONS):  # checked at import, even under -O
    raise RuntimeError("every kind of request needs its label and permission")


def new_reference() -> str:
    """ "SR-7KQ4-M2XD": random, so it says nothing about how many requests there are."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"SR-{body[:4]}-{body[4:]}"


def new_token() -> str:
    """A one-time submission token for a form that has no draft."""
    return secrets.token_urlsafe(32)


# What a reference and a submission key can look like; anything else is not one
# (and must not reach the database: PostgreSQL refuses a NUL in text, as an error).
REFERENCE_PATTERN = re.compile(r"SR-[A-Z0-9]{4}-[A-Z0-9]{4}")
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def by_key(db: Session, key: str) -> ServiceRequest | None:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        return None
    return db.scalar(select(ServiceRequest).where(ServiceRequest.idempotency_key == key))


@dataclass(frozen=True)
class Submitted:
    request: ServiceRequest
    created: bool  # False: the key had been submitted before, this is that request


def submit(
    db: Session,
    now: datetime,
    *,
    account: Account,
    user_id: int,
    kind: str,
    key: str,
    summary: str,
    data: dict,
    tax_return_id: int | None = None,
    build=None,
) -> Submitted:
    """The request for `key`, made now if it is new. `build(db, request)`, when
    given, adds what goes with a new request (a return, a schedule) in the same
    transaction. The caller commits. When another worker makes the same request
    at the same moment, the unique key refuses the second insert and this
    answers the first one's request (the caller's other changes roll back)."""
    if kind not in REQUEST_KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValueError("a submission key is needed: 1 to 64 letters, digits, '-' or '_'")
    existing = by_key(db, key)
    if existing is not None:
        if existing.account_id != account.id:
            raise ValueError("that submission key belongs to another account")
        return Submitted(existing, False)
    request = ServiceRequest(
        reference=new_reference(),
        account_id=account.id,
        kind=kind,
        status="received",
        summary=summary[:300],
        data=json.dumps(data, sort_keys=True, default=str),
        submitted_at=now,
        submitted_by_user_id=user_id,
        idempotency_key=key,
        tax_return_id=tax_return_id,
    )
    try:
        with savepoint(db):
            db.add(request)
            db.flush()
            if build is not None:
                build(db, request)
                db.flush()
    except IntegrityError:
        existing = by_key(db, key)
        if existing is None:
            raise
        return Submitted(existing, False)
    audit.record(db, now, f"request.{kind}", actor_user_id=user_id, account_id=account.id, reference=request.reference)
    # Everything submitted reaches a queue someone at the agency works from.
    work.open_for_request(db, now, request)
    return Submitted(request, True)


def answers(request: ServiceRequest) -> dict:
    return json.loads(request.data or "{}")


def of_account(db: Session, account_id: int, kinds=None) -> list[ServiceRequest]:
    """The account's requests, newest first (only `kinds`, when given)."""
    query = select(ServiceRequest).where(ServiceRequest.account_id == account_id)
    if kinds is not None:
        query = query.where(ServiceRequest.kind.in_(list(kinds)))
    return list(db.scalars(query.order_by(ServiceRequest.submitted_at.desc(), ServiceRequest.id.desc())))


def visible_kinds(grant) -> tuple[str, ...]:
    """The kinds of request this grant may see in the history."""
    return tuple(kind for kind in REQUEST_KINDS if grant.allows(KIND_PERMISSIONS[kind]))


def find(db: Session, account_id: int, reference: str) -> ServiceRequest | None:
    reference = (reference or "").strip().upper()
    if not REFERENCE_PATTERN.fullmatch(reference):
        return None
    return db.scalar(
        select(ServiceRequest).where(ServiceRequest.account_id == account_id, ServiceRequest.reference == reference)
    )


def by_reference(db: Session, reference: str) -> ServiceRequest | None:
    """The request with this reference, whichever account's (the agency's look-up)."""
    reference = (reference or "").strip().upper()
    if not REFERENCE_PATTERN.fullmatch(reference):
        return None
    return db.scalar(select(ServiceRequest).where(ServiceRequest.reference == reference))


def _text(value, key: str = "") -> str:
    if value is None or value == "":
        return "Not given"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v, key) for v in value) or "None"
    if isinstance(value, dict):
        return "\n".join(f"{words.humanise(k)}: {_text(v, k)}" for k, v in words.answer_pairs(value)) or "None"
    return words.answer_text(value, key)


def readable_answers(request: ServiceRequest) -> list[tuple[str, str]]:
    """The answers as (question, answer) lines for people: keys in words
    (domain.words), money as money, lists and nested answers on lines of their own."""
    return [(words.humanise(key), _text(value, key)) for key, value in words.answer_pairs(answers(request))]


class DecisionRefused(ValueError):
    pass


def decide(
    db: Session, now: datetime, request: ServiceRequest, approve: bool, reason: str | None, staff_user_id: int | None
) -> None:
    """The agency's decision on a request that needs one and has no rules of its
    own (arrangements and renewals have theirs: `decider_for`)."""
    if request.status not in ("received", "in_review"):
        raise DecisionRefused(f"{request.reference} has already been decided ({request.status})")
    if not approve and not (reason or "").strip():
        raise DecisionRefused("Give the reason for declining: the account's people will read it")
    request.status = "approved" if approve else "declined"
    request.decided_at, request.decided_by_user_id = now, staff_user_id
    request.decision_reason = (reason or "").strip() or None
    audit.record(
        db,
        now,
        f"request.{request.status}",
        actor_user_id=staff_user_id,
        account_id=request.account_id,
        reference=request.reference,
    )


def decider_for(kind: str):
    """The function that decides a request of this kind: the feature's own when it
    has one (it changes more than the status), else `decide`."""
    if kind == "arrangement":
        from domain import arrangements

        return arrangements.decide
    if kind == "renewal":
        from domain import renewals

        return renewals.decide
    return decide


def waiting(db: Session) -> list[tuple[ServiceRequest, Account]]:
    """Requests not yet decided, oldest first (what the agency has to act on)."""
    return list(
        db.execute(
            select(ServiceRequest, Account)
            .join(Account, Account.id == ServiceRequest.account_id)
            .where(ServiceRequest.status.in_(("received", "in_review")))
            .order_by(ServiceRequest.submitted_at, ServiceRequest.id)
        ).all()
    )
