"""Direct deposit: every route needs the "direct_deposit" permission."""

from __future__ import annotations

from sqlalchemy import select

from domain import direct_deposit, requests
from models import Grant

NEEDS = {
    "direct_deposit.show": {"direct_deposit"},
    "direct_deposit.change": {"direct_deposit"},
    "direct_deposit.check": {"direct_deposit"},
    "direct_deposit.done": {"direct_deposit"},
}


def extend(db, account, now, table: dict) -> None:
    """A direct deposit change already made on the account: its confirmation's reference."""
    user_id = db.scalar(select(Grant.user_id).where(Grant.account_id == account.id).order_by(Grant.id).limit(1))
    details = direct_deposit.Details(institution="004", transit="12345", bank_account="1234567")
    made = requests.submit(
        db,
        now,
        account=account,
        user_id=user_id,
        kind=direct_deposit.KIND,
        key=requests.new_token(),
        summary=direct_deposit.summary_line(details),
        data=details.shown(),
    )
    table["change_reference"] = made.request.reference
