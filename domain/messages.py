"""Online mail: secure messages to one person, read in the portal. Anything
about an account goes here, never into email: the email only says that a
message is waiting. Plain functions, no Flask."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from domain import grants, outbox
from models import Account, Grant, Message, User

# Ids beyond a 32-bit integer name no message (and PostgreSQL would refuse them).
MAX_ID = 2**31 - 1
SHOWN_AT_MOST = 500

EMAIL_SUBJECT = "You have a new message in TRA Client Self-Service"


def email_body(about: str) -> str:
    # No account details, no names, no link: an email can be read by anyone who
    # sees the inbox, and a link invites copies that are not ours.
    return (f"There is a new message for you in TRA Client Self-Service about {about}.\n\n"
            "To read it, sign in to TRA Client Self-Service and choose Messages.\n\n"
            "For your security we do not put account details in email, and we will never ask for your "
            "password, PIN or account number by email.\n")


def send(db: Session, now: datetime, *, user_ids, account_id: int | None, subject: str, body: str,
         notify: bool = True, about: str = "one of your accounts") -> list[Message]:
    """One message to each of `user_ids` (each once), and, with `notify`, an
    email to each saying only that a message is waiting. The caller commits."""
    wanted = list(dict.fromkeys(int(i) for i in user_ids))
    if not wanted:
        return []
    people = {u.id: u for u in db.scalars(select(User).where(User.id.in_(wanted)))}
    sent = []
    for user_id in wanted:
        person = people.get(user_id)
        if person is None:
            continue
        message = Message(user_id=user_id, account_id=account_id, subject=subject[:200], body=body,
                          created_at=now, read_at=None)
        db.add(message)
        sent.append(message)
        if notify and not person.is_disabled:
            outbox.enqueue(db, now, person.email, EMAIL_SUBJECT, email_body(about))
    db.flush()
    return sent


def people_with_access(db: Session, account_id: int, today: date) -> list[int]:
    """Everyone whose grant on the account is in force today, whatever it allows
    (a removed person, or a representative whose consent has ended, is not)."""
    return list(db.scalars(select(Grant.user_id).join(User, User.id == Grant.user_id)
                           .where(Grant.account_id == account_id, grants.in_force(today),
                                  User.disabled_at.is_(None))
                           .group_by(Grant.user_id).order_by(Grant.user_id)))


def to_everyone_with_access(db: Session, now: datetime, account: Account, subject: str, body: str, today: date,
                            *, about: str = "one of your accounts") -> list[Message]:
    return send(db, now, user_ids=people_with_access(db, account.id, today), account_id=account.id,
                subject=subject, body=body, about=about)


def for_user(db: Session, user_id: int, limit: int = SHOWN_AT_MOST) -> list[Message]:
    """The person's messages, newest first."""
    return list(db.scalars(select(Message).where(Message.user_id == user_id)
                           .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)))


def count_for_user(db: Session, user_id: int) -> int:
    return db.scalar(select(func.count(Message.id)).where(Message.user_id == user_id)) or 0


def unread_count(db: Session, user_id: int) -> int:
    return db.scalar(select(func.count(Message.id)).where(Message.user_id == user_id,
                                                          Message.read_at.is_(None))) or 0


def own(db: Session, user_id: int, message_id: int) -> Message | None:
    """The person's own message with this id; None for anyone else's, or no such id."""
    if not isinstance(message_id, int) or not 0 < message_id <= MAX_ID:
        return None
    message = db.get(Message, message_id)
    if message is None or message.user_id != user_id:
        return None
    return message


_MARK_READ = (update(Message).where(Message.id == bindparam("message_id"), Message.read_at.is_(None))
              .values(read_at=bindparam("at")))


def read_write(message: Message, now: datetime):
    """(statement, parameters) marking the message read, or None if it already is."""
    if message.read_at is not None:
        return None
    return _MARK_READ, {"message_id": message.id, "at": now}
