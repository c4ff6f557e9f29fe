"""Online mail: notices and letters posted to an account's mailbox in the portal.
The posting date is the date of receipt (it starts deadlines such as the 90 days
for an objection). Each online posting sends an email alert with no content; an
owner may ask for paper instead, for two years. Plain functions, no Flask."""
from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy.orm import Session

from domain import audit
from models import MAIL_KINDS, Account, MailItem


def paper_in_force(account: Account, today: date) -> bool:
    """Whether the owner's choice of paper mail holds today (it lapses after two years)."""
    return account.paper_mail_until is not None and today <= account.paper_mail_until


def post(db: Session, now: datetime, today: date, *, account: Account, kind: str, title: str, pdf: bytes,
         posted_by_user_id: int | None = None, tax_return_id: int | None = None,
         service_request_id: int | None = None, pin_id: int | None = None, shown_online: bool = True) -> MailItem:
    """Post a PDF to the account: online (with an email alert), or on paper when the
    owner chose paper or the letter must only go by post (`shown_online=False`,
    an invitation letter with a PIN). The caller commits."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    delivery = "paper" if (not shown_online or paper_in_force(account, today)) else "online"
    item = MailItem(account_id=account.id, kind=kind, title=title[:200], posted_on=today, posted_at=now,
                    posted_by_user_id=posted_by_user_id, delivery=delivery, shown_online=shown_online,
                    tax_return_id=tax_return_id, service_request_id=service_request_id, pin_id=pin_id,
                    content=pdf, size_bytes=len(pdf), sha256=hashlib.sha256(pdf).hexdigest())
    db.add(item)
    db.flush()
    audit.record(db, now, "mail.posted", actor_user_id=posted_by_user_id, account_id=account.id, mail=item.id,
                 kind=kind, delivery=delivery)
    return item
