"""Secure messages: conversations between the agency and the people of an
account (or one person), read in the portal. Plain functions, no Flask.

Every message is a MessageThread of MessagePosts. Each post from the agency is
delivered as one Message row per recipient, which carries that person's read
state; replies from the account's side are posts only, and reach the staff's
"messages" work queue. Anything about an account goes here, never into email:
the email only says that a message is waiting, with no link that signs in.

Who takes part:
- a thread to an account (to_user_id None) reaches everyone whose grant on it is
  in force and allows "receive_messages"; they read it and reply while that holds;
- a thread to one person about an account reaches that person while they hold a
  grant in force on it (any permissions);
- a thread to one person with no account reaches that person.
Nobody reads a thread without having received one of its posts: someone given
access later sees it once the agency writes in it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import audit, documents, grants, outbox, work
from domain.accounts import format_number
from domain.db import savepoint
from models import (
    MAX_ID,
    Account,
    Document,
    Grant,
    Message,
    MessagePost,
    MessageThread,
    OutboxEmail,
    User,
    WorkItem,
)

SHOWN_AT_MOST = 500
MAX_SUBJECT = 200
MAX_BODY = 5000
RECEIVE = "receive_messages"
MANAGE = "manage_access"
AGENCY = "Tax and Revenue Administration"

EMAIL_SUBJECT = "You have a new message in TRA Client Self-Service"
# At most one "new message" email per person in this long: the first at once, the
# rest wait in the portal (the next email after it says how many are unread).
EMAIL_AT_MOST_EVERY = timedelta(hours=1)

# What a taxpayer's own message is about ("write to us"), as the staff queue shows it.
TOPICS = {
    "account": "My account",
    "return": "A return or claim",
    "payment": "A payment or refund",
    "notice": "A notice or assessment",
    "access": "Access and representatives",
    "other": "Something else",
}
ABOUT_ACCOUNT = "one of your accounts"
ABOUT_ACCESS = "access to one of your accounts"
ABOUT_YOU = "your use of TRA Client Self-Service"


class MessageRefused(ValueError):
    """A message that cannot be sent as it stands, with the words to show (beside `field` when given)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def email_body(about: str, unread: int = 1) -> str:
    # No account details, no names, no link: an email can be read by anyone who
    # sees the inbox, and a link invites copies that are not ours.
    more = f" You have {unread} unread messages waiting." if unread > 1 else ""
    return (
        f"There is a new message for you in TRA Client Self-Service about {about}.{more}\n\n"
        "To read it, sign in to TRA Client Self-Service and choose Messages.\n\n"
        "For your security we do not put account details in email, and we will never ask for your "
        "password, PIN or account number by email.\n"
    )


# --- Who takes part ---------------------------------------------------------------------


def _live(today: date | None):
    """A grant that works: in force today, or (no date given) not removed."""
    return grants.in_force(today) if today is not None else Grant.revoked_at.is_(None)


def _allows(permission: str):
    return Grant.permissions.contains(permission, autoescape=True)


def account_recipients(db: Session, account_id: int, today: date) -> list[int]:
    """Everyone whose grant on the account is in force today and allows
    "receive_messages", and whose sign-in works."""
    rows = db.execute(
        select(Grant.user_id, Grant.permissions)
        .join(User, User.id == Grant.user_id)
        .where(Grant.account_id == account_id, grants.in_force(today), User.disabled_at.is_(None))
        .order_by(Grant.user_id)
    ).all()
    return list(dict.fromkeys(user_id for user_id, permissions in rows if RECEIVE in permissions.split(",")))


def people_on_account(db: Session, account_id: int, today: date) -> list[tuple[User, bool]]:
    """Everyone with a grant in force on the account, by name, and whether it
    lets them receive messages (a person may be written to alone either way)."""
    receives: dict[int, bool] = {}
    people: dict[int, User] = {}
    for user, permissions in db.execute(
        select(User, Grant.permissions)
        .join(Grant, Grant.user_id == User.id)
        .where(Grant.account_id == account_id, grants.in_force(today))
        .order_by(User.name, User.id)
    ):
        people[user.id] = user
        receives[user.id] = receives.get(user.id, False) or RECEIVE in permissions.split(",")
    return [(user, receives[user_id]) for user_id, user in people.items()]


def managers(db: Session, account_id: int) -> list[int]:
    """Who manages access to the account (live grants with "manage_access"; a
    representative never has it, so no consent dates come into it)."""
    rows = db.execute(
        select(Grant.user_id, Grant.permissions)
        .join(User, User.id == Grant.user_id)
        .where(Grant.account_id == account_id, Grant.revoked_at.is_(None), User.disabled_at.is_(None))
        .order_by(Grant.user_id)
    ).all()
    return list(dict.fromkeys(user_id for user_id, permissions in rows if MANAGE in permissions.split(",")))


