"""Make a payment: what an account owes now and by period, how to pay it (the
program's ways to pay, with the account number as the reference) and a
remittance voucher to print. The portal takes no card payments.

Who may see it: anyone who may see the balance (view_financial), so a person
who is told what they owe is also told how to pay it. A stranger gets the same
404 as an account that does not exist (web.access.account_route).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template

from domain import payments
from models import Account, Grant
from web.access import account_route
from web.database import get_db, now
from web.dates import today

bp = Blueprint("payments", __name__, url_prefix="/payments")


@bp.route("/<account:number>/")
@account_route("view_financial")
def make(account: Account, grant: Grant):
    day = today()
    return render_template(
        "payments/make.html",
        account=account,
        grant=grant,
        due=payments.owing(get_db(), account, day),
        ways=payments.ways_to_pay(account.program, account),
        today=day,
        current="payment",
    )


@bp.route("/<account:number>/voucher.pdf")
@account_route("view_financial")
def voucher(account: Account, grant: Grant):
    produced = now().astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"]))
    due = payments.owing(get_db(), account, produced.date())
    pdf = payments.voucher_pdf(account, due, payments.ways_to_pay(account.program, account), generated_at=produced)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{payments.voucher_filename(account)}"'},
    )
