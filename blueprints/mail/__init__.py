"""Online mail: the notices and letters the agency posted to an account, each a PDF,
and the owner's choice of paper instead. Anyone who may see the account's returns
or its finances reads its mail; only an owner chooses paper or online. The rules
live in domain.mail; each route declares its need (web.access.account_route)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, session, url_for
from flask_login import current_user

from domain import mail
from domain.returns import long_day
from models import Account, Grant
from web.access import account_route, refuse
from web.database import get_db, now, write_at_end
from web.dates import today
from web.htmx import see_other
from web.mailer import kick_outbox
from web.uploads import attachment

from .forms import DeliveryForm

bp = Blueprint("mail", __name__, url_prefix="/mail")


def pdf_attachment(content: bytes, name: str):
    # A PDF is never shown as a page, as the supporting documents are not.
    return attachment(content, "application/pdf", name)


@bp.route("/<account:number>/")
@account_route("view_returns", "view_financial")
def mailbox(account: Account, grant: Grant):
    day = today()
    return render_template(
        "mail/mailbox.html",
        account=account,
        grant=grant,
        items=mail.mailbox(get_db(), account.id),
        paper=mail.paper_in_force(account, day),
        kind_labels=mail.KIND_LABELS,
        current="mail",
    )


@bp.route("/<account:number>/<id:item_id>.pdf")
@account_route("view_returns", "view_financial")
def download(account: Account, grant: Grant, item_id: int):
    item = mail.find(get_db(), account.id, item_id)
    if item is None:
        abort(404)  # another account's item, or a letter that only goes by post
    # A GET changes nothing but bookkeeping: the first opening is a fact about the
    # visit, written once the answer is made (as a message's "read").
    first_read = mail.read_write(item, now())
    if first_read is not None:
        write_at_end(("mail-read", item.id), *first_read)
    return pdf_attachment(item.content, mail.filename(item, account.number))


def _delivery_page(account, grant, form, status: int = 200):
    day = today()
    return render_template(
        "mail/delivery.html",
        account=account,
        grant=grant,
        form=form,
        paper=mail.paper_in_force(account, day),
        lapsed_on=mail.lapsed_on(account, day),
        may_choose=mail.may_choose(grant),
        paper_until=mail.paper_until(day),
        current="mail",
    ), status


@bp.route("/<account:number>/delivery", methods=["GET", "POST"])
@account_route("view_returns", "view_financial")
def delivery(account: Account, grant: Grant):
    day = today()
    if request.method != "POST":
        form = DeliveryForm(formdata=None, delivery="paper" if mail.paper_in_force(account, day) else "online")
        return _delivery_page(account, grant, form)
    if not mail.may_choose(grant):
        refuse(current_user.id, "owner-only")
    form = DeliveryForm()
    if not form.validate():
        return _delivery_page(account, grant, form, 400)
    db, moment = get_db(), now()
    choose = mail.choose_paper if form.delivery.data == "paper" else mail.choose_online
    if choose(db, moment, day, grant):
        db.commit()
        kick_outbox()
        until = account.paper_mail_until  # set by choose_paper, cleared by choose_online
        session["notice"] = (
            f"We will send this account's notices and letters by post until {long_day(until)}."
            if until is not None
            else "We will post this account's notices and letters online."
        )
    else:
        session["notice"] = (
            "This account's mail already goes by post."
            if form.delivery.data == "paper"
            else "This account's mail is already posted online."
        )
    return see_other(url_for(".delivery", number=account.number))
