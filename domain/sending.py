"""Sending a draft, once: how every journey (a return or claim, an objection, a
waiver request, a payment arrangement, a licence renewal, direct deposit details)
turns the person's draft into its service request. Plain functions, no Flask.

The draft's token is the request's idempotency key, and the draft's row is locked
while it is sent, so however often the same draft arrives (a double click, a
retry, a second tab, two workers at the same moment) it makes one request: the
second sender waits for the first, then finds the draft sent and answers the
request it made. After the draft is purged, its token still finds the request.
What goes with a new request (a return, a schedule, new bank details) is made by
the journey's `build` in the request's savepoint; when it finds the request can no
longer be made (the period was filed by someone else a moment before) it raises
Refused, and nothing of the request is kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from domain import drafts, requests
from models import Account, Draft, ServiceRequest


class Refused(Exception):
    """Raised by a journey's `build`: the request cannot be made now (the period
    was filed a moment ago by someone else). The caller rolls back and says why."""


@dataclass(frozen=True)
class Outgoing:
    """What a journey sends: the request's one-line summary and its answers as
    submitted, plus what goes with a new request."""

    summary: str
    data: dict
    build: Callable[[Session, ServiceRequest], None] | None = None  # see domain.requests.submit
    tax_return_id: int | None = None  # the return the request is about (an objection's)
    draft_keeps: dict | None = None  # what the sent draft keeps instead of its answers (None: its answers)


def sent_request(db: Session, draft: Draft | None) -> ServiceRequest | None:
    """The request the draft made, when it has been sent (None while it is open)."""
    if draft is None or draft.submitted_request_id is None:
        return None
    return db.get(ServiceRequest, draft.submitted_request_id)


def made_with(
    db: Session, token: str | None, *, account_id: int, user_id: int, kinds: tuple[str, ...]
) -> ServiceRequest | None:
    """The request a draft that is gone (purged a day after it was sent) made with
    this token: the person's own, on this account, of one of these kinds."""
    found = requests.by_key(db, token) if isinstance(token, str) else None
    if found is None or found.account_id != account_id or found.submitted_by_user_id != user_id:
        return None
    return found if found.kind in kinds else None


def send(
    db: Session, now: datetime, draft: Draft, *, account: Account, user_id: int, outgoing: Outgoing
) -> requests.Submitted:
    """The draft's request, made now unless the draft was sent before (then that
    request, `created` False). Holds the draft's row first (domain.drafts.hold),
    so a second send of the same draft waits here and then answers the first one's
    request, and everything made is undone together if the work fails before the
    commit. Raises Refused when `build` does; the caller rolls back. The caller commits."""
    drafts.hold(db, draft)
    earlier = sent_request(db, draft)
    if earlier is not None:
        return requests.Submitted(earlier, False)
    submitted = requests.submit(
        db,
        now,
        account=account,
        user_id=user_id,
        kind=draft.kind,
        key=draft.token,
        summary=outgoing.summary,
        data=outgoing.data,
        tax_return_id=outgoing.tax_return_id,
        build=outgoing.build,
    )
    drafts.mark_submitted(db, draft, submitted.request.id)
    if outgoing.draft_keeps is not None:
        draft.data, draft.updated_at = json.dumps(outgoing.draft_keeps, sort_keys=True), now
    return submitted