def has_grant(db: Session, user_id: int, account_id: int, today: date | None, permission: str | None = None) -> bool:
    query = select(Grant.id).where(Grant.user_id == user_id, Grant.account_id == account_id, _live(today))
    if permission is not None:
        query = query.where(_allows(permission))
    return db.scalar(query.limit(1)) is not None


def recipients(db: Session, thread: MessageThread, today: date) -> list[int]:
    """Who a new agency post in the thread reaches today."""
    if thread.to_user_id is None:
        return account_recipients(db, thread.account_id, today) if thread.account_id is not None else []
    if thread.account_id is not None and not has_grant(db, thread.to_user_id, thread.account_id, today):
        return []
    return [thread.to_user_id]


def may_take_part(db: Session, user_id: int, thread: MessageThread, today: date | None) -> bool:
    """Whether the person may read the thread and reply in it (having received a post in it)."""
    if thread.to_user_id is not None and thread.to_user_id != user_id:
        return False
    if thread.account_id is None and thread.to_user_id is None:
        return False
    if thread.account_id is not None:
        permission = None if thread.to_user_id is not None else RECEIVE
        if not has_grant(db, user_id, thread.account_id, today, permission):
            return False
    return (
        db.scalar(select(Message.id).where(Message.thread_id == thread.id, Message.user_id == user_id).limit(1))
        is not None
    )


def _readable_by(user_id: int, today: date | None):
    """The SQL form of may_take_part, for listing (the person received a post: the caller joins Message)."""
    return or_(
        and_(MessageThread.account_id.is_(None), MessageThread.to_user_id == user_id),
        and_(
            MessageThread.account_id.is_not(None),
            or_(MessageThread.to_user_id.is_(None), MessageThread.to_user_id == user_id),
            exists().where(
                Grant.user_id == user_id,
                Grant.account_id == MessageThread.account_id,
                _live(today),
                or_(MessageThread.to_user_id == user_id, _allows(RECEIVE)),
            ),
        ),
    )


# --- Writing ----------------------------------------------------------------------------


def normalise_body(text):
    """Line ends as one character each (a browser sends two), no NUL (PostgreSQL
    refuses it), no spaces around. Anything but text is left as it is."""
    if not isinstance(text, str):
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def _clean_body(body: str | None) -> str:
    text = normalise_body(body or "")
    if not text:
        raise MessageRefused("Enter your message", "body")
    if len(text) > MAX_BODY:
        raise MessageRefused(f"Enter a message of {MAX_BODY:,} characters or fewer", "body")
    return text


def _clean_subject(subject: str | None) -> str:
    text = " ".join((subject or "").replace("\x00", "").split())
    if not text:
        raise MessageRefused("Enter a subject", "subject")
    if len(text) > MAX_SUBJECT:
        raise MessageRefused(f"Enter a subject of {MAX_SUBJECT} characters or fewer", "subject")
    return text


def _new_thread(
    db: Session,
    now: datetime,
    *,
    account_id: int | None,
    to_user_id: int | None,
    subject: str,
    started_by_user_id: int | None,
    topic: str | None = None,
) -> MessageThread:
    thread = MessageThread(
        topic=topic,
        account_id=account_id,
        to_user_id=to_user_id,
        subject=subject[:MAX_SUBJECT],
        started_by_user_id=started_by_user_id,
        started_at=now,
        last_post_at=now,
    )
    db.add(thread)
    db.flush()
    return thread


def _add_post(
    db: Session,
    now: datetime,
    thread: MessageThread,
    *,
    author_user_id: int | None,
    from_agency: bool,
    body: str,
    key: str | None = None,
) -> MessagePost:
    post = MessagePost(
        thread_id=thread.id,
        author_user_id=author_user_id,
        from_agency=from_agency,
        body=body,
        created_at=now,
        submission_key=key or None,
    )
    db.add(post)
    db.flush()
    thread.last_post_at = now
    return post


