"""Supporting documents: a document on the test account."""

from __future__ import annotations

import hashlib

from models import Document, DocumentContent

_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nstartxref\n0\n%%EOF\n"


def extend(db, account, now, table):
    """A document in the database store (readable whatever the test's store setting)."""
    stored_name = "0" * 31 + "1"
    db.add(DocumentContent(stored_name=stored_name, content=_PDF))
    document = Document(
        account_id=account.id,
        stored_name=stored_name,
        uploaded_name="receipts.pdf",
        content_type="application/pdf",
        size_bytes=len(_PDF),
        sha256=hashlib.sha256(_PDF).hexdigest(),
        storage="database",
        description="",
        uploaded_at=now,
        uploaded_by_user_id=1,
    )
    db.add(document)
    db.flush()
    table["document_id"] = document.id
