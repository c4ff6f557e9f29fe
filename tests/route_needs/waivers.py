"""Waivers of penalties and interest: a waiver request on the test account."""

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
            kind="waiver",
            key=secrets.token_urlsafe(16),
            summary="Waiver of penalties and interest (test table)",
            data={},
        )
        table["reference"] = made.request.reference