def _deliver(
    db: Session,
    now: datetime,
    thread: MessageThread,
    post: MessagePost,
    user_ids,
    *,
    notify: bool = True,
    about: str = ABOUT_ACCOUNT,
) -> list[Message]:
    """The post as one Message to each person (each once), and, with `notify`,
    one email to each saying only that a message is waiting."""
    wanted = list(dict.fromkeys(int(i) for i in user_ids))
    if not wanted:
        return []
    people = {u.id: u for u in db.scalars(select(User).where(User.id.in_(wanted)))}
    sent = []
    for user_id in wanted:
        person = people.get(user_id)
        if person is None:
            continue
        message = Message(
            user_id=user_id,
            account_id=thread.account_id,
            subject=thread.subject,
            body=post.body,
            created_at=now,
            read_at=None,
            thread_id=thread.id,
            post_id=post.id,
        )
        db.add(message)
        sent.append(message)
        if notify and not person.is_disabled:
            _tell_by_email(db, now, person, about)
    db.flush()
    return sent


def _tell_by_email(db: Session, now: datetime, person: User, about: str) -> None:
    """One "new message" email, unless this person was sent one within the hour:
    eleven messages in ten minutes are one email, and the portal's inbox shows
    the rest. Counted per address from the outbox, so one person's messages never
    hold back another's email."""
    recent = db.scalar(
        select(OutboxEmail.id)
        .where(
            OutboxEmail.to_address == person.email,
            OutboxEmail.subject == EMAIL_SUBJECT,
            OutboxEmail.created_at > now - EMAIL_AT_MOST_EVERY,
        )
        .limit(1)
    )
    if recent is not None:
        return
    db.flush()  # the Message rows just added count among the unread
    outbox.enqueue(db, now, person.email, EMAIL_SUBJECT, email_body(about, unread_count(db, person.id)))


def _earlier_post(db: Session, key: str | None) -> MessagePost | None:
    return db.scalar(select(MessagePost).where(MessagePost.submission_key == key)) if key else None


def _add_keyed_post(
    db: Session, now: datetime, thread: MessageThread, *, key: str | None, **post
) -> MessagePost | None:
    """The new post, or None when another worker kept a post with this key first."""
    if not key:
        return _add_post(db, now, thread, **post)
    try:
        with savepoint(db):
            return _add_post(db, now, thread, key=key, **post)
    except IntegrityError:
        return None


def send(
    db: Session,
    now: datetime,
    *,
    user_ids,
    account_id: int | None,
    subject: str,
    body: str,
    notify: bool = True,
    about: str = ABOUT_ACCOUNT,
) -> list[Message]:
    """An automatic message to each of `user_ids` (each once, each in a thread of
    their own, about the account when given), and, with `notify`, an email to
    each saying only that a message is waiting. The caller commits."""
    wanted = list(dict.fromkeys(int(i) for i in user_ids))
    known = set(db.scalars(select(User.id).where(User.id.in_(wanted)))) if wanted else set()
    sent = []
    for user_id in wanted:
        if user_id not in known:
            continue
        thread = _new_thread(
            db, now, account_id=account_id, to_user_id=user_id, subject=subject, started_by_user_id=None
        )
        post = _add_post(db, now, thread, author_user_id=None, from_agency=True, body=body)
        sent += _deliver(db, now, thread, post, [user_id], notify=notify, about=about)
    return sent


def to_everyone_with_access(
    db: Session, now: datetime, account: Account, subject: str, body: str, today: date, *, about: str = ABOUT_ACCOUNT
) -> list[Message]:
    """An automatic message to the account: one thread, delivered to everyone
    whose grant is in force today and allows "receive_messages" (nothing when
    nobody does). The caller commits."""
    people = account_recipients(db, account.id, today)
    if not people:
        return []
    thread = _new_thread(db, now, account_id=account.id, to_user_id=None, subject=subject, started_by_user_id=None)
    post = _add_post(db, now, thread, author_user_id=None, from_agency=True, body=body)
    return _deliver(db, now, thread, post, people, about=about)


@dataclass
class Sent:
    thread: MessageThread
    post: MessagePost
    delivered: list[Message]
    attachments: list[Document] = field(default_factory=list)
    created: bool = True  # False: this form had been sent before; this is what it sent


def _attach(
    db: Session,
    now: datetime,
    thread: MessageThread,
    post: MessagePost,
    *,
    user_id: int,
    files,
    store,
    written: list[str] | None,
    quota: documents.Quota | None = None,
) -> list[Document]:
    if not files:
        return []
    if thread.account_id is None:
        raise MessageRefused("Files can be attached only to messages about an account", "files")
    return documents.attach_to_post(
        db,
        now,
        store=store,
        account_id=thread.account_id,
        user_id=user_id,
        post_id=post.id,
        files=files,
        written=written if written is not None else [],
        quota=quota,
    )


def _again(db: Session, post: MessagePost) -> Sent:
    thread = db.get_one(MessageThread, post.thread_id)
    return Sent(thread, post, [], attachments_of(db, [post.id]).get(post.id, []), created=False)


