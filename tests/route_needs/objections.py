"""Notices of objection: the table's return (a notice dated 15 July 2026) is past
its deadline, so the journey's pages answer their "closed" explanation (200 to a
GET, 400 to a POST)."""

from __future__ import annotations

import secrets

from domain import requests


def extend(db, account, now, table):
    # Other features may name a "reference" too: the first one stays, and a done
    # page shown another kind's reference of the same account redirects (303).
    if "reference" not in table:
        made = requests.submit(
            db,
            now,
            account=account,
            user_id=0,
            kind="objection",
            key=secrets.token_urlsafe(16),
            summary="Notice of objection (test table)",
            data={},
            tax_return_id=table.get("return_id"),
        )
        table["reference"] = made.request.reference
