"""Online mail: notices and letters posted to an account's mailbox in the portal.
The posting date is the date of receipt (it starts deadlines such as the 90 days
for an objection). Each online posting sends an email alert with no content; an
owner may ask for paper instead, for two years. Paper items wait in the agency's
queue until someone marks them mailed. Plain functions, no Flask."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, defer

from domain import audit, grants, messages, outbox
from domain.accounts import format_number
from domain.db import rows_changed
from domain.notices import AGENCY, DEMO_FOOTER, SERVICE, pdf_text
from domain.returns import long_day
from models import MAIL_KINDS, MAX_ID, Account, Grant, MailItem, User

# The agency's paper queue shows the oldest this many; the rest follow as they are mailed.
QUEUE_SHOWN_AT_MOST = 500
PAPER_YEARS = 2
# Who is told by email that something was posted: anyone who may read the mail,
# and anyone who gets the account's messages.
ALERTED_BY = ("view_returns", "view_financial", "receive_messages")
# Only the account's owner decides how the agency sends it mail.
CHOOSER_ROLE = "owner"

ALERT_SUBJECT = "You have new mail in TRA Client Self-Service"
KIND_LABELS = {
    "notice_of_assessment": "Notice of assessment",
    "notice_of_reassessment": "Notice of reassessment",
    "decision_letter": "Decision letter",
    "letter": "Letter",
    "invitation_letter": "Invitation letter",
}
if set(KIND_LABELS) != set(MAIL_KINDS):  # checked at import, even under -O
    raise RuntimeError("every kind of mail needs its label")


class NotOwner(PermissionError):
    """Someone other than an owner of the account tried to choose paper or online."""


def alert_body() -> str:
    # The wording of domain.messages.email_body: no account details, no names, no
    # link, since anyone who sees the inbox can read an email.
    return (
        "There is a new notice or letter for you in TRA Client Self-Service about one of your accounts.\n\n"
        "To read it, sign in to TRA Client Self-Service, choose the account, then Mail.\n\n"
        "For your security we do not put account details in email, and we will never ask for your "
        "password, PIN or account number by email.\n"
    )


# --- Paper or online -------------------------------------------------------------------


def paper_in_force(account: Account, today: date) -> bool:
    """Whether the owner's choice of paper mail holds today (it lapses after two years)."""
    return account.paper_mail_until is not None and today <= account.paper_mail_until


def paper_until(chosen_on: date) -> date:
    """The last day a choice of paper made on `chosen_on` holds: the day before the
    same date two years on (28 February for a choice made on 29 February)."""
    try:
        anniversary = chosen_on.replace(year=chosen_on.year + PAPER_YEARS)
    except ValueError:  # 29 February, and the year two on has none: 1 March is the anniversary
        anniversary = date(chosen_on.year + PAPER_YEARS, 3, 1)
    return anniversary - timedelta(days=1)


def lapsed_on(account: Account, today: date) -> date | None:
    """The day mail went back online by itself when a choice of paper ran out;
    None when paper holds, or was never chosen, or was given up."""
    until = account.paper_mail_until
    return until + timedelta(days=1) if until is not None and until < today else None


def may_choose(grant: Grant) -> bool:
    return grant.role == CHOOSER_ROLE


def _tell_everyone(db: Session, now: datetime, today: date, account: Account, subject: str, body: str) -> None:
    messages.to_everyone_with_access(
        db, now, account, subject, body, today, about="how we send mail for one of your accounts"
    )


def choose_paper(db: Session, now: datetime, today: date, grant: Grant) -> bool:
    """The owner asks for paper mail: it holds for two years. False (nothing done)
    when paper is already in force. Everyone with access is told. The caller commits."""
    if not may_choose(grant):
        raise NotOwner("only an owner of the account chooses how mail is sent")
    account = grant.account
    if paper_in_force(account, today):
        return False
    until = paper_until(today)
    account.paper_mail_until, account.paper_mail_chosen_by_user_id = until, grant.user_id
    audit.record(
        db,
        now,
        "mail.delivery_chosen",
        actor_user_id=grant.user_id,
        account_id=account.id,
        delivery="paper",
        until=until.isoformat(),
    )
    number = format_number(account.number)
    _tell_everyone(
        db,
        now,
        today,
        account,
        f"Mail for account {number} will now be sent by post",
        f"An owner of {account.legal_name} (account {number}) asked us to send its notices and "
        f"letters by post, to the mailing address we have on file, instead of posting them online.\n\n"
        f"This choice holds until {long_day(until)}. After that we post them online again, unless an "
        f"owner chooses paper again. An owner can go back to online mail at any time.\n\n"
        f'Everything we send still appears under Mail in the account, marked "Sent by post".',
    )
    return True