def _kept_first(db: Session, key: str | None) -> Sent:
    """The post another worker kept with this key first (`_add_keyed_post` gave None)."""
    db.rollback()
    earlier = _earlier_post(db, key)
    if earlier is None:  # a key was given, and its post was kept: it is there
        raise RuntimeError("the post kept first with this key is not on record")
    return _again(db, earlier)


def start_thread(
    db: Session,
    now: datetime,
    today: date,
    *,
    staff: User,
    account: Account | None = None,
    to_user: User | None = None,
    subject: str,
    body: str,
    key: str | None = None,
    files=(),
    store=None,
    written: list[str] | None = None,
) -> Sent:
    """A member of staff writes to an account (everyone with "receive_messages")
    or to one person (who must hold a grant in force on the account, when one is
    given). `files` are documents.Checked attachments (an account is needed),
    kept through `store`. The same `key` twice is the first message. The caller commits."""
    earlier = _earlier_post(db, key)
    if earlier is not None:
        return _again(db, earlier)
    subject, body = _clean_subject(subject), _clean_body(body)
    people = _addressees(db, today, account, to_user)
    thread = _new_thread(
        db,
        now,
        account_id=account.id if account is not None else None,
        to_user_id=to_user.id if to_user is not None else None,
        subject=subject,
        started_by_user_id=staff.id,
    )
    post = _add_keyed_post(db, now, thread, key=key, author_user_id=staff.id, from_agency=True, body=body)
    if post is None:
        return _kept_first(db, key)
    attachments = _attach(db, now, thread, post, user_id=staff.id, files=files, store=store, written=written)
    delivered = _deliver(db, now, thread, post, people, about=ABOUT_ACCOUNT if account is not None else ABOUT_YOU)
    audit.record(
        db,
        now,
        "message.sent",
        actor_user_id=staff.id,
        subject_user_id=to_user.id if to_user else None,
        account_id=thread.account_id,
        thread=thread.id,
        post=post.id,
        recipients=len(delivered),
        attachments=len(attachments),
    )
    return Sent(thread, post, delivered, attachments)


def _addressees(db: Session, today: date, account: Account | None, to_user: User | None) -> list[int]:
    """Who a new thread from the agency reaches: the one person written to (a
    portal user, with access to the account when one is given), or everyone on
    the account who receives messages. MessageRefused when that is nobody."""
    if to_user is not None:
        if to_user.is_staff:
            raise MessageRefused("Write to a person who uses the portal, not to staff", "person")
        if account is not None and not has_grant(db, to_user.id, account.id, today):
            raise MessageRefused("This person has no access to the account now", "person")
        return [to_user.id]
    if account is None:
        raise MessageRefused("Choose an account or a person to write to")
    people = account_recipients(db, account.id, today)
    if not people:
        raise MessageRefused("Nobody on this account receives messages now. Write to one person instead", "account")
    return people


def reply_from_agency(
    db: Session,
    now: datetime,
    today: date,
    *,
    staff: User,
    thread: MessageThread,
    body: str,
    key: str | None = None,
    files=(),
    store=None,
    written: list[str] | None = None,
) -> Sent:
    """A member of staff answers in the thread: delivered to its recipients today
    (each emailed once), and the thread's open work item closes as "answered".
    The caller commits."""
    earlier = _earlier_post(db, key)
    if earlier is not None:
        return _again(db, earlier)
    body = _clean_body(body)
    people = recipients(db, thread, today)
    if not people:
        raise MessageRefused(
            "Nobody can receive a reply in this conversation now: no one it was sent to still "
            "has access. Start a new message instead",
            "body",
        )
    item = work.open_for_thread_id(db, thread.id)
    if item is not None:
        try:
            work.check_can_decide(item, staff)
        except work.WorkRefused as refused:
            raise MessageRefused(str(refused), "body") from refused
    post = _add_keyed_post(db, now, thread, key=key, author_user_id=staff.id, from_agency=True, body=body)
    if post is None:
        return _kept_first(db, key)
    attachments = _attach(db, now, thread, post, user_id=staff.id, files=files, store=store, written=written)
    delivered = _deliver(
        db, now, thread, post, people, about=ABOUT_ACCOUNT if thread.account_id is not None else ABOUT_YOU
    )
    if item is not None:
        work.decide(db, now, item, staff, "answered", None)
    audit.record(
        db,
        now,
        "message.replied",
        actor_user_id=staff.id,
        subject_user_id=thread.to_user_id,
        account_id=thread.account_id,
        thread=thread.id,
        post=post.id,
        recipients=len(delivered),
        attachments=len(attachments),
    )
    return Sent(thread, post, delivered, attachments)


