"""Email leaves through the outbox table. A sender claims each row with an atomic
UPDATE before sending, so a message goes out once however many workers run. A
failed send is tried again after a back-off that doubles with each attempt (1, 2,
4, 8... minutes, at most an hour), up to MAX_ATTEMPTS; then the row is failed."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from domain.db import rows_changed
from models import OutboxEmail

log = logging.getLogger("portal.mail")
MAX_ATTEMPTS = 5
CLAIM_EXPIRES = timedelta(minutes=10)
FIRST_BACKOFF = timedelta(minutes=1)
LONGEST_BACKOFF = timedelta(hours=1)


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class LogSender:
    """Development sender: writes the message to the log (the demo reads links there)."""

    def send(self, message: EmailMessage) -> None:
        log.info("email to %s: %s\n%s", message["To"], message["Subject"], message.get_content())


class SMTPSender:
    def __init__(
        self, host: str, port: int, username: str = "", password: str = "", starttls: bool = False, timeout: float = 10
    ):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.timeout = starttls, timeout

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def sender_from_config(config: dict) -> Sender:
    if config["MAIL_SENDER"] == "smtp":
        return SMTPSender(
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            config["SMTP_USERNAME"],
            config["SMTP_PASSWORD"],
            config["SMTP_STARTTLS"],
            config["SMTP_TIMEOUT_SECONDS"],
        )
    return LogSender()


def enqueue(
    db: Session, now: datetime, to: str, subject: str, body: str, *, list_unsubscribe: str | None = None
) -> OutboxEmail:
    """An email to send after the caller commits; `list_unsubscribe`, the link of
    its List-Unsubscribe header (updates to subscribers)."""
    email = OutboxEmail(
        to_address=to,
        subject=subject,
        body_text=body,
        created_at=now,
        status="pending",
        attempts=0,
        list_unsubscribe=list_unsubscribe,
    )
    db.add(email)
    return email


def status(db: Session) -> tuple[dict[str, int], list[OutboxEmail]]:
    """How many emails are in each state, and the failed ones (newest first, at most 50)."""
    counts = dict(db.execute(select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)).all())
    failed = list(
        db.scalars(select(OutboxEmail).where(OutboxEmail.status == "failed").order_by(OutboxEmail.id.desc()).limit(50))
    )
    return counts, failed


def retry(db: Session, email_id: int, now: datetime) -> bool:
    """Send a failed email again at the next run, with a fresh count of tries."""
    email = db.get(OutboxEmail, email_id)
    if email is None or email.status != "failed":
        return False
    email.status, email.attempts, email.next_attempt_at, email.claimed_by = "pending", 0, now, None
    return True


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling from a
    minute, so a short outage costs little and a long one is not hammered."""
    if attempts < 1:
        return timedelta(0)
    return min(FIRST_BACKOFF * 2 ** min(attempts - 1, 16), LONGEST_BACKOFF)


def _due(now: datetime):
    """Rows a sender may take now: waiting and past their back-off, or claimed by
    a worker that has not finished within CLAIM_EXPIRES (it may have died)."""
    return (
        (OutboxEmail.status == "pending")
        & (OutboxEmail.next_attempt_at.is_(None) | (OutboxEmail.next_attempt_at <= now))
    ) | ((OutboxEmail.status == "sending") & (OutboxEmail.claimed_at < now - CLAIM_EXPIRES))


def _claim(db: Session, email_id: int, worker: str, now: datetime) -> bool:
    # The same condition as the search, checked again in one UPDATE: of several
    # workers that found the row, only one changes it.
    claimed = rows_changed(
        db,
        update(OutboxEmail)
        .where(OutboxEmail.id == email_id)
        .where(_due(now))
        .values(status="sending", claimed_by=worker, claimed_at=now, attempts=OutboxEmail.attempts + 1),
    )
    db.commit()
    return claimed == 1


def _message(email: OutboxEmail, mail_from: str, message_domain: str, sent_at: datetime) -> EmailMessage:
    """The message as it goes out. Receiving servers mark mail without Date or Message-ID
    as spam; the Message-ID is the same for every try of one email, so a retry after a
    lost answer is recognised as the same message."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = mail_from, email.to_address, email.subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = f"<outbox.{email.id}.{int(email.created_at.timestamp())}@{message_domain}>"
    if email.list_unsubscribe:
        message["List-Unsubscribe"] = f"<{email.list_unsubscribe}>"
        # RFC 8058: the mail provider's "unsubscribe" button POSTs to that link itself.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.body_text, charset="utf-8")
    return message


def send_pending(
    session_factory: Callable[[], Session],
    sender: Sender,
    mail_from: str,
    worker: str,
    now: Callable[[], datetime],
    limit: int = 50,
    message_domain: str = "localhost",
) -> int:
    """Send what is due; returns how many went out."""
    sent = 0
    with session_factory() as db:
        ids = db.scalars(select(OutboxEmail.id).where(_due(now())).order_by(OutboxEmail.id).limit(limit)).all()
        for email_id in ids:
            if not _claim(db, email_id, worker, now()):
                continue
            email = db.get_one(OutboxEmail, email_id)  # claimed just above, so it is there
            message = _message(email, mail_from, message_domain, now())
            try:
                sender.send(message)
            except (OSError, smtplib.SMTPException) as exc:
                if email.attempts >= MAX_ATTEMPTS:
                    email.status, email.next_attempt_at = "failed", None
                else:
                    email.status, email.next_attempt_at = "pending", now() + backoff(email.attempts)
                email.last_error = type(exc).__name__
                log.warning("email %s not sent (attempt %s): %s", email.id, email.attempts, type(exc).__name__)
            else:
                email.status, email.sent_at, email.next_attempt_at = "sent", now(), None
                sent += 1
            db.commit()
    return sent