def choose_online(db: Session, now: datetime, today: date, grant: Grant) -> bool:
    """The owner goes back to online mail. False (nothing done) when mail is
    already online. Everyone with access is told. The caller commits."""
    if not may_choose(grant):
        raise NotOwner("only an owner of the account chooses how mail is sent")
    account = grant.account
    if not paper_in_force(account, today):
        return False
    account.paper_mail_until, account.paper_mail_chosen_by_user_id = None, None
    audit.record(db, now, "mail.delivery_chosen", actor_user_id=grant.user_id, account_id=account.id, delivery="online")
    number = format_number(account.number)
    _tell_everyone(
        db,
        now,
        today,
        account,
        f"Mail for account {number} will now be posted online",
        f"An owner of {account.legal_name} (account {number}) asked us to post its notices and "
        f"letters online again, instead of sending them by post.\n\n"
        f"From now on they appear under Mail in the account, and we email everyone who can read "
        f"them when something new arrives.",
    )
    return True


# --- Posting -------------------------------------------------------------------------------


def alert_recipients(db: Session, account_id: int, today: date) -> list[str]:
    """The email address of each person whose grant in force today lets them read
    the mail or receive the account's messages, each once."""
    rows = db.execute(
        select(Grant, User.email)
        .join(User, User.id == Grant.user_id)
        .where(Grant.account_id == account_id, grants.in_force(today), User.disabled_at.is_(None))
        .order_by(Grant.user_id, Grant.id)
    )
    return list(dict.fromkeys(email for grant, email in rows if any(grant.allows(p) for p in ALERTED_BY)))


def post(
    db: Session,
    now: datetime,
    today: date,
    *,
    account: Account,
    kind: str,
    title: str,
    pdf: bytes,
    posted_by_user_id: int | None = None,
    tax_return_id: int | None = None,
    service_request_id: int | None = None,
    pin_id: int | None = None,
    shown_online: bool = True,
) -> MailItem:
    """Post a PDF to the account: online (with an email alert), or on paper when the
    owner chose paper or the letter must only go by post (`shown_online=False`,
    an invitation letter with a PIN). `today` is the date of receipt. The caller
    commits, then wakes the outbox (web.mailer.kick_outbox)."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    delivery = "paper" if (not shown_online or paper_in_force(account, today)) else "online"
    item = MailItem(
        account_id=account.id,
        kind=kind,
        title=title[:200],
        posted_on=today,
        posted_at=now,
        posted_by_user_id=posted_by_user_id,
        delivery=delivery,
        shown_online=shown_online,
        tax_return_id=tax_return_id,
        service_request_id=service_request_id,
        pin_id=pin_id,
        content=pdf,
        size_bytes=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
    )
    db.add(item)
    db.flush()
    audit.record(
        db,
        now,
        "mail.posted",
        actor_user_id=posted_by_user_id,
        account_id=account.id,
        mail=item.id,
        kind=kind,
        delivery=delivery,
    )
    if delivery == "online":
        for address in alert_recipients(db, account.id, today):
            outbox.enqueue(db, now, address, ALERT_SUBJECT, alert_body())
    return item


# --- The account's mailbox -----------------------------------------------------------------


def mailbox(db: Session, account_id: int) -> list[MailItem]:
    """What the account's people see under Mail, newest first (without the PDFs)."""
    return list(
        db.scalars(
            select(MailItem)
            .options(defer(MailItem.content))
            .where(MailItem.account_id == account_id, MailItem.shown_online.is_(True))
            .order_by(MailItem.posted_at.desc(), MailItem.id.desc())
        )
    )


def find(db: Session, account_id: int, item_id: int) -> MailItem | None:
    """The account's item with this id when its people may see it; None for
    another account's, or one that only goes by post."""
    item = db.get(MailItem, item_id)
    if item is None or item.account_id != account_id or not item.shown_online:
        return None
    return item