def reply_from_account(
    db: Session,
    now: datetime,
    *,
    user: User,
    thread: MessageThread,
    body: str,
    key: str | None = None,
    files=(),
    store=None,
    written: list[str] | None = None,
    quota: documents.Quota | None = None,
) -> Sent:
    """A reply from the account's side (the caller has checked with
    thread_for_reader that this person takes part): a post, with any attached
    files, and the thread's open item in the "messages" queue (one per thread
    however many replies come before it is answered). Attached files count
    against the account's `quota` (documents.QuotaExceeded). The caller commits."""
    earlier = _earlier_post(db, key)
    if earlier is not None:
        return _again(db, earlier)
    body = _clean_body(body)
    if files and thread.account_id is None:
        raise MessageRefused("Files can be attached only to messages about an account", "files")
    post = _add_keyed_post(db, now, thread, key=key, author_user_id=user.id, from_agency=False, body=body)
    if post is None:
        return _kept_first(db, key)
    attachments = _attach(
        db, now, thread, post, user_id=user.id, files=files, store=store, written=written, quota=quota
    )
    item = work.open_for_thread(db, now, thread, f"Reply about “{thread.subject}”")
    audit.record(
        db,
        now,
        "message.reply_received",
        actor_user_id=user.id,
        account_id=thread.account_id,
        thread=thread.id,
        post=post.id,
        item=item.id,
        attachments=len(attachments),
    )
    return Sent(thread, post, [], attachments)


def accounts_to_write_about(db: Session, user_id: int, today: date) -> list[Account]:
    """The accounts this person may write to the agency about: those whose
    messages they read (a grant in force allowing "receive_messages"), of a
    program that takes messages online (its "messages" function)."""
    found = db.scalars(
        select(Account)
        .join(Grant, Grant.account_id == Account.id)
        .where(Grant.user_id == user_id, grants.in_force(today), _allows(RECEIVE))
        .order_by(Account.legal_name, Account.id)
        .distinct()
    )
    return [account for account in found if account.program.allows("messages")]


def _clean_topic(topic: str | None) -> str:
    if topic not in TOPICS:
        raise MessageRefused("Choose what your message is about", "topic")
    return topic


def write_to_agency(
    db: Session,
    now: datetime,
    *,
    user: User,
    account: Account,
    topic: str | None,
    subject: str,
    body: str,
    key: str | None = None,
    files=(),
    store=None,
    written: list[str] | None = None,
    quota: documents.Quota | None = None,
) -> Sent:
    """A taxpayer writes to the agency about an account (the caller has checked
    that their grant allows "receive_messages"): a thread to them alone about the
    account, whose first post is theirs, with a read copy so it is in their inbox,
    and an item in the staff's "messages" queue. The same `key` twice is the first
    message. Attached files count against the account's `quota`. The caller commits."""
    earlier = _earlier_post(db, key)
    if earlier is not None:
        return _again(db, earlier)
    topic, subject, body = _clean_topic(topic), _clean_subject(subject), _clean_body(body)
    thread = _new_thread(
        db, now, account_id=account.id, to_user_id=user.id, subject=subject, started_by_user_id=user.id, topic=topic
    )
    post = _add_keyed_post(db, now, thread, key=key, author_user_id=user.id, from_agency=False, body=body)
    if post is None:
        return _kept_first(db, key)
    attachments = _attach(
        db, now, thread, post, user_id=user.id, files=files, store=store, written=written, quota=quota
    )
    db.add(
        Message(
            user_id=user.id,
            account_id=account.id,
            subject=subject,
            body=body,
            created_at=now,
            read_at=now,
            thread_id=thread.id,
            post_id=post.id,
        )
    )
    item = work.open_for_thread(db, now, thread, f"New message ({TOPICS[topic]}): “{subject}”")
    audit.record(
        db,
        now,
        "message.written",
        actor_user_id=user.id,
        account_id=account.id,
        thread=thread.id,
        post=post.id,
        item=item.id,
        topic=topic,
        attachments=len(attachments),
    )
    return Sent(thread, post, [], attachments)


# --- Automatic messages about access ----------------------------------------------------------


def _account_words(account: Account) -> str:
    return f"the {account.program.name} account of {account.legal_name} ({format_number(account.number)})"


def _name_of(db: Session, user_id: int) -> str:
    return db.scalar(select(User.name).where(User.id == user_id)) or "Someone"


