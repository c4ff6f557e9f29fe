"""What the portal keeps, and for how long, of what it no longer needs: the rules
`flask purge` applies every hour. Plain functions, no Flask; the caller commits,
then discards the files of the documents that went (a rollback keeps them).

Kept: a session until its idle limit (anonymous) or 30 days after it ended
(domain.sessions); throttle counts a day; a used email link a day past the
longest link age (after that the link is refused as expired anyway); a sent email
30 days; a draft untouched for 90 days (domain.drafts), with the documents
uploaded to it; a file of the document folder that no document claims, an hour;
what someone who asked for an invitation letter said about themselves, 90 days
after the request was closed (domain.enrolment_requests).
The back office's one-time form keys (domain.once) are kept: a stale form sent
again must still find its key used."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain import documents, drafts, enrolment_requests, sessions, throttle
from domain.db import rows_changed
from domain.files import remove_unclaimed
from models import Document, OutboxEmail, UsedToken

THROTTLE_KEPT = timedelta(days=1)
USED_LINK_MARGIN = timedelta(days=1)
LINK_PURPOSES = ("verify-email", "reset-password")
SENT_EMAIL_KEPT = timedelta(days=30)
# An upload's transaction lasts seconds: a file an hour old that no row names was
# left by a process that died before its commit.
UNCLAIMED_FILE_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class Purged:
    rows: int  # rows deleted (or, for letter requests, erased), of every table
    files: list[str]  # stored names of the documents deleted: to discard from the store after the commit


def purge(db: Session, now: datetime, *, session_limits: sessions.Limits, longest_link: timedelta) -> Purged:
    """Delete, in the caller's transaction, every row past its keeping time."""
    gone = sessions.purge(db, now, session_limits)
    gone += throttle.purge_older_than(db, now - THROTTLE_KEPT)
    gone += _used_links(db, now - longest_link - USED_LINK_MARGIN)
    gone += _sent_emails(db, now - SENT_EMAIL_KEPT)
    gone += enrolment_requests.erase_closed(db, now)
    # Documents uploaded to a form that was never sent go with its draft.
    files = documents.remove_abandoned(db, drafts.abandoned_ids(db, now))
    gone += len(files) + drafts.purge(db, now)
    return Purged(gone, files)


def _used_links(db: Session, used_before: datetime) -> int:
    query = delete(UsedToken).where(UsedToken.purpose.in_(LINK_PURPOSES), UsedToken.used_at < used_before)
    return rows_changed(db, query)


def _sent_emails(db: Session, sent_before: datetime) -> int:
    query = delete(OutboxEmail).where(OutboxEmail.status == "sent", OutboxEmail.sent_at < sent_before)
    return rows_changed(db, query)


def claimed_files(db: Session, names: Iterable[str]) -> set[str]:
    """Which of these stored names a document still claims."""
    return set(db.scalars(select(Document.stored_name).where(Document.stored_name.in_(list(names)))))


def remove_unclaimed_files(db: Session, directory: Path | str, now: datetime) -> list[str]:
    """Delete the files of the document folder no document claims, older than
    UNCLAIMED_FILE_AGE (the whole folder, whatever the store is now: it may hold
    files from before a change); their names."""
    return remove_unclaimed(directory, lambda names: claimed_files(db, names), written_before=now - UNCLAIMED_FILE_AGE)