def filename(item: MailItem, account_number: str) -> str:
    return f"{item.kind.replace('_', '-')}-{account_number}-{item.posted_on.isoformat()}-{item.id}.pdf"


_MARK_READ = (
    update(MailItem)
    .where(MailItem.id == bindparam("item_id"), MailItem.first_read_at.is_(None))
    .values(first_read_at=bindparam("at"))
)


def read_write(item: MailItem, now: datetime):
    """(statement, parameters) noting the first time the item was opened, or None
    when it has been opened before: bookkeeping, written at the end of the GET."""
    if item.first_read_at is not None:
        return None
    return _MARK_READ, {"item_id": item.id, "at": now}


# --- The agency's paper queue --------------------------------------------------------------


@dataclass(frozen=True)
class QueuedItem:
    item: MailItem
    account_number: str
    legal_name: str


def paper_queue(db: Session, limit: int = QUEUE_SHOWN_AT_MOST) -> list[QueuedItem]:
    """Paper items not yet mailed, oldest first (without the PDFs)."""
    rows = db.execute(
        select(MailItem, Account.number, Account.legal_name)
        .join(Account, Account.id == MailItem.account_id)
        .options(defer(MailItem.content))
        .where(MailItem.delivery == "paper", MailItem.mailed_at.is_(None))
        .order_by(MailItem.posted_at, MailItem.id)
        .limit(limit)
    )
    return [QueuedItem(item, number, legal_name) for item, number, legal_name in rows]


def get(db: Session, item_id: int) -> MailItem | None:
    """Any item, for the agency; None for an id no row can have (the staff side's
    URL takes any integer)."""
    return db.get(MailItem, item_id) if isinstance(item_id, int) and 0 < item_id <= MAX_ID else None


class NotPaper(ValueError):
    """An item that went online has nothing to mail."""


def mark_mailed(db: Session, now: datetime, item: MailItem, staff: User, *, today: date) -> bool:
    """A staff member printed and posted a paper item. False (nothing done) when
    it was already marked, by anyone. An invitation letter carries a PIN: once
    mailed its stored copy is replaced by a note that says when, so the PIN is
    kept nowhere. The caller commits."""
    if item.delivery != "paper":
        raise NotPaper("this item was posted online")
    # One UPDATE that only a row not yet mailed matches: of two people pressing the
    # button, one marks it.
    marked = rows_changed(
        db,
        update(MailItem)
        .where(MailItem.id == item.id, MailItem.mailed_at.is_(None))
        .values(mailed_at=now)
        .execution_options(synchronize_session=False),
    )
    if marked != 1:
        return False
    db.refresh(item)
    if item.kind == "invitation_letter":
        note = mailed_letter_pdf(item, db.get_one(Account, item.account_id), today)
        item.content, item.size_bytes, item.sha256 = note, len(note), hashlib.sha256(note).hexdigest()
    audit.record(
        db,
        now,
        "mail.mailed",
        actor_user_id=staff.id,
        account_id=item.account_id,
        mail=item.id,
        kind=item.kind,
        letter_replaced=item.kind == "invitation_letter",
    )
    return True


def mailed_letter_pdf(item: MailItem, account: Account, mailed_on: date, *, compress: bool = True) -> bytes:
    """What is kept of an invitation letter once it is in the post."""
    pdf = FPDF(unit="mm", format="Letter")
    pdf.set_compression(compress)
    pdf.set_margins(20, 18, 20)
    pdf.set_title(pdf_text(f"{item.title} (mailed)"))
    pdf.set_author(AGENCY)
    pdf.set_creator(SERVICE)
    pdf.set_lang("en-CA")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 6, pdf_text(AGENCY), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, pdf_text(item.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    for line in (
        f"Account {format_number(account.number)}, {account.legal_name}.",
        f"Posted on {long_day(item.posted_on)}. Mailed on {long_day(mailed_on)}.",
        "This letter carried a PIN. Now that it has been mailed we do not keep the letter or its PIN. "
        "If the PIN is lost, a new one can be issued.",
    ):
        pdf.multi_cell(0, 6, pdf_text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 4, pdf_text(DEMO_FOOTER), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