def access_granted(db: Session, now: datetime, *, account: Account, user_id: int) -> list[Message]:
    """A grant was given (enrolment with a PIN): the person, and each of the
    account's managers, are told. The caller commits."""
    name, words = _name_of(db, user_id), _account_words(account)
    sent = send(
        db,
        now,
        user_ids=[user_id],
        account_id=None,
        about=ABOUT_ACCESS,
        subject=f"You now have access to {account.legal_name}",
        body=(
            f"You can now use {words} in TRA Client Self-Service.\n\n"
            "What you can do on it depends on the permissions you were given; it is listed on your home "
            "page.\n\nIf you did not expect this, contact Tax and Revenue Administration."
        ),
    )
    sent += send(
        db,
        now,
        user_ids=[m for m in managers(db, account.id) if m != user_id],
        account_id=account.id,
        about=ABOUT_ACCESS,
        subject=f"{name} now has access to {account.legal_name}",
        body=(
            f"{name} can now use {words}.\n\n"
            "You can see who has access, and change or remove it, on the account's Manage access page.\n\n"
            "If you did not expect this, remove their access and contact Tax and Revenue Administration."
        ),
    )
    return sent


def consent_approved(
    db: Session, now: datetime, *, account: Account, representative_name: str, starts_on: date, ends_on: date | None
) -> list[Message]:
    """The agency approved a consent: the account's managers are told (the
    representative gets a PIN by email, and a message once they use it)."""
    until = f" until {ends_on:%-d %B %Y}" if ends_on else ""
    return send(
        db,
        now,
        user_ids=managers(db, account.id),
        account_id=account.id,
        about=ABOUT_ACCESS,
        subject=f"We approved the consent for {representative_name}",
        body=(
            f"We reviewed and approved the consent for {representative_name} to act as a representative "
            f"on {_account_words(account)}, from {starts_on:%-d %B %Y}{until}.\n\n"
            "We are sending them a PIN. Once they use it they can act on the account with the permissions "
            "in the consent. You can revoke the consent at any time on the account's Representatives and "
            "consents page."
        ),
    )


def representative_asked(
    db: Session, now: datetime, *, account: Account, representative_name: str, lapses_on: date
) -> list[Message]:
    """A representative asked for access: the account's managers are told the day
    it arrives (a message, and the email saying one is waiting), so a request is
    never left to lapse unseen. The caller commits."""
    return send(
        db,
        now,
        user_ids=managers(db, account.id),
        account_id=account.id,
        about=ABOUT_ACCESS,
        subject=f"{representative_name} asked for access to {account.legal_name}",
        body=(
            f"{representative_name} asked to act as a representative on {_account_words(account)}.\n\n"
            "Review the request on the account's Representatives and consents page: accept it (choosing what "
            f"they may do) or decline it. If nobody answers, it lapses on {lapses_on:%-d %B %Y}.\n\n"
            "If you do not know them, decline it. Nobody gets access until you accept and we approve."
        ),
    )


def representative_request_lapsing(
    db: Session, now: datetime, *, account: Account, representative_name: str, lapses_on: date
) -> list[Message]:
    """A reminder to the managers that a representative's request is about to lapse unanswered."""
    return send(
        db,
        now,
        user_ids=managers(db, account.id),
        account_id=account.id,
        about=ABOUT_ACCESS,
        subject=f"Reminder: {representative_name}'s request for access lapses on {lapses_on:%-d %B}",
        body=(
            f"{representative_name} asked to act as a representative on {_account_words(account)}, and nobody "
            f"has answered yet. The request lapses on {lapses_on:%-d %B %Y}.\n\n"
            "Accept or decline it on the account's Representatives and consents page. If it lapses, they "
            "can ask again."
        ),
    )


def access_removed(db: Session, now: datetime, *, account: Account, user_id: int) -> list[Message]:
    """A grant was removed (by a manager, or a consent revoked): the person and
    the account's managers are told. The person no longer reads the account's
    messages, so those still unread stop counting as waiting for them."""
    name, words = _name_of(db, user_id), _account_words(account)
    if not has_grant(db, user_id, account.id, None):
        db.execute(
            update(Message)
            .where(Message.user_id == user_id, Message.account_id == account.id, Message.read_at.is_(None))
            .values(read_at=now)
        )
    sent = send(
        db,
        now,
        user_ids=[user_id],
        account_id=None,
        about=ABOUT_ACCESS,
        subject=f"Your access to {account.legal_name} has ended",
        body=(
            f"You can no longer use {words} in TRA Client Self-Service.\n\n"
            "If you think this is a mistake, ask the people who manage the account, or contact Tax and "
            "Revenue Administration."
        ),
    )
    sent += send(
        db,
        now,
        user_ids=[m for m in managers(db, account.id) if m != user_id],
        account_id=account.id,
        about=ABOUT_ACCESS,
        subject=f"{name} no longer has access to {account.legal_name}",
        body=(f"{name} can no longer use {words}.\n\nYou can see who has access on the account's Manage access page."),
    )
    return sent


