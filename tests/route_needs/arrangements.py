"""Payment arrangements: a proposed arrangement waits on the test account. The
confirmation page names the table's `reference`, another feature's request: it
redirects (303) to where that is shown."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select


def extend(db, account, now, table) -> None:
    from domain import arrangements, requests
    from models import Grant

    user_id = db.scalar(select(Grant.user_id).where(Grant.account_id == account.id).order_by(Grant.id).limit(1))
    owing = arrangements.owing(db, account.id)
    proposal = arrangements.Proposal("monthly", max(owing // 2, 1), date(2026, 12, 1))
    rows = proposal.schedule(owing)
    requests.submit(
        db,
        now,
        account=account,
        user_id=user_id,
        kind="arrangement",
        key=requests.new_token(),
        summary=arrangements.summary(owing, rows, "monthly"),
        data=arrangements.request_data(owing, proposal, rows),
        build=arrangements.builder(account.id, now, owing, proposal),
    )
