"""Online mail: anyone who may see the account's returns or its finances reads its
mail and sees how it is sent (only an owner may change that, checked on the POST)."""

from __future__ import annotations

from domain import mail

_READ = {"view_returns", "view_financial"}
NEEDS = {"mail.mailbox": _READ, "mail.download": _READ, "mail.delivery": _READ}

_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nstartxref\n0\n%%EOF\n"


def extend(db, account, now, table):
    item = mail.post(db, now, now.date(), account=account, kind="letter", title="A letter about the table", pdf=_PDF)
    table["item_id"] = item.id