def return_received(
    db: Session, now: datetime, today: date, *, account: Account, paper: str, period: str, reference: str
) -> list[Message]:
    """A return or claim was received: everyone on the account who receives messages is told."""
    return to_everyone_with_access(
        db,
        now,
        account,
        f"We received your {paper}",
        f"We received your {paper} for the period {period} on {today:%-d %B %Y}.\n\n"
        f"Account: {account.legal_name} ({format_number(account.number)}), {account.program.name}\n"
        f"Reference number: {reference}\n\n"
        "We will process it and post the notice of assessment under the account's Mail. You can follow it on "
        "the account's assessment status page.",
        today,
        about=ABOUT_ACCOUNT,
    )


# --- Reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    thread: MessageThread
    account: Account | None
    unread: int  # the person's unread posts in it


def _received(user_id: int):
    return (
        select(Message.thread_id, func.sum(case((Message.read_at.is_(None), 1), else_=0)).label("unread"))
        .where(Message.user_id == user_id, Message.thread_id.is_not(None))
        .group_by(Message.thread_id)
        .subquery()
    )


def threads_for_user(
    db: Session, user_id: int, today: date | None = None, limit: int = SHOWN_AT_MOST
) -> list[InboxRow]:
    """The threads the person takes part in, newest activity first, with how many
    of their posts they have not read."""
    received = _received(user_id)
    rows = db.execute(
        select(MessageThread, Account, received.c.unread)
        .join(received, received.c.thread_id == MessageThread.id)
        .outerjoin(Account, Account.id == MessageThread.account_id)
        .where(_readable_by(user_id, today))
        .order_by(MessageThread.last_post_at.desc(), MessageThread.id.desc())
        .limit(limit)
    ).all()
    return [InboxRow(thread, account, int(unread or 0)) for thread, account, unread in rows]


def thread_count_for_user(db: Session, user_id: int, today: date | None = None) -> tuple[int, int]:
    """(threads the person takes part in, those with a post they have not read)."""
    received = _received(user_id)
    total, unread = db.execute(
        select(func.count(), func.sum(case((received.c.unread > 0, 1), else_=0)))
        .select_from(MessageThread)
        .join(received, received.c.thread_id == MessageThread.id)
        .where(_readable_by(user_id, today))
    ).one()
    return int(total or 0), int(unread or 0)


def unread_count(db: Session, user_id: int) -> int:
    """The person's unread messages: one count on the (user_id, read_at) index."""
    return db.scalar(select(func.count(Message.id)).where(Message.user_id == user_id, Message.read_at.is_(None))) or 0


def find_thread(db: Session, thread_id) -> MessageThread | None:
    # The staff side's URLs take any integer: one no row can have is no thread.
    if not isinstance(thread_id, int) or not 0 < thread_id <= MAX_ID:
        return None
    return db.get(MessageThread, thread_id)


def thread_for_reader(db: Session, user_id: int, thread_id: int, today: date | None = None) -> MessageThread | None:
    """The thread, when this person received a post in it and still takes part
    (see the module's notes; with `today`, consent dates count too); None for
    anyone else, or no such thread."""
    thread = find_thread(db, thread_id)
    if thread is None or not may_take_part(db, user_id, thread, today):
        return None
    return thread


def account_of(db: Session, thread: MessageThread) -> Account | None:
    return db.get(Account, thread.account_id) if thread.account_id is not None else None


def unread_in_thread(db: Session, user_id: int, thread_id: int) -> int:
    return (
        db.scalar(
            select(func.count(Message.id)).where(
                Message.user_id == user_id, Message.thread_id == thread_id, Message.read_at.is_(None)
            )
        )
        or 0
    )


# Bound names differ from the columns' (an UPDATE keeps those for its SET clause).
_MARK_READ = (
    update(Message)
    .where(
        Message.thread_id == bindparam("in_thread"), Message.user_id == bindparam("reader"), Message.read_at.is_(None)
    )
    .values(read_at=bindparam("at"))
)


def read_write(user_id: int, thread_id: int, now: datetime):
    """(statement, parameters) marking the person's copies in the thread read
    (those already read keep the time they were first read)."""
    return _MARK_READ, {"in_thread": thread_id, "reader": user_id, "at": now}


