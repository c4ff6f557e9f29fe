"""The request history: a request on the test account, a return, so of those the
routes let in (anyone who may make some kind of request) only who may file sees it."""

from __future__ import annotations

import json

from models import ServiceRequest

OBJECT_NEEDS = {"requests.show": {"file"}}


def extend(db, account, now, table):
    row = ServiceRequest(
        reference="SR-TEST-R001",
        account_id=account.id,
        kind="return",
        status="received",
        summary="Return for June 2026",
        data=json.dumps({"levy": "40.00"}),
        submitted_at=now,
        submitted_by_user_id=1,
        idempotency_key="table-request-key",
    )
    db.add(row)
    db.flush()
    table["request_reference"] = row.reference
