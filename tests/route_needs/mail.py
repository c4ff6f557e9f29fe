"""Online mail: a letter posted online to the test account."""

from __future__ import annotations

from domain import mail

_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nstartxref\n0\n%%EOF\n"


def extend(db, account, now, table):
    item = mail.post(db, now, now.date(), account=account, kind="letter", title="A letter about the table", pdf=_PDF)
    table["item_id"] = item.id
