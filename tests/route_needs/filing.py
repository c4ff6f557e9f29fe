"""Filing returns and claims: an open period, and a return filed online."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from domain import requests
from models import Grant, ServiceRequest, TaxReturn


def extend(db, account, now, table: dict) -> None:
    """An open period of the test account (July 2026: no return yet) and, unless
    another feature has named one already, a return filed online for August 2026
    with its request's reference (the confirmation page's)."""
    table["period_end"] = date(2026, 7, 31).isoformat()
    if "reference" in table:
        return
    filer = db.scalar(select(Grant.user_id).where(Grant.account_id == account.id).order_by(Grant.id).limit(1))
    request = ServiceRequest(
        reference=requests.new_reference(),
        account_id=account.id,
        kind="return",
        status="received",
        summary="Tourism Levy return for 1–31 August 2026: levy payable $40.00",
        data=json.dumps({"period": "1–31 August 2026", "total": "$40.00"}),
        submitted_at=now,
        submitted_by_user_id=filer,
        idempotency_key=requests.new_token(),
    )
    db.add(request)
    db.flush()
    tax_return = TaxReturn(
        account_id=account.id,
        period_end=date(2026, 8, 31),
        kind="return",
        amended=False,
        received_on=now.date(),
        status="received",
        reference=request.reference,
        figures=json.dumps({"accommodation_price": "1000.00", "exempt_price": "0.00"}),
        amount_cents=4000,
        filed_by_user_id=filer,
        service_request_id=request.id,
    )
    db.add(tax_return)
    db.flush()
    request.tax_return_id = tax_return.id
    table["reference"] = request.reference
