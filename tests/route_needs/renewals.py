"""Licence renewals: the table's account is a Tourism Levy account, whose
program has no licence to renew: each route answers the page that says so (or,
for a POST, sends the person back to it). A licence on it names licence_id."""

from __future__ import annotations

import json
from datetime import date

from models import Licence, ServiceRequest


def extend(db, account, now, table):
    licence = Licence(
        account_id=account.id,
        licence_number=f"TBL-{account.id}",
        kind="Test licence",
        issued_on=date(2026, 1, 1),
        expires_on=date(2026, 12, 31),
    )
    db.add(licence)
    db.flush()
    table["licence_id"] = licence.id
    # renewals.done names a request by its reference. Another feature's table entry may
    # take the name (tests/route_needs/requests.py): the page answers any of the account's.
    renewal = ServiceRequest(
        reference="SR-TEST-RNW1",
        account_id=account.id,
        kind="renewal",
        status="received",
        summary="Renewal of Test licence",
        data=json.dumps({"licence_id": licence.id}),
        submitted_at=now,
        submitted_by_user_id=1,
        idempotency_key="table-renewal-key",
    )
    db.add(renewal)
    db.flush()
    table.setdefault("reference", renewal.reference)
