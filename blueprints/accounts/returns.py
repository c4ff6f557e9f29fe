"""Assessment status and notices of an account (routes on accounts.bp).

Both need the view_returns permission (web.account_access.account_or_404); a
return that is not this account's, or has no notice yet, is a 404 like any
other wrong URL. The notice PDF is built by domain.notices from the ledger."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, render_template

from domain import notices
from domain import returns as tax_returns
from web.account_access import account_or_404
from web.database import get_db, now

from . import bp


@bp.route("/<number>/returns")
def returns(number: str):
    account, grant = account_or_404(number, "view_returns")
    lines = tax_returns.lines_for(get_db(), account)
    return render_template("accounts/returns.html", account=account, grant=grant, returns=lines, current="returns")


@bp.route("/<number>/returns/<int:return_id>/notice.pdf")
def notice(number: str, return_id: int):
    account, _grant = account_or_404(number, "view_returns")
    db = get_db()
    tax_return = tax_returns.return_of(db, account.id, return_id)
    found = notices.notice_for(db, account, tax_return) if tax_return is not None else None
    if found is None:
        abort(404)
    produced = now().astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"]))
    return Response(
        notices.render_pdf(found, generated_at=produced),
        mimetype="application/pdf",
        headers={"Content-Disposition": f"attachment; filename={found.filename}"},
    )