@dataclass(frozen=True)
class PostView:
    post: MessagePost
    author: str  # what the taxpayer sees: the agency, or the person's name
    staff_author: str | None  # the member of staff who wrote it (for staff eyes), or None
    attachments: list[Document]
    delivered: int  # how many people it reached (agency posts)
    read: int  # how many of them have opened it


def attachments_of(db: Session, post_ids) -> dict[int, list[Document]]:
    post_ids = list(post_ids)
    found: dict[int, list[Document]] = {}
    if post_ids:
        for document in db.scalars(
            select(Document).where(Document.message_post_id.in_(post_ids)).order_by(Document.id)
        ):
            if document.message_post_id is not None:  # always, by the query
                found.setdefault(document.message_post_id, []).append(document)
    return found


def posts_of(db: Session, thread: MessageThread) -> list[PostView]:
    """The thread's posts, oldest first, with their authors and attachments."""
    posts = list(
        db.scalars(
            select(MessagePost)
            .where(MessagePost.thread_id == thread.id)
            .order_by(MessagePost.created_at, MessagePost.id)
        )
    )
    author_ids = {p.author_user_id for p in posts if p.author_user_id is not None}
    # Keyed by int | None, as looked up: a post written by nobody (automatically) finds no name.
    names: dict[int | None, str] = (
        dict(db.execute(select(User.id, User.name).where(User.id.in_(author_ids))).all()) if author_ids else {}
    )
    files = attachments_of(db, [p.id for p in posts])
    reach = {
        post_id: (int(total), int(read or 0))
        for post_id, total, read in db.execute(
            select(Message.post_id, func.count(Message.id), func.count(Message.read_at))
            .where(Message.thread_id == thread.id)
            .group_by(Message.post_id)
        )
    }
    views = []
    for post in posts:
        name = names.get(post.author_user_id)
        delivered, read = reach.get(post.id, (0, 0))
        views.append(
            PostView(
                post=post,
                author=AGENCY if post.from_agency else (name or "Someone"),
                staff_author=(name or "Sent automatically") if post.from_agency else None,
                attachments=files.get(post.id, []),
                delivered=delivered,
                read=read,
            )
        )
    return views


def attachment_of(db: Session, thread: MessageThread, document_id) -> Document | None:
    """A file attached to one of the thread's posts; None for any other document."""
    if not isinstance(document_id, int) or not 0 < document_id <= MAX_ID:
        return None
    document = db.get(Document, document_id)
    if document is None or document.message_post_id is None:
        return None
    post = db.get(MessagePost, document.message_post_id)
    return document if post is not None and post.thread_id == thread.id else None


# --- The agency's view ------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRow:
    thread: MessageThread
    account: Account | None
    person: User | None  # the one person it is to, if it is
    waiting: WorkItem | None  # the open reply item: the thread awaits the agency's answer


def _staff_rows(db: Session, query) -> list[StaffRow]:
    rows = db.execute(query).all()
    person_ids = {t.to_user_id for t, _a, _w in rows if t.to_user_id is not None}
    people = {u.id: u for u in db.scalars(select(User).where(User.id.in_(person_ids)))} if person_ids else {}
    return [StaffRow(thread, account, people.get(thread.to_user_id), waiting) for thread, account, waiting in rows]


def _staff_query():
    return (
        select(MessageThread, Account, WorkItem)
        .outerjoin(Account, Account.id == MessageThread.account_id)
        .outerjoin(WorkItem, and_(WorkItem.thread_id == MessageThread.id, WorkItem.status.in_(work.OPEN)))
    )


def threads_for_staff(db: Session, *, awaiting_only: bool, limit: int = SHOWN_AT_MOST) -> list[StaffRow]:
    """Threads awaiting the agency's reply, longest waiting first; or every
    thread, newest activity first."""
    query = _staff_query()
    if awaiting_only:
        query = query.where(WorkItem.id.is_not(None)).order_by(WorkItem.received_at, WorkItem.id)
    else:
        query = query.order_by(MessageThread.last_post_at.desc(), MessageThread.id.desc())
    return _staff_rows(db, query.limit(limit))


def threads_of_account(db: Session, account_id: int, limit: int = SHOWN_AT_MOST) -> list[StaffRow]:
    """The account's threads (to everyone on it, or to one person about it), newest activity first."""
    return _staff_rows(
        db,
        _staff_query()
        .where(MessageThread.account_id == account_id)
        .order_by(MessageThread.last_post_at.desc(), MessageThread.id.desc())
        .limit(limit),
    )


def staff_row(db: Session, thread: MessageThread) -> StaffRow:
    return _staff_rows(db, _staff_query().where(MessageThread.id == thread.id))[0]
