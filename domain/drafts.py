"""Drafts: a form in progress, kept on the server as the person goes, so a
time-out, a closed tab or a dropped link loses nothing. One open draft per
person, account, kind and subject (a period, a notice); both tabs of the same
form share it, and its token is the submission's idempotency key. Plain
functions, no Flask."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from domain.db import rows_changed
from models import Document, Draft

_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,43}")
# Answers are form text: a draft larger than this is not a form being filled in.
MAX_DRAFT_BYTES = 64 * 1024
# An untouched draft is kept this long (flask purge removes older ones).
KEPT_FOR = timedelta(days=90)


def current(db: Session, *, account_id: int, user_id: int, kind: str, subject: str = "") -> Draft | None:
    """The person's open (not yet submitted) draft of this form, if any."""
    return db.scalar(
        select(Draft)
        .where(
            Draft.account_id == account_id,
            Draft.user_id == user_id,
            Draft.kind == kind,
            Draft.subject == subject,
            Draft.submitted_request_id.is_(None),
        )
        .order_by(Draft.updated_at.desc(), Draft.id.desc())
        .limit(1)
    )


def start(
    db: Session, now: datetime, *, account_id: int, user_id: int, kind: str, subject: str = "", data: dict | None = None
) -> Draft:
    draft = Draft(
        account_id=account_id,
        user_id=user_id,
        kind=kind,
        subject=subject,
        data=json.dumps(data or {}, sort_keys=True),
        token=secrets.token_urlsafe(32),
        created_at=now,
        updated_at=now,
    )
    db.add(draft)
    db.flush()
    return draft


def current_or_start(
    db: Session, now: datetime, *, account_id: int, user_id: int, kind: str, subject: str = ""
) -> Draft:
    return current(db, account_id=account_id, user_id=user_id, kind=kind, subject=subject) or start(
        db, now, account_id=account_id, user_id=user_id, kind=kind, subject=subject
    )


def by_token(db: Session, *, account_id: int, user_id: int, token: str) -> Draft | None:
    """The person's own draft with this token (submitted or not); None for anyone else's."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None  # not a token (and a NUL must not reach PostgreSQL)
    return db.scalar(
        select(Draft).where(Draft.token == token, Draft.account_id == account_id, Draft.user_id == user_id)
    )


def is_draft_token(db: Session, token: str) -> bool:
    """Whether some form's draft has this token (its key when it is sent)."""
    return db.scalar(select(Draft.id).where(Draft.token == token)) is not None


def answers(draft: Draft | None) -> dict:
    if draft is None:
        return {}
    try:
        data = json.loads(draft.data or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def save(draft: Draft, now: datetime, answers_now: dict, *, replace: bool = False) -> bool:
    """Merge `answers_now` (text values) into the draft. False, and nothing
    changed, when the draft is already submitted or would grow too large."""
    if draft.submitted_request_id is not None:
        return False
    data = {} if replace else answers(draft)
    data.update(answers_now)
    text = json.dumps(data, sort_keys=True, default=str)
    if len(text.encode()) > MAX_DRAFT_BYTES:
        return False
    draft.data, draft.updated_at = text, now
    return True


def hold(db: Session, draft: Draft) -> Draft:
    """Lock the draft's row until the transaction ends, and read it again. The same
    draft submitted on two workers at once: the second waits here, then sees it
    sent. On SQLite this write also opens the transaction (taking the one write
    lock), so the submission's savepoint is inside it and everything commits
    together: a SAVEPOINT that opens a transaction is committed by its RELEASE."""
    db.execute(
        update(Draft)
        .where(Draft.id == draft.id)
        .values(updated_at=Draft.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.refresh(draft)
    return draft


def mark_submitted(db: Session, draft: Draft, request_id: int) -> None:
    """The draft becomes the request: its documents go with it."""
    draft.submitted_request_id = request_id
    for document in db.scalars(select(Document).where(Document.draft_id == draft.id)):
        document.service_request_id, document.draft_id = request_id, None


def open_drafts(db: Session, *, account_id: int, user_id: int) -> list[Draft]:
    return list(
        db.scalars(
            select(Draft)
            .where(Draft.account_id == account_id, Draft.user_id == user_id, Draft.submitted_request_id.is_(None))
            .order_by(Draft.updated_at.desc())
        )
    )


def abandoned_ids(db: Session, now: datetime) -> list[int]:
    """Drafts never sent and untouched for KEPT_FOR: what `purge` removes."""
    return list(
        db.scalars(select(Draft.id).where(Draft.submitted_request_id.is_(None), Draft.updated_at < now - KEPT_FOR))
    )


def purge(db: Session, now: datetime) -> int:
    """Drafts untouched for KEPT_FOR, and submitted drafts older than a day (their
    token must outlive any retry of the submission)."""
    stale = rows_changed(
        db, delete(Draft).where(Draft.submitted_request_id.is_(None), Draft.updated_at < now - KEPT_FOR)
    )
    done = rows_changed(
        db, delete(Draft).where(Draft.submitted_request_id.is_not(None), Draft.updated_at < now - timedelta(days=1))
    )
    return stale + done
